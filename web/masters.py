"""Master data of the kiosks (locations, prices) and the operators' view of webhook events."""

from __future__ import annotations

from typing import Any

from asyncmy.constants import ER
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from db import callbacks as callback_queries
from db import locations, prices, webhook_events
from db.errors import is_duplicate_key
from web.envelope import ok, page
from web.errors import ApiError
from web.kiosk_schemas import DeliveryQuery, EventQuery, ListQuery, LocationChange, LocationIn, PriceChange, PriceIn
from web.requests import parse_body, parse_query
from web.staff import require_admin, require_staff
from web.views import delivery_view

CHECK_VIOLATED = 4025  # MariaDB: a CHECK constraint refused the row


def _id(request: Request) -> int:
    value = request.path_params["id"]
    if not 1 <= value < 2**31:
        raise ApiError(404, "not_found", "not found")
    return value


def _database_refusal(error: DBAPIError, what: str) -> ApiError:
    """The database's own constraints turned into the client's 4xx."""
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    if isinstance(error, IntegrityError) and is_duplicate_key(error):
        return ApiError(409, "duplicate", f"{what} with this name already exists")
    if code in (ER.ROW_IS_REFERENCED_2, ER.ROW_IS_REFERENCED):
        return ApiError(409, "in_use", f"{what} is referenced by transactions")
    if code in (ER.NO_REFERENCED_ROW_2, ER.NO_REFERENCED_ROW):
        return ApiError(422, "unknown_location", "mp_location_id names no location")
    if code == CHECK_VIOLATED:
        return ApiError(422, "constraint", "mp_quota cannot be below the slots in use")
    raise error


async def list_locations(request: Request) -> Response:
    return await _list(request, locations, "Locations")


async def get_location(request: Request) -> Response:
    return await _get(request, locations, "location")


async def create_location(request: Request) -> Response:
    require_admin(request)
    body = await parse_body(request, LocationIn)
    return await _create(request, locations, body.model_dump(), "location")


async def update_location(request: Request) -> Response:
    require_admin(request)
    body = await parse_body(request, LocationChange)
    return await _update(request, locations, body.model_dump(exclude_unset=True), "location", "a location")


async def delete_location(request: Request) -> Response:
    require_admin(request)
    return await _delete(request, locations, "location")


async def list_prices(request: Request) -> Response:
    return await _list(request, prices, "Prices")


async def get_price(request: Request) -> Response:
    return await _get(request, prices, "price")


async def create_price(request: Request) -> Response:
    require_admin(request)
    body = await parse_body(request, PriceIn)
    return await _create(request, prices, body.model_dump(), "price")


async def update_price(request: Request) -> Response:
    require_admin(request)
    body = await parse_body(request, PriceChange)
    return await _update(request, prices, body.model_dump(exclude_unset=True), "price", "a price")


async def delete_price(request: Request) -> Response:
    require_admin(request)
    return await _delete(request, prices, "price")


async def _list(request: Request, table: Any, plural: str) -> Response:
    require_staff(request)
    query = parse_query(request, ListQuery)
    async with request.app.state.engine.begin() as conn:
        rows, total = await table.page(conn, query.search, query.skip, query.limit)
    return page(rows, f"{plural} retrieved successfully", total=total, skip=query.skip, limit=query.limit)


async def _get(request: Request, table: Any, name: str) -> Response:
    require_staff(request)
    async with request.app.state.engine.begin() as conn:
        found = await table.by_id(conn, _id(request))
    if found is None:
        raise ApiError(404, "not_found", f"{name} not found")
    return ok(found, f"{name.capitalize()} retrieved successfully")


async def _create(request: Request, table: Any, values: dict[str, Any], name: str) -> Response:
    try:
        async with request.app.state.engine.begin() as conn:
            created = await table.by_id(conn, await table.create(conn, values))
    except DBAPIError as error:
        raise _database_refusal(error, f"a {name}") from None
    return ok(created, f"{name.capitalize()} created successfully", status=201)


async def _update(request: Request, table: Any, values: dict[str, Any], name: str, what: str) -> Response:
    row_id = _id(request)
    try:
        async with request.app.state.engine.begin() as conn:
            if await table.by_id(conn, row_id) is None:
                raise ApiError(404, "not_found", f"{name} not found")
            if values:
                await table.change(conn, row_id, values)
            updated = await table.by_id(conn, row_id)
    except DBAPIError as error:
        raise _database_refusal(error, what) from None
    return ok(updated, f"{name.capitalize()} updated successfully")


async def _delete(request: Request, table: Any, name: str) -> Response:
    try:
        async with request.app.state.engine.begin() as conn:
            removed = await table.remove(conn, _id(request))
    except DBAPIError as error:
        raise _database_refusal(error, f"this {name}") from None
    if not removed:
        raise ApiError(404, "not_found", f"{name} not found")
    return ok(None, f"{name.capitalize()} deleted successfully")


async def list_webhook_events(request: Request) -> Response:
    require_admin(request)
    query = parse_query(request, EventQuery)
    async with request.app.state.engine.begin() as conn:
        rows, total = await webhook_events.page(conn, query.outcome, query.source, query.skip, query.limit)
    return page(rows, "Webhook events retrieved successfully", total=total, skip=query.skip, limit=query.limit)


async def list_callback_deliveries(request: Request) -> Response:
    """Operators: every reseller's callback deliveries, e.g. status=failed."""
    require_admin(request)
    query = parse_query(request, DeliveryQuery)
    async with request.app.state.engine.begin() as conn:
        rows = await callback_queries.page(conn, reseller_id=None, status=query.status, limit=query.limit, before_id=query.before_id)
    return ok([{**delivery_view(r), "reseller_id": r["reseller_id"]} for r in rows], "Callback deliveries retrieved successfully")
