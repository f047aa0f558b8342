"""Building blocks of the tests: a Loket stack, a database handle, resellers, waiting."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymysql
import redis.asyncio
from sqlalchemy.engine import make_url

from db.apply import apply_schema
from ops.stack import Stack, free_port


def fast_env() -> dict[str, str]:
    """Settings that make timers test-sized; everything else keeps its production meaning."""
    return {
        # Secrets the suite does not set take their development values; production would refuse them.
        "LOKET_ENV": "development",
        "JWT_SECRET": "test-jwt-secret-for-the-loket-suite",
        "PPOB_RECHECK_SECONDS": "1",
        "PPOB_TIMEOUT_SECONDS": "1.5",
        "OUTBOX_LEASE_SECONDS": "3",
        "OUTBOX_RELAY_INTERVAL": "0.5",
        "BROKER_HEARTBEAT_TIMEOUT_MS": "3000",
        "SIM_PENDING_MS": "800",
        "LOG_LEVEL": "INFO",
        "XENDIT_CALLBACK_TOKEN": "test-callback-token",
        "QRIS_TTL_SECONDS": "10",
        "QRIS_CREATE_WAIT_MS": "6000",
        "QRIS_CREATE_DEADLINE_SECONDS": "6",
        "XENDIT_TIMEOUT_SECONDS": "1.5",
        "QRIS_SWEEP_INTERVAL_SECONDS": "1",
        "PHOTO_PURGE_INTERVAL_SECONDS": "1",
        "CALLBACK_RETRY_SCALE": "0.05",
        "RATE_LIMIT_PER_MINUTE": "100000",
        # Every test reaches the stack from 127.0.0.1 and most register resellers whose keys are new
        # to the web: the per-address limits are tested on stacks of their own (test_abuse_limits.py).
        "ADDRESS_KEY_ATTEMPTS_PER_MINUTE": "0",
        "PUBLIC_LOOKUPS_PER_MINUTE": "0",
        # The suite's callback receivers listen on 127.0.0.1 (test_callback_ssrf.py runs without this).
        "CALLBACK_ALLOW_PRIVATE_NETWORKS": "true",
    }


class MariaDB:
    """Synchronous access for assertions: what an operator would look at with a SQL client."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.params = dict(
            host=parsed.host or "127.0.0.1", port=parsed.port or 3306, user=parsed.username or "root", password=parsed.password or ""
        )
        self.name = parsed.database

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        conn = pymysql.connect(**self.params, database=self.name, autocommit=True, cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def value(self, sql: str, *args: Any) -> Any:
        rows = self.rows(sql, *args)
        return next(iter(rows[0].values())) if rows else None

    def drop(self) -> None:
        conn = pymysql.connect(**self.params, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        finally:
            conn.close()

    def money_of(self, reseller_id: int) -> dict[str, Any]:
        """What a refused request must leave as it was: the account, its ledger, its purchases and deposits."""
        return {
            "account": self.rows("SELECT saldo, callback_url, require_signature, aktif FROM reseller WHERE id = %s", reseller_id),
            "ledger": self.rows("SELECT id, jenis, jumlah, saldo_akhir FROM ledger_entry WHERE reseller_id = %s ORDER BY id", reseller_id),
            "purchases": self.rows("SELECT id, status FROM purchase WHERE reseller_id = %s ORDER BY id", reseller_id),
            "deposits": self.rows("SELECT tr_id, tr_status FROM qris_transaction WHERE tr_reseller_id = %s ORDER BY tr_id", reseller_id),
        }

    def ledger_matches_saldo(self, reseller_id: int) -> bool:
        saldo = self.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id)
        total = self.value("SELECT COALESCE(SUM(jumlah), 0) FROM ledger_entry WHERE reseller_id = %s", reseller_id)
        return int(saldo) == int(total)


@dataclass
class LoketStack:
    """The sim, web, worker and clock processes of one test environment."""

    name: str
    db: MariaDB
    processes: Stack
    web_url: str
    sim_url: str
    worker_metrics_url: str = ""
    clock_metrics_url: str = ""

    @classmethod
    def start(
        cls,
        *,
        name: str,
        database_url: str,
        redis_url: str,
        log_dir: Path,
        apply: bool = True,
        worker_processes: int = 1,
        worker_threads: int = 8,
        worker_prefetch: int = 0,
        extra_env: dict[str, str] | None = None,
    ) -> LoketStack:
        if apply:
            apply_schema(database_url, drop_first=True)
        processes = Stack(env={}, log_dir=log_dir)
        web_port, sim_port = processes.reserve_port(), processes.reserve_port()
        processes.env.update({
            **fast_env(),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PORT": str(web_port),
            "PPOB_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
            "SIM_PORT": str(sim_port),
            "SIM_CALLBACK_URL": f"http://127.0.0.1:{web_port}/webhooks/digiflazz",
            "XENDIT_BASE_URL": f"http://127.0.0.1:{sim_port}",
            "SIM_XENDIT_CALLBACK_URL": f"http://127.0.0.1:{web_port}/api/v1/webhooks/xendit",
            "GALLERY_URL": "https://galeri.loket.test/{external_id}",
            "MIDTRANS_BASE_URL": f"http://127.0.0.1:{sim_port}/midtrans",
            "PAYSTACK_BASE_URL": f"http://127.0.0.1:{sim_port}/paystack",
            "SIM_MIDTRANS_CALLBACK_URL": f"http://127.0.0.1:{web_port}/webhooks/midtrans",
            "SIM_PAYSTACK_CALLBACK_URL": f"http://127.0.0.1:{web_port}/webhooks/paystack",
            **(extra_env or {}),
        })
        worker_metrics, clock_metrics = free_port(), free_port()
        try:
            processes.start_sim(sim_port)
            processes.start_web(web_port)
            processes.start_worker(worker_processes, worker_threads, metrics_port=worker_metrics, prefetch=worker_prefetch)
            processes.start_clock(metrics_port=clock_metrics)
        except Exception:
            processes.stop()
            raise
        return cls(
            name,
            MariaDB(database_url),
            processes,
            f"http://127.0.0.1:{web_port}",
            f"http://127.0.0.1:{sim_port}",
            f"http://127.0.0.1:{worker_metrics}/metrics",
            f"http://127.0.0.1:{clock_metrics}/metrics",
        )

    def process(self, name: str):
        return next(p for p in self.processes.processes if p.name == name and p.popen.poll() is None)

    def stop(self) -> None:
        self.processes.stop()

    def restart_web(self) -> None:
        """Start the web process again on its port, after the test killed or stopped it."""
        port = int(self.web_url.rsplit(":", 1)[1])
        self.processes.start_web(port)

    async def reset_sim(self, **config: Any) -> None:
        async with httpx.AsyncClient(base_url=self.sim_url) as sim:
            (await sim.post("/_sim/reset")).raise_for_status()
            if config:
                (await sim.post("/_sim/config", json=config)).raise_for_status()

    async def configure_sim(self, **config: Any) -> None:
        async with httpx.AsyncClient(base_url=self.sim_url) as sim:
            (await sim.post("/_sim/config", json=config)).raise_for_status()

    async def qr_codes(self, reference_id: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.sim_url) as sim:
            return [qr for qr in (await sim.get("/_sim/qr_codes")).json() if qr["reference_id"] == reference_id]

    async def pay(self, reference_id: str, amount: int | None = None) -> httpx.Response:
        """The customer scans and pays: the simulator sends Loket the gateway's webhook."""
        [qr] = await self.qr_codes(reference_id)
        async with httpx.AsyncClient(base_url=self.sim_url) as sim:
            return await sim.post(
                f"/qr_codes/{qr['id']}/payments/simulate",
                json={} if amount is None else {"amount": amount},
                auth=("xnd_development_loket", ""),
                headers={"api-version": "2022-07-31"},
            )

    async def sim_transactions(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.sim_url) as sim:
            return (await sim.get("/_sim/transactions")).json()


@dataclass
class Reseller:
    id: int
    api_key: str
    private_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}


