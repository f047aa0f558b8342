"""Property-based fuzzing of every operation in /openapi.json against the shared stack (schemathesis).

Each operation gets MAX_EXAMPLES valid and MAX_EXAMPLES invalid requests with real credentials. A
finding is a 5xx, an undocumented status, a body or content type that does not match the document,
or a rejected (4xx) write that changed the database anyway. Findings are collected, not raised
inside Hypothesis, so nothing is shrunk and every operation runs; the test then fails listing each
with a curl command that reproduces it and the log lines the server wrote meanwhile.

No operation is excluded: /metrics is documented as text/plain, which the checks accept, and the
webhooks get their real token or HMAC signature. Precautions instead: PUT /callback and POST
/generate-key use a second reseller (see Credentials); operations run creating POSTs first so that
the others meet rows, with a second pass on rows known to exist (_known_rows); those that switch
resellers and products off run last and are undone afterwards (SWITCHES).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from core.security import issue_staff_token
from tests.fuzzing import (
    MAX_EXAMPLES,
    SEED,
    SWITCHES,
    SWITCHES_SQL,
    Credentials,
    Fuzzer,
    openapi_path,
)
from tests.harness import LoketStack, MariaDB, fast_env
from web.app import ROUTES
from web.openapi import OPERATIONS, build, operations_of


def test_every_route_is_documented() -> None:
    """A route added to ROUTES without an entry in web/openapi.OPERATIONS fails here."""
    spec = build(ROUTES)
    served = {(method, route.path) for method, route in operations_of(ROUTES)}
    missing = [f"{m} {p}" for m, p in sorted(served) if m.lower() not in spec["paths"].get(openapi_path(p), {})]
    assert not missing, f"routes without an entry in web/openapi.py OPERATIONS: {missing}"
    stale = sorted(set(OPERATIONS) - served)
    assert not stale, f"OPERATIONS entries for routes that do not exist: {stale}"


def _register(api: httpx.Client, admin: str, saldo: int) -> tuple[int, str]:
    body = {"nama": "Toko Fuzz", "email": f"fuzz{time.time_ns()}@uji.id", "saldo": saldo}
    response = api.post("/register", json=body, headers={"authorization": f"Bearer {admin}"})
    assert response.status_code == 200, response.text
    return response.json()["id"], response.json()["api_key"]


def _paid_transaction(api: httpx.Client, stack: LoketStack, admin: str) -> tuple[int, str]:
    """A location and a COMPLETED transaction at it, so the photo routes get past their 404."""
    staff = {"authorization": f"Bearer {admin}"}
    location = api.post("/api/v1/locations", json={"ml_name": f"Fuzz {time.time_ns()}"}, headers=staff)
    assert location.status_code == 201, location.text
    location_id = location.json()["data"]["ml_id"]
    created = api.post("/api/v1/transactions", json={"location_id": location_id}, headers=staff)
    assert created.status_code == 201, created.text
    external_id = created.json()["data"]["tr_external_id"]
    assert asyncio.run(stack.pay(external_id)).status_code < 300
    deadline = time.monotonic() + 20
    while api.get(f"/api/v1/transactions/external/{external_id}").json()["data"]["tr_status"] != "COMPLETED":
        assert time.monotonic() < deadline, f"{external_id} was not COMPLETED after paying"
        time.sleep(0.2)
    return location_id, external_id


def _known_rows(
    db: MariaDB, credentials: Credentials, location_id: int, external_id: str
) -> dict[str, Callable[[], dict[str, Any]]]:
    """Path parameters naming rows that exist, per path; asked just before the operation runs."""

    def latest(sql: str, *args: Any) -> int:
        return int(db.value(sql, *args) or 1)

    def purchase() -> dict[str, Any]:
        return {"purchase_id": latest("SELECT MAX(id) FROM purchase WHERE reseller_id = %s", credentials.buyer_id)}

    return {
        "/status/{purchase_id}": purchase,
        "/deposit/{deposit_id}": lambda: {
            "deposit_id": latest("SELECT MAX(tr_id) FROM qris_transaction WHERE tr_reseller_id = %s", credentials.buyer_id)
        },
        "/api/v1/resellers/{id}": lambda: {"id": credentials.keeper_id},
        "/api/v1/resellers/{id}/adjustments": lambda: {"id": credentials.buyer_id},  # the saldo invariant is checked on it
        "/api/v1/products/{id}": lambda: {"id": 1},
        "/api/v1/purchases/{id}/resolve": lambda: {"id": purchase()["purchase_id"]},
        "/api/v1/locations/{id}": lambda: {"id": location_id},  # it has a transaction: DELETE must answer 409
        "/api/v1/prices/{id}": lambda: {"id": latest("SELECT MAX(mp_id) FROM price")},
        "/api/v1/transactions/external/{external_id}": lambda: {"external_id": external_id},
        "/api/v1/transactions/{external_id}/photos": lambda: {"external_id": external_id},
    }


def _run(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    send: Callable[[schemathesis.Case], None],
    path: dict[str, Any] | None = None,
) -> str | None:
    """Up to MAX_EXAMPLES cases of one operation, with `path` parameters if given, else generated ones.

    Returns None when they ran, "" when there is no invalid input to make (no body and no
    parameters left to generate: Hypothesis says Unsatisfiable), else what went wrong.
    """

    @seed(SEED)
    @settings(
        max_examples=MAX_EXAMPLES,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: nothing is raised inside, findings are collected
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    def fuzz(case: schemathesis.Case) -> None:
        send(case)

    try:
        fuzz()
    except Exception as error:  # noqa: BLE001 - reported to the reader, not swallowed
        definition = operation.definition.raw
        generated = [p for p in definition.get("parameters", []) if not (path and p["in"] == "path")]
        if (
            isinstance(error, Unsatisfiable)
            and mode is GenerationMode.NEGATIVE
            and not generated
            and "requestBody" not in definition
        ):
            return ""
        return f"{operation.label} ({mode.value}, path {path}): {type(error).__name__}: {error}"
    return None


def _order(operation: schemathesis.APIOperation) -> int:
    """Creating operations first, so that the others meet rows; deleting and switching ones last."""
    if operation.method.upper() == "DELETE" or operation.path in SWITCHES:
        return 2
    return 0 if operation.method.upper() == "POST" and "{" not in operation.path else 1


def _switches(db: MariaDB) -> dict[str, list[dict[str, Any]]]:
    return {table: db.rows(sql) for table, sql in SWITCHES_SQL.items()}


def _restore(db: MariaDB, saved: dict[str, list[dict[str, Any]]]) -> None:
    for table, rows in saved.items():
        for row in rows:
            columns = [c for c in row if c != "id"]
            assignments = ", ".join(f"{c} = %s" for c in columns)
            db.rows(f"UPDATE {table} SET {assignments} WHERE id = %s", *(row[c] for c in columns), row["id"])


def _settle(db: MariaDB, reseller_id: int, timeout: float = 30) -> None:
    """Wait for the fuzzer's purchases to end, so that their refunds are in the ledger checked
    below and the simulator's callbacks for them do not land during the next test."""
    deadline = time.monotonic() + timeout
    while db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s AND status IN ('pending', 'proses')", reseller_id):
        assert time.monotonic() < deadline, f"purchases of reseller {reseller_id} still open after {timeout}s"
        time.sleep(0.3)


