"""Webhook events applied together (jobs.webhook_events, core.group_call), in this process
against the real database: each event once, and an event that cannot be applied fails alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from domain import webhook_events
from jobs.webhook_events import apply
from tests.harness import MariaDB
from tests.test_domain import accept, autocommit_connection, new_reseller
from workers import resources
from workers.enqueue import NAMESPACE


@pytest.fixture
async def worker_resources(db: MariaDB) -> AsyncIterator[resources.Resources]:
    """This process's worker resources (settings from the test environment), closed afterwards."""
    yield resources.current()
    released = resources.release()
    assert released is not None
    await released.close()


async def receive(res: resources.Resources, reference: str, payload: dict) -> int:
    async with autocommit_connection(res.engine) as conn:
        [job] = await webhook_events.receive_all(
            conn, [webhook_events.IncomingEvent("digiflazz", uuid.uuid4().hex, reference, payload)], lease_seconds=60
        )
    assert job is not None
    return job.args[0]


async def test_events_applied_together_apply_once_each_and_a_bad_one_fails_alone(worker_resources, db: MariaDB):
    res = worker_resources
    reseller_id = await new_reseller(res.engine, 12_000)
    purchase_id = await accept(res.engine, reseller_id)
    provider_ref = db.value("SELECT provider_ref FROM purchase WHERE id = %s", purchase_id)
    gagal = {"data": {"ref_id": provider_ref, "status": "Gagal", "rc": "02", "message": "Transaksi Gagal", "sn": ""}}
    applied = await receive(res, provider_ref, gagal)
    unmatched = await receive(res, "LKnobody", {"data": {**gagal["data"], "ref_id": "LKnobody"}})
    broken = await receive(res, provider_ref, {"no": "data"})  # stored by a bug: its handler raises

    # The first call goes at once; the five that come while it is on its way share the next group,
    # which fails on the broken event and is then run again event by event.
    first = asyncio.create_task(apply(applied))
    await asyncio.sleep(0)
    results = await asyncio.gather(*(apply(e) for e in (applied, unmatched, broken, applied, unmatched)), return_exceptions=True)
    await first

    assert results == [None] * 5  # the broken one failed: its retry is scheduled, not raised (workers.in_flight)
    outcomes = {r["id"]: r["outcome"] for r in db.rows(
        "SELECT id, outcome FROM webhook_event WHERE id IN (%s, %s, %s)", applied, unmatched, broken
    )}  # fmt: skip
    assert outcomes == {applied: "applied", unmatched: "unmatched", broken: "received"}
    assert db.value("SELECT status FROM purchase WHERE id = %s", purchase_id) == "gagal"
    assert db.value("SELECT COUNT(*) FROM ledger_entry WHERE purchase_id = %s AND jenis = 'refund'", purchase_id) == 1
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 12_000
    keys = [webhook_events.apply_job(e).job_key for e in (applied, unmatched, broken)]
    assert [r["job_key"] for r in db.rows("SELECT job_key FROM outbox WHERE job_key IN (%s, %s, %s)", *keys)] == [keys[2]]
    # Its retry waits in Dramatiq's delay queue, and its row was moved past the retry's time.
    assert await res.redis.hexists(f"{NAMESPACE}:{webhook_events.WEBHOOK_QUEUE}.DQ.msgs", keys[2])
    assert db.value("SELECT due_at > NOW(6) + INTERVAL 30 SECOND FROM outbox WHERE job_key = %s", keys[2]) == 1
    # Closed by hand, so that the retry finds nothing to do and no relay of the shared stack picks it up.
    db.rows("DELETE FROM outbox WHERE job_key = %s", keys[2])
    db.rows("UPDATE webhook_event SET outcome = 'ignored' WHERE id = %s", broken)


async def test_two_callbacks_on_one_purchase_in_a_group_see_it_as_each_other_left_it(worker_resources, db: MariaDB):
    """Their purchases are read once for the group: the second callback on the same purchase
    must not decide on what the first one changed."""
    res = worker_resources
    reseller_id = await new_reseller(res.engine, 12_000)
    purchase_id = await accept(res.engine, reseller_id)
    provider_ref = db.value("SELECT provider_ref FROM purchase WHERE id = %s", purchase_id)
    sukses = {"data": {"ref_id": provider_ref, "status": "Sukses", "rc": "00", "message": "Transaksi Sukses", "sn": "SN1"}}
    gagal = {"data": {"ref_id": provider_ref, "status": "Gagal", "rc": "02", "message": "Transaksi Gagal", "sn": ""}}
    first, late = await receive(res, provider_ref, sukses), await receive(res, provider_ref, gagal)

    blocker = asyncio.create_task(apply(await receive(res, "LKnobody", {"data": {**gagal["data"], "ref_id": "LKnobody"}})))
    await asyncio.sleep(0)  # the next two go in one group behind it
    await asyncio.gather(apply(first), apply(late))
    await blocker

    notes = {r["id"]: (r["outcome"], r["note"]) for r in db.rows("SELECT id, outcome, note FROM webhook_event WHERE id IN (%s, %s)", first, late)}
    assert notes == {first: ("applied", f"purchase {purchase_id} -> sukses"), late: ("ignored", "purchase already sukses")}
    assert db.value("SELECT status FROM purchase WHERE id = %s", purchase_id) == "sukses"
    assert db.value("SELECT COUNT(*) FROM ledger_entry WHERE purchase_id = %s AND jenis = 'refund'", purchase_id) == 0
