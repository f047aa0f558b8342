"""Errors as the reseller API shapes them: JSON {"detail": ..., "code": ...}."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

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
    request: Request, status: int, code: str, detail: str, headers: dict[str, str] | None = None
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


EXCEPTION_HANDLERS = {ApiError: on_api_error, HTTPException: on_http_error, Exception: on_unexpected}