def _log_lines(
    paths: dict[str, Path], offsets: dict[str, int], words: tuple[str, ...] = ("ERROR", "Traceback", "Error")
) -> list[str]:
    found = []
    for name, path in paths.items():
        with path.open("rb") as log:
            log.seek(offsets[name])
            found += [
                f"{name}: {line[:400]}"
                for line in log.read().decode(errors="replace").splitlines()
                if any(w in line for w in words)
            ]
    return found


def _fuzz_all(
    schema: schemathesis.BaseSchema, fuzzer: Fuzzer, known: dict[str, Callable[[], dict[str, Any]]]
) -> tuple[list[str], list[str]]:
    """Every operation, valid and invalid, with generated path parameters and again with known rows.

    Returns what could not run (a failure) and notes on what was fuzzed less (printed).
    """
    not_run: list[str] = []
    notes: list[str] = []
    for operation in sorted((r.ok() for r in schema.get_all_operations()), key=_order):
        passes: list[dict[str, Any] | None] = [None]
        if "{" in operation.path:
            if operation.path in known:
                passes.append(known[operation.path]())
            else:
                notes.append(f"{operation.label}: no known row, generated path parameters only")
        for path in passes:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                problem = _run(operation, mode, fuzzer.exercise, path)
                if problem == "":
                    notes.append(
                        f"{operation.label}{f' at {path}' if path else ''}: no invalid input exists, valid requests only"
                    )
                elif problem is not None:
                    not_run.append(problem)
    return not_run, notes


