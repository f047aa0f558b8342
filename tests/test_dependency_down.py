"""A dependency that is down is a 503 with Retry-After and one line in the log, never a 500.

The stack runs on a MariaDB of the test's own, which the test kills (SIGKILL) and starts again on
the same port and data folder, as a crashed database comes back.
"""

from __future__ import annotations

import httpx
from asyncmy.errors import IntegrityError as DriverIntegrity
from asyncmy.errors import OperationalError as DriverOperational
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from db.errors import unavailability
from tests.harness import LoketStack, final_statuses, register, wait_until
from tests.servers import MariaDBServer
from tests.test_deposits import TOKEN
from tests.test_provider_webhook import event, signed

ORDER = {"produk_id": 1, "nomor_tujuan": "081234567890", "ref_id": "INV-DOWN-1"}


async def test_while_mariadb_is_down_every_kind_of_request_is_a_503_and_a_retry_after_it_is_back_buys_once(
    mariadb_server: MariaDBServer, redis_server, make_stack, admin_token, admin
):
    loket: LoketStack = make_stack(redis_server.url, database_server=mariadb_server.url)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=50_000)
        warm = await api.post("/beli", json={**ORDER, "ref_id": "INV-DOWN-0"}, headers=reseller.headers)
        assert warm.status_code == 200, warm.text
        await final_statuses(api, reseller, [warm.json()["id"]])
        saldo_before = (await api.get("/saldo", headers=reseller.headers)).json()["saldo"]

        web = loket.process("web")
        log_before = len(web.log())
        mariadb_server.kill()

        raw, signature = signed(event("LKdown", "Sukses", "00", "SN1"))
        xendit = {"event": "qr.payment", "api_version": "2022-07-31", "data": {"id": "qrpy_down", "reference_id": "DEP-1-x", "amount": 1000, "currency": "IDR", "status": "SUCCEEDED"}}
        answers = {
            "POST /beli": await api.post("/beli", json=ORDER, headers=reseller.headers),
            "GET /status": await api.get(f"/status/{warm.json()['id']}", headers=reseller.headers),
            "GET /saldo": await api.get("/saldo", headers=reseller.headers),
            "POST /webhooks/digiflazz": await api.post("/webhooks/digiflazz", content=raw, headers=signature),
            "POST xendit webhook": await api.post("/api/v1/webhooks/xendit", json=xendit, headers=TOKEN),
            "GET /api/v1/locations": await api.get("/api/v1/locations", headers=admin),
        }
        for name, answer in answers.items():
            assert answer.status_code == 503, (name, answer.status_code, answer.text)
            assert int(answer.headers["retry-after"]) > 0, name
            assert answer.json()["code"] == "dependency_unavailable", (name, answer.text)
            assert "database" in answer.json()["detail"], (name, answer.text)
        assert (await api.get("/health")).status_code == 200  # the process lives; /ready says it is not ready
        assert (await api.get("/ready")).status_code == 503

        written = web.log()[log_before:]
        assert "Traceback" not in written, written[-3000:]
        lines = [line for line in written.splitlines() if "database unavailable" in line]
        assert len(lines) >= len(answers), written[-3000:]

        mariadb_server.start()

        async def bought() -> bool:
            # The first requests after the restart may still meet a pooled connection the crash
            # broke: those are 503 as well, and the reseller retries with the same ref_id.
            answer = await api.post("/beli", json=ORDER, headers=reseller.headers)
            assert answer.status_code in (200, 503), answer.text
            return answer.status_code == 200

        await wait_until(bought, timeout=30, every=0.5)
        retried = await api.post("/beli", json=ORDER, headers=reseller.headers)
        assert retried.status_code == 200, retried.text
        [final] = (await final_statuses(api, reseller, [retried.json()["id"]])).values()
        assert final["status"] == "sukses", final

    purchases = loket.db.rows("SELECT id FROM purchase WHERE reseller_id = %s AND ref_id = %s", reseller.id, ORDER["ref_id"])
    assert len(purchases) == 1, purchases
    debits = loket.db.rows("SELECT jumlah FROM ledger_entry WHERE purchase_id = %s", purchases[0]["id"])
    assert len(debits) == 1 and int(debits[0]["jumlah"]) < 0, debits
    assert int(loket.db.value("SELECT saldo FROM reseller WHERE id = %s", reseller.id)) == saldo_before + int(debits[0]["jumlah"])
    assert loket.db.ledger_matches_saldo(reseller.id)


def test_which_database_errors_are_an_outage_and_which_are_a_bug():
    def wrapped(kind, driver, code: int, message: str):
        return kind("SELECT 1", {}, driver(code, message))

    assert unavailability(wrapped(OperationalError, DriverOperational, 2003, "Can't connect")) == "unreachable"
    assert unavailability(wrapped(OperationalError, DriverOperational, 2013, "Lost connection")) == "unreachable"
    assert unavailability(wrapped(OperationalError, DriverOperational, 1213, "Deadlock found")) == "busy"
    assert unavailability(PoolTimeout("QueuePool limit reached")) == "busy"
    assert unavailability(wrapped(IntegrityError, DriverIntegrity, 1062, "Duplicate entry")) is None
    assert unavailability(wrapped(OperationalError, DriverOperational, 1054, "Unknown column")) is None
    assert unavailability(ValueError("not a database error")) is None


async def test_while_redis_is_down_requests_are_still_answered_and_nothing_is_a_500(redis_server, make_stack, admin_token, admin):
    """Redis carries deliveries only: with it down, what MariaDB holds is still accepted and read,
    and the jobs wait in the outbox until it is back."""
    from tests.test_kiosk_flow import kiosk_at, new_location

    loket: LoketStack = make_stack(redis_server.url)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=50_000)
        location_id = await new_location(api, admin)
        web = loket.process("web")
        log_before = len(web.log())
        redis_server.stop()

        bought = await api.post("/beli", json={**ORDER, "ref_id": "INV-REDIS-DOWN"}, headers=reseller.headers)
        raw, signature = signed(event("LKredisdown", "Sukses", "00", "SN1"))
        answers = {
            "POST /beli": bought,
            "GET /status": await api.get(f"/status/{bought.json().get('id', 0)}", headers=reseller.headers),
            "GET /saldo": await api.get("/saldo", headers=reseller.headers),
            "POST /webhooks/digiflazz": await api.post("/webhooks/digiflazz", content=raw, headers=signature),
            "POST /api/v1/transactions": await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk_at(location_id)),
        }
        for name, answer in answers.items():
            assert answer.status_code in (200, 201), (name, answer.status_code, answer.text)
        assert answers["GET /status"].json()["status"] == "pending"  # accepted; its job waits in the outbox
        assert answers["POST /api/v1/transactions"].json()["data"]["tr_qris_string"] is None  # the kiosk polls
        assert (await api.get("/ready")).status_code == 503
        assert "Traceback" not in web.log()[log_before:]

        redis_server.start()  # back, empty: the relay pushes what the outbox holds
        [final] = (await final_statuses(api, reseller, [bought.json()["id"]], timeout=60)).values()
        assert final["status"] == "sukses", final
    assert loket.db.ledger_matches_saldo(reseller.id)
