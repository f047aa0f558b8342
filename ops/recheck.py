"""Ask the provider about a purchase now: `python -m ops.recheck PURCHASE_ID`.

Pushes the purchase's execute job, which sends the same request with the same ref_id (Digiflazz's
way to check a status) and applies the answer. A purchase that has ended is left alone.
"""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import Redis

from core.settings import get_settings
from db import purchases as purchase_queries
from db.engine import create_engine
from domain import purchases
from workers.enqueue import push


async def recheck(purchase_id: int) -> str:
    settings = get_settings()
    engine = create_engine(settings, pool_size=1)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with engine.begin() as conn:
            purchase = await purchase_queries.by_id(conn, purchase_id)
        if purchase is None:
            return f"no purchase {purchase_id}"
        if purchase.is_final:
            return f"purchase {purchase_id} has ended ({purchase.status}); nothing to do"
        await push(redis, [purchases.execute_job(purchase_id)])
        return f"purchase {purchase_id} ({purchase.status}) pushed for a re-check"
    finally:
        await redis.aclose()
        await engine.dispose()


def main() -> None:
    if len(sys.argv) != 2 or not (sys.argv[1].isascii() and sys.argv[1].isdigit()):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print(asyncio.run(recheck(int(sys.argv[1]))))


if __name__ == "__main__":
    main()
