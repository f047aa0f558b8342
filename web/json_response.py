"""JSON bodies, written by orjson: every answer of the web goes through here.

orjson writes a GET /status answer about twenty times faster than json.dumps, and the bytes are
the same for the bodies Loket writes (str keys, ints, strings, lists; datetimes as
isoformat(timespec="seconds")).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import orjson
from starlette import responses

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_bytes(content: Any) -> bytes:
    """content as compact UTF-8 JSON (non-ASCII characters as they are)."""
    try:
        return orjson.dumps(content, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        # A payload shown as it was received (a webhook event's) may hold an int beyond 64 bits or
        # a lone surrogate (from a \ud800 escape), which orjson refuses; json.dumps writes the
        # first as it is and the second escaped (ensure_ascii), where UTF-8 could not carry it.
        return json.dumps(content, default=_default, separators=(",", ":")).encode()


class JSONResponse(responses.JSONResponse):
    def render(self, content: Any) -> bytes:
        return json_bytes(content)
