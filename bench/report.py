"""The summary: one markdown table per run, printed and written to bench/results/latest.md (not checked in; the README keeps the latest headline figures)."""

from __future__ import annotations

import datetime
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from bench.commit_stalls import COMMIT_STALL_ROW
from bench.drain import Completion
from bench.load import LoadResult
from bench.raw_db import RawResult

GROUPS_LEGEND = "process, name, share of the time a run was on its way per process, runs/s x mean items, mean ms per run"
CPU_ORDER = ("wrk", "web", "worker", "clock", "sim", "mariadb", "redis", "other")


@dataclass(frozen=True)
class WebPhase:
    """One wrk run against POST /beli and the completion of what it bought."""

    label: str
    load: LoadResult
    completion: Completion
    cpu_accept: dict[str, float]
    cpu_drain: dict[str, float]
    provider_calls: int
    """Requests the sim received for this phase's purchases (one per purchase when nothing repeats)."""
    relayed: int
    """Outbox rows seen with attempts > 0 while draining: jobs the relay pushed a second time."""
    groups_accept: str = "-"
    groups_drain: str = "-"
    """The group calls that ran in each window (bench.groups.describe)."""
    rate: float = 0
    """Purchases per second offered on a fixed schedule (open loop); 0: closed loop."""
    commit_stall_ms: float = 0
    """The longest stretch without a commit, MariaDB-wide, while wrk ran (bench.commit_stalls)."""


@dataclass(frozen=True)
class EndpointPhase:
    """One wrk run against another endpoint than /beli (bench.phases): GET /status, webhooks, QRIS."""

    label: str
    request: str
    load: LoadResult
    cpu: dict[str, float]
    target: tuple[float, float]
    """The issue's target: requests per second at least, p99 ms at most."""
    raw_note: str | None
    """How the endpoint's transaction compares with the raw /beli accept one; None: no comparison."""
    rows: dict[str, str] = field(default_factory=dict)
    """Figures of this phase only (webhook handling, QR strings set, ...), in order."""
    groups: str = "-"
    """The group calls that ran during the load (bench.groups.describe)."""


