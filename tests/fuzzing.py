"""Tooling of the fuzz test (tests/test_fuzz.py): credentials, the fuzzer that sends and checks
each case, and what a finding shows."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shlex
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from tests.harness import MariaDB
from web.app import ROUTES
from web.openapi import operations_of

MAX_EXAMPLES = 30
SEED = 20_240_611
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
PPOB_WEBHOOK_SECRET = os.environ.get("PPOB_WEBHOOK_SECRET", "dev-webhook-secret")  # the stack's default
# Webhook routes whose signature covers the raw body: the fuzzer's bodies are signed as the sender would.
BODY_SIGNERS: dict[str, tuple[str, Any]] = {
    "digiflazzSignature": ("X-Hub-Signature", lambda raw: "sha1=" + hmac.new(PPOB_WEBHOOK_SECRET.encode(), raw, hashlib.sha1).hexdigest()),
    "paystackSignature": ("x-paystack-signature", lambda raw: hmac.new(b"sk_test_loket", raw, hashlib.sha512).hexdigest()),
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}

# What only a request (never a worker or the simulator) changes: a rejected request must leave it
# as it was. Left out on purpose: saldo and refunds, mp_used, statuses and callback deliveries
# (workers move them), and webhook events whose reference is a purchase's provider_ref (the
# simulator's own callbacks to /webhooks/digiflazz arrive while the fuzzer runs).
FINGERPRINT_SQL = """
SELECT
  (SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CRC32(CONCAT_WS('|', id, nama, email, hp, callback_url, HEX(api_key_hash), aktif, require_signature))), 0)) FROM reseller) AS reseller,
  (SELECT COALESCE(SUM(CRC32(CONCAT_WS('|', id, harga, aktif))), 0) FROM produk) AS produk,
  (SELECT COUNT(*) FROM purchase) AS purchase,
  (SELECT COUNT(*) FROM ledger_entry WHERE jenis IN ('saldo_awal', 'pembelian', 'koreksi')) AS ledger,
  (SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CRC32(CONCAT_WS('|', ml_id, ml_name, ml_address))), 0)) FROM location) AS location,
  (SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CRC32(CONCAT_WS('|', mp_id, mp_name, mp_amount, mp_location_id, mp_quota))), 0)) FROM price) AS price,
  (SELECT COUNT(*) FROM qris_transaction) AS qris_transaction,
  (SELECT COUNT(*) FROM photo_delivery) AS photo_delivery,
  (SELECT COUNT(*) FROM webhook_event w WHERE NOT EXISTS (SELECT 1 FROM purchase p WHERE p.provider_ref = w.reference)) AS webhook_event
"""

# Operations that switch off what the others need (the buyer's key, the seeded products): they run
# last, and _switches/_restore put products and resellers back for the tests after this one.
SWITCHES = ("/api/v1/resellers/{id}", "/api/v1/products/{id}")
SWITCHES_SQL = {"produk": "SELECT id, aktif, harga FROM produk", "reseller": "SELECT id, aktif, require_signature FROM reseller"}


def openapi_path(path: str) -> str:
    return next(r.path_format for _, r in operations_of(ROUTES) if r.path == path)


@dataclass
class Credentials:
    """Real credentials for every security scheme of the document.

    staff: an admin staff token. buyer: the key of a reseller with saldo, for every reseller
    operation but the two below. keeper: the key of a second reseller for PUT /callback and POST
    /generate-key, so that the buyer's purchases never call back to a fuzzer-chosen URL and the
    buyer's key never rotates. buyer_id, keeper_id: their reseller ids.
    """

    staff: str
    buyer_id: int
    buyer: str
    keeper_id: int
    keeper: str
    xendit_token: str

    def headers(self, path: str, security: list[dict[str, list[str]]]) -> dict[str, str]:
        names = {name for requirement in security for name in requirement}
        found: dict[str, str] = {}
        if "staffToken" in names:
            found["authorization"] = f"Bearer {self.staff}"
        if "resellerKey" in names:
            found["x-api-key"] = self.keeper if path in ("/callback", "/generate-key") else self.buyer
        if "xenditCallbackToken" in names:
            found["x-callback-token"] = self.xendit_token
        return found


@dataclass
class Finding:
    operation: str
    problems: list[str]
    curl: str
    status: int
    body: str


@dataclass
class Fuzzer:
    """Sends schemathesis cases the way a client would, and records what went wrong."""

    base_url: str
    db: MariaDB
    spec: dict[str, Any]
    credentials: Credentials
    session: requests.Session = field(default_factory=requests.Session)
    findings: dict[tuple[str, ...], Finding] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    sent: int = 0

    def exercise(self, case: schemathesis.Case) -> None:
        operation = self.spec["paths"][case.operation.path][case.method.lower()]
        headers = self.credentials.headers(case.path, operation.get("security", []))
        kwargs = case.as_transport_kwargs(base_url=self.base_url, headers=headers)
        if "json" in kwargs:  # serialized here so that the signature covers the exact bytes sent
            kwargs["data"] = json.dumps(kwargs.pop("json")).encode()
        schemes = {name for requirement in operation.get("security", []) for name in requirement}
        raw = kwargs.get("data") or b""
        raw = raw.encode() if isinstance(raw, str) else raw
        for scheme, (header, sign) in BODY_SIGNERS.items():
            if scheme in schemes:
                kwargs["headers"][header] = sign(raw)
        kwargs.pop("cookies", None)
        prepared = self.session.prepare_request(requests.Request(**kwargs))
        before = self._fingerprint() if case.method in WRITES else None
        try:
            response = self.session.send(prepared, timeout=30)
        except requests.RequestException as error:
            self.findings.setdefault(
                (case.operation.label, "no response"),
                Finding(case.operation.label, [f"no response: {error!r}"], _curl(prepared), 0, ""),
            )
            self.session = requests.Session()
            return
        self.sent += 1
        if response.status_code >= 500:
            self.session = requests.Session()  # uvicorn drops the connection after an unhandled error
        self.statuses[case.operation.label, response.status_code] += 1
        problems: list[str] = []
        if before is not None and 400 <= response.status_code < 500:
            after = self._fingerprint()
            changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            if changed:
                problems.append(f"a {response.status_code} changed the database: {changed}")
        try:
            case.validate_response(response, checks=CHECKS, headers=dict(prepared.headers), transport_kwargs=kwargs)
        except schemathesis.errors.FailureGroup as group:
            problems.extend(f"{type(f).__name__}: {f.title}\n{f.message}" for f in group.exceptions)
        if problems:
            key = (case.operation.label, response.status_code // 100 * 100, *sorted(p.split(":")[0] for p in problems))
            self.findings.setdefault(
                key, Finding(case.operation.label, problems, _curl(prepared), response.status_code, response.text[:600])
            )
        if case.path == "/generate-key" and response.status_code == 200:
            self.credentials.keeper = response.json()["api_key"]

    def _fingerprint(self) -> dict[str, Any]:
        return self.db.rows(FINGERPRINT_SQL)[0]


def _curl(prepared: requests.PreparedRequest) -> str:
    parts = ["curl", "-sS", "-X", prepared.method or "GET", shlex.quote(prepared.url or "")]
    for name, value in prepared.headers.items():
        if name.lower() not in ("user-agent", "accept-encoding", "accept", "connection", "content-length"):
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    if prepared.body:
        body = prepared.body.decode(errors="backslashreplace") if isinstance(prepared.body, bytes) else prepared.body
        parts += ["--data-binary", shlex.quote(body)]
    return " ".join(parts)
