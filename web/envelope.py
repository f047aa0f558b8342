"""The kiosk API's response shapes (photobox-api.md): {success, message, data} and its pages."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from web.json_response import JSONResponse, json_bytes


def ok(data: Any, message: str, status: int = 200) -> Response:
    return JSONResponse({"success": True, "message": message, "data": data}, status_code=status)


def page(data: list[Any], message: str, *, total: int, skip: int, limit: int) -> Response:
    return JSONResponse(
        {
            "success": True,
            "message": message,
            "data": data,
            "total": total,
            "page": skip // limit + 1,
            "size": limit,
            "pages": math.ceil(total / limit) if total else 0,
        }
    )


def public(request: Request, content: dict[str, Any]) -> Response:
    """A public kiosk answer, encrypted as {"data": "<base64>"} when the deployment enables it."""
    cipher = request.app.state.response_cipher
    if cipher is None:
        return JSONResponse(content)
    plaintext = json_bytes(content)
    return JSONResponse({"data": cipher.seal(plaintext)})
