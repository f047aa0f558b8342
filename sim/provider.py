"""Digiflazz buyer-API side of the simulator: records, behaviour, injected faults, callbacks.

HTTP-agnostic: `sim.app` turns requests into calls on `DigiflazzProvider`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from sim.settings import Settings, SimConfig

log = logging.getLogger("sim.provider")

SKU_PRICES: dict[str, int] = {"pulsa10": 10150, "pulsa20": 20150, "pln50": 50300, "xld10": 10100}
# Large enough that benchmarks never run dry; the sim has no top-up.
INITIAL_SALDO = 100_000_000_000
TELE = "@loket_sim"
WA = "081234567890"
REQUIRED_FIELDS = ("username", "buyer_sku_code", "customer_no", "ref_id", "sign")
# Last 4 digits of customer_no -> (first status, final status or None); same numbers as Digiflazz testing mode.
OUTCOMES: dict[str, tuple[str, str | None]] = {
    "1232": ("Gagal", None), "1233": ("Pending", "Sukses"), "1234": ("Pending", "Gagal"),
}
STATUS_RC: dict[str, tuple[str, str]] = {
    "Sukses": ("00", "Transaksi Sukses"), "Gagal": ("02", "Transaksi Gagal"), "Pending": ("03", "Transaksi Pending"),
}
SERVICE_UNAVAILABLE: dict[str, Any] = {"message": "Service Unavailable"}


@dataclass(frozen=True)
class TxnState:
    """What a transaction answers at one point of its life."""

    status: str
    rc: str
    message: str
    sn: str
    buyer_last_saldo: int


@dataclass
class Txn:
    """One recorded transaction, keyed by ref_id.

    Attributes:
        state: current (true) state.
        pending_state: the initial Pending answer, for checks while pending_check_resolves is off.
        final: the state a Pending record becomes (saldo is refreshed when it resolves).
        resolve_at: time.monotonic() at which a Pending record becomes final.
        cb_url: the request's cb_url, which overrides the configured callback_url.
        calls: how many requests carried this ref_id.
    """

    ref_id: str
    customer_no: str
    buyer_sku_code: str
    price: int
    created_at: str
    state: TxnState
    pending_state: TxnState | None = None
    final: TxnState | None = None
    resolve_at: float | None = None
    cb_url: str | None = None
    calls: int = 1

    def data(self, state: TxnState | None = None) -> dict[str, Any]:
        """The `data` object of a response or callback.

        Args:
            state: state to render; defaults to the current one.
        """
        s = state or self.state
        return {
            "ref_id": self.ref_id, "customer_no": self.customer_no, "buyer_sku_code": self.buyer_sku_code,
            "message": s.message, "status": s.status, "rc": s.rc, "sn": s.sn,
            "buyer_last_saldo": s.buyer_last_saldo, "price": self.price, "tele": TELE, "wa": WA,
        }

    def summary(self) -> dict[str, Any]:
        """The admin view of this record."""
        return {
            "ref_id": self.ref_id, "customer_no": self.customer_no, "buyer_sku_code": self.buyer_sku_code,
            "status": self.state.status, "rc": self.state.rc, "sn": self.state.sn,
            "calls": self.calls, "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Answer:
    """A provider answer.

    Attributes:
        status_code: HTTP status.
        body: JSON body.
        notify: URL for an event 'create' callback to start after the response, if any.
    """

    status_code: int
    body: dict[str, Any]
    notify: str | None = None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class DigiflazzProvider:
    """In-memory Digiflazz buyer API. One instance per app; never shared."""

    def __init__(self, settings: Settings, *, callback_retries: int = 3,
                 callback_retry_delay_s: float = 1.0) -> None:
        """Create an empty provider.

        Args:
            settings: environment settings (credentials, webhook secret, config defaults, seed).
            callback_retries: extra delivery attempts after a failed callback.
            callback_retry_delay_s: pause between callback delivery attempts, in seconds.
        """
        self.settings = settings
        self.callback_retries = callback_retries
        self.callback_retry_delay_s = callback_retry_delay_s
        self.config = SimConfig.from_settings(settings)
        self.records: dict[str, Txn] = {}
        self.saldo = INITIAL_SALDO
        self._rng = random.Random(settings.seed)
        # Strong references: the event loop only keeps weak ones to running tasks.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._client: httpx.AsyncClient | None = None

    def update_config(self, patch: Mapping[str, Any]) -> SimConfig:
        """Merge config keys into the runtime config.

        Args:
            patch: config keys and their new values; unknown keys raise ConfigError.
        """
        self.config = self.config.merged(patch)
        return self.config

    async def reset(self) -> None:
        """Forget all records, cancel pending work, restore config, saldo and random seed."""
        await self._cancel_tasks()
        self.records.clear()
        self.config = SimConfig.from_settings(self.settings)
        self.saldo = INITIAL_SALDO
        self._rng.seed(self.settings.seed)

    def transactions(self) -> list[dict[str, Any]]:
        """Admin views of all records, oldest first."""
        for rec in self.records.values():
            self._resolve_if_due(rec)
        return [rec.summary() for rec in self.records.values()]

    def transaction(self, ref_id: str) -> dict[str, Any] | None:
        """Admin view of one record.

        Args:
            ref_id: the buyer's ref_id; None is returned when unknown.
        """
        rec = self.records.get(ref_id)
        if rec is None:
            return None
        self._resolve_if_due(rec)
        return rec.summary()

    async def aclose(self) -> None:
        """Cancel background tasks and close the outbound HTTP client (app shutdown)."""
        await self._cancel_tasks()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def handle_transaction(self, raw: bytes) -> Answer:
        """Answer one POST /v1/transaction (a new transaction or a status check).

        Args:
            raw: the request body as received.
        """
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        try:
            body = orjson.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._reject({}, "40", "Payload Error")
        if self._draw("fail_next", self.config.error_rate):
            return Answer(503, SERVICE_UNAVAILABLE)
        hang = self._draw("timeout_next", self.config.timeout_rate)
        answer = self._process(body)
        if hang:
            await asyncio.sleep(self.config.timeout_sleep_ms / 1000)
        return answer

    # async so that Starlette runs it on the event loop, not in its thread pool.
    async def send_create_callback(self, answer: Answer) -> None:
        """Start the event 'create' callback for a new record (called after the response).

        Args:
            answer: the response just sent; its `notify` URL and `data` are used.
        """
        if answer.notify:
            self._spawn(self._deliver(answer.notify, answer.body["data"], "create"))

    def _draw(self, counter: str, rate: float) -> bool:
        left: int = getattr(self.config, counter)
        if left > 0:
            setattr(self.config, counter, left - 1)
            return True
        return rate > 0 and self._rng.random() < rate

    def _reject(self, body: Mapping[str, Any], rc: str, message: str) -> Answer:
        echo = Txn(ref_id=_str(body.get("ref_id")), customer_no=_str(body.get("customer_no")),
                   buyer_sku_code=_str(body.get("buyer_sku_code")), price=0, created_at="",
                   state=TxnState("Gagal", rc, message, "", self.saldo))
        return Answer(200, {"data": echo.data()})

    def _process(self, body: dict[str, Any]) -> Answer:
        if (any(not _str(body.get(f)) for f in REQUIRED_FIELDS)
                or not isinstance(body.get("testing", False), bool)
                or not isinstance(body.get("cb_url", ""), str)
                or not isinstance(body.get("max_price", 0), int | float | None)):
            return self._reject(body, "40", "Payload Error")
        username, sku, customer_no, ref_id = (body[k] for k in REQUIRED_FIELDS[:4])
        if username != self.settings.ppob_username:
            return self._reject(body, "42", "Gagal memproses API Buyer")
        expected = hashlib.md5((username + self.settings.ppob_api_key + ref_id).encode()).hexdigest()
        if body["sign"] != expected:
            return self._reject(body, "41", "Signature tidak valid")
        if sku not in SKU_PRICES:
            return self._reject(body, "43", "SKU tidak di temukan atau Non-Aktif")
        rec = self.records.get(ref_id)
        if rec is not None:
            rec.calls += 1
            if rec.buyer_sku_code != sku or rec.customer_no != customer_no:
                return self._reject(body, "49", "Ref ID tidak unik")
            self._resolve_if_due(rec)
            hide = rec.pending_state is not None and not self.config.pending_check_resolves
            return Answer(200, {"data": rec.data(rec.pending_state if hide else None)})
        return self._create(sku, customer_no, ref_id, body.get("cb_url") or None)

    def _create(self, sku: str, customer_no: str, ref_id: str, cb_url: str | None) -> Answer:
        price = SKU_PRICES[sku]
        first, final = OUTCOMES.get(customer_no[-4:], ("Sukses", None))
        if first != "Gagal":
            self.saldo -= price
        sn = f"{self._rng.getrandbits(64):020d}" if "Sukses" in (first, final) else ""
        rec = Txn(ref_id=ref_id, customer_no=customer_no, buyer_sku_code=sku, price=price,
                  created_at=datetime.now(UTC).isoformat(), state=self._state(first, sn), cb_url=cb_url)
        if final is not None:
            rec.pending_state = rec.state
            rec.final = self._state(final, sn)
            rec.resolve_at = time.monotonic() + self.config.pending_ms / 1000
            self._spawn(self._resolve_later(rec))
        self.records[ref_id] = rec
        notify = (cb_url or self.config.callback_url) if self.config.callback_on_create else None
        return Answer(200, {"data": rec.data()}, notify=notify or None)

    def _state(self, status: str, sn: str) -> TxnState:
        rc, message = STATUS_RC[status]
        return TxnState(status, rc, message, sn if status == "Sukses" else "", self.saldo)

    def _resolve_if_due(self, rec: Txn) -> bool:
        """Move a due Pending record to its final state; True once the record is final."""
        if rec.final is None or rec.resolve_at is None or rec.state.status != "Pending":
            return True
        if time.monotonic() < rec.resolve_at:
            return False
        if rec.final.status == "Gagal":
            self.saldo += rec.price
        rec.state = replace(rec.final, buyer_last_saldo=self.saldo)
        return True

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _resolve_later(self, rec: Txn) -> None:
        assert rec.resolve_at is not None
        # Loop: asyncio timers may fire up to one clock tick early.
        while not self._resolve_if_due(rec):
            await asyncio.sleep(max(0.001, rec.resolve_at - time.monotonic()))
        url = rec.cb_url or self.config.callback_url
        if url:
            await self._deliver(url, rec.data(), "update")

    async def _deliver(self, url: str, data: dict[str, Any], event: str) -> bool:
        """POST one signed callback, retrying failures; True when a 2xx came back.

        Args:
            url: callback target.
            data: the transaction `data` object to send.
            event: X-Digiflazz-Event value ('create' or 'update').
        """
        body = json.dumps({"data": data}).encode()
        digest = hmac.new(self.settings.ppob_webhook_secret.encode(), body, hashlib.sha1).hexdigest()
        headers = {"Content-Type": "application/json", "X-Digiflazz-Event": event,
                   "User-Agent": "Digiflazz-Hookshot", "X-Hub-Signature": f"sha1={digest}"}
        if self._client is None:
            # trust_env=False: proxy variables must not reroute callbacks to a local receiver.
            self._client = httpx.AsyncClient(timeout=5.0, trust_env=False)
        for attempt in range(1 + self.callback_retries):
            if attempt:
                await asyncio.sleep(self.callback_retry_delay_s)
            try:
                resp = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("callback %s to %s failed (attempt %d): %r", event, url, attempt + 1, exc)
                continue
            if resp.is_success:
                return True
            log.warning("callback %s to %s got HTTP %d (attempt %d)", event, url, resp.status_code, attempt + 1)
        return False
