"""Money moves at most once: Loket's real processes under crashes and races.

Each test runs on a private stack (its own database and redis-server) and checks what an operator
would: the final status, the saldo, the ledger entries by jenis and the number of rows. The money
invariants of tests/invariants.py are checked on each stack afterwards as well.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx

from ops.stack import ROOT
from tests.harness import LoketStack, Reseller, final_statuses, register, wait_quiet, wait_until
from tests.test_deposits import TOKEN, new_deposit, payment
from tests.test_provider_webhook import event, signed

# Numbers ending 1233 are answered Pending; kept Pending, with no callback of its own: the test is the provider.
STUCK = {"pending_check_resolves": False, "callback_url": "", "pending_ms": 600_000}


def jenis_of(loket: LoketStack, column: str, value: int) -> list[str]:
    return [r["jenis"] for r in loket.db.rows(f"SELECT jenis FROM ledger_entry WHERE {column} = %s ORDER BY id", value)]


def saldo_of(loket: LoketStack, reseller_id: int) -> int:
    return int(loket.db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id))


async def stuck_purchase(loket: LoketStack, api: httpx.AsyncClient, reseller: Reseller, nomor: str) -> tuple[int, str]:
    """A purchase the provider has answered Pending, so in proses: its id and its provider ref_id."""
    response = await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": nomor}, headers=reseller.headers)
    assert response.status_code == 200, response.text
    purchase_id = response.json()["id"]

    async def in_proses() -> bool:
        return (await api.get(f"/status/{purchase_id}", headers=reseller.headers)).json()["status"] == "proses"

    await wait_until(in_proses, timeout=15)
    return purchase_id, loket.db.value("SELECT provider_ref FROM purchase WHERE id = %s", purchase_id)


async def callback(api: httpx.AsyncClient, data: dict) -> httpx.Response:
    """A Digiflazz callback, validly signed."""
    raw, headers = signed(data)
    return await api.post("/webhooks/digiflazz", content=raw, headers=headers)


async def staff_recheck(loket: LoketStack, purchase_id: int) -> str:
    """`python -m ops.recheck`, as an operator runs it against this stack."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ops.recheck", str(purchase_id), cwd=ROOT, env={**os.environ, **loket.processes.env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def restart_worker(loket: LoketStack) -> None:
    await asyncio.to_thread(loket.processes.start_worker, 1, 8)


async def test_ten_gagal_callbacks_rechecks_and_a_resolve_through_a_worker_kill_refund_once(redis_server, make_stack, admin_token, admin):
    """A purchase in proses gets ten distinct Gagal callbacks at once, staff re-checks and a staff
    resolve-as-gagal, while its worker is SIGKILLed and restarted: it ends gagal, refunded once,
    and exactly one of them (one callback or the resolve) is what ended it."""
    loket: LoketStack = make_stack(redis_server.url)
    await loket.configure_sim(**STUCK)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=50_000)
        purchase_id, provider_ref = await stuck_purchase(loket, api, reseller, "087800051233")
        harga = int(loket.db.value("SELECT harga FROM purchase WHERE id = %s", purchase_id))
        # Distinct events: the event identity is ref_id|status|rc|sn, so each copy has its own sn.
        bodies = [{**event(provider_ref, "Gagal", "02", f"GAGAL-{i}"), "message": f"Transaksi Gagal #{i}"} for i in range(10)]

        async def kill_and_restart_worker() -> None:
            async def some_stored() -> bool:
                return loket.db.value("SELECT COUNT(*) FROM webhook_event WHERE reference = %s", provider_ref) > 0

            await wait_until(some_stored, timeout=10, every=0.02)
            loket.process("worker").kill(signal.SIGKILL)
            await restart_worker(loket)

        async def resolve() -> httpx.Response:
            return await api.post(f"/api/v1/purchases/{purchase_id}/resolve", json={"status": "gagal", "keterangan": "dicek ke provider: gagal"}, headers=admin)

        chaos = asyncio.create_task(kill_and_restart_worker())
        *answers, resolved, rechecks = await asyncio.gather(
            *(callback(api, body) for body in bodies), resolve(), asyncio.gather(*(staff_recheck(loket, purchase_id) for _ in range(3)))
        )
        await chaos
        assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
        assert [a.json()["duplicate"] for a in answers] == [False] * 10
        assert resolved.status_code in (200, 409), resolved.text
        assert all("pushed for a re-check" in out or "has ended (gagal)" in out for out in rechecks), rechecks

        [ended] = (await final_statuses(api, reseller, [purchase_id])).values()
        await wait_quiet(loket)
        assert ended["status"] == "gagal"
        assert jenis_of(loket, "purchase_id", purchase_id) == ["pembelian", "refund"]
        assert loket.db.value("SELECT jumlah FROM ledger_entry WHERE purchase_id = %s AND jenis = 'refund'", purchase_id) == harga
        assert saldo_of(loket, reseller.id) == 50_000 and loket.db.ledger_matches_saldo(reseller.id)
        outcomes = [r["outcome"] for r in loket.db.rows("SELECT outcome FROM webhook_event WHERE reference = %s", provider_ref)]
        assert len(outcomes) == 10 and set(outcomes) <= {"applied", "ignored"}, outcomes
        assert outcomes.count("applied") + (resolved.status_code == 200) == 1, (outcomes, resolved.text)


