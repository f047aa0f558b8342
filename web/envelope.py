"""The kiosk API's response shapes (photobox-api.md): {success, message, data} and its pages."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


def ok(data: Any, message: str, status: int = 200) -> Response:
    return Json({"success": True, "message": message, "data": data}, status_code=status)


def page(data: list[Any], message: str, *, total: int, skip: int, limit: int) -> Response:
    return Json(
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
        return Json(content)
    plaintext = json.dumps(content, default=_default, ensure_ascii=False, separators=(",", ":")).encode()
    return Json({"data": cipher.seal(plaintext)})