@dataclass
class Run:
    """Everything the summary shows."""

    settings: dict[str, str]
    web: list[WebPhase] = field(default_factory=list)
    endpoints: list[EndpointPhase] = field(default_factory=list)
    raw: list[tuple[str, RawResult]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Caveats about the measurement itself (e.g. other processes competing for the cores)."""


def machine() -> dict[str, str]:
    model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return {"nproc": str(os.cpu_count()), "cpu": model, "date": now}


def _share(value: float, limit: float | None) -> str:
    return f" ({100 * value / limit:.0f}% of raw)" if limit else ""


def _in_cpu_order(names: dict[str, float]) -> list[str]:
    """The processes in the table's order (CPU_ORDER), any others after them by name."""
    return [n for n in CPU_ORDER if n in names] + sorted(n for n in names if n not in CPU_ORDER)


def _cpu(shares: dict[str, float]) -> str:
    names = _in_cpu_order(shares)
    return " · ".join(f"{n} {shares[n]:.0f}" for n in names) or "- (a window under 1 s)"


def _per_purchase(phase: WebPhase) -> str:
    """The accept phase's CPU per accepted purchase, in all and by process: comparable across
    machines and runs where the rates are not (the work behind a purchase is the same)."""
    rate = phase.load.ok_per_second
    shares = {name: pct for name, pct in phase.cpu_accept.items() if name != "other"}
    if not rate or not shares:
        return "-"
    ms = {name: 10 * pct / rate for name, pct in shares.items()}  # % of a core / (purchases/s) -> ms each
    return f"{sum(ms.values()):.3f} (" + " · ".join(f"{n} {ms[n]:.3f}" for n in _in_cpu_order(ms)) + ")"


def _ms(values: dict[str, float], keys: tuple[str, ...]) -> str:
    return " / ".join(f"{values[k]:.1f}" for k in keys)


def _raw_limit(run: Run, phase: WebPhase) -> RawResult | None:
    """The raw figure that matches a web phase: the hot row against the hot row, else the spread one."""
    hot = "hot" in phase.label
    return next((r for label, r in run.raw if ("hot" in label) == hot), None)


def render(run: Run) -> str:
    """The summary as markdown: machine, settings, the table, then every problem seen."""
    info = machine()
    lines = [
        "# Loket benchmark: POST /beli",
        "",
        f"Machine: {info['nproc']} cores, {info['cpu']}; {info['date']}. Load generator, web, workers, MariaDB "
        "and Redis all share these cores.",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in run.settings.items()),
        "",
    ]
    header = ["figure"] + [p.label for p in run.web]
    rows: list[list[str]] = []

    def row(name: str, cells: list[str]) -> None:
        rows.append([name, *cells])

    limits = [_raw_limit(run, p) for p in run.web]
    limit_tps = [lim.per_second if lim else None for lim in limits]
    row(
        "accepted /s (HTTP 200)",
        [f"{p.load.ok_per_second:.1f}{_share(p.load.ok_per_second, t)}" for p, t in zip(run.web, limit_tps, strict=True)],
    )
    row(
        "HTTP 200 / non-200 / socket errors",
        [f"{p.load.ok} / {p.load.not_ok} / {sum(p.load.socket_errors.values())}" for p in run.web],
    )
    row("accept latency p50 / p90 / p99 / max ms", [_ms(p.load.latency_ms, ("p50", "p90", "p99", "max")) for p in run.web])
    row(COMMIT_STALL_ROW, [f"{p.commit_stall_ms:.0f}" for p in run.web])
    if any(p.rate for p in run.web):
        row(
            "load: offered /s (open loop) / requests sent 2+ ms after their slot",
            [f"{p.rate:g} / {p.load.late}" if p.rate else f"closed loop, {p.load.sent} sent" for p in run.web],
        )
    row(
        "completed /s (first accept -> last final)",
        [
            f"{p.completion.completed_per_second:.1f}{_share(p.completion.completed_per_second, t)}"
            for p, t in zip(run.web, limit_tps, strict=True)
        ],
    )
    row(
        "worker drain /s after accepts stopped",
        [f"{p.completion.drain_per_second:.1f} ({p.completion.drained} in {p.completion.drain_s:.1f}s)" for p in run.web],
    )
    row("accept -> final p50 / p99 / max ms", [_ms(p.completion.latency_ms, ("p50", "p99", "max")) for p in run.web])
    row(
        "purchases final / in DB (sukses, gagal)",
        [
            f"{c.final} / {c.rows} ({c.sukses}, {c.gagal})" + (" TIMED OUT" if c.timed_out else "")
            for c in (p.completion for p in run.web)
        ],
    )
    row(
        "provider calls / relayed outbox rows",
        [f"{p.provider_calls} / {p.relayed}" for p in run.web],
    )
    row("raw DB commits /s, same transaction, no web", [f"{lim.per_second:.1f}" if lim else "-" for lim in limits])
    row("raw DB latency p50 / p99 / max ms", [_ms(lim.latency_ms, ("p50", "p99", "max")) if lim else "-" for lim in limits])
    row("CPU % of one core, accept phase", [_cpu(p.cpu_accept) for p in run.web])
    row("CPU ms per accepted purchase, accept phase (all but other)", [_per_purchase(p) for p in run.web])
    row("CPU % of one core, drain phase", [_cpu(p.cpu_drain) for p in run.web])
    row(f"group calls, accept phase ({GROUPS_LEGEND})", [p.groups_accept for p in run.web])
    row("group calls, drain phase", [p.groups_drain for p in run.web])
    row(
        "CPU % of one core, raw phase",
        [
            f"raw client {lim.client_cpu_pct:.0f} · mariadb {lim.mariadb_cpu_pct:.0f} · other {lim.other_cpu_pct:.0f}"
            if lim
            else "-"
            for lim in limits
        ],
    )
    table = [header, ["---"] * len(header), *rows]
    lines += ["| " + " | ".join(cells) + " |" for cells in table]
    if run.endpoints:
        lines += ["", "## Other endpoints", "", *_endpoint_table(run)]
    lines += ["", "Raw runs (no web layer; the web stack was stopped):", ""]
    for label, raw in run.raw:
        lines.append(
            f"- {label}: {raw.per_second:.1f} commits/s ({raw.commits} in {raw.seconds:.1f}s, {raw.errors} errors, "
            f"pool {raw.pool}), latency p50/p90/p99/max {_ms(raw.latency_ms, ('p50', 'p90', 'p99', 'max'))} ms"
            + (f"; first error: {raw.first_error}" if raw.first_error else "")
        )
    if run.notes:
        lines += ["", "Measurement notes:", ""] + [f"- {n}" for n in run.notes]
    lines += ["", "Problems seen:" if run.problems else "Problems seen: none.", ""]
    lines += [f"- {p}" for p in run.problems]
    return "\n".join(lines) + "\n"


