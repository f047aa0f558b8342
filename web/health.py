"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request

from core.listen import instance_headers
from web.json_response import JSONResponse

INSTANCE = instance_headers()


async def health(request: Request) -> JSONResponse:
    """Liveness; names this process to a starter that asked (core.listen)."""
    return JSONResponse({"status": "ok"}, headers=INSTANCE)


async def ready(request: Request) -> JSONResponse:
    """200 when MySQL and Redis both answer within 2 s, else 503 naming what is down."""
    state = request.app.state
    checks: dict[str, str] = {}

    async def mysql() -> None:
        async with state.engine.begin() as conn:
            await conn.execute(text("SELECT 1"))

    for name, probe in (("mysql", mysql), ("redis", state.redis.ping)):
        try:
            await asyncio.wait_for(probe(), timeout=2)
            checks[name] = "ok"
        except Exception as error:  # any failure means not ready; the reason is reported
            checks[name] = f"down: {type(error).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)
