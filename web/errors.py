"""Errors as the reseller API shapes them: JSON {"detail": ..., "code": ...}."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import Request

from db.errors import error_code, unavailability
from web.json_response import JSONResponse

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A 4xx with a reason.

    status: the HTTP status; code: a stable machine-readable name; detail: what went wrong.
    headers: extra response headers (e.g. WWW-Authenticate).
    """

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.code, self.detail, self.headers = status, code, detail, headers

    @classmethod
    def from_validation(cls, error: ValidationError) -> ApiError:
        first = error.errors(include_url=False, include_input=False)[0]
        if first.get("type") == "json_invalid":
            return cls(400, "invalid_json", "request body is not valid JSON")
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return cls(422, "invalid_input", f"{where}: {first.get('msg', 'invalid value')}")


def error_response(
    request: Request, status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body: dict[str, object] = {"detail": detail, "code": code}
    if request.url.path.startswith("/api/v1/"):
        body = {"success": False, "message": detail, **body}  # the kiosk API's envelope
    return JSONResponse(body, status_code=status, headers=headers)


async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.code, exc.detail, exc.headers)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return error_response(request, exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail), exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "internal_error", "internal error; nothing was lost, try again")


# Long enough for a restarting server or a failover, short enough for a kiosk waiting on a QR.
DEPENDENCY_RETRY_AFTER = "5"


async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 when the database is down or busy: an outage, not a bug, so one line and no traceback."""
    why = unavailability(exc)
    if why is None:
        return await on_unexpected(request, exc)
    assert isinstance(exc, DBAPIError | PoolTimeout)
    # The error code and class only: the error's text carries the statement and its parameters.
    orig = getattr(exc, "orig", None)
    reason = f"{error_code(exc) if isinstance(exc, DBAPIError) else 'pool'} {type(orig or exc).__name__}"
    log.warning("database unavailable (%s: %s) on %s %s", why, reason, request.method, request.url.path)
    detail = f"the database is {why}; nothing was lost, try again"
    return error_response(request, 503, "dependency_unavailable", detail, {"Retry-After": DEPENDENCY_RETRY_AFTER})


async def on_redis_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable (%s) on %s %s", type(exc).__name__, request.method, request.url.path)
    detail = "the queue is unreachable; nothing was lost, try again"
    return error_response(request, 503, "dependency_unavailable", detail, {"Retry-After": DEPENDENCY_RETRY_AFTER})


EXCEPTION_HANDLERS = {
    ApiError: on_api_error,
    HTTPException: on_http_error,
    DBAPIError: on_database_error,
    PoolTimeout: on_database_error,
    RedisConnectionError: on_redis_error,
    RedisTimeout: on_redis_error,
    Exception: on_unexpected,
}
