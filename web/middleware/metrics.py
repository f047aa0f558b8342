"""Counts and times every HTTP request by its route template (not its raw path: ids would explode labels)."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import metrics


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled children, looked up once each: labels() takes a lock and builds its key on
        # every call. Routes are templates and statuses few, so this stays small.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            counted = self._counted.get((method, template, status))
            if counted is None:
                counted = self._counted[method, template, status] = metrics.http_requests.labels(method, template, str(status))
            timed = self._timed.get((method, template))
            if timed is None:
                timed = self._timed[method, template] = metrics.http_latency.labels(method, template)
            counted.inc()
            timed.observe(time.perf_counter() - started)
