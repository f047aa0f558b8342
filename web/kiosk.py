"""Kiosk QRIS transactions and their photos (/api/v1/transactions...)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from db import photos as photo_queries
from db import qris as qris_queries
from db import raw
from domain import photos, qris
from web.abuse import public_lookup_limited
from web.envelope import ok, page, public
from web.errors import ApiError
from web.kiosk_schemas import CountQuery, CreateTransaction, PhotoRequest, TransactionListQuery, status_list
from web.requests import parse_body, parse_query
from web.staff import location_scope, require_location, require_staff
from workers import qr_ready
from workers.unit_of_work import unit_of_work

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")

_VIEW_FIELDS = (
    "tr_id", "tr_external_id", "tr_location_id", "tr_price_id", "tr_amount", "tr_status", "tr_qris_string",
    "tr_qris_url", "tr_expired_at", "tr_paid_at", "tr_created_at",
)  # fmt: skip


def transaction_view(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in _VIEW_FIELDS}


async def _transaction(request: Request) -> dict[str, Any]:
    external_id = request.path_params["external_id"]
    if not EXTERNAL_ID.match(external_id):
        raise ApiError(404, "not_found", "transaction not found")
    async with raw.autocommitting(request.app.state.autocommit_pool) as conn:  # polled by waiting kiosks: one round trip
        found = await qris_queries.by_external_id(conn, external_id)
    if found is None or found["tr_location_id"] is None:  # a reseller's deposit is not a kiosk's business
        raise ApiError(404, "not_found", "transaction not found")
    return found


async def create(request: Request) -> Response:
    claims = require_staff(request)
    body = await parse_body(request, CreateTransaction)
    require_location(claims, body.location_id)
    state = request.app.state
    settings = state.settings
    try:
        # Committed, and its create-QR job pushed, with the creates of the same moment (web.intake).
        created = await qris.create(state.qris_intake, location_id=body.location_id, price_id=body.price_id, now=dt.datetime.now(dt.UTC))
    except qris.LocationNotFound:
        raise ApiError(404, "unknown_location", f"location {body.location_id} not found") from None
    except qris.PriceNotFound:
        raise ApiError(404, "unknown_price", f"price {body.price_id} not found") from None
    except qris.PriceNotForLocation:
        raise ApiError(422, "price_not_for_location", f"price {body.price_id} is not valid at location {body.location_id}") from None
    except qris.QuotaExhausted:
        raise ApiError(409, "quota_exhausted", f"price {body.price_id} has no quota left") from None
    row = created.row
    if await qr_ready.wait(state.redis, created.external_id, settings.qris_create_wait_ms) is not None or row is None:
        async with raw.autocommitting(state.autocommit_pool) as conn:  # with its QR now
            row = await qris_queries.by_id(conn, created.tr_id) or row
    assert row is not None
    return ok(transaction_view(row), "Transaction created successfully", status=201)


async def by_external_id(request: Request) -> Response:
    public_lookup_limited(request)
    row = await _transaction(request)
    return public(request, {"success": True, "message": "Transaction retrieved successfully", "data": transaction_view(row)})


async def listing(request: Request) -> Response:
    scope = location_scope(require_staff(request))
    query = parse_query(request, TransactionListQuery)
    async with request.app.state.engine.begin() as conn:
        rows, total = await qris_queries.page(conn, query.search, status_list(query.status), query.skip, query.limit, location_id=scope)
    data = [{**transaction_view(r), "location": {"ml_id": r["tr_location_id"], "ml_name": r["ml_name"]}} for r in rows]
    return page(data, "Transactions retrieved successfully", total=total, skip=query.skip, limit=query.limit)


async def count(request: Request) -> Response:
    scope = location_scope(require_staff(request))
    query = parse_query(request, CountQuery)
    async with request.app.state.engine.begin() as conn:
        total = await qris_queries.count(conn, status_list(query.status), location_id=scope)
    return ok({"count": total}, "Transaction count retrieved successfully")


async def add_photos(request: Request) -> Response:
    claims = require_staff(request)
    body = await parse_body(request, PhotoRequest)
    row = await _transaction(request)
    require_location(claims, row["tr_location_id"])  # before its state is told or changed
    if row["tr_status"] != "COMPLETED":
        raise ApiError(409, "not_paid", f"transaction is {row['tr_status']}; photos are for paid sessions")
    state = request.app.state
    try:
        async with unit_of_work(state.engine.begin(), state.pusher) as conn:
            await photos.request_delivery(conn, row["tr_id"], body.email, [p.url for p in body.photos], state.settings.outbox_lease_seconds)
    except photos.AlreadyRequested:
        raise ApiError(409, "photos_exist", "photos for this transaction were already sent") from None
    return ok({"external_id": row["tr_external_id"], "photo_count": len(body.photos)}, "Photos accepted; the e-mail is on its way", status=202)


async def get_photos(request: Request) -> Response:
    public_lookup_limited(request)
    row = await _transaction(request)
    async with request.app.state.engine.begin() as conn:
        delivery = await photo_queries.of_transaction(conn, row["tr_id"])
    if delivery is None:
        raise ApiError(404, "no_photos", "no photos uploaded for this transaction")
    if delivery["pd_purged_at"] is not None:
        raise ApiError(410, "photos_expired", f"photos expired on {delivery['pd_expires_at']:%Y-%m-%d}")
    return public(
        request,
        {
            "external_id": row["tr_external_id"],
            "photo_count": delivery["pd_photo_count"],
            "email_sent_at": delivery["pd_email_sent_at"],
            "expiry_date": delivery["pd_expires_at"],
            "photos": delivery["pd_photos"],
        },
    )

