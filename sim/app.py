"""The simulator's Starlette app: thin HTTP handlers and the routing table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core.listen import instance_headers
from sim.gateway import Answer, XenditGateway
from sim.midtrans import DepositAnswer, MidtransGateway
from sim.paystack import PaystackGateway
from sim.provider import DigiflazzProvider
from sim.settings import ConfigError, Settings
from sim.transaction_endpoint import TransactionEndpoint


def _provider(request: Request) -> DigiflazzProvider:
    provider: DigiflazzProvider = request.app.state.provider
    return provider


def _gateway(request: Request) -> XenditGateway:
    gateway: XenditGateway = request.app.state.gateway
    return gateway


def _midtrans(request: Request) -> MidtransGateway:
    midtrans: MidtransGateway = request.app.state.midtrans
    return midtrans


def _paystack(request: Request) -> PaystackGateway:
    paystack: PaystackGateway = request.app.state.paystack
    return paystack


def _config(request: Request) -> dict[str, Any]:
    # Midtrans and Paystack always hold the same deposit config; report it once.
    return {**_provider(request).config.model_dump(), **_gateway(request).config.model_dump(),
            **_midtrans(request).config.model_dump()}


async def health(request: Request) -> Response:
    """Liveness probe; names this process to a starter that asked (core.listen)."""
    return JSONResponse({"status": "ok"}, headers=instance_headers())


def _gateway_response(gateway: XenditGateway, answer: Answer) -> Response:
    background = BackgroundTask(gateway.send_webhook, answer) if answer.webhook else None
    return JSONResponse(answer.body, status_code=answer.status_code, background=background)


async def create_qr_code(request: Request) -> Response:
    """Xendit create QR code (POST /qr_codes)."""
    gateway = _gateway(request)
    return _gateway_response(gateway, await gateway.create_qr(request.headers, await request.body()))


async def get_qr_code(request: Request) -> Response:
    """Xendit get QR code by id (GET /qr_codes/{qr_id})."""
    gateway = _gateway(request)
    return _gateway_response(gateway, await gateway.get_qr(request.headers, request.path_params["qr_id"]))


async def simulate_qr_payment(request: Request) -> Response:
    """Xendit simulate payment (POST /qr_codes/{qr_id}/payments/simulate); the webhook follows the response."""
    gateway = _gateway(request)
    answer = await gateway.simulate_payment(request.headers, request.path_params["qr_id"], await request.body())
    return _gateway_response(gateway, answer)


async def list_qr_payments(request: Request) -> Response:
    """Xendit list a QR code's payments (GET /qr_codes/{qr_id}/payments)."""
    gateway = _gateway(request)
    return _gateway_response(gateway, await gateway.list_payments(request.headers, request.path_params["qr_id"]))


def _deposit_response(gateway: MidtransGateway | PaystackGateway, answer: DepositAnswer) -> Response:
    background = BackgroundTask(gateway.sender.send, answer) if answer.webhook else None
    return JSONResponse(answer.body, status_code=answer.status_code, background=background)


async def midtrans_create_transaction(request: Request) -> Response:
    """Midtrans Snap create transaction (POST /midtrans/snap/v1/transactions)."""
    midtrans = _midtrans(request)
    answer = midtrans.create_transaction(request.headers, await request.body(), str(request.base_url))
    return _deposit_response(midtrans, answer)


async def midtrans_status(request: Request) -> Response:
    """Midtrans get status (GET /midtrans/v2/{order_id}/status)."""
    midtrans = _midtrans(request)
    return _deposit_response(midtrans, midtrans.status(request.headers, request.path_params["order_id"]))


async def midtrans_simulate(request: Request) -> Response:
    """Sim-only: send a Midtrans HTTP notification for an order (POST /midtrans/_simulate/{order_id})."""
    midtrans = _midtrans(request)
    answer = midtrans.simulate(request.path_params["order_id"], await request.body())
    return _deposit_response(midtrans, answer)


async def paystack_initialize(request: Request) -> Response:
    """Paystack initialize transaction (POST /paystack/transaction/initialize)."""
    paystack = _paystack(request)
    answer = paystack.initialize(request.headers, await request.body(), str(request.base_url))
    return _deposit_response(paystack, answer)


async def paystack_simulate(request: Request) -> Response:
    """Sim-only: send a Paystack charge.success webhook (POST /paystack/_simulate/{reference})."""
    paystack = _paystack(request)
    answer = paystack.simulate(request.path_params["reference"], await request.body())
    return _deposit_response(paystack, answer)


async def get_config(request: Request) -> Response:
    """Current runtime config (provider and gateway keys)."""
    return JSONResponse(_config(request))


