"""Applying stored webhook events, once each, by source."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from core import context
from db import outbox, raw
from db import purchases as purchase_queries
from db import qris as qris_queries
from db import webhook_events as event_queries
from db.outbox import Job
from db.purchases import Purchase
from db.webhook_events import WebhookEvent
from domain import purchases, qris, webhook_events
from provider.digiflazz import answer_from
from provider.payment_links import confirms_credit, parse_midtrans, parse_paystack
from provider.xendit import PaymentEvent, paid_in_full, parse_payment_webhook
from workers import resources
from workers.actor import hand_off_actor, hand_off_each_actor
from workers.broker import retry_backoff_ms

log = logging.getLogger(__name__)
Result = tuple[str, str]  # (outcome, note)


class Question(NamedTuple):
    """What an event's handler must hear from the gateway before it may credit: a notification
    that carries no amount, or whose signature does not bind the state it reports, is only a
    hint; the gateway's own read API is the record. Asked outside any transaction (apply)."""

    gateway: str  # midtrans: the status of order `key`; xendit: the payments of QR code `key`
    key: str


class Confirmation(NamedTuple):
    question: Question
    answer: Any  # Midtrans' status object (None: no such transaction), or Xendit's payments


class Ask(NamedTuple):
    """A handler's answer when it needs the gateway's word first: nothing is written, the event
    stays received, and apply() runs it again with the answer."""

    question: Question


class GroupReads:
    """What a group of events needs read, read for all of them at once: the purchases its
    provider callbacks name, in one statement instead of one per event. Each is used once; a
    second event on the same purchase reads it again, as the first left it. And what the
    gateways answered the events of the group that asked them (Ask)."""

    def __init__(self, purchases: dict[str, Purchase], provider_refs: set[str], confirmations: dict[int, Confirmation] | None = None) -> None:
        self._purchases = purchases
        self._unread = provider_refs
        self._confirmations = confirmations or {}

    @classmethod
    async def of(cls, conn: raw.Connection, events: list[WebhookEvent], confirmations: dict[int, Confirmation] | None = None) -> GroupReads:
        refs = {e.reference for e in events if e.source == "digiflazz" and e.outcome == "received" and e.reference}
        return cls(await purchase_queries.by_provider_refs(conn, sorted(refs)) if refs else {}, refs, confirmations)

    def confirmation(self, event_id: int, question: Question) -> Confirmation | None:
        """The gateway's answer to this question for this event, if it was asked it."""
        found = self._confirmations.get(event_id)
        return found if found is not None and found.question == question else None

    async def purchase(self, conn: raw.Connection, provider_ref: str) -> Purchase | None:
        if provider_ref in self._unread:
            self._unread.discard(provider_ref)
            return self._purchases.get(provider_ref)
        return await purchase_queries.by_provider_ref(conn, provider_ref)


async def _digiflazz(conn: raw.Connection, event: WebhookEvent, reads: GroupReads) -> Result:
    answer = answer_from(event.payload["data"])
    purchase = await reads.purchase(conn, event.reference or "")
    if purchase is None:
        return "unmatched", "no purchase with this ref_id"
    if purchase.is_final:
        return "ignored", f"purchase already {purchase.status}"
    if await purchases.apply_provider_answer(conn, purchase, answer, resources.current().settings.outbox_lease_seconds):
        return "applied", f"purchase {purchase.id} -> {answer.outcome.value}"
    return "ignored", f"provider says {answer.status} ({answer.rc}); purchase stays open"


async def _xendit(conn: raw.Connection, event: WebhookEvent, reads: GroupReads) -> Result | Ask:
    return await _payment(conn, "xendit", parse_payment_webhook(event.payload), lambda question: reads.confirmation(event.id, question))


async def _midtrans(conn: raw.Connection, event: WebhookEvent, reads: GroupReads) -> Result | Ask:
    payment = parse_midtrans(event.payload)
    if payment is None:
        return "ignored", "not a final payment state (or a status_code that does not go with it)"
    return await _payment(conn, "midtrans", payment, lambda question: reads.confirmation(event.id, question))


async def _paystack(conn: raw.Connection, event: WebhookEvent, reads: GroupReads) -> Result | Ask:
    payment = parse_paystack(event.payload)
    return await _payment(conn, "paystack", payment, lambda question: None) if payment else ("ignored", "not a successful charge")


