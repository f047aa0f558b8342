"""The reseller API's contract: accounts, keys, isolation, and bad input changing nothing."""

from __future__ import annotations

import asyncio

import pytest

from core.security import issue_staff_token
from tests.harness import LoketStack, Reseller, fast_env, register


async def test_register_returns_keys_once_and_stores_neither_in_the_clear(api, stack: LoketStack):
    response = await api.post("/register", json={"nama": "Budi Santoso", "email": "Budi@Mail.com", "hp": "08123456789"})
    assert response.status_code == 200
    body = response.json()
    assert len(body["api_key"]) == 64 and len(body["private_key"]) == 64 and body["info"]
    row = stack.db.rows("SELECT api_key_hash, private_key_enc, email, saldo FROM reseller WHERE id = %s", body["id"])[0]
    assert body["api_key"].encode() not in row["api_key_hash"] and bytes.fromhex(body["api_key"]) != row["api_key_hash"]
    assert body["private_key"].encode() not in row["private_key_enc"]
    assert row["email"] == "budi@mail.com" and row["saldo"] == 0
    again = await api.post("/register", json={"nama": "Budi", "email": "budi@mail.com"})
    assert again.status_code == 409 and again.json()["code"] == "email_taken"


async def test_opening_saldo_needs_an_admin(api, stack: LoketStack):
    body = {"nama": "Toko", "email": "kaya@uji.id", "saldo": 1_000_000}
    assert (await api.post("/register", json=body)).status_code == 403
    clerk = issue_staff_token(fast_env()["JWT_SECRET"], "clerk", 10)
    assert (await api.post("/register", json=body, headers={"authorization": f"Bearer {clerk}"})).status_code == 403
    forged = issue_staff_token("another-secret-of-sufficient-length!", "root", 100)
    assert (await api.post("/register", json=body, headers={"authorization": f"Bearer {forged}"})).status_code == 401
    assert stack.db.value("SELECT COUNT(*) FROM reseller WHERE email = 'kaya@uji.id'") == 0


async def test_generate_key_retires_the_old_key_at_once(api, admin_token):
    reseller = await register(api, admin_token, saldo=20_000)
    rotated = await api.post("/generate-key", headers=reseller.headers)
    assert rotated.status_code == 200
    assert (await api.get("/saldo", headers=reseller.headers)).status_code == 401
    new_headers = {"x-api-key": rotated.json()["api_key"]}
    assert (await api.get("/saldo", headers=new_headers)).json() == {"saldo": 20_000}


async def test_a_retired_or_deactivated_key_buys_nothing(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=20_000)
    rotated = (await api.post("/generate-key", headers=reseller.headers)).json()
    order = {"produk_id": 1, "nomor_tujuan": "081211113333", "ref_id": "OLD-KEY"}
    retired = await api.post("/beli", json=order, headers=reseller.headers)
    assert retired.status_code == 401 and retired.json()["code"] == "invalid_api_key"
    stack.db.rows("UPDATE reseller SET aktif = FALSE WHERE id = %s", reseller.id)
    deactivated = await api.post("/beli", json=order, headers={"x-api-key": rotated["api_key"]})
    assert deactivated.status_code == 401 and deactivated.json()["code"] == "invalid_api_key"
    for path in ("/status/1", "/status?ref_id=OLD-KEY"):
        assert (await api.get(path, headers={"x-api-key": rotated["api_key"]})).json()["code"] == "invalid_api_key"
    assert stack.db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller.id) == 0
    assert stack.db.value("SELECT saldo FROM reseller WHERE id = %s", reseller.id) == 20_000
    assert stack.db.value("SELECT COUNT(*) FROM ledger_entry WHERE reseller_id = %s AND jenis = 'pembelian'", reseller.id) == 0


