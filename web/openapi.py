"""GET /openapi.json: an OpenAPI 3.1 description of every route, built from the models that validate.

Request bodies and query strings are described by the same pydantic models that parse_body and
parse_query validate with (web/schemas.py, web/kiosk_schemas.py), success bodies by web/responses.py,
so the document cannot drift from validation. OPERATIONS says what the models cannot: summaries,
tags, who may call, and which statuses each route answers; tests/test_fuzz.py checks it covers ROUTES.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette import convertors
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from web import deposits, docs, kiosk, responses, staff_ops
from web import kiosk_schemas as ks
from web import schemas as rs
from web.openapi_parts import (
    DIGIFLAZZ_EVENT,
    HEADERS,
    MIDTRANS_EVENT,
    PAYSTACK_EVENT,
    SECURITY_SCHEMES,
    XENDIT_EVENT,
    callback_operation,
)

REF = "#/components/schemas/{model}"

OPENAPI_DOCUMENT: dict[str, Any] = {"type": "object", "required": ["openapi", "info", "paths", "components"]}

BODY = (400, 413, 422)  # empty or malformed JSON, over 64 KiB, invalid fields
# A reseller key is refused (401) or over its per-minute allowance (429, web/rate_limit.py); a
# staff token is refused (401, 403), or cannot be checked before the revocations are loaded (503).
RESELLER, STAFF = (401, 429), (401, 403, 503)


@dataclass(frozen=True)
class Operation:
    """What one (method, path) of ROUTES answers.

    summary, tag: for the reader. security: names in SECURITY_SCHEMES, one of which is needed;
    optional_security: the credential is only needed for some bodies. body: the pydantic model
    that validates the JSON body, or a raw JSON Schema for a webhook. query: the model whose fields
    are the query parameters. status, answer: the success status and its body (a model, a JSON
    Schema, or the media types of a string body). errors: the 4xx/5xx statuses it may answer.
    path: description and JSON Schema overrides per path parameter (types come from the convertor).
    database: the route reads or writes MariaDB, so it answers 503 while the database is down.
    """

    summary: str
    tag: str
    answer: type[BaseModel] | dict[str, Any] | str | tuple[str, ...]
    status: int = 200
    security: tuple[str, ...] = ()
    optional_security: bool = False
    body: type[BaseModel] | dict[str, Any] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    path: dict[str, dict[str, Any]] = field(default_factory=dict)
    database: bool = True


_EXTERNAL_ID = {"external_id": {"description": "the transaction's external id", "pattern": kiosk.EXTERNAL_ID.pattern}}
_ROW_ID = {"id": {"description": "the row's id"}}
_E = responses.Envelope
_P = responses.Page

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/health"): Operation("Liveness", "ops", responses.Health, database=False),
    ("GET", "/ready"): Operation("Readiness: MariaDB and Redis answer", "ops", responses.Ready, errors=(503,), database=False),
    ("GET", "/metrics"): Operation("Prometheus metrics of the web processes", "ops", "text/plain", database=False),
    ("GET", "/openapi.json"): Operation("This document", "ops", OPENAPI_DOCUMENT, database=False),
    ("GET", "/docs"): Operation("This document in Swagger UI", "ops", "text/html", database=False),
    ("GET", "/docs/assets/{name}"): Operation(
        "A file of the Swagger UI page", "ops", tuple(sorted({media_type for _, media_type in docs.ASSETS.values()})),
        errors=(404,), database=False, path={"name": {"description": "a file the page loads", "enum": sorted(docs.ASSETS)}},
    ),
    ("POST", "/register"): Operation(
        "Register a reseller; an opening saldo needs an admin staff token", "reseller", responses.Registered,
        security=("staffToken",), optional_security=True, body=rs.RegisterRequest, errors=(*BODY, 401, 403, 409, 429, 503),
    ),
    ("POST", "/generate-key"): Operation("Rotate the API and private keys", "reseller", responses.Keys, security=("resellerKey",), errors=RESELLER),
    ("GET", "/saldo"): Operation("The reseller's saldo", "reseller", responses.Saldo, security=("resellerKey",), errors=RESELLER),
    ("GET", "/mutasi"): Operation(
        "Ledger entries, newest first", "reseller", responses.Ledger, security=("resellerKey",), query=rs.PageQuery, errors=(*RESELLER, 422)
    ),
    ("PUT", "/callback"): Operation(
        "Set or clear the callback URL", "reseller", responses.CallbackSet, security=("resellerKey",), body=rs.CallbackRequest, errors=(*BODY, *RESELLER)
    ),
    ("GET", "/callback/deliveries"): Operation(
        "The reseller's callback deliveries and their attempts, newest first", "reseller", responses.CallbackDeliveries,
        security=("resellerKey",), query=rs.PageQuery, errors=(*RESELLER, 422),
    ),
    ("GET", "/produk"): Operation("Active products", "reseller", responses.Products, security=("resellerKey",), errors=RESELLER),
    ("POST", "/beli"): Operation(
        "Buy a product; the same ref_id again replays the first answer", "reseller", responses.Accepted,
        security=("resellerKey",), body=rs.BeliRequest, errors=(*BODY, *RESELLER, 402, 404, 409),
    ),
    ("GET", "/status"): Operation(
        "A purchase by the reseller's ref_id", "reseller", responses.Purchase, security=("resellerKey",), query=rs.RefIdQuery, errors=(*RESELLER, 404, 422)
    ),
    ("GET", "/status/{purchase_id:int}"): Operation(
        "A purchase by id", "reseller", responses.Purchase, security=("resellerKey",), errors=(*RESELLER, 404),
        path={"purchase_id": {"description": "the id /beli answered"}},
    ),
    ("GET", "/riwayat"): Operation(
        "Purchases, newest first", "reseller", responses.Purchases, security=("resellerKey",), query=rs.PageQuery, errors=(*RESELLER, 422)
    ),
    ("POST", "/deposit"): Operation(
        "Top up the saldo by QRIS; waits briefly for the QR string", "reseller", responses.Deposit, status=201,
        security=("resellerKey",), body=deposits.DepositRequest, errors=(*BODY, *RESELLER),
    ),
    ("GET", "/deposit"): Operation(
        "Deposits, newest first", "reseller", responses.Deposits, security=("resellerKey",), query=rs.PageQuery, errors=(*RESELLER, 422)
    ),
    ("GET", "/deposit/{deposit_id:int}"): Operation(
        "A deposit by id", "reseller", responses.Deposit, security=("resellerKey",), errors=(*RESELLER, 404),
        path={"deposit_id": {"description": "the id POST /deposit answered"}},
    ),
    ("POST", "/webhooks/digiflazz"): Operation(
        "Digiflazz transaction update (stored once, applied by a worker)", "webhooks", responses.WebhookAck,
        security=("digiflazzSignature",), body=DIGIFLAZZ_EVENT, errors=(400, 401, 403, 413),
    ),
    ("POST", "/api/v1/webhooks/xendit"): Operation(
        "Xendit QR payment (stored once, applied by a worker)", "webhooks", responses.WebhookAck,
        security=("xenditCallbackToken",), body=XENDIT_EVENT, errors=(400, 401, 403, 413),
    ),
    ("POST", "/webhooks/midtrans"): Operation(
        "Midtrans payment notification for a deposit (stored once, applied by a worker)", "webhooks", responses.WebhookAck,
        body=MIDTRANS_EVENT, errors=(400, 401, 403, 413),
    ),
    ("POST", "/webhooks/paystack"): Operation(
        "Paystack event for a deposit (stored once, applied by a worker)", "webhooks", responses.WebhookAck,
        security=("paystackSignature",), body=PAYSTACK_EVENT, errors=(400, 401, 403, 413),
    ),
    ("POST", "/api/v1/transactions"): Operation(
        "Create a QRIS transaction; waits briefly for its QR string", "kiosk", _E[responses.Transaction], status=201,
        security=("staffToken",), body=ks.CreateTransaction, errors=(*BODY, *STAFF, 404, 409),
    ),
    ("GET", "/api/v1/transactions"): Operation(
        "Transactions, newest first", "kiosk", _P[responses.ListedTransaction],
        security=("staffToken",), query=ks.TransactionListQuery, errors=(*STAFF, 422),
    ),
    ("GET", "/api/v1/transactions/count"): Operation(
        "Count transactions", "kiosk", _E[responses.Count], security=("staffToken",), query=ks.CountQuery, errors=(*STAFF, 422)
    ),
    ("GET", "/api/v1/transactions/external/{external_id}"): Operation(
        "A transaction by external id (public)", "kiosk", responses.TransactionAnswer, errors=(404, 429), path=_EXTERNAL_ID
    ),
    ("POST", "/api/v1/transactions/{external_id}/photos"): Operation(
        "Send a paid session's photos by e-mail", "kiosk", _E[responses.PhotosAccepted], status=202,
        security=("staffToken",), body=ks.PhotoRequest, errors=(*BODY, *STAFF, 404, 409), path=_EXTERNAL_ID,
    ),
    ("GET", "/api/v1/transactions/{external_id}/photos"): Operation(
        "A session's photo gallery (public)", "kiosk", responses.PhotosAnswer, errors=(404, 410, 429), path=_EXTERNAL_ID
    ),
    ("GET", "/api/v1/locations"): Operation(
        "Locations", "masters", _P[responses.Location], security=("staffToken",), query=ks.ListQuery, errors=(*STAFF, 422)
    ),
    ("POST", "/api/v1/locations"): Operation(
        "Create a location (admin)", "masters", _E[responses.Location], status=201,
        security=("staffToken",), body=ks.LocationIn, errors=(*BODY, *STAFF, 409),
    ),
    ("GET", "/api/v1/locations/{id:int}"): Operation(
        "A location", "masters", _E[responses.Location], security=("staffToken",), errors=(*STAFF, 404), path=_ROW_ID
    ),
    ("PUT", "/api/v1/locations/{id:int}"): Operation(
        "Change a location (admin)", "masters", _E[responses.Location],
        security=("staffToken",), body=ks.LocationChange, errors=(*BODY, *STAFF, 404, 409), path=_ROW_ID,
    ),
    ("DELETE", "/api/v1/locations/{id:int}"): Operation(
        "Delete a location and its prices (admin); 409 while transactions name it", "masters", _E[None],
        security=("staffToken",), errors=(*STAFF, 404, 409), path=_ROW_ID,
    ),
    ("GET", "/api/v1/prices"): Operation(
        "Prices", "masters", _P[responses.Price], security=("staffToken",), query=ks.ListQuery, errors=(*STAFF, 422)
    ),
    ("POST", "/api/v1/prices"): Operation(
        "Create a price (admin)", "masters", _E[responses.Price], status=201, security=("staffToken",), body=ks.PriceIn, errors=(*BODY, *STAFF)
    ),
    ("GET", "/api/v1/prices/{id:int}"): Operation(
        "A price", "masters", _E[responses.Price], security=("staffToken",), errors=(*STAFF, 404), path=_ROW_ID
    ),
    ("PUT", "/api/v1/prices/{id:int}"): Operation(
        "Change a price (admin); mp_quota cannot go below the slots in use", "masters", _E[responses.Price],
        security=("staffToken",), body=ks.PriceChange, errors=(*BODY, *STAFF, 404), path=_ROW_ID,
    ),
    ("DELETE", "/api/v1/prices/{id:int}"): Operation(
        "Delete a price (admin)", "masters", _E[None], security=("staffToken",), errors=(*STAFF, 404), path=_ROW_ID
    ),
    ("GET", "/api/v1/webhook-events"): Operation(
        "Stored webhook events, newest first (admin)", "operators", _P[responses.WebhookEvent],
        security=("staffToken",), query=ks.EventQuery, errors=(*STAFF, 422),
    ),
    ("GET", "/api/v1/callback-deliveries"): Operation(
        "Every reseller's callback deliveries, newest first (admin)", "operators", _E[list[responses.OperatorDelivery]],
        security=("staffToken",), query=ks.DeliveryQuery, errors=(*STAFF, 422),
    ),
    ("PUT", "/api/v1/resellers/{id:int}"): Operation(
        "Switch a reseller off or on, or require signed requests (admin)", "operators", _E[responses.ResellerChanged],
        security=("staffToken",), body=staff_ops.ResellerChange, errors=(*BODY, *STAFF, 404), path=_ROW_ID,
    ),
    ("POST", "/api/v1/resellers/{id:int}/adjustments"): Operation(
        "Correct a saldo by a ledger entry (koreksi) with a reason (admin)", "operators", _E[responses.SaldoCorrected], status=201,
        security=("staffToken",), body=staff_ops.Adjustment, errors=(*BODY, *STAFF, 404, 409), path=_ROW_ID,
    ),
    ("PUT", "/api/v1/products/{id:int}"): Operation(
        "Switch a product off or on, or change its price (admin)", "operators", _E[responses.ProductChanged],
        security=("staffToken",), body=staff_ops.ProductChange, errors=(*BODY, *STAFF, 404), path=_ROW_ID,
    ),
    ("POST", "/api/v1/staff-tokens/revocations"): Operation(
        "Revoke a staff token by its jti (admin)", "operators", _E[responses.TokenRevoked],
        security=("staffToken",), body=staff_ops.Revocation, errors=(*BODY, *STAFF),
    ),
    ("POST", "/api/v1/purchases/{id:int}/resolve"): Operation(
        "End a purchase the provider never decided (admin)", "operators", _E[responses.Purchase],
        security=("staffToken",), body=staff_ops.Resolution, errors=(*BODY, *STAFF, 404, 409), path=_ROW_ID,
    ),
}  # fmt: skip

_CONVERTOR_SCHEMAS: dict[type[convertors.Convertor], dict[str, Any]] = {
    convertors.IntegerConvertor: {"type": "integer", "minimum": 0},  # its regex is [0-9]+
    convertors.FloatConvertor: {"type": "number", "minimum": 0},
    convertors.UUIDConvertor: {"type": "string", "format": "uuid"},
    convertors.PathConvertor: {"type": "string"},
    convertors.StringConvertor: {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}


def operations_of(routes: list[BaseRoute]) -> list[tuple[str, Route]]:
    """Every (method, route) the routing table serves; HEAD is Starlette's automatic twin of GET."""
    return [(method, r) for r in routes if isinstance(r, Route) for method in sorted(r.methods or ()) if method != "HEAD"]


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [responses.Error, responses.KioskError]
    for op in OPERATIONS.values():
        for candidate in (op.body, op.query, op.answer):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel) and candidate not in found:
                found.append(candidate)
    return found


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query field's schema without its null branch: an absent parameter is the None."""
    schema = {k: v for k, v in schema.items() if k != "title" and not (k == "default" and v is None)}
    branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema = {**branches[0], **schema}
    elif branches:
        schema["anyOf"] = branches
    return schema


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _answer(status: int, content: dict[str, Any]) -> dict[str, Any]:
    headers = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
    if status in (429, 503):
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    return {"description": HTTPStatus(status).phrase, "headers": headers, "content": content}


