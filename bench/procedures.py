"""MariaDB's CPU per purchase for the web's accept group and the workers' two group transactions,
without the rest of the stack.

`python -m bench.procedures [--purchases N] [--group G]` makes a fresh database `loket_procedures`,
accepts N purchases (domain.purchases.accept_all, 40 at a time: accept_purchases), then starts them in groups of G
(start_purchases) and settles them Sukses in groups of G (settle_purchases), each group its own
transaction as a worker runs it, and prints mariadbd's CPU time (user + system, from /proc) and the
wall time per purchase for each. Nothing else should run meanwhile: MariaDB's CPU is the whole
server's. The database is dropped at the end.

Why: the stack's benchmark (bench.run) varies by ~10% from run to run on this machine kind, more
than a change to one procedure moves it; this measures the procedure alone, repeatably.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from core.settings import get_settings
from db import raw, resellers
from db.apply import apply_schema
from db.engine import close_pool, create_engine, create_pool
from domain import purchases
from domain.ledger import post_entry
from domain.provider_answers import ProviderAnswer

DATABASE = "loket_procedures"
PULSA10 = 1  # the seeded product (schema.sql)
SUKSES = ProviderAnswer(status="Sukses", rc="00", sn="12345678901234567890", message="Transaksi Sukses")


def mariadb_cpu_seconds() -> float:
    """User + system CPU time of the mariadbd process so far."""
    pid = subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True, text=True, check=True).stdout.split()[0]
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(pool: object, ids: Sequence[int], group: int, run: Callable[[raw.Connection, list[int]], Awaitable[object]]) -> tuple[float, float]:
    """(MariaDB CPU ms, wall ms) per purchase of run() over ids in groups, a transaction each."""
    cpu, wall = mariadb_cpu_seconds(), time.perf_counter()
    for i in range(0, len(ids), group):
        async with raw.transaction(pool) as conn:
            await run(conn, list(ids[i : i + group]))
    return 1e3 * (mariadb_cpu_seconds() - cpu) / len(ids), 1e3 * (time.perf_counter() - wall) / len(ids)


async def main(count: int, group: int, buyers: int) -> None:
    url = get_settings().database_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    settings = get_settings()
    apply_schema(url, drop_first=True)
    engine = create_engine(settings, pool_size=2)
    intake, workers = create_pool(settings, 2, autocommit=True), create_pool(settings, 2)
    try:
        async with engine.begin() as conn:
            keys = [uuid.uuid4().bytes * 2 for _ in range(buyers)]
            for key in keys:
                reseller_id = await resellers.insert(
                    conn, nama="Bench", email=f"{uuid.uuid4().hex}@bench.id", hp=None, callback_url=None,
                    api_key_hash=key, private_key_enc=b"x",
                )  # fmt: skip
                await post_entry(conn, reseller_id, "saldo_awal", 10**12)
        ids: list[int] = []
        cpu, wall = mariadb_cpu_seconds(), time.perf_counter()
        for i in range(0, count, 40):
            orders = [
                purchases.Order(produk_id=PULSA10, nomor_tujuan=f"0812{n:08d}", nominal=None, ref_id=uuid.uuid4().hex,
                                **({"reseller_id": reseller_id} if buyers == 1 else {"api_key_hash": keys[random.randrange(buyers)]}))
                for n in range(i, min(count, i + 40))
            ]
            async with raw.autocommitting(intake) as conn:
                ids += [answer.purchase_id for answer in await purchases.accept_all(conn, orders, lease_seconds=60)]  # type: ignore[union-attr]
        accepted = 1e3 * (mariadb_cpu_seconds() - cpu) / count, 1e3 * (time.perf_counter() - wall) / count
        started = await measure(workers, ids, group, lambda conn, part: purchases.start_all(conn, part, 60))
        settled = await measure(
            workers, ids, group, lambda conn, part: purchases.settle_all(conn, [purchases.Settlement.of(p, SUKSES) for p in part], 60)  # type: ignore[misc]
        )
        print(f"{count} purchases in groups of {group} (accepts: 40, {buyers} reseller(s)); per purchase: MariaDB CPU ms / wall ms")
        print(f"accept_purchases: {accepted[0]:.4f} / {accepted[1]:.4f}")
        print(f"start_purchases:  {started[0]:.4f} / {started[1]:.4f}")
        print(f"settle_purchases: {settled[0]:.4f} / {settled[1]:.4f}")
    finally:
        await close_pool(intake)
        await close_pool(workers)
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DATABASE}")
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=8000)
    parser.add_argument("--group", type=int, default=40, help="purchases per transaction (the benchmark's settle groups hold 30-60)")
    parser.add_argument("--resellers", type=int, default=1,
                        help="buyers: 1 orders by reseller id (the hot row); more, each order by a random one's API key, as the benchmark's wrk sends them")
    args = parser.parse_args()
    asyncio.run(main(args.purchases, args.group, args.resellers))
