"""The simulator's Starlette app: thin HTTP handlers and the routing table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sim.provider import DigiflazzProvider
from sim.settings import ConfigError, Settings


def _provider(request: Request) -> DigiflazzProvider:
    provider: DigiflazzProvider = request.app.state.provider
    return provider


async def health(request: Request) -> Response:
    """Liveness probe."""
    return JSONResponse({"status": "ok"})


async def digiflazz_transaction(request: Request) -> Response:
    """Digiflazz buyer transaction / status check (POST /v1/transaction)."""
    provider = _provider(request)
    answer = await provider.handle_transaction(await request.body())
    background = BackgroundTask(provider.send_create_callback, answer) if answer.notify else None
    return JSONResponse(answer.body, status_code=answer.status_code, background=background)


async def get_config(request: Request) -> Response:
    """Current runtime config."""
    return JSONResponse(_provider(request).config.model_dump())


async def post_config(request: Request) -> Response:
    """Merge a JSON object of config keys into the runtime config; 400 on unknown keys or bad values."""
    try:
        patch: Any = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    if not isinstance(patch, dict):
        return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
    try:
        config = _provider(request).update_config(patch)
    except ConfigError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(config.model_dump())


async def reset(request: Request) -> Response:
    """Clear records, cancel pending work, restore the environment's config."""
    provider = _provider(request)
    await provider.reset()
    return JSONResponse({"status": "ok", "config": provider.config.model_dump()})


async def list_transactions(request: Request) -> Response:
    """All recorded transactions, oldest first."""
    return JSONResponse(_provider(request).transactions())


async def get_transaction(request: Request) -> Response:
    """One recorded transaction by ref_id, or 404."""
    found = _provider(request).transaction(request.path_params["ref_id"])
    if found is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse(found)


ROUTES: list[BaseRoute] = [
    Route("/health", health, methods=["GET"]),
    Route("/v1/transaction", digiflazz_transaction, methods=["POST"]),
    Route("/_sim/config", get_config, methods=["GET"]),
    Route("/_sim/config", post_config, methods=["POST"]),
    Route("/_sim/reset", reset, methods=["POST"]),
    Route("/_sim/transactions", list_transactions, methods=["GET"]),
    Route("/_sim/transactions/{ref_id:path}", get_transaction, methods=["GET"]),
]


def create_app(settings: Settings | None = None) -> Starlette:
    """Build a simulator app with its own, fresh state.

    Args:
        settings: startup settings; read from the environment when None.
    """
    settings = settings if settings is not None else Settings.from_env()
    provider = DigiflazzProvider(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await provider.aclose()

    app = Starlette(routes=list(ROUTES), lifespan=lifespan)
    app.state.settings = settings
    app.state.provider = provider
    return app