def _operation(
    method: str, route: Route, op: Operation, refs: dict[type[BaseModel], dict[str, Any]], defs: dict[str, Any]
) -> dict[str, Any]:
    def schema_of(thing: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
        return refs[thing] if isinstance(thing, type) else thing

    parameters: list[dict[str, Any]] = []
    for name, convertor in route.param_convertors.items():
        extra = dict(op.path.get(name, {}))
        description = extra.pop("description", None)
        schema = {**_CONVERTOR_SCHEMAS.get(type(convertor), {"type": "string"}), **extra}
        parameter = {"name": name, "in": "path", "required": True, "schema": schema}
        parameters.append({**parameter, "description": description} if description else parameter)
    if op.query is not None:
        model = defs[refs[op.query]["$ref"].rsplit("/", 1)[1]]
        required = set(model.get("required", ()))
        for name, prop in model["properties"].items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": _not_null(prop)})

    error = refs[responses.KioskError if route.path.startswith("/api/v1/") else responses.Error]
    if isinstance(op.answer, (str, tuple)):
        media_types = (op.answer,) if isinstance(op.answer, str) else op.answer
        ok_content: dict[str, Any] = {media_type: {"schema": {"type": "string"}} for media_type in media_types}
    else:
        ok_content = _json(schema_of(op.answer))
    answers: dict[str, Any] = {str(op.status): _answer(op.status, ok_content)}
    for status in sorted(set(op.errors) | ({503} if op.database else set())):
        # /ready's 503 carries the same body as its 200, naming what is down.
        ready = route.path == "/ready"
        answers[str(status)] = _answer(status, ok_content if ready else _json(error))

    document: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', route.path_format).strip('_') or 'root'}",
        "summary": op.summary,
        "tags": [op.tag],
        "responses": answers,
    }
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        document["requestBody"] = {"required": True, "content": _json(schema_of(op.body))}
    if op.security:
        document["security"] = ([{}] if op.optional_security else []) + [{name: []} for name in op.security]
    else:
        document["security"] = []
    return document