async def test_a_deposit_webhook_accepted_then_worker_killed_and_redis_wiped_credits_once(redis_server, make_stack, admin_token):
    """A deposit's paid webhook answered 200, then the worker SIGKILLed before applying it and
    Redis wiped, with duplicate deliveries before, during and after: credited once, its amount."""
    # Deposits live longer than the suite's 10 s, so that the recovery, not expiry, decides.
    loket: LoketStack = make_stack(redis_server.url, extra_env={"QRIS_TTL_SECONDS": "300"})
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token)
        deposit = await new_deposit(api, reseller, 125_000)
        qr_id = loket.db.value("SELECT tr_xendit_id FROM qris_transaction WHERE tr_id = %s", deposit["id"])
        paid = payment(deposit, qr_id, 125_000, f"qrpy_dep_{deposit['id']}")
        worker = loket.process("worker")
        worker.kill(signal.SIGSTOP)  # it takes nothing more from Redis: the webhook stays unapplied
        try:
            first = await api.post("/api/v1/webhooks/xendit", json=paid, headers=TOKEN)
            assert first.status_code == 200 and first.json()["duplicate"] is False, first.text
            copies = await asyncio.gather(*(api.post("/api/v1/webhooks/xendit", json=paid, headers=TOKEN) for _ in range(5)))
            assert [(c.status_code, c.json()["duplicate"]) for c in copies] == [(200, True)] * 5
            assert loket.db.value("SELECT outcome FROM webhook_event WHERE reference = %s", deposit["external_id"]) == "received"
        finally:
            worker.kill(signal.SIGKILL)
        assert (await api.get(f"/deposit/{deposit['id']}", headers=reseller.headers)).json()["status"] == "PENDING"
        redis_server.stop()  # its queued apply job is gone with it
        during = await asyncio.gather(*(api.post("/api/v1/webhooks/xendit", json=paid, headers=TOKEN) for _ in range(3)))
        assert [c.status_code for c in during] == [200] * 3, [c.text for c in during]
        redis_server.start()
        await restart_worker(loket)
        after = await asyncio.gather(*(api.post("/api/v1/webhooks/xendit", json=paid, headers=TOKEN) for _ in range(3)))
        assert [c.status_code for c in after] == [200] * 3

        async def credited() -> bool:
            return (await api.get(f"/deposit/{deposit['id']}", headers=reseller.headers)).json()["status"] == "COMPLETED"

        await wait_until(credited, timeout=40)
        await wait_quiet(loket)
        assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 125_000}
        assert jenis_of(loket, "qris_id", deposit["id"]) == ["deposit"]
        assert loket.db.value("SELECT SUM(jumlah) FROM ledger_entry WHERE qris_id = %s", deposit["id"]) == 125_000
        assert loket.db.value("SELECT COUNT(*) FROM ledger_entry WHERE reseller_id = %s", reseller.id) == 1
        assert loket.db.value("SELECT COUNT(*) FROM webhook_event WHERE reference = %s", deposit["external_id"]) == 1
        assert loket.db.ledger_matches_saldo(reseller.id)


