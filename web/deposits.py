"""Reseller deposits by QRIS: POST /deposit, GET /deposit/{id}, GET /deposit."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from db import qris as qris_queries
from domain import qris
from web import abuse
from web.auth import reseller_of
from web.errors import ApiError
from web.json_response import JSONResponse
from web.kiosk_schemas import Body
from web.requests import parse_body, parse_query
from web.schemas import PageQuery
from workers import qr_ready
from workers.unit_of_work import unit_of_work


class DepositRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"jumlah": 100000}]})

    jumlah: Annotated[int, Field(strict=True, ge=10_000, le=50_000_000)]


def deposit_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["tr_id"],
        "external_id": row["tr_external_id"],
        "jumlah": row["tr_amount"],
        "status": row["tr_status"],
        "qris_string": row["tr_qris_string"],
        "gateway": row["tr_gateway"],
        "payment_url": row["tr_qris_url"],
        "expired_at": row["tr_expired_at"],
        "paid_at": row["tr_paid_at"],
        "created_at": row["tr_created_at"],
    }


async def create(request: Request) -> Response:
    """A QRIS top-up; the saldo is credited once, when the gateway reports the payment."""
    body = await parse_body(request, DepositRequest)
    state = request.app.state
    async with unit_of_work(state.engine.begin(), state.pusher) as conn:
        reseller = await reseller_of(conn, request)
        abuse.deposit_limited(request, reseller.id)  # before the row: a refused deposit leaves nothing
        created = await qris.create_deposit(
            conn,
            reseller_id=reseller.id,
            amount=body.jumlah,
            gateway=state.settings.deposit_gateway,
            ttl_seconds=state.settings.qris_ttl_seconds,
            lease_seconds=state.settings.outbox_lease_seconds,
            now=dt.datetime.now(dt.UTC),
        )
    await qr_ready.wait(state.redis, created.external_id, state.settings.qris_create_wait_ms)
    async with state.engine.begin() as conn:
        row = await qris_queries.by_id(conn, created.tr_id)
    assert row is not None
    return JSONResponse(deposit_view(row), status_code=201)


async def get(request: Request) -> Response:
    deposit_id = request.path_params["deposit_id"]
    async with request.app.state.engine.begin() as conn:
        reseller = await reseller_of(conn, request)
        row = await qris_queries.by_id(conn, deposit_id) if deposit_id < 2**63 else None
    if row is None or row["tr_reseller_id"] != reseller.id:
        raise ApiError(404, "not_found", "deposit tidak ditemukan")
    return JSONResponse(deposit_view(row))


async def listing(request: Request) -> Response:
    page = parse_query(request, PageQuery)
    async with request.app.state.engine.begin() as conn:
        reseller = await reseller_of(conn, request)
        rows = await qris_queries.deposits_of(conn, reseller.id, page.limit, page.before_id)
    return JSONResponse([deposit_view(r) for r in rows])