def _target(p: EndpointPhase) -> str:
    rate, p99 = p.target
    got_rate, got_p99 = p.load.ok / p.load.seconds, p.load.latency_ms["p99"]
    verdict = "met" if got_rate >= rate and got_p99 <= p99 else "missed"
    return f">= {rate:g}/s, p99 <= {p99:g} ms: {verdict} ({100 * got_rate / rate:.0f}% of the rate, p99 {got_p99 / p99:.1f}x)"


def _endpoint_table(run: Run) -> list[str]:
    """Columns: the endpoint phases; the common rows first, then each phase's own ("-" elsewhere)."""
    phases = run.endpoints
    raw = next((r for label, r in run.raw if "hot" not in label), None)

    def share(p: EndpointPhase) -> str:
        if p.raw_note is None:
            return "n/a: read-only, nothing to commit"
        if raw is None:
            return f"- (no raw run); {p.raw_note}"
        return f"{100 * p.load.ok / p.load.seconds / raw.per_second:.0f}% of {raw.per_second:.0f}/s; {p.raw_note}"

    rows = [
        ["request", *[p.request for p in phases]],
        ["requests /s (HTTP 200/201)", *[f"{p.load.ok / p.load.seconds:.1f}" for p in phases]],
        ["HTTP 2xx / non-2xx / socket errors", *[f"{p.load.ok} / {p.load.not_ok} / {sum(p.load.socket_errors.values())}" for p in phases]],
        ["latency p50 / p90 / p99 / max ms", *[_ms(p.load.latency_ms, ("p50", "p90", "p99", "max")) for p in phases]],
        ["target (issue)", *[_target(p) for p in phases]],
        ["share of raw DB commits/s (raw /beli accept, spread)", *[share(p) for p in phases]],
    ]  # fmt: skip
    names = list(dict.fromkeys(name for p in phases for name in p.rows))
    rows += [[name, *[p.rows.get(name, "-") for p in phases]] for name in names]
    rows.append(["CPU % of one core, load phase", *[_cpu(p.cpu) for p in phases]])
    rows.append([f"group calls, load phase ({GROUPS_LEGEND})", *[p.groups for p in phases]])
    header = ["figure", *[p.label for p in phases]]
    return ["| " + " | ".join(cells) + " |" for cells in [header, ["---"] * len(header), *rows]]


def write(run: Run, path: Path) -> None:
    """Write the markdown summary and, next to it, the same figures as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(run))
    figures = {
        "machine": machine(),
        "settings": run.settings,
        "web": [
            {"label": p.label, "accepted_per_s": p.load.ok_per_second, "statuses": p.load.statuses,
             "accept_latency_ms": p.load.latency_ms, "completed_per_s": p.completion.completed_per_second,
             "drain_per_s": p.completion.drain_per_second, "final_latency_ms": p.completion.latency_ms,
             "rows": p.completion.rows, "final": p.completion.final,
             "provider_calls": p.provider_calls, "relayed": p.relayed, "cpu_accept": p.cpu_accept, "cpu_drain": p.cpu_drain,
             "commit_stall_ms": p.commit_stall_ms,
             "groups_accept": p.groups_accept, "groups_drain": p.groups_drain, "offered_per_s": p.rate, "late": p.load.late}
            for p in run.web
        ],
        "endpoints": [
            {"label": p.label, "request": p.request, "per_s": p.load.ok / p.load.seconds, "statuses": p.load.statuses,
             "latency_ms": p.load.latency_ms, "socket_errors": p.load.socket_errors, "marks": p.load.marks,
             "target": p.target, "rows": p.rows, "cpu": p.cpu, "groups": p.groups}
            for p in run.endpoints
        ],
        "raw": [{"label": label, "per_s": r.per_second, "latency_ms": r.latency_ms, "errors": r.errors} for label, r in run.raw],
        "problems": run.problems,
        "notes": run.notes,
    }  # fmt: skip
    path.with_suffix(".json").write_text(json.dumps(figures, indent=2))