async def test_web_killed_after_commit_before_enqueue_the_retry_makes_no_second_purchase(redis_server, make_stack, admin_token, admin):
    """POST /beli commits in MariaDB, then blocks on a paused Redis; the web is SIGKILLed before it
    answers. Redis resumes, the web restarts, and the client retries with the same ref_id while
    saldo corrections hit the same reseller: one purchase, debited once, it ends, saldo = ledger."""
    loket: LoketStack = make_stack(redis_server.url)
    body = {"produk_id": 2, "nomor_tujuan": "081500000001", "ref_id": "client-order-0001"}
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=100_000)
        assert (await api.get("/health")).status_code == 200
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        try:
            request = asyncio.create_task(api.post("/beli", json=body, headers=reseller.headers))

            async def committed() -> bool:
                return loket.db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller.id) == 1

            await wait_until(committed, timeout=10, every=0.02)
            assert not request.done(), "the request answered before the web was killed"
            loket.process("web").kill(signal.SIGKILL)
            lost = await asyncio.gather(request, return_exceptions=True)
            assert isinstance(lost[0], httpx.TransportError), lost
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        await asyncio.to_thread(loket.restart_web)

        corrections = [
            api.post(f"/api/v1/resellers/{reseller.id}/adjustments", json={"jumlah": amount, "keterangan": "koreksi uji"}, headers=admin)
            for amount in (5_000, -3_000, 7_000, -1_000)
        ]
        retries = [api.post("/beli", json=body, headers=reseller.headers) for _ in range(4)]
        answers = await asyncio.gather(*retries, *corrections)
        assert [a.status_code for a in answers[4:]] == [201] * 4, [a.text for a in answers[4:]]
        [purchase_id] = [r["id"] for r in loket.db.rows("SELECT id FROM purchase WHERE reseller_id = %s", reseller.id)]
        for retry in answers[:4]:  # the same purchase, or "in flight, retry": never another
            assert retry.status_code in (200, 409), retry.text
            assert retry.status_code == 409 or retry.json()["id"] == purchase_id, retry.text
        again = await api.post("/beli", json=body, headers=reseller.headers)
        assert again.status_code == 200 and again.json()["id"] == purchase_id, again.text

        [ended] = (await final_statuses(api, reseller, [purchase_id], timeout=60)).values()
        await wait_quiet(loket)
        assert loket.db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller.id) == 1
        provider_ref = loket.db.value("SELECT provider_ref FROM purchase WHERE id = %s", purchase_id)
        assert [t["ref_id"] for t in await loket.sim_transactions()] == [provider_ref]  # sold once at the provider
        expected = ["pembelian"] if ended["status"] == "sukses" else ["pembelian", "refund"]
        assert jenis_of(loket, "purchase_id", purchase_id) == expected
        assert loket.db.value("SELECT COUNT(*) FROM ledger_entry WHERE reseller_id = %s AND jenis = 'koreksi'", reseller.id) == 4
        harga = int(loket.db.value("SELECT harga FROM purchase WHERE id = %s", purchase_id))
        spent = harga if ended["status"] == "sukses" else 0
        assert saldo_of(loket, reseller.id) == 100_000 + 8_000 - spent
        assert loket.db.ledger_matches_saldo(reseller.id)


async def test_racing_sukses_and_gagal_callbacks_end_each_purchase_once(redis_server, make_stack, admin_token):
    """Sukses and Gagal callbacks fired at once on purchases in proses, over several rounds: each
    purchase ends in one final state, refunded once if gagal, never both sold and refunded."""
    loket: LoketStack = make_stack(redis_server.url)
    await loket.configure_sim(**STUCK)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=500_000)
        ids: list[int] = []
        for round_ in range(3):
            stuck = await asyncio.gather(*(stuck_purchase(loket, api, reseller, f"08780{round_}{i:02d}1233") for i in range(4)))
            sends = []
            for purchase_id, provider_ref in stuck:
                ids.append(purchase_id)
                sends += [callback(api, event(provider_ref, "Sukses", "00", f"SN-{purchase_id}-{k}")) for k in range(2)]
                sends += [callback(api, {**event(provider_ref, "Gagal", "02", f"G-{k}"), "message": f"gagal {k}"}) for k in range(2)]
            answers = await asyncio.gather(*sends)  # each purchase's two Sukses and two Gagal at once
            assert [a.status_code for a in answers] == [200] * len(sends), [a.text for a in answers]

        ended = await final_statuses(api, reseller, ids, timeout=60)
        await wait_quiet(loket)
        spent = 0
        for purchase_id in ids:
            status = loket.db.value("SELECT status FROM purchase WHERE id = %s", purchase_id)
            assert status == ended[purchase_id]["status"] in ("sukses", "gagal")
            entries = jenis_of(loket, "purchase_id", purchase_id)
            assert entries == (["pembelian", "refund"] if status == "gagal" else ["pembelian"]), (purchase_id, status, entries)
            applied = loket.db.rows(
                "SELECT w.outcome FROM webhook_event w JOIN purchase p ON p.provider_ref = w.reference WHERE p.id = %s AND w.outcome = 'applied'", purchase_id
            )
            assert len(applied) == 1, (purchase_id, applied)
            if status == "sukses":
                assert ended[purchase_id]["sn"].startswith(f"SN-{purchase_id}-")
                spent += int(loket.db.value("SELECT harga FROM purchase WHERE id = %s", purchase_id))
        assert saldo_of(loket, reseller.id) == 500_000 - spent
        assert loket.db.ledger_matches_saldo(reseller.id)
