"""Dead letters: `python -m ops.dead_letters list [QUEUE] | show ID | requeue ID | drop ID`.

A message lands here when Dramatiq gave up on it. Jobs that own an outbox row (purchases, QRIS
creation, webhook events, photo e-mails) are re-pushed by the relay anyway; this is for looking at
what failed and why, and for deciding by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import Any

import dramatiq
from redis.asyncio import Redis

from core.settings import load
from workers.enqueue import NAMESPACE
from workers.exporter import QUEUES


@dataclass(frozen=True)
class DeadLetter:
    id: str
    queue: str
    died_at: dt.datetime
    message: dramatiq.Message

    def summary(self) -> str:
        options = self.message.options
        return (
            f"{self.id}  {self.queue:9} {self.died_at:%Y-%m-%d %H:%M:%S}  {self.message.actor_name}{tuple(self.message.args)}"
            f"  retries={options.get('retries', 0)}"
        )


async def dead_letters(redis: Redis, queues: tuple[str, ...] = QUEUES) -> list[DeadLetter]:
    found = []
    for queue in queues:
        entries: Any = await redis.zrange(f"{NAMESPACE}:{queue}.XQ", 0, -1, withscores=True)
        for raw_id, score in entries:
            payload: Any = await redis.hget(f"{NAMESPACE}:{queue}.XQ.msgs", raw_id)
            if payload is not None:
                died = dt.datetime.fromtimestamp(score / 1000, dt.timezone.utc)
                found.append(DeadLetter(raw_id.decode(), queue, died, dramatiq.Message.decode(payload)))
    return found


async def find(redis: Redis, message_id: str) -> DeadLetter | None:
    return next((d for d in await dead_letters(redis) if d.id == message_id), None)


async def drop(redis: Redis, letter: DeadLetter) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(f"{NAMESPACE}:{letter.queue}.XQ", letter.id)
        pipe.hdel(f"{NAMESPACE}:{letter.queue}.XQ.msgs", letter.id)
        await pipe.execute()


async def requeue(redis: Redis, letter: DeadLetter) -> None:
    """Back onto its queue with its retry count reset, in one MULTI with its removal from the dead letters."""
    options: dict[str, Any] = {k: v for k, v in letter.message.options.items() if k not in ("retries", "traceback")}
    old = letter.message
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=letter.queue, actor_name=old.actor_name, args=old.args, kwargs=old.kwargs, options=options, message_id=old.message_id
    )
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(f"{NAMESPACE}:{letter.queue}.XQ", letter.id)
        pipe.hdel(f"{NAMESPACE}:{letter.queue}.XQ.msgs", letter.id)
        pipe.hset(f"{NAMESPACE}:{letter.queue}.msgs", letter.id, message.encode())
        pipe.rpush(f"{NAMESPACE}:{letter.queue}", letter.id)
        await pipe.execute()


async def main_async(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.dead_letters", description=__doc__)
    parser.add_argument("command", choices=["list", "show", "requeue", "drop"])
    parser.add_argument("target", nargs="?", help="a queue (list) or a message id (show, requeue, drop)")
    args = parser.parse_args(argv)
    redis = Redis.from_url(load(secrets=False).redis_url)
    try:
        if args.command == "list":
            letters = await dead_letters(redis, (args.target,) if args.target else QUEUES)
            for each in letters:
                print(each.summary())
            print(f"{len(letters)} dead letter(s)")
            return 0
        letter = await find(redis, args.target or "")
        if letter is None:
            print(f"no dead letter {args.target}", file=sys.stderr)
            return 1
        if args.command == "show":
            print(json.dumps(letter.message.asdict(), indent=2, default=str))
        elif args.command == "requeue":
            await requeue(redis, letter)
            print(f"requeued {letter.id} on {letter.queue}")
        else:
            await drop(redis, letter)
            print(f"dropped {letter.id}")
        return 0
    finally:
        await redis.aclose()


def main() -> None:
    sys.exit(asyncio.run(main_async(sys.argv[1:])))


if __name__ == "__main__":
    main()
