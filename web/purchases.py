"""Products and purchases: /produk, /beli, /status, /riwayat."""

from __future__ import annotations

from typing import Any

import asyncmy
from starlette.requests import Request

from db import products, raw, resellers
from db import purchases as purchase_queries
from domain import purchases
from domain.ledger import InsufficientSaldo
from web import abuse, auth, signing
from web.auth import reseller_of
from web.errors import ApiError
from web.json_response import JSONResponse
from web.requests import parse_body, parse_query
from web.schemas import BeliRequest, PageQuery, RefIdQuery
from web.views import product_view, purchase_view


async def list_products(request: Request) -> JSONResponse:
    async with request.app.state.engine.begin() as conn:
        await reseller_of(conn, request)
        found = await products.active(conn)
    return JSONResponse([product_view(p) for p in found])


async def buy(request: Request) -> JSONResponse:
    body = await parse_body(request, BeliRequest)
    key_hash = auth.api_key_hash_of(request)
    state = request.app.state
    order = purchases.Order(
        produk_id=body.produk_id,
        nomor_tujuan=body.nomor_tujuan,
        nominal=body.nominal,
        ref_id=body.ref_id,
        **await _buyer(state.autocommit_pool, request, key_hash),
    )
    answer = await state.purchase_intake(order)  # committed with the orders of the same moment, its job pushed with theirs
    if isinstance(answer, purchases.UnknownApiKey):
        abuse.key_failed(request, key_hash)
    else:
        abuse.key_worked(request, key_hash)
    try:
        if isinstance(answer, Exception):
            raise answer
    except purchases.UnknownApiKey:
        raise auth.invalid_api_key() from None
    except purchases.SignatureRequired:
        raise signing.signature_required() from None
    except purchases.UnknownProduct:
        raise ApiError(404, "unknown_product", f"produk {body.produk_id} tidak ada atau tidak aktif") from None
    except purchases.InvalidDestination:
        raise ApiError(422, "invalid_input", "nomor_tujuan: a PLN meter/customer id has 11-12 digits") from None
    except InsufficientSaldo:
        raise ApiError(402, "insufficient_saldo", "saldo tidak cukup") from None
    except purchases.DuplicateRefId:
        return await _replay(request, key_hash, body)
    return JSONResponse(
        {"id": answer.purchase_id, "ref_id": body.ref_id, "status": "pending", "harga": answer.harga, "saldo": answer.saldo}
    )


async def _buyer(pool: asyncmy.Pool, request: Request, key_hash: bytes) -> dict[str, Any]:
    """Who buys, as purchases.Order takes it. An unsigned request's key is checked by the accept
    itself, in the same round trip (a separate lookup cost ~12% of the web's CPU per accept);
    a signed one needs the reseller's private key first."""
    if auth.signature_sent_or_required(request):
        async with raw.autocommitting(pool) as conn:
            return {"reseller_id": (await auth.reseller_by_key(conn, request, key_hash)).id}
    return {"api_key_hash": key_hash}


async def _replay(request: Request, key_hash: bytes, body: BeliRequest) -> JSONResponse:
    """The same ref_id again: the same purchase, nothing debited; a different body is a conflict.
    The request was authenticated by the accept that found its ref_id taken."""
    assert body.ref_id is not None
    async with request.app.state.engine.begin() as conn:
        reseller = await resellers.by_api_key_hash(conn, key_hash)
        if reseller is None:  # the key was replaced since
            raise auth.invalid_api_key()
        try:
            existing = await purchases.replay(
                conn,
                reseller_id=reseller.id,
                ref_id=body.ref_id,
                produk_id=body.produk_id,
                nomor_tujuan=body.nomor_tujuan,
                nominal=body.nominal,
            )
        except purchases.RefIdReused as reused:
            raise ApiError(409, "ref_id_conflict", f"ref_id sudah dipakai untuk transaksi {reused.existing.id} dengan isi berbeda") from None
        saldo = await resellers.saldo_of(conn, reseller.id)
    if existing is None:  # the other request rolled back after all; the client may simply retry
        raise ApiError(409, "ref_id_in_flight", "ref_id sedang diproses, coba lagi")
    return JSONResponse({"id": existing.id, "ref_id": existing.ref_id, "status": existing.status, "harga": existing.harga, "saldo": saldo})


async def status_by_id(request: Request) -> JSONResponse:
    purchase_id = request.path_params["purchase_id"]
    return await _status(request, purchase_id=purchase_id if purchase_id < 2**63 else 0)  # ids start at 1


async def status_by_ref(request: Request) -> JSONResponse:
    return await _status(request, ref_id=parse_query(request, RefIdQuery).ref_id)


async def _status(request: Request, **which: Any) -> JSONResponse:
    """The caller and its purchase in one read, shared with the reads of the same moment (web.intake)."""
    key_hash = auth.api_key_hash_of(request)
    reseller, found = await request.app.state.status_reads(purchase_queries.OwnedQuery(key_hash, **which))
    await auth.verified(request, reseller, key_hash)
    if found is None:
        raise ApiError(404, "not_found", "transaksi tidak ditemukan")
    return JSONResponse(purchase_view(found))


async def history(request: Request) -> JSONResponse:
    page = parse_query(request, PageQuery)
    async with request.app.state.engine.begin() as conn:
        reseller = await reseller_of(conn, request)
        found = await purchase_queries.history(conn, reseller.id, page.limit, page.before_id)
    return JSONResponse([purchase_view(p) for p in found])