_counter = 0


async def register(api: httpx.AsyncClient, admin_token: str, saldo: int = 0) -> Reseller:
    global _counter
    _counter += 1
    body = {"nama": "Toko Uji", "email": f"toko{time.time_ns()}{_counter}@uji.id", "saldo": saldo}
    response = await api.post("/register", json=body, headers={"authorization": f"Bearer {admin_token}"})
    assert response.status_code == 200, response.text
    data = response.json()
    return Reseller(data["id"], data["api_key"], data["private_key"])


async def sole_delivery_when(api: httpx.AsyncClient, reseller: Reseller, ready: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
    """The reseller's one callback delivery (GET /callback/deliveries), once `ready` holds for it."""

    async def check() -> bool:
        deliveries = (await api.get("/callback/deliveries", headers=reseller.headers)).json()
        return bool(deliveries) and ready(deliveries[0])

    await wait_until(check, timeout=timeout)
    [delivery] = (await api.get("/callback/deliveries", headers=reseller.headers)).json()
    return delivery


async def wait_quiet(stack: LoketStack, timeout: float = 30, scheduled: tuple[str, ...] = ("qris-expiry:", "callback:")) -> None:
    """Wait until `stack` has nothing left to do, so that a "once" asserted next cannot be undone.

    Quiet, on two polls in a row: no outbox row open (except those whose job_key starts with one
    of `scheduled` and that fall due later: expiry timers, and callback deliveries waiting to retry
    a reseller's server, which move no money), no webhook event still `received`, and no
    message queued or in a worker's hands in the stack's Redis namespace (a queue's `.msgs` hash
    holds every message until it is acknowledged; delay queues hold only retries and timers,
    whose outbox rows count already).
    """
    namespace = stack.processes.env.get("REDIS_NAMESPACE") or os.environ["REDIS_NAMESPACE"]
    client = redis.asyncio.Redis.from_url(stack.processes.env["REDIS_URL"])
    # Open: due already, or not one of the scheduled kinds (a row is scheduled if it matches any prefix).
    open_jobs = (
        "SELECT COUNT(*) FROM outbox WHERE due_at <= NOW(6) OR NOT ("
        + " OR ".join("job_key LIKE %s" for _ in scheduled)
        + ")"
    ) if scheduled else "SELECT COUNT(*) FROM outbox"
    patterns = [prefix.replace("%", r"\%").replace("_", r"\_") + "%" for prefix in scheduled]

    async def busy() -> list[str]:
        """What the stack is still doing, in words a failing test can print."""
        found = [
            f"outbox {r['job_key']} due {r['due_at']}"
            for r in stack.db.rows(open_jobs.replace("COUNT(*)", "job_key, due_at") + " LIMIT 5", *patterns)
        ]
        found += [
            f"webhook_event {r['id']} {r['source']} {r['reference']} received"
            for r in stack.db.rows("SELECT id, source, reference FROM webhook_event WHERE outcome = 'received' LIMIT 5")
        ]
        async for key in client.scan_iter(f"{namespace}:*.msgs", count=1000):
            if not key.endswith(b".DQ.msgs") and (held := await client.hlen(key)):
                found.append(f"{key.decode()} holds {held}")
        return found

    last: list[str] = []

    async def quiet() -> bool:
        nonlocal last
        last = await busy()
        if last:
            return False
        await asyncio.sleep(0.3)
        last = await busy()
        return not last

    try:
        await wait_until(quiet, timeout=timeout)
    except AssertionError as not_quiet:
        raise AssertionError(f"not quiet within {timeout}s: {'; '.join(last)}") from not_quiet
    finally:
        await client.aclose()


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 20, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


async def final_statuses(api: httpx.AsyncClient, reseller: Reseller, ids: list[int], timeout: float = 30) -> dict[int, dict]:
    """Poll /status like a reseller until every purchase has ended; returns their status objects."""
    ended: dict[int, dict] = {}

    async def all_ended() -> bool:
        for purchase_id in ids:
            if purchase_id in ended:
                continue
            body = (await api.get(f"/status/{purchase_id}", headers=reseller.headers)).json()
            if body["status"] in ("sukses", "gagal"):
                ended[purchase_id] = body
        return len(ended) == len(ids)

    await wait_until(all_ended, timeout=timeout, every=0.3)
    return ended
