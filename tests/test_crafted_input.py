"""Crafted input that once raised inside a handler (a 500) is a 4xx with a reason, and changes nothing."""

from __future__ import annotations

import json

from tests.harness import LoketStack, fast_env, register
from tests.test_signing_and_limits import signed_headers

TOKEN = {"x-callback-token": fast_env()["XENDIT_CALLBACK_TOKEN"]}
DEEP = b"[" * 60_000  # deeper than the JSON parser recurses


async def test_json_nested_too_deeply_is_a_400_before_and_after_the_token(api, stack: LoketStack):
    events = stack.db.value("SELECT COUNT(*) FROM webhook_event")
    # Midtrans signs fields inside the body: it is read before anything is verified.
    unsigned = await api.post("/webhooks/midtrans", content=DEEP, headers={"content-type": "application/json"})
    assert unsigned.status_code == 400 and unsigned.json()["code"] == "invalid_json" and "nested too deeply" in unsigned.json()["detail"]
    deep_object = b'{"a":' * 12_000
    assert (await api.post("/webhooks/midtrans", content=deep_object)).status_code == 400
    with_token = await api.post("/api/v1/webhooks/xendit", content=DEEP, headers=TOKEN)
    assert with_token.status_code == 400 and with_token.json()["code"] == "invalid_json"
    assert stack.db.value("SELECT COUNT(*) FROM webhook_event") == events


async def test_a_timestamp_of_non_ascii_digits_is_a_401_and_buys_nothing(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=50_000)
    before = stack.db.money_of(reseller.id)
    body = json.dumps({"produk_id": 1, "nomor_tujuan": "081211119999", "ref_id": "SUPERSCRIPT"}).encode()
    headers = {**signed_headers(reseller, "POST", "/beli", body), "content-type": "application/json"}
    # One byte 0xB2 reads (as Latin-1, as HTTP headers are read) as "²": isdigit() is true, int() refuses it.
    for odd in (b"\xb2", b"1\xb9"):
        answer = await api.post("/beli", content=body, headers={**headers, "x-timestamp": odd})  # type: ignore[dict-item]
        assert answer.status_code == 401 and answer.json()["code"] == "stale_timestamp", answer.text
    assert stack.db.money_of(reseller.id) == before
    assert stack.db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller.id) == 0
