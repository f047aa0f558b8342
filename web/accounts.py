"""Reseller accounts: register, rotate keys, saldo, ledger, callback URL."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request

from core.outbound import refused_callback_url
from core.security import ADMIN_LEVEL, hash_api_key, new_api_key, new_private_key
from db import callbacks as callback_queries
from db import ledger, resellers
from db.errors import is_duplicate_key
from domain.ledger import post_entry
from web import abuse
from web.auth import reseller_of, staff_of
from web.errors import ApiError
from web.json_response import JSONResponse
from web.requests import parse_body, parse_query
from web.schemas import CallbackRequest, PageQuery, RegisterRequest
from web.views import delivery_view, ledger_view

REGISTER_INFO = "API Key dan Private Key simpan baik-baik, hanya tampil saat register."
ROTATE_INFO = "API Key dan Private Key telah diperbarui. Simpan baik-baik."


def _new_keys(request: Request) -> tuple[str, str, bytes, bytes]:
    api_key, private_key = new_api_key(), new_private_key()
    return api_key, private_key, hash_api_key(api_key), request.app.state.key_box.seal(private_key)


def _check_callback_url(request: Request, url: str | None) -> None:
    """422 for a callback URL that points into a private network (core.outbound)."""
    allow = request.app.state.settings.callback_allow_private_networks
    refused = None if url is None else refused_callback_url(url, allow_private_networks=allow)
    if refused is not None:
        raise ApiError(422, "invalid_input", f"callback_url: {refused}")


def _admin_level_or_none(request: Request) -> int | None:
    """The role level of a valid staff token on the request, None without one: only to exempt an
    admin's registrations from the per-address limit (a bad token is refused below, when it matters)."""
    try:
        staff = staff_of(request)
    except ApiError:
        return None
    return None if staff is None else staff.role_level


async def register(request: Request) -> JSONResponse:
    abuse.registration_limited(request, _admin_level_or_none(request))
    body = await parse_body(request, RegisterRequest)
    _check_callback_url(request, body.callback_url)
    if body.saldo > 0:
        staff = staff_of(request)
        if staff is None or staff.role_level < ADMIN_LEVEL:
            raise ApiError(403, "admin_required", "an opening saldo needs an admin token; money enters by deposit")
    api_key, private_key, key_hash, sealed = _new_keys(request)
    try:
        async with request.app.state.engine.begin() as conn:
            reseller_id = await resellers.insert(
                conn,
                nama=body.nama,
                email=body.email,
                hp=body.hp,
                callback_url=body.callback_url,
                api_key_hash=key_hash,
                private_key_enc=sealed,
            )
            if body.saldo > 0:
                await post_entry(conn, reseller_id, "saldo_awal", body.saldo, keterangan="saldo awal saat registrasi")
    except IntegrityError as error:
        if is_duplicate_key(error):
            raise ApiError(409, "email_taken", "User/email sudah terdaftar") from None
        raise
    return JSONResponse({"id": reseller_id, "api_key": api_key, "private_key": private_key, "info": REGISTER_INFO})


async def generate_key(request: Request) -> JSONResponse:
    api_key, private_key, key_hash, sealed = _new_keys(request)
    async with request.app.state.engine.begin() as conn:
        reseller = await reseller_of(conn, request)
        await resellers.replace_keys(conn, reseller.id, key_hash, sealed)
    return JSONResponse({"api_key": api_key, "private_key": private_key, "info": ROTATE_INFO})


async def saldo(request: Request) -> JSONResponse:
    async with request.app.state.engine.begin() as conn:
        reseller = await reseller_of(conn, request)
    return JSONResponse({"saldo": reseller.saldo})


async def mutasi(request: Request) -> JSONResponse:
    page = parse_query(request, PageQuery)
    async with request.app.state.engine.begin() as conn:
        reseller = await reseller_of(conn, request)
        entries = await ledger.history(conn, reseller.id, page.limit, page.before_id)
    return JSONResponse([ledger_view(e) for e in entries])


async def set_callback(request: Request) -> JSONResponse:
    body = await parse_body(request, CallbackRequest)
    _check_callback_url(request, body.callback_url)
    async with request.app.state.engine.begin() as conn:
        reseller = await reseller_of(conn, request)
        await resellers.set_callback_url(conn, reseller.id, body.callback_url)
    return JSONResponse({"callback_url": body.callback_url})


async def callback_deliveries(request: Request) -> JSONResponse:
    """The caller's callback deliveries, newest first, each with every attempt."""
    page = parse_query(request, PageQuery)
    async with request.app.state.engine.begin() as conn:
        reseller = await reseller_of(conn, request)
        rows = await callback_queries.page(conn, reseller_id=reseller.id, status=None, limit=page.limit, before_id=page.before_id)
    return JSONResponse([delivery_view(r) for r in rows])