def _question(gateway: str, payment: PaymentEvent, transaction: dict) -> Question | None:
    """What must be confirmed before this payment completes the transaction, if anything: every
    Midtrans credit (its signature does not bind transaction_status), and Xendit's seed form,
    which carries no amount. Paystack signs the whole body, and Xendit's other forms carry the
    payment's id and amount."""
    if gateway == "midtrans":
        return Question("midtrans", transaction["tr_external_id"])
    if gateway == "xendit" and payment.payment_id is None:
        return Question("xendit", transaction["tr_xendit_id"] or "")
    return None


async def _payment(
    conn: raw.Connection, gateway: str, payment: PaymentEvent, confirmed: Callable[[Question], Confirmation | None]
) -> Result | Ask:
    """What a gateway says about a kiosk session or a deposit, applied on its current state."""
    # Locked: events of one transaction applied by parallel workers decide on its current state.
    transaction = await qris_queries.by_external_id(conn, payment.reference, for_update=True)
    if transaction is None:
        return "unmatched", "no transaction with this external_id"
    if transaction["tr_gateway"] != gateway:
        return "unmatched", f"{gateway} reports on a transaction paid through {transaction['tr_gateway']}"
    tr_id, status = transaction["tr_id"], transaction["tr_status"]
    if payment.kind == "paid":
        if status == "COMPLETED" and _same_payment(transaction, payment):
            return "ignored", "payment already applied"
        if status != "PENDING":
            # Money arrived for a session that is over (or paid twice): an operator decides.
            return "unmatched", f"payment for a {status} transaction: refund or honour it"
        if payment.amount is not None and payment.amount != transaction["tr_amount"]:
            return "unmatched", f"paid {payment.amount:g}, expected {transaction['tr_amount']}: not completed"
        if payment.qr_id and transaction["tr_xendit_id"] and payment.qr_id != transaction["tr_xendit_id"]:
            return "unmatched", "payment for another QR code than this transaction's"
        payment_id = payment.payment_id
        question = _question(gateway, payment, transaction)
        if question is not None:
            if not question.key:
                return "unmatched", "no QR code to confirm the payment with: reconcile it"
            confirmation = confirmed(question)
            if confirmation is None:
                return Ask(question)
            refused, payment_id = _refused_by_gateway(confirmation, transaction["tr_amount"], payment_id)
            if refused is not None:
                return "ignored", f"{refused}: not completed"
        if await qris.complete(conn, transaction, payment_id):
            return "applied", f"transaction {tr_id} -> COMPLETED"
        return "unmatched", "transaction ended while this payment was applied: reconcile it"
    ended = await (qris.fail(conn, tr_id, "gateway reported FAILED") if payment.kind == "failed" else qris.expire(conn, tr_id, forced=True))
    return ("applied", f"transaction {tr_id} -> {payment.kind.upper()}") if ended else ("ignored", f"transaction already {status}")


def _refused_by_gateway(confirmation: Confirmation, amount: int, payment_id: str | None) -> tuple[str | None, str | None]:
    """(why the gateway's answer does not confirm a full payment of amount, or None; the payment
    id to record)."""
    if confirmation.question.gateway == "midtrans":
        return confirms_credit(confirmation.answer, amount), payment_id
    paid = paid_in_full(confirmation.answer, amount)
    if paid is None:
        return f"Xendit reports no succeeded payment of {amount} to this QR code", payment_id
    return None, payment_id or (str(paid["id"]) if paid.get("id") else None)


async def _ask(question: Question) -> Any:
    """The gateway's answer to a question (outside any transaction); GatewayUnavailable when it
    gives none, and the event is retried later."""
    res = resources.current()
    if question.gateway == "midtrans":
        return await res.midtrans.status(question.key)
    return await res.gateway.payments(question.key)


def _same_payment(transaction: dict, payment: PaymentEvent) -> bool:
    """The seed's form carries no payment id: it is the same payment when it names the same QR code."""
    if payment.payment_id is not None and transaction["tr_payment_id"] is not None:
        return payment.payment_id == transaction["tr_payment_id"]
    return payment.qr_id is not None and payment.qr_id == transaction["tr_xendit_id"]


HANDLERS: dict[str, Callable[[raw.Connection, WebhookEvent, GroupReads], Awaitable[Result | Ask]]] = {
    "digiflazz": _digiflazz,
    "xendit": _xendit,
    "midtrans": _midtrans,
    "paystack": _paystack,
}


