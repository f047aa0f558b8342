"""POST /v1/transaction as a bare ASGI middleware, ahead of Starlette's router.

The simulator stands in for a provider on machines of its own, yet in the benchmark it shares the
cores with Loket, one call per purchase. Through the router, a Request and a JSONResponse,
Starlette's own work would be about a third of the simulator's CPU per call (py-spy); this path
answers the bytes JSONResponse wrote (by orjson: the same for these ASCII bodies) without it. Every other route goes on to the app.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sim.provider import DigiflazzProvider

PATH = "/v1/transaction"


class TransactionEndpoint:
    """Serves POST /v1/transaction with the app's `state.provider`; `app` is the rest of the stack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:
            return  # the caller hung up mid-request: no transaction, as the route's ClientDisconnect
        provider: DigiflazzProvider = scope["app"].state.provider
        answer = await provider.handle_transaction(body)
        payload = _render(answer.body)
        await send({"type": "http.response.start", "status": answer.status_code, "headers": _headers(payload)})
        await send({"type": "http.response.body", "body": payload})
        if answer.notify:
            await provider.send_create_callback(answer)  # after the response, as the route's BackgroundTask was


async def _body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _render(content: Any) -> bytes:
    return orjson.dumps(content)


def _headers(payload: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")]
