"""Staff operations on the reseller side: saldo corrections, resolving purchases, switching things off."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints
from sqlalchemy import select, update
from starlette.requests import Request
from starlette.responses import Response

from core.security import MAX_JTI_LENGTH
from db import ledger, staff_tokens
from db import purchases as purchase_queries
from db.tables import produk, reseller
from domain import purchases
from domain.ledger import InsufficientSaldo, post_entry
from web.envelope import ok
from web.errors import ApiError
from web.kiosk_schemas import Body
from web.requests import parse_body
from web.staff import require_admin
from web.views import purchase_view
from workers.unit_of_work import unit_of_work

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=255)]


class Adjustment(Body):
    jumlah: Annotated[int, Field(strict=True, ge=-1_000_000_000_000, le=1_000_000_000_000)]
    keterangan: Reason


class Resolution(Body):
    status: Literal["sukses", "gagal"]
    sn: Annotated[str, StringConstraints(max_length=100)] | None = None
    keterangan: Reason


class ResellerChange(Body):
    aktif: bool | None = None
    require_signature: bool | None = None


class Revocation(Body):
    jti: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_JTI_LENGTH)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = None


class ProductChange(Body):
    aktif: bool | None = None
    harga: Annotated[int, Field(strict=True, gt=0, le=100_000_000)] | None = None


def _id(request: Request) -> int:
    value = request.path_params["id"]
    if not 1 <= value < 2**63:
        raise ApiError(404, "not_found", "not found")
    return value


async def adjust_saldo(request: Request) -> Response:
    """A correction of a saldo, as a ledger entry (jenis koreksi) with the reason and who made it."""
    staff = require_admin(request)
    body = await parse_body(request, Adjustment)
    if body.jumlah == 0:
        raise ApiError(422, "invalid_input", "jumlah must not be 0")
    reseller_id = _id(request)
    try:
        async with request.app.state.engine.begin() as conn:
            if (await conn.execute(select(reseller.c.id).where(reseller.c.id == reseller_id))).first() is None:
                raise ApiError(404, "not_found", "reseller not found")
            saldo = await post_entry(conn, reseller_id, "koreksi", body.jumlah, keterangan=f"{body.keterangan} (oleh {staff.sub})"[:255])
            [entry] = await ledger.history(conn, reseller_id, 1, None)
    except InsufficientSaldo:
        raise ApiError(409, "insufficient_saldo", "the debit is larger than the saldo") from None
    return ok({"saldo": saldo, "entry_id": entry.id, "jumlah": entry.jumlah, "keterangan": entry.keterangan}, "Saldo corrected", status=201)


async def resolve_purchase(request: Request) -> Response:
    """End a purchase the provider never decided (after checking with the provider by hand)."""
    staff = require_admin(request)
    body = await parse_body(request, Resolution)
    state = request.app.state
    async with unit_of_work(state.engine.begin(), state.pusher) as conn:
        purchase = await purchase_queries.by_id(conn, _id(request))
        if purchase is None:
            raise ApiError(404, "not_found", "purchase not found")
        message = f"diselesaikan operator {staff.sub}: {body.keterangan}"
        ended = await purchases.settle(
            conn, purchase, sukses=body.status == "sukses", sn=body.sn, message=message, rc="OPS", lease_seconds=state.settings.outbox_lease_seconds
        )
        if not ended:
            raise ApiError(409, "already_final", f"purchase already {purchase.status}")
        resolved = await purchase_queries.by_id(conn, purchase.id)
    assert resolved is not None
    return ok(purchase_view(resolved), "Purchase resolved")


async def revoke_staff_token(request: Request) -> Response:
    """Revoke a staff token by its jti (a lost kiosk's, say): 401 from then on, in every process
    within TOKEN_REVOCATION_REFRESH_SECONDS, in this one at once. Revoking it again changes nothing (revoked_now false)."""
    staff = require_admin(request)
    body = await parse_body(request, Revocation)
    async with request.app.state.engine.begin() as conn:
        revoked = await staff_tokens.revoke(conn, body.jti, staff.sub[:100], body.reason, None)
    request.app.state.revocations.add(body.jti)
    return ok({"jti": body.jti, "revoked_now": revoked}, "Token revoked" if revoked else "Token was already revoked")


async def change_reseller(request: Request) -> Response:
    require_admin(request)
    body = await parse_body(request, ResellerChange)
    return await _change(request, reseller, reseller.c.id, body.model_dump(exclude_none=True), "reseller")


async def change_product(request: Request) -> Response:
    require_admin(request)
    body = await parse_body(request, ProductChange)
    return await _change(request, produk, produk.c.id, body.model_dump(exclude_none=True), "product")


async def _change(request: Request, table, key, values: dict, name: str) -> Response:
    if not values:
        raise ApiError(422, "invalid_input", "nothing to change")
    async with request.app.state.engine.begin() as conn:
        changed = await conn.execute(update(table).where(key == _id(request)).values(**values))
    if changed.rowcount != 1:
        raise ApiError(404, "not_found", f"{name} not found")
    return ok({"id": request.path_params["id"], **values}, f"{name.capitalize()} updated")
