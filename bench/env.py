"""The benchmark's own Loket: a fresh `loket_bench` database, Redis db 5, and its processes."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymysql
import redis
from sqlalchemy.engine import make_url

from bench.groups import GroupMeter
from core.security import ADMIN_LEVEL, issue_staff_token
from db.apply import apply_schema
from ops.stack import Stack, free_port, listening_socket, web_command

DATABASE_URL = "mysql+asyncmy://root@127.0.0.1:3306/loket_bench"
REDIS_URL = "redis://127.0.0.1:6379/5"
SALDO = 1_000_000_000_000  # the API's maximum: 83 million purchases of 12,000 each


@dataclass(frozen=True)
class Options:
    """What the stack runs with (the command line's stack options)."""

    workers: int
    threads: int
    prefetch: int
    web_workers: int
    provider_latency_ms: int


class Database:
    """Synchronous SQL on the benchmark database, for setup and measurement (not on the hot path)."""

    def __init__(self, url: str = DATABASE_URL) -> None:
        parsed = make_url(url)
        self.name = parsed.database
        self._params: dict[str, Any] = dict(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 3306,
            user=parsed.username or "root",
            password=parsed.password or "",
        )

    def rows(self, sql: str, *args: Any, in_database: bool = True) -> list[dict[str, Any]]:
        database = {"database": self.name} if in_database else {}
        conn = pymysql.connect(**self._params, **database, autocommit=True, cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def percentiles_ms(self, us_sql: str, from_sql: str, *args: Any) -> dict[str, float] | None:
        """p50 / p99 / max in ms of a microsecond expression over the rows of from_sql; None: no rows.

        Sorted here, not with MariaDB's PERCENTILE_CONT: over the 108,000 purchases of a 2 s-provider
        phase that window query ran for minutes."""
        values = sorted(int(row["us"]) for row in self.rows(f"SELECT {us_sql} AS us {from_sql}", *args) if row["us"] is not None)
        if not values:
            return None

        def at(share: float) -> float:
            return values[min(len(values) - 1, int(share * len(values)))] / 1000

        return {"p50": at(0.5), "p99": at(0.99), "max": values[-1] / 1000}

    def one(self, sql: str, *args: Any) -> dict[str, Any]:
        return self.rows(sql, *args)[0]

    def server_variables(self, *names: str) -> dict[str, str]:
        placeholders = ", ".join(["%s"] * len(names))
        found = self.rows(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({placeholders})", *names, in_database=False)
        return {row["Variable_name"]: row["Value"] for row in found}

    def server_connection(self) -> pymysql.Connection:
        """A connection of its own to the server, outside any database (the caller closes it)."""
        return pymysql.connect(**self._params, autocommit=True)

    def drop(self) -> None:
        conn = pymysql.connect(**self._params, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        finally:
            conn.close()


@dataclass
class BenchStack:
    """sim, web, worker and clock on free ports, all pointing at loket_bench and Redis db 5."""

    stack: Stack
    web_url: str
    sim_url: str
    jwt_secret: str
    webhook_secret: str
    """PPOB_WEBHOOK_SECRET: the key of the HMAC-SHA1 on Digiflazz webhooks (the sim signs with it too)."""
    web_workers: int = 1
    worker_metrics_url: str = ""

    @classmethod
    def start(cls, options: Options, log_dir: Path) -> BenchStack:
        apply_schema(DATABASE_URL, drop_first=True)
        flush_redis()
        stack = Stack(env={}, log_dir=log_dir)
        web_port, sim_port, worker_metrics_port = stack.reserve_port(), stack.reserve_port(), free_port()
        jwt_secret, webhook_secret = secrets.token_hex(32), secrets.token_hex(16)
        stack.env.update({
            "LOKET_ENV": "development",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "PORT": str(web_port),
            "JWT_SECRET": jwt_secret,
            "PPOB_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
            "SIM_PORT": str(sim_port),
            "SIM_CALLBACK_URL": f"http://127.0.0.1:{web_port}/webhooks/digiflazz",
            "SIM_LATENCY_MS": str(options.provider_latency_ms),
            "PPOB_WEBHOOK_SECRET": webhook_secret,
            # The kiosk's QRIS creates go to the sim's Xendit gateway (bench.phases --qris).
            "XENDIT_BASE_URL": f"http://127.0.0.1:{sim_port}",
            "SIM_XENDIT_CALLBACK_URL": f"http://127.0.0.1:{web_port}/api/v1/webhooks/xendit",
            "LOG_LEVEL": "WARNING",
            # Production timers: a purchase that is not final within these would be a finding.
            "PPOB_RECHECK_SECONDS": "60",
            "OUTBOX_LEASE_SECONDS": "60",
            "WORKER_PROCESSES": str(options.workers),
            "WORKER_THREADS": str(options.threads),
            # The limiter runs (as in production) but never refuses:
            # the default 6,000/min per key would throttle the one-reseller phase.
            "RATE_LIMIT_PER_MINUTE": "10000000",
        })
        bench = cls(stack, f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{sim_port}", jwt_secret, webhook_secret,
                    options.web_workers, f"http://127.0.0.1:{worker_metrics_port}/metrics")  # fmt: skip
        try:
            stack.start_sim(sim_port)
            stack.start_web(web_port, options.web_workers)
            stack.start_worker(options.workers, options.threads, metrics_port=worker_metrics_port, prefetch=options.prefetch)
            stack.start_clock()
        except BaseException:
            stack.stop()
            raise
        return bench

    def pgids(self) -> dict[str, int]:
        """Process-group id of each running process (each was started in its own session)."""
        return {p.name: p.popen.pid for p in self.stack.processes if p.popen.poll() is None}

    def group_meter(self, web_url: str | None = None) -> GroupMeter:
        """A meter of the group calls of the web and the workers (bench.groups).

        web_url: the web process to read, if not the stack's own (a phase's web variant)."""
        return GroupMeter({"web": f"{web_url or self.web_url}/metrics", "worker": self.worker_metrics_url})

    def register(self, count: int, saldo: int = SALDO) -> list[str]:
        """Register `count` resellers with an opening saldo through POST /register; their API keys."""
        token = issue_staff_token(self.jwt_secret, "bench", ADMIN_LEVEL)
        keys: list[str] = []
        with httpx.Client(base_url=self.web_url, timeout=10) as api:
            for n in range(count):
                body = {"nama": f"Bench {n}", "email": f"bench{n}.{time.time_ns()}@bench.id", "saldo": saldo}
                response = api.post("/register", json=body, headers={"authorization": f"Bearer {token}"})
                if response.status_code != 200:
                    raise RuntimeError(f"register failed: {response.status_code} {response.text}")
                keys.append(response.json()["api_key"])
        return keys

    def start_web_variant(self, name: str, env: dict[str, str]) -> str:
        """One more web process (same database, Redis and workers) with some settings changed; its URL."""
        listener = listening_socket()
        port = int(listener.getsockname()[1])
        self.stack.start(name, web_command(), url=f"http://127.0.0.1:{port}/health", listener=listener,
                         env={"PORT": str(port), "WEB_PROCESSES": str(self.web_workers), **env})  # fmt: skip
        return f"http://127.0.0.1:{port}"

    def signal_workers(self, signum: int) -> None:
        """Send a signal to every dramatiq process (each worker runs in its own process group)."""
        for process in self.stack.processes:
            if process.name == "worker" and process.popen.poll() is None:
                os.killpg(process.popen.pid, signum)

    def stop_process(self, name: str) -> None:
        for process in [p for p in self.stack.processes if p.name == name]:
            process.stop()
            self.stack.processes.remove(process)

    def sim_config(self, **changes: Any) -> dict[str, Any]:
        """Change the simulator's runtime config (POST /_sim/config); the whole new config."""
        response = httpx.post(f"{self.sim_url}/_sim/config", json=changes, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def stop(self) -> None:
        self.stack.stop()


def flush_redis() -> None:
    """Empty Redis db 5 only: other databases belong to other users of this Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
