"""The Starlette application: its routing table and its per-process resources."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from core import heap
from core.security import PrivateKeyBox, ResponseCipher
from core.settings import Settings
from db.engine import close_pool, create_engine, create_pool, engine_size_beside
from web import accounts, deposits, docs, health, intake, kiosk, masters, metrics, openapi, purchases, staff_ops, webhooks
from web.abuse import AbuseLimits
from web.errors import EXCEPTION_HANDLERS
from web.middleware.metrics import RequestMetrics
from web.middleware.request_context import RequestContext
from web.rate_limit import RateLimiter
from web.revocations import Revocations
from workers.pusher import Pusher

ROUTES = [
    # The routes under load (of the groups below) first: Starlette tries routes in order, and a
    # dozen misses before GET /status/{id} would cost a few percent of the web's CPU per read.
    Route("/beli", purchases.buy, methods=["POST"]),
    Route("/status/{purchase_id:int}", purchases.status_by_id, methods=["GET"]),
    Route("/webhooks/digiflazz", webhooks.digiflazz, methods=["POST"]),
    Route("/api/v1/transactions", kiosk.create, methods=["POST"]),
    Route("/health", health.health, methods=["GET"]),
    Route("/ready", health.ready, methods=["GET"]),
    Route("/metrics", metrics.metrics, methods=["GET"]),
    Route("/openapi.json", openapi.spec, methods=["GET"]),
    Route("/docs", docs.page, methods=["GET"]),
    Route("/docs/assets/{name}", docs.asset, methods=["GET"]),
    # reseller API (ppob-api.md)
    Route("/register", accounts.register, methods=["POST"]),
    Route("/generate-key", accounts.generate_key, methods=["POST"]),
    Route("/saldo", accounts.saldo, methods=["GET"]),
    Route("/mutasi", accounts.mutasi, methods=["GET"]),
    Route("/callback", accounts.set_callback, methods=["PUT"]),
    Route("/callback/deliveries", accounts.callback_deliveries, methods=["GET"]),
    Route("/produk", purchases.list_products, methods=["GET"]),
    Route("/status", purchases.status_by_ref, methods=["GET"]),
    Route("/riwayat", purchases.history, methods=["GET"]),
    Route("/deposit", deposits.create, methods=["POST"]),
    Route("/deposit", deposits.listing, methods=["GET"]),
    Route("/deposit/{deposit_id:int}", deposits.get, methods=["GET"]),
    # webhooks in
    Route("/api/v1/webhooks/xendit", webhooks.xendit, methods=["POST"]),
    Route("/webhooks/midtrans", webhooks.midtrans, methods=["POST"]),
    Route("/webhooks/paystack", webhooks.paystack, methods=["POST"]),
    # kiosk API (photobox-api.md)
    Route("/api/v1/transactions", kiosk.listing, methods=["GET"]),
    Route("/api/v1/transactions/count", kiosk.count, methods=["GET"]),
    Route("/api/v1/transactions/external/{external_id}", kiosk.by_external_id, methods=["GET"]),
    Route("/api/v1/transactions/{external_id}/photos", kiosk.add_photos, methods=["POST"]),
    Route("/api/v1/transactions/{external_id}/photos", kiosk.get_photos, methods=["GET"]),
    Route("/api/v1/locations", masters.list_locations, methods=["GET"]),
    Route("/api/v1/locations", masters.create_location, methods=["POST"]),
    Route("/api/v1/locations/{id:int}", masters.get_location, methods=["GET"]),
    Route("/api/v1/locations/{id:int}", masters.update_location, methods=["PUT"]),
    Route("/api/v1/locations/{id:int}", masters.delete_location, methods=["DELETE"]),
    Route("/api/v1/prices", masters.list_prices, methods=["GET"]),
    Route("/api/v1/prices", masters.create_price, methods=["POST"]),
    Route("/api/v1/prices/{id:int}", masters.get_price, methods=["GET"]),
    Route("/api/v1/prices/{id:int}", masters.update_price, methods=["PUT"]),
    Route("/api/v1/prices/{id:int}", masters.delete_price, methods=["DELETE"]),
    # operators
    Route("/api/v1/webhook-events", masters.list_webhook_events, methods=["GET"]),
    Route("/api/v1/callback-deliveries", masters.list_callback_deliveries, methods=["GET"]),
    Route("/api/v1/resellers/{id:int}", staff_ops.change_reseller, methods=["PUT"]),
    Route("/api/v1/resellers/{id:int}/adjustments", staff_ops.adjust_saldo, methods=["POST"]),
    Route("/api/v1/products/{id:int}", staff_ops.change_product, methods=["PUT"]),
    Route("/api/v1/purchases/{id:int}/resolve", staff_ops.resolve_purchase, methods=["POST"]),
    Route("/api/v1/staff-tokens/revocations", staff_ops.revoke_staff_token, methods=["POST"]),
]


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.key_box = PrivateKeyBox(settings.master_key.get_secret_value())
        app.state.response_cipher = ResponseCipher(key) if (key := settings.response_encryption_key.get_secret_value()) else None
        # The hot paths take one round trip each on this pool (db.raw.autocommitting): the intake
        # procedures that commit their own transaction (POST /beli, webhooks, a kiosk's create) and
        # single reads (GET /status, a kiosk's transaction). The rest, multi-statement
        # transactions, go through a smaller engine beside it.
        app.state.autocommit_pool = create_pool(
            settings, settings.db_pool_size, autocommit=True, lock_wait_seconds=settings.db_lock_wait_seconds
        )
        # Short timeouts: a stuck Redis must not hold requests; the outbox covers a failed push.
        app.state.redis = Redis.from_url(
            settings.redis_url, socket_timeout=settings.qris_create_wait_ms / 1000 + 1, socket_connect_timeout=1
        )
        app.state.pusher = Pusher(app.state.redis)
        # The hot paths' calls of the same moment share one round trip (web.intake).
        app.state.status_reads = intake.status_reads(app.state.autocommit_pool)
        app.state.purchase_intake = intake.purchase_intake(app.state.autocommit_pool, settings.outbox_lease_seconds, app.state.pusher)
        app.state.webhook_intake = intake.webhook_intake(app.state.autocommit_pool, settings.outbox_lease_seconds, app.state.pusher)
        app.state.qris_intake = intake.qris_intake(
            app.state.autocommit_pool,
            default_amount=settings.photobox_default_amount,
            ttl_seconds=settings.qris_ttl_seconds,
            lease_seconds=settings.outbox_lease_seconds,
            pusher=app.state.pusher,
        )
        app.state.engine = create_engine(settings, pool_size=engine_size_beside(settings.db_pool_size))
        app.state.rate_limiter = RateLimiter(
            app.state.redis, settings.rate_limit_per_minute, prefix=f"{settings.redis_namespace}:loket:rl:key", max_keys=settings.rate_limit_max_keys
        )
        app.state.abuse_limits = AbuseLimits.of(app.state.redis, settings)
        app.state.revocations = Revocations(app.state.engine, settings.token_revocation_refresh_seconds)
        await app.state.revocations.start()
        heap.settle()
        try:
            yield
        finally:
            await app.state.revocations.aclose()
            await app.state.rate_limiter.aclose()
            await app.state.abuse_limits.aclose()
            await app.state.redis.aclose()
            await app.state.engine.dispose()
            await close_pool(app.state.autocommit_pool)
            metrics.forget_this_process()

    return Starlette(
        routes=ROUTES,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        middleware=[Middleware(RequestContext), Middleware(RequestMetrics)],
    )