def test_fuzz_every_operation(stack: LoketStack) -> None:
    admin = issue_staff_token(fast_env()["JWT_SECRET"], "fuzz-admin", 100)
    with httpx.Client(base_url=stack.web_url, timeout=30) as api:
        served = api.get("/openapi.json")
        assert served.status_code == 200 and served.headers["content-type"].startswith("application/json")
        spec = served.json()
        assert spec == json.loads(json.dumps(build(ROUTES))), "the served document is not the one built from ROUTES"
        buyer_id, buyer_key = _register(api, admin, saldo=50_000_000)
        keeper_id, keeper_key = _register(api, admin, saldo=0)
        credentials = Credentials(admin, buyer_id, buyer_key, keeper_id, keeper_key, fast_env()["XENDIT_CALLBACK_TOKEN"])
        location_id, external_id = _paid_transaction(api, stack, admin)
    known = _known_rows(stack.db, credentials, location_id, external_id)
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_dict(spec, config=config)
    fuzzer = Fuzzer(stack.web_url, stack.db, spec, credentials)
    logs = {p.name: p.log_path for p in stack.processes.processes if p.name in ("web", "worker")}
    offsets = {name: path.stat().st_size for name, path in logs.items()}

    started = time.monotonic()
    saved = _switches(stack.db)
    try:
        not_run, notes = _fuzz_all(schema, fuzzer, known)
    finally:
        _restore(stack.db, saved)
    print(f"\nfuzzed {len(spec['paths'])} paths with {fuzzer.sent} requests in {time.monotonic() - started:.1f}s")
    for label in dict.fromkeys(label for label, _ in sorted(fuzzer.statuses)):
        counts = ", ".join(f"{status}x{n}" for (name, status), n in sorted(fuzzer.statuses.items()) if name == label)
        print(f"  {label}: {counts}")
    print("\n".join(notes))

    _settle(stack.db, credentials.buyer_id)
    broken = stack.db.rows(
        "SELECT r.id, r.saldo, COALESCE(SUM(l.jumlah), 0) AS ledger FROM reseller r "
        "LEFT JOIN ledger_entry l ON l.reseller_id = r.id GROUP BY r.id, r.saldo HAVING r.saldo <> ledger"
    )
    report = [
        f"[{f.operation}] -> {f.status}\n  "
        + "\n  ".join(p.replace("\n", "\n    ") for p in f.problems)
        + f"\n  reproduce: {f.curl}\n  response: {f.body}"
        for f in fuzzer.findings.values()
    ]
    report += [f"could not fuzz {p}" for p in not_run]
    report += [f"saldo != sum(ledger) for reseller {r['id']}: {r['saldo']} != {r['ledger']}" for r in broken]
    if report:
        report.append("log lines written meanwhile:\n" + "\n".join(_log_lines(logs, offsets)[:80]))
    assert not report, "\n\n".join(report)
    assert fuzzer.sent >= len(spec["paths"]) * MAX_EXAMPLES, "too few requests went out: generation is not working"