async def apply(event_id: int, attempt: int = 0) -> None:
    """Apply one event, in one transaction with the other events this process applies at the same
    moment (core.group_call). The events are locked, so two copies of one event's job run one
    after the other, and the second finds it applied. A failure (the database or Redis out, a
    handler's error) schedules a retry with Dramatiq's backoff.

    attempt: how many tries failed before this one.
    """
    context.subject.set(f"webhook_event:{event_id}")
    res = resources.current()
    group = res.group_call("webhook_events.apply", _apply_group)
    try:
        applied = await group(_Item(event_id))
        if applied.ask is not None:
            # The gateway is asked between two transactions, holding no lock; down, it raises
            # and the event, still received, is retried like any failure.
            answer = await _ask(applied.ask)
            applied = await group(_Item(event_id, Confirmation(applied.ask, answer)))
            if applied.ask is not None:
                raise RuntimeError(f"the event asks {applied.ask} now: its transaction changed meanwhile")
    except Exception as failure:
        await res.retry_later(webhook_events.apply_job(event_id, attempt + 1), retry_backoff_ms(attempt), failure)
        return
    await res.pusher.push_after_commit(list(applied.jobs))  # here, so each message carries its own event's request id
    if applied.outcome is not None:
        log.info("webhook event %s (%s): %s, %s", event_id, applied.source, applied.outcome, applied.note)


class _Item(NamedTuple):
    """An event to apply, with the gateway's answer when its handler asked for one before."""

    event_id: int
    confirmation: Confirmation | None = None


class _Applied(NamedTuple):
    """What applying an event did: its outcome and note (None when it had been handled before),
    and the jobs its changes wrote, to push once the transaction has committed; or the question
    its handler must have answered first (then nothing was written)."""

    source: str | None = None
    outcome: str | None = None
    note: str | None = None
    jobs: tuple[Job, ...] = ()
    ask: Question | None = None


async def _apply_group(items: list[_Item]) -> list[_Applied]:
    res = resources.current()
    event_ids = [item.event_id for item in items]
    confirmations = {item.event_id: item.confirmation for item in items if item.confirmation is not None}
    async with res.raw_unit_of_work() as conn:
        events = await event_queries.locked_by_ids(conn, event_ids)
        reads = await GroupReads.of(conn, list(events.values()), confirmations)
        applied: dict[int, _Applied] = {}
        answers = []
        for event_id in event_ids:
            # The same event twice in one group (a duplicate job) is applied once.
            answers.append(_Applied() if event_id in applied else await _apply_one(conn, events.get(event_id), reads))
            applied.setdefault(event_id, answers[-1])
        # An event that asked stays received, its job open: apply() comes back with the answer.
        await webhook_events.finish(conn, {i: (a.outcome, a.note) if a.outcome else None for i, a in applied.items() if a.ask is None})
    return answers


async def _apply_one(conn: raw.Connection, event: WebhookEvent | None, reads: GroupReads) -> _Applied:
    if event is None or event.outcome != "received":
        return _Applied()
    handler = HANDLERS.get(event.source)
    with outbox.jobs_added() as jobs:
        result = await handler(conn, event, reads) if handler else ("ignored", f"no handler for source {event.source}")
    if isinstance(result, Ask):
        return _Applied(event.source, ask=result.question)
    outcome, note = result
    return _Applied(event.source, outcome, note, tuple(jobs))


def _apply_job_key(event_id: int, attempt: int = 0) -> str:
    return webhook_events.apply_job(event_id).job_key


@hand_off_actor(actor_name=webhook_events.APPLY_ACTOR, queue_name=webhook_events.WEBHOOK_QUEUE, job_key=_apply_job_key)
async def apply_webhook_event(event_id: int, attempt: int = 0) -> None:
    """Runs in this process's work in flight, after its message is acknowledged: the worker
    thread waits for no group's transaction (workers.in_flight)."""
    await apply(event_id, attempt)


# apply() for each event of a message that carries the apply jobs of events received together (web.intake).
apply_webhook_events = hand_off_each_actor(actor_name=webhook_events.APPLY_ALL_ACTOR, queue_name=webhook_events.WEBHOOK_QUEUE, job_key=_apply_job_key)(apply)
