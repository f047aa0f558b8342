"""The Starlette application: its routing table and its per-process resources."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import Route

from core.security import PrivateKeyBox
from core.settings import Settings
from db.engine import create_engine
from web import accounts, health, purchases, webhooks
from web.errors import EXCEPTION_HANDLERS

ROUTES = [
    Route("/health", health.health, methods=["GET"]),
    Route("/ready", health.ready, methods=["GET"]),
    # reseller API (ppob-api.md)
    Route("/register", accounts.register, methods=["POST"]),
    Route("/generate-key", accounts.generate_key, methods=["POST"]),
    Route("/saldo", accounts.saldo, methods=["GET"]),
    Route("/mutasi", accounts.mutasi, methods=["GET"]),
    Route("/callback", accounts.set_callback, methods=["PUT"]),
    Route("/produk", purchases.list_products, methods=["GET"]),
    Route("/beli", purchases.buy, methods=["POST"]),
    Route("/status", purchases.status_by_ref, methods=["GET"]),
    Route("/status/{purchase_id:int}", purchases.status_by_id, methods=["GET"]),
    Route("/riwayat", purchases.history, methods=["GET"]),
    # webhooks in
    Route("/webhooks/digiflazz", webhooks.digiflazz, methods=["POST"]),
]


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.key_box = PrivateKeyBox(settings.master_key)
        app.state.engine = create_engine(settings)
        # Short timeouts: a stuck Redis must not hold requests; the outbox covers a failed push.
        app.state.redis = Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)
        try:
            yield
        finally:
            await app.state.redis.aclose()
            await app.state.engine.dispose()

    return Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
