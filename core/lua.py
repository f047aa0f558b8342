"""Lua scripts on Redis, run by their SHA1 (EVALSHA) and sent whole only when Redis does not know
them yet (first use, or a restarted Redis)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


class LuaScript:
    """One script. Unlike redis-py's register_script it is bound to no client: one module-level
    instance serves every connection pool, and the SHA is computed once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, redis: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """keys: the script's KEYS; args: its ARGV."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *keys, *args)