def build(routes: list[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document of `routes` (the app's routing table); routes missing from OPERATIONS are left out.

    models_json_schema is Model.model_json_schema for all models in one pass: a model used by
    several operations (or nested in another) becomes one component under one name.
    """
    models: list[type[BaseModel]] = [*_models(), responses.CallbackEvent]
    keyed, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    refs: dict[type[BaseModel], dict[str, Any]] = {model: ref for (model, _), ref in keyed.items() if isinstance(model, type) and issubclass(model, BaseModel)}
    all_defs: dict[str, Any] = defs.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for method, route in operations_of(routes):
        op = OPERATIONS.get((method, route.path))
        if op is not None:
            paths.setdefault(route.path_format, {})[method.lower()] = _operation(method, route, op, refs, all_defs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Loket", "version": "1", "description": "PPOB reseller API, photobox kiosk API and payment webhooks"},
        "paths": paths,
        "webhooks": {"transaksi.selesai": callback_operation(refs[responses.CallbackEvent])},
        "components": {"schemas": all_defs, "securitySchemes": SECURITY_SCHEMES, "headers": HEADERS},
    }


_document: bytes | None = None


async def spec(request: Request) -> Response:
    global _document
    if _document is None:  # once per process: the routes and models do not change while it runs
        _document = json.dumps(build(request.app.routes), separators=(",", ":")).encode()
    return Response(_document, media_type="application/json")
