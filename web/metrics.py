"""GET /metrics: this web process's metrics, or all of them when they share a multiprocess folder."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from starlette.requests import Request
from starlette.responses import Response


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


async def metrics(request: Request) -> Response:
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def forget_this_process() -> None:
    """On this process's way out, drop its live gauges from the shared folder (with WEB_PROCESSES
    > 1), so the process uvicorn starts in its place is not counted beside it
    (loket_group_call_processes: the divisor of a group call's busy share)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
