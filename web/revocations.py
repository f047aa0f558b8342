"""The revoked staff tokens, as this web process knows them.

The database holds the denylist (db.staff_tokens), so a revocation survives any restart; each
process reloads it every `refresh_seconds` in the background and checks a request's jti against
the set in memory, so a staff request costs no query. A revocation made through this process
counts here at once, one made elsewhere (another process, the operator command) within
`refresh_seconds`. Until the first load succeeds no staff token is trusted (503): a process that
could not read the list does not know which tokens are revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from db import staff_tokens

log = logging.getLogger(__name__)

_RETRY_SECONDS = 1.0  # how soon a failed load is tried again


class Revocations:
    def __init__(self, engine: AsyncEngine, refresh_seconds: float) -> None:
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._revoked: set[str] = set()
        self._added_here: set[str] = set()  # kept apart: a reload that read before their commit must not drop them
        self.loaded = False
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, jti: str) -> bool:
        return jti in self._revoked or jti in self._added_here

    def add(self, jti: str) -> None:
        """A revocation this process just stored: in force here before the next reload."""
        self._added_here.add(jti)

    async def start(self) -> None:
        """Load once (a failure is retried in the background), then keep reloading."""
        await self._load()
        self._task = asyncio.get_running_loop().create_task(self._reload_forever())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds if self.loaded else _RETRY_SECONDS)
            await self._load()

    async def _load(self) -> None:
        try:
            async with self._engine.begin() as conn:
                revoked = await staff_tokens.revoked_jtis(conn)
        except (SQLAlchemyError, OSError) as error:
            # The last list stays in force; revocations stored meanwhile count at the next load.
            log.warning("staff token revocations not reloaded: %s", error.__class__.__name__)
            return
        self._revoked = revoked
        self.loaded = True