async def post_config(request: Request) -> Response:
    """Merge a JSON object of config keys into the runtime config; 400 on unknown keys or bad values.

    Answers with the config of each side (provider, gateway) the patch named, or all of it for {}.
    """
    try:
        patch: Any = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    if not isinstance(patch, dict):
        return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
    provider, gateway = _provider(request), _gateway(request)
    midtrans, paystack = _midtrans(request), _paystack(request)
    provider_patch = {k: v for k, v in patch.items() if k in type(provider.config).model_fields}
    gateway_patch = {k: v for k, v in patch.items() if k in type(gateway.config).model_fields}
    deposit_patch = {k: v for k, v in patch.items() if k in type(midtrans.config).model_fields}
    unknown = sorted(set(patch) - set(provider_patch) - set(gateway_patch) - set(deposit_patch))
    if unknown:
        return JSONResponse({"error": f"unknown config keys: {', '.join(unknown)}"}, status_code=400)
    try:
        # Validate both sides before changing either, so a rejected patch changes nothing.
        provider_config = provider.config.merged(provider_patch)
        gateway_config = gateway.config.merged(gateway_patch)
        deposit_config = midtrans.config.merged(deposit_patch)
    except ConfigError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    provider.config, gateway.config = provider_config, gateway_config
    midtrans.config = paystack.config = deposit_config
    answer: dict[str, Any] = {}
    if provider_patch or not patch:
        answer.update(provider_config.model_dump())
    if gateway_patch or not patch:
        answer.update(gateway_config.model_dump())
    if deposit_patch or not patch:
        answer.update(deposit_config.model_dump())
    return JSONResponse(answer)


async def reset(request: Request) -> Response:
    """Clear records, cancel pending work, restore the environment's config."""
    await _provider(request).reset()
    await _gateway(request).reset()
    await _midtrans(request).reset()
    await _paystack(request).reset()
    return JSONResponse({"status": "ok", "config": _config(request)})


async def list_transactions(request: Request) -> Response:
    """All recorded transactions, oldest first."""
    return JSONResponse(_provider(request).transactions())


async def get_transaction(request: Request) -> Response:
    """One recorded transaction by ref_id, or 404."""
    found = _provider(request).transaction(request.path_params["ref_id"])
    if found is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse(found)


async def list_qr_codes(request: Request) -> Response:
    """All QR codes with their payments, oldest first."""
    return JSONResponse([qr.summary() for qr in _gateway(request).qr_codes.values()])


async def list_deposit_gateways(request: Request) -> Response:
    """All Midtrans orders and Paystack transactions, oldest first."""
    return JSONResponse({"midtrans": [o.summary() for o in _midtrans(request).orders.values()],
                         "paystack": [t.summary() for t in _paystack(request).transactions.values()]})


# POST /v1/transaction (Digiflazz buyer transaction / status check) is sim.transaction_endpoint's.
ROUTES: list[BaseRoute] = [
    Route("/health", health, methods=["GET"]),
    Route("/qr_codes", create_qr_code, methods=["POST"]),
    Route("/qr_codes/{qr_id}", get_qr_code, methods=["GET"]),
    Route("/qr_codes/{qr_id}/payments/simulate", simulate_qr_payment, methods=["POST"]),
    Route("/qr_codes/{qr_id}/payments", list_qr_payments, methods=["GET"]),
    Route("/_sim/config", get_config, methods=["GET"]),
    Route("/_sim/config", post_config, methods=["POST"]),
    Route("/_sim/reset", reset, methods=["POST"]),
    Route("/_sim/transactions", list_transactions, methods=["GET"]),
    Route("/_sim/transactions/{ref_id:path}", get_transaction, methods=["GET"]),
    Route("/_sim/qr_codes", list_qr_codes, methods=["GET"]),
    Route("/midtrans/snap/v1/transactions", midtrans_create_transaction, methods=["POST"]),
    Route("/midtrans/_simulate/{order_id:path}", midtrans_simulate, methods=["POST"]),
    Route("/midtrans/v2/{order_id}/status", midtrans_status, methods=["GET"]),
    Route("/paystack/transaction/initialize", paystack_initialize, methods=["POST"]),
    Route("/paystack/_simulate/{reference}", paystack_simulate, methods=["POST"]),
    Route("/_sim/deposit_gateways", list_deposit_gateways, methods=["GET"]),
]


def create_app(settings: Settings | None = None) -> Starlette:
    """Build a simulator app with its own, fresh state.

    Args:
        settings: startup settings; read from the environment when None.
    """
    settings = settings if settings is not None else Settings.from_env()
    provider = DigiflazzProvider(settings)
    gateway = XenditGateway(settings)
    midtrans = MidtransGateway(settings)
    paystack = PaystackGateway(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await provider.aclose()
        await gateway.aclose()
        await midtrans.aclose()
        await paystack.aclose()

    app = Starlette(routes=list(ROUTES), middleware=[Middleware(TransactionEndpoint)], lifespan=lifespan)
    app.state.settings = settings
    app.state.provider = provider
    app.state.gateway = gateway
    app.state.midtrans = midtrans
    app.state.paystack = paystack
    return app
