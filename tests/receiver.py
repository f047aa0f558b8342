"""A reseller's callback endpoint for tests: a real HTTP server that records what arrives.

Each path /hook/{name} behaves as configured: answer 500 for the first `fail_first` deliveries,
or hang for `hang_seconds`, then 200.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ops.stack import listening_socket


@dataclass
class Received:
    name: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    # Bound here and served by start(): the port is this receiver's from the moment its URL exists.
    listener: socket.socket = field(default_factory=listening_socket)
    fail_first: dict[str, int] = field(default_factory=dict)
    hang_seconds: dict[str, float] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{name}"

    def of(self, name: str) -> list[Received]:
        return [r for r in self.received if r.name == name]

    async def _hook(self, request: Request) -> PlainTextResponse:
        name = request.path_params["name"]
        self.received.append(Received(name, dict(request.headers), await request.body(), time.time()))
        if name in self.hang_seconds:
            await asyncio.sleep(self.hang_seconds[name])
        if len(self.of(name)) <= self.fail_first.get(name, 0):
            return PlainTextResponse("not now", status_code=500)
        return PlainTextResponse("ok")

    def start(self) -> uvicorn.Server:
        app = Starlette(routes=[Route("/hook/{name}", self._hook, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", loop="asyncio"))
        threading.Thread(target=server.run, kwargs={"sockets": [self.listener]}, daemon=True).start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return server