async def test_products_list(api, admin_token):
    reseller = await register(api, admin_token)
    products = (await api.get("/produk", headers=reseller.headers)).json()
    assert [(p["id"], p["kode"], p["harga"], p["kategori"]) for p in products][:3] == [
        (1, "pulsa10", 12000, "pulsa"),
        (2, "pulsa20", 22000, "pulsa"),
        (3, "pln50", 51000, "pln"),
    ]


async def test_one_reseller_never_sees_another_ones_purchases(api, admin_token):
    alice = await register(api, admin_token, saldo=50_000)
    bob = await register(api, admin_token, saldo=50_000)
    purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "081211112222", "ref_id": "A-1"}, headers=alice.headers)).json()
    assert (await api.get(f"/status/{purchase['id']}", headers=alice.headers)).status_code == 200
    assert (await api.get(f"/status/{purchase['id']}", headers=bob.headers)).status_code == 404
    assert (await api.get("/status", params={"ref_id": "A-1"}, headers=bob.headers)).status_code == 404
    for beyond in (2**63, 2**64 + 1):
        assert (await api.get(f"/status/{beyond}", headers=alice.headers)).status_code == 404
    assert (await api.get("/riwayat", headers=bob.headers)).json() == []
    assert [m["jenis"] for m in (await api.get("/mutasi", headers=bob.headers)).json()] == ["saldo_awal"]
    # Bob may use the same ref_id for his own purchase: idempotency keys are per reseller.
    own = await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "081233334444", "ref_id": "A-1"}, headers=bob.headers)
    assert own.status_code == 200 and own.json()["id"] != purchase["id"]


async def test_concurrent_status_reads_each_answer_their_own_caller(api, admin_token):
    """The web reads GET /status of the same moment together (web.purchases.status_reads): under
    concurrent reads each caller still gets its own purchase, and nobody another's."""
    alice = await register(api, admin_token, saldo=100_000)
    bob = await register(api, admin_token, saldo=100_000)
    mine = {}
    for who, reseller in (("alice", alice), ("bob", bob)):
        mine[who] = [
            (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"0812555{i:05d}", "ref_id": f"C-{i}"}, headers=reseller.headers)).json()["id"]
            for i in range(3)
        ]
    asks = []
    for i in range(3):
        asks += [
            (alice, f"/status/{mine['alice'][i]}", 200, mine["alice"][i]),
            (bob, f"/status/{mine['bob'][i]}", 200, mine["bob"][i]),
            (bob, f"/status/{mine['alice'][i]}", 404, None),
            (alice, f"/status?ref_id=C-{i}", 200, mine["alice"][i]),
            (bob, f"/status?ref_id=C-{i}", 200, mine["bob"][i]),
        ]
    asks *= 4
    wrong_key = Reseller(0, "not-a-key", "")
    asks += [(wrong_key, f"/status/{mine['alice'][0]}", 401, None)] * 5
    answers = await asyncio.gather(*(api.get(path, headers=who.headers) for who, path, _, _ in asks))
    for (_, path, status, purchase_id), answer in zip(asks, answers, strict=True):
        assert answer.status_code == status, (path, answer.text)
        if purchase_id is not None:
            assert answer.json()["id"] == purchase_id


async def test_riwayat_pages_newest_first(api, admin_token):
    reseller = await register(api, admin_token, saldo=100_000)
    ids = [
        (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"08121111{i:04d}"}, headers=reseller.headers)).json()["id"]
        for i in range(5)
    ]
    first = (await api.get("/riwayat", params={"limit": 2}, headers=reseller.headers)).json()
    assert [p["id"] for p in first] == ids[::-1][:2]
    rest = (await api.get("/riwayat", params={"before_id": first[-1]["id"]}, headers=reseller.headers)).json()
    assert [p["id"] for p in rest] == ids[::-1][2:]
    assert (await api.get("/riwayat", params={"limit": 1000}, headers=reseller.headers)).status_code == 422


