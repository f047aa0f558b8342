"""The web's JSON bodies (web.json_response): the bytes json.dumps wrote before orjson, and a
payload as received that orjson alone refuses."""

from __future__ import annotations

import datetime as dt
import json

from web.json_response import JSONResponse, json_bytes


def test_a_status_answer_is_written_as_json_dumps_wrote_it() -> None:
    body = {"id": 7, "ref_id": "r-ü-1", "status": "sukses", "harga": 10_500, "sn": None, "waktu": "2026-12-02T23:49:52"}
    assert JSONResponse(body).body == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def test_datetimes_are_written_to_the_second() -> None:
    naive, aware = dt.datetime(2026, 12, 2, 23, 49, 52, 123456), dt.datetime(2026, 12, 2, 23, 49, 52, 5, tzinfo=dt.UTC)
    assert json.loads(json_bytes({"a": naive, "b": aware})) == {"a": "2026-12-02T23:49:52", "b": "2026-12-02T23:49:52+00:00"}


def test_a_webhook_payload_with_an_int_beyond_64_bits_or_a_lone_surrogate_is_written_whole() -> None:
    # Both come from json.loads of a body as received: {"amount": 1180591620717411303424, "sn": "\\ud800"}.
    payload = {"data": {"amount": 2**70, "list": [-(2**80), 1.5], "sn": "x\ud800ü"}}
    assert json.loads(json_bytes(payload)) == payload
