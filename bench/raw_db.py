"""The accept path's transaction without the web layer: the ceiling the /beli figures are set against.

`python -m bench.raw_db --keys-file keys.json --duration 10 --tasks 64` runs, in its own process, `tasks`
concurrent asyncio loops of exactly what an unsigned POST /beli does with the database: an order
by API key hash to the web's purchase intake (web.intake.purchase_intake: the orders of the same
moment in one CALL accept_purchases, which finds each reseller by its key, reads the product,
inserts the purchase, debits the saldo, records the ledger entry and the outbox row, and commits
its own transaction) on a db.raw.autocommitting() connection of the web's autocommit pool
(db.engine.create_pool, the web's settings), and writes its result as JSON to --out. Not
included: HTTP, JSON, validation, and the Redis push after commit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from bench.cpu import machine_busy_seconds, pid_cpu_seconds, pid_of
from core.security import hash_api_key
from core.settings import get_settings
from db.engine import close_pool, create_pool
from domain import purchases
from web.intake import PurchaseIntake, purchase_intake


@dataclass(frozen=True)
class RawResult:
    """Committed accept transactions per second, their latency, and the client's own CPU."""

    commits: int
    errors: int
    seconds: float
    latency_ms: dict[str, float]
    pool: str
    client_cpu_pct: float
    mariadb_cpu_pct: float
    other_cpu_pct: float
    """Processes outside this run (other users of the machine) over the same window."""
    first_error: str | None

    @property
    def per_second(self) -> float:
        return self.commits / self.seconds


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _loop(accept: PurchaseIntake, key_hash: bytes, tag: str, n: int, stop_at: float, out: dict[str, Any]) -> None:
    """Accept purchases for one reseller, one order at a time, until `stop_at`; record into `out`."""
    count = 0
    while time.monotonic() < stop_at:
        count += 1
        started = time.perf_counter()
        order = purchases.Order(produk_id=1, nomor_tujuan=f"0813{n}{count:07d}0", nominal=None, ref_id=f"{tag}-{n}-{count}", api_key_hash=key_hash)
        try:
            answer = await accept(order)  # as POST /beli (unsigned)
            if isinstance(answer, Exception):
                raise answer
        except Exception as error:  # a failed transaction is counted and shown, not fatal
            out["errors"] += 1
            out["first_error"] = out["first_error"] or repr(error)[:300]
            continue
        out["latencies"].append(time.perf_counter() - started)


async def run(keys: list[str], tasks: int, first: int, start_at: float, duration: float, tag: str) -> dict[str, Any]:
    """Run loops first..first+tasks-1 from wall time `start_at` for `duration` s; loop i uses keys[i % len]."""
    settings = get_settings()
    pool = create_pool(settings, settings.db_pool_size, autocommit=True, lock_wait_seconds=settings.db_lock_wait_seconds)  # as the web's hot pool
    out: dict[str, Any] = {"errors": 0, "first_error": None, "latencies": []}
    hashes = [hash_api_key(key) for key in keys]
    try:
        # Open the pool's connections first so that connecting is not part of the measurement.
        warm = [await pool.acquire() for _ in range(min(tasks, settings.db_pool_size))]
        for conn in warm:
            pool.release(conn)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        mariadb = pid_of("mariadbd", "mysqld")
        cpu_before, db_before, busy_before = _own_cpu_seconds(), pid_cpu_seconds(mariadb), machine_busy_seconds()
        started = time.monotonic()
        stop_at = started + duration
        accept = purchase_intake(pool, settings.outbox_lease_seconds)
        await asyncio.gather(*(_loop(accept, hashes[i % len(hashes)], tag, i, stop_at, out) for i in range(first, first + tasks)))
        elapsed = time.monotonic() - started
        cpu, db_cpu = _own_cpu_seconds() - cpu_before, pid_cpu_seconds(mariadb) - db_before
        busy = machine_busy_seconds() - busy_before
        pool_size = str(pool.maxsize)
    finally:
        await close_pool(pool)
    return {
        "errors": out["errors"], "seconds": elapsed, "cpu_s": cpu, "db_cpu_s": db_cpu, "busy_s": busy, "pool": pool_size,
        "first_error": out["first_error"], "latencies_ms": [round(1000 * x, 3) for x in out["latencies"]],
    }  # fmt: skip


def run_processes(keys: list[str], tasks: int, duration: float, tag: str, env: dict[str, str], processes: int = 1) -> RawResult:
    """Run `tasks` loops split over `processes` children of this module, started in step; merge their results.

    Children, so that the client's CPU is its own and can use more than one core.
    """
    start_at = time.time() + 3  # time for the children to import and open their pools
    share = [tasks // processes + (1 if i < tasks % processes else 0) for i in range(processes)]
    children: list[subprocess.Popen[str]] = []
    results = []
    with tempfile.TemporaryDirectory() as folder:
        keys_file = Path(folder) / "keys.json"
        keys_file.write_text(json.dumps(keys))
        try:
            for i, count in enumerate(share):
                command = [sys.executable, "-m", "bench.raw_db", "--keys-file", str(keys_file), "--tasks", str(count),
                           "--first", str(sum(share[:i])), "--start-at", str(start_at), "--duration", str(duration),
                           "--tag", f"{tag}p{i}", "--out", str(Path(folder) / f"result{i}.json")]  # fmt: skip
                children.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                 env={**os.environ, **env}))  # fmt: skip
            for i, child in enumerate(children):
                _, stderr = child.communicate(timeout=duration + 120)
                if child.returncode != 0:
                    raise RuntimeError(f"raw_db exited with {child.returncode}:\n{stderr[-3000:]}")
                # A file, not stdout: with PYTHONUNBUFFERED a result over 64 KiB (10,000+ latencies)
                # reached the pipe cut short, and the run ended in a JSONDecodeError.
                results.append(json.loads((Path(folder) / f"result{i}.json").read_text()))
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
    lat = sorted(x for r in results for x in r["latencies_ms"])
    seconds = max(r["seconds"] for r in results)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0

    return RawResult(
        commits=len(lat),
        errors=sum(r["errors"] for r in results),
        seconds=seconds,
        latency_ms={"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": lat[-1] if lat else 0.0},
        pool=f"{processes} x {results[0]['pool']}",
        client_cpu_pct=100 * sum(r["cpu_s"] for r in results) / seconds,
        mariadb_cpu_pct=100 * max(r["db_cpu_s"] for r in results) / seconds,
        other_cpu_pct=max(
            0.0,
            100
            * (max(r["busy_s"] for r in results) - sum(r["cpu_s"] for r in results) - max(r["db_cpu_s"] for r in results))
            / seconds,
        ),
        first_error=next((r["first_error"] for r in results if r["first_error"]), None),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys-file", required=True, help="JSON list of reseller API keys")
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--first", type=int, default=0, help="index of this process's first loop")
    parser.add_argument("--start-at", type=float, default=0.0, help="wall-clock time to start the measured loops")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--tag", default="raw")
    parser.add_argument("--out", required=True, help="where to write the result (JSON)")
    args = parser.parse_args()
    keys = json.loads(open(args.keys_file).read())
    result = uvloop.run(run(keys, args.tasks, args.first, args.start_at, args.duration, args.tag))
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