async def test_callback_url_is_validated(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token)
    ok = await api.put("/callback", json={"callback_url": "https://toko.example/hook"}, headers=reseller.headers)
    assert ok.status_code == 200
    before = stack.db.money_of(reseller.id)
    for url in ("javascript:alert(1)", "ftp://toko.example/hook", "https://", "x" * 600, 7):
        bad = await api.put("/callback", json={"callback_url": url}, headers=reseller.headers)
        assert bad.status_code == 422, (url, bad.text)
    assert stack.db.money_of(reseller.id) == before
    assert before["account"][0]["callback_url"] == "https://toko.example/hook"


BAD_PURCHASES = [
    ("not json", b"{produk_id: 1", 400),
    ("empty", b"", 400),
    ("json array", b"[1, 2]", 422),
    ("missing destination", b'{"produk_id": 1}', 422),
    ("string product id", b'{"produk_id": "1", "nomor_tujuan": "081234567890"}', 422),
    ("float product id", b'{"produk_id": 1.5, "nomor_tujuan": "081234567890"}', 422),
    ("huge product id", b'{"produk_id": 99999999999999999999999999, "nomor_tujuan": "081234567890"}', 422),
    ("negative product id", b'{"produk_id": -1, "nomor_tujuan": "081234567890"}', 422),
    ("unknown product", b'{"produk_id": 999, "nomor_tujuan": "081234567890"}', 404),
    ("letters in destination", b'{"produk_id": 1, "nomor_tujuan": "0812abc45678"}', 422),
    ("short destination", b'{"produk_id": 1, "nomor_tujuan": "0812"}', 422),
    ("long destination", b'{"produk_id": 1, "nomor_tujuan": "081234567890123456789"}', 422),
    ("PLN id of 10 digits", b'{"produk_id": 3, "nomor_tujuan": "5300000000"}', 422),
    ("huge nominal", b'{"produk_id": 1, "nomor_tujuan": "081234567890", "nominal": 1e300}', 422),
    ("ref_id with spaces", b'{"produk_id": 1, "nomor_tujuan": "081234567890", "ref_id": "a b"}', 422),
    ("ref_id too long", b'{"produk_id": 1, "nomor_tujuan": "081234567890", "ref_id": "' + b"x" * 65 + b'"}', 422),
    ("null body", b"null", 422),
    ("huge body", b'{"produk_id": 1, "nomor_tujuan": "081234567890", "pad": "' + b"x" * 70_000 + b'"}', 413),
]


@pytest.mark.parametrize("case,body,status", BAD_PURCHASES, ids=[c[0] for c in BAD_PURCHASES])
async def test_bad_purchase_input_is_a_4xx_and_changes_nothing(api, stack: LoketStack, admin_token, case, body, status):
    reseller = await register(api, admin_token, saldo=100_000)
    response = await api.post("/beli", content=body, headers={**reseller.headers, "content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["detail"] and response.json()["code"]
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 100_000}
    assert stack.db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller.id) == 0
    assert [e["jenis"] for e in stack.db.money_of(reseller.id)["ledger"]] == ["saldo_awal"]


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "nope"}, {"x-api-key": "a" * 64}, {"x-api-key": "k" * 5000}])
async def test_missing_or_wrong_key_is_401(api, stack: LoketStack, headers):
    before = stack.db.value("SELECT COUNT(*) FROM purchase")
    for method, path in (("POST", "/beli"), ("GET", "/saldo"), ("GET", "/riwayat"), ("GET", "/status/1"), ("POST", "/generate-key")):
        response = await api.request(method, path, json={"produk_id": 1, "nomor_tujuan": "081234567890"}, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
    assert stack.db.value("SELECT COUNT(*) FROM purchase") == before


async def test_unknown_routes_and_methods_answer_json(api):
    assert (await api.get("/nope")).json()["code"] == "not_found"
    assert (await api.get("/beli")).status_code == 405
    assert (await api.get("/status/abc", headers={"x-api-key": "x"})).status_code == 404


async def test_health_and_ready(api):
    assert (await api.get("/health")).json() == {"status": "ok"}
    ready = await api.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"mysql": "ok", "redis": "ok"}
