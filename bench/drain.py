"""End-to-end completion: wait until a phase's purchases are final and measure, in SQL, how fast."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.env import Database

FINAL = "('sukses', 'gagal')"


@dataclass(frozen=True)
class Completion:
    """The purchases of one phase (ids above `after_id`), as the database recorded them.

    rows: purchases the phase inserted (HTTP 200s plus any wrk abandoned in flight at its stop).
    final / sukses / gagal: how many ended, and how.
    open_by_status: purchases not final when the wait ended, by status.
    span_s: first accept (MIN waktu) to last final update (MAX updated_at).
    accept_span_s: first accept to last accept.
    drained / drain_s: purchases that ended after the last accept, and how long that tail took.
    latency_ms: accept -> final (updated_at - waktu) p50 / p99 / max over final purchases.
    waited_s: how long the poll ran; timed_out: it gave up before every purchase ended.
    """

    rows: int
    final: int
    sukses: int
    gagal: int
    open_by_status: dict[str, int]
    span_s: float
    accept_span_s: float
    drained: int
    drain_s: float
    latency_ms: dict[str, float]
    waited_s: float
    timed_out: bool

    @property
    def completed_per_second(self) -> float:
        return self.final / self.span_s if self.span_s > 0 else 0.0

    @property
    def drain_per_second(self) -> float:
        return self.drained / self.drain_s if self.drain_s > 0 else 0.0


def last_purchase_id(db: Database) -> int:
    return int(db.one("SELECT COALESCE(MAX(id), 0) AS m FROM purchase")["m"])


def wait_final(
    db: Database, after_id: int, timeout: float, every: float = 0.5, progress: Callable[[str], None] | None = None
) -> tuple[float, bool, int]:
    """Poll until every purchase with id > after_id is sukses/gagal.

    Returns (seconds waited, timed out, outbox rows seen relayed). Rows are deleted when their
    purchase ends, so a relayed push is visible only while it is in flight: hence the sampling.
    """
    started = time.monotonic()
    last_report = started
    relayed: set[int] = set()
    while True:
        relayed.update(r["id"] for r in db.rows("SELECT id FROM outbox WHERE attempts > 0"))
        row = db.one(f"SELECT COUNT(*) AS n, COALESCE(SUM(status IN {FINAL}), 0) AS done FROM purchase WHERE id > %s", after_id)
        waited = time.monotonic() - started
        if int(row["done"]) >= int(row["n"]):
            return waited, False, len(relayed)
        if waited > timeout:
            return waited, True, len(relayed)
        if progress is not None and time.monotonic() - last_report >= 5:
            progress(f"  draining: {int(row['done'])}/{int(row['n'])} final after {waited:.0f}s")
            last_report = time.monotonic()
        time.sleep(every)


def _percentiles(db: Database, after_id: int) -> dict[str, float]:
    """p50 / p99 / max ms from accept to final."""
    found = db.percentiles_ms("TIMESTAMPDIFF(MICROSECOND, waktu, updated_at)", f"FROM purchase WHERE id > %s AND status IN {FINAL}", after_id)
    return found or {"p50": 0.0, "p99": 0.0, "max": 0.0}


def measure(db: Database, after_id: int, waited_s: float, timed_out: bool) -> Completion:
    """Completion figures of the purchases with id > after_id (call after wait_final)."""
    totals = db.one(
        "SELECT COUNT(*) AS n, COALESCE(SUM(status = 'sukses'), 0) AS ok, COALESCE(SUM(status = 'gagal'), 0) AS bad, "
        "TIMESTAMPDIFF(MICROSECOND, MIN(waktu), MAX(waktu)) AS accept_us, MAX(waktu) AS last_accept, "
        f"TIMESTAMPDIFF(MICROSECOND, MIN(waktu), MAX(CASE WHEN status IN {FINAL} THEN updated_at END)) AS span_us, "
        f"TIMESTAMPDIFF(MICROSECOND, MAX(waktu), MAX(CASE WHEN status IN {FINAL} THEN updated_at END)) AS tail_us "
        "FROM purchase WHERE id > %s",
        after_id,
    )
    drained = db.one(
        "SELECT COUNT(*) AS n FROM purchase WHERE id > %s AND status IN " + FINAL + " AND updated_at > %s",
        after_id,
        totals["last_accept"],
    )["n"]
    open_rows = db.rows(
        f"SELECT status, COUNT(*) AS n FROM purchase WHERE id > %s AND status NOT IN {FINAL} GROUP BY status", after_id
    )
    sukses, gagal = int(totals["ok"]), int(totals["bad"])
    return Completion(
        rows=int(totals["n"]),
        final=sukses + gagal,
        sukses=sukses,
        gagal=gagal,
        open_by_status={r["status"]: int(r["n"]) for r in open_rows},
        span_s=int(totals["span_us"] or 0) / 1e6,
        accept_span_s=int(totals["accept_us"] or 0) / 1e6,
        drained=int(drained),
        drain_s=max(int(totals["tail_us"] or 0), 0) / 1e6,
        latency_ms=_percentiles(db, after_id),
        waited_s=waited_s,
        timed_out=timed_out,
    )


def health_checks(db: Database) -> list[str]:
    """Invariants after a run; each returned string is a problem found."""
    problems: list[str] = []
    mismatched = db.rows(
        "SELECT r.id, r.saldo, COALESCE(SUM(l.jumlah), 0) AS total FROM reseller r "
        "LEFT JOIN ledger_entry l ON l.reseller_id = r.id GROUP BY r.id, r.saldo HAVING r.saldo <> total"
    )
    for row in mismatched:
        problems.append(f"reseller {row['id']}: saldo {row['saldo']} != ledger sum {row['total']}")
    unbilled = db.one(
        "SELECT COUNT(*) AS n FROM purchase p LEFT JOIN ledger_entry l ON l.purchase_id = p.id AND l.jenis = 'pembelian' "
        "WHERE l.id IS NULL"
    )["n"]
    if unbilled:
        problems.append(f"{unbilled} purchase(s) without their 'pembelian' ledger entry")
    unrefunded = db.one(
        "SELECT COUNT(*) AS n FROM purchase p LEFT JOIN ledger_entry l ON l.purchase_id = p.id AND l.jenis = 'refund' "
        "WHERE p.status = 'gagal' AND l.id IS NULL"
    )["n"]
    if unrefunded:
        problems.append(f"{unrefunded} gagal purchase(s) without a refund")
    return problems
