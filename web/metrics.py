"""GET /metrics: this web process's metrics, or all of them when they share a multiprocess folder."""

from __future__ import annotations

import hmac
import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from starlette.requests import Request
from starlette.responses import Response

from core.settings import Settings
from web.errors import ApiError


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _check_scraper(request: Request, settings: Settings) -> None:
    """The web's /metrics shares the public port: with METRICS_TOKEN only a scraper holding it
    reads it; without one, production does not serve it at all."""
    token = settings.metrics_token.get_secret_value()
    if not token:
        if settings.loket_env == "production":
            raise ApiError(404, "not_found", "Not Found")
        return
    presented = request.headers.get("authorization", "")
    if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
        raise ApiError(401, "metrics_token_required", "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>")


async def metrics(request: Request) -> Response:
    _check_scraper(request, request.app.state.settings)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def forget_this_process() -> None:
    """On this process's way out, drop its live gauges from the shared folder (with WEB_PROCESSES
    > 1), so the process uvicorn starts in its place is not counted beside it
    (loket_group_call_processes: the divisor of a group call's busy share)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
