"""Load phases on other endpoints than POST /beli, each optional: `--status`, `--webhooks`, `--qris` (`--all`).

- status: GET /status/{id} over the purchases the /beli phases created, each with its owner's key.
- webhooks: POST /webhooks/digiflazz with distinct, validly signed bodies whose ref_ids match no
  purchase (the workers mark them `unmatched`); then how long the workers took to handle them.
- qris: POST /api/v1/transactions with a staff JWT over a few locations, against the sim's Xendit
  gateway slowed down to --gateway-latency-ms; once per --qris-wait-ms value, each on its own web
  process (same database, Redis and workers) started with that QRIS_CREATE_WAIT_MS.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.commit_stalls import COMMIT_STALL_ROW, CommitStallMeter
from bench.cpu import CpuMeter, pid_of
from bench.env import BenchStack, Database
from bench.groups import describe as describe_groups
from bench.load import LoadResult
from bench.replay import http_request, replay, write_requests
from bench.report import EndpointPhase
from core.security import ADMIN_LEVEL, hash_api_key, issue_staff_token

TARGETS = {"status": (8000.0, 20.0), "webhooks": (3000.0, 30.0), "qris": (1000.0, 50.0)}  # /s, p99 ms (the issue)
STATUS_MAX_REQUESTS = 200_000
STAFF_LEVEL = 10  # a kiosk operator: enough to create transactions, not an admin
OTHER_CPU_NOTE = 10  # as in bench.run
HEAD_LINES = 20


def _keep_head(path: Path) -> None:
    """Replace a requests file (200,000 webhooks: ~70 MB) by its first lines, readable (CR LF restored)."""
    with path.open("rb") as f:
        head = [next(f, b"") for _ in range(HEAD_LINES)]
    path.with_name(path.name + ".head.txt").write_bytes(b"".join(line.replace(b"\x01", b"\r\n") for line in head))
    path.unlink()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", action="store_true", help="GET /status/{id} phase over the accepted purchases")
    p.add_argument("--webhooks", action="store_true", help="POST /webhooks/digiflazz intake phase")
    p.add_argument("--qris", action="store_true", help="POST /api/v1/transactions (kiosk QRIS create) phase")
    p.add_argument("--all", action="store_true", help="the /beli phases plus --status --webhooks --qris")
    p.add_argument("--webhook-bodies", type=int, default=200_000, help="distinct signed webhook bodies (default 200000)")
    p.add_argument("--gateway-latency-ms", type=int, default=300, help="sim Xendit latency in the QRIS phase (default 300)")
    p.add_argument("--qris-wait-ms", default="2000,0",
                   help="QRIS_CREATE_WAIT_MS of the QRIS phase(s), comma-separated: one phase each (default 2000,0)")  # fmt: skip
    p.add_argument("--qris-locations", type=int, default=4, help="kiosk locations the QRIS phase cycles over (default 4)")


def selected(args: argparse.Namespace) -> list[str]:
    return [name for name in ("status", "webhooks", "qris") if args.all or getattr(args, name)]


def qris_waits(args: argparse.Namespace) -> list[int]:
    return [int(v) for v in str(args.qris_wait_ms).split(",") if v.strip()]


def settings(args: argparse.Namespace) -> dict[str, str]:
    """Entries for the summary's settings line."""
    names = selected(args)
    out = {"extra phases": "+".join(names) or "none"}
    if "qris" in names:
        out |= {"gateway latency": f"{args.gateway_latency_ms} ms", "QRIS_CREATE_WAIT_MS": "/".join(map(str, qris_waits(args)))}
    return out


@dataclass
class Phases:
    """Shared by the phases: the stack, the database, the options and where the files go."""

    bench: BenchStack
    db: Database
    args: argparse.Namespace
    log_dir: Path
    say: Callable[[str], None]
    problems: list[str]
    notes: list[str]

    def run(self, keys: list[str]) -> list[EndpointPhase]:
        out: list[EndpointPhase] = []
        names = selected(self.args)
        if "status" in names:
            out.append(self.status(keys))
        if "webhooks" in names:
            out.append(self.webhooks())
        if "qris" in names:
            out += self.qris()
        return out

    # -- common ---------------------------------------------------------------------------------------------------

    def _load(self, tag: str, label: str, url: str, requests: Iterator[bytes], marks: dict[str, str] | None = None) -> tuple[LoadResult, dict[str, float], str, dict[str, str]]:  # fmt: skip
        """Write the requests, run wrk over them with the CPU, group call and commit stall meters on,
        check the answers; the last item: rows of the phase's table (the longest commit stall)."""
        args = self.args
        threads = max(1, min(args.wrk_threads, args.connections))
        lines = write_requests(self.log_dir / f"{tag}.requests", requests)
        meter = CpuMeter(groups=self.bench.pgids(),
                         pids={"mariadb": pid_of("mariadbd", "mysqld") or 0, "redis": pid_of("redis-server") or 0})  # fmt: skip
        self.say(f"[{label}] wrk -c {args.connections} -t {threads} for {args.duration:.0f}s over {lines} distinct request(s)")
        groups = self.bench.group_meter(url)
        stalls = CommitStallMeter(self.db)
        groups.start()
        meter.start()
        stalls.start()
        load = replay(url, self.log_dir / f"{tag}.requests", lines=lines, tag=tag, connections=args.connections,
                      threads=threads, duration=args.duration, log_dir=self.log_dir, marks=marks)  # fmt: skip
        stall_row = {COMMIT_STALL_ROW: f"{stalls.stop():.0f}"}
        cpu = meter.stop("wrk")
        group_figures = describe_groups(groups.stop())
        _keep_head(self.log_dir / f"{tag}.requests")
        if cpu["other"] > OTHER_CPU_NOTE:
            self.notes.append(f"{label}: processes outside this benchmark used {cpu['other']:.0f}% of a core during the load")
        lat = load.latency_ms
        self.say(f"  {load.ok} x 2xx ({load.ok / load.seconds:.1f}/s), {load.not_ok} non-2xx {load.statuses}, latency "
                 f"p50/p90/p99/max {lat['p50']:.1f}/{lat['p90']:.1f}/{lat['p99']:.1f}/{lat['max']:.1f} ms")  # fmt: skip
        for sample in load.samples:
            self.say(f"  non-2xx: {sample}")
        if load.not_ok:
            self.problems.append(f"{label}: {load.not_ok} non-2xx responses {load.statuses}; samples: {load.samples}")
        if any(load.socket_errors.values()):
            self.problems.append(f"{label}: wrk socket errors {load.socket_errors}")
        return load, cpu, group_figures, stall_row

    def _host(self, url: str) -> str:
        return url.split("://", 1)[1]

    def _wait(self, label: str, count_sql: str, after: int) -> tuple[float, bool]:
        """Poll `count_sql` (columns n, done) until done = n; (seconds waited, timed out)."""
        started = last = time.monotonic()
        while True:
            row = self.db.one(count_sql, after)
            waited = time.monotonic() - started
            if int(row["done"] or 0) >= int(row["n"]):
                return waited, False
            if waited > self.args.drain_timeout:
                self.problems.append(f"{label}: {int(row['n']) - int(row['done'])} not handled after {waited:.0f}s")
                return waited, True
            if time.monotonic() - last >= 5:
                self.say(f"  draining: {row['done']}/{row['n']} after {waited:.0f}s")
                last = time.monotonic()
            time.sleep(0.5)

    def _percentiles(self, us_sql: str, from_sql: str, after: int) -> str:
        """p50 / p99 / max ms of a microsecond expression."""
        found = self.db.percentiles_ms(us_sql, from_sql, after)
        return " / ".join(f"{found[k]:.1f}" for k in ("p50", "p99", "max")) if found else "-"

    # -- GET /status/{id} ------------------------------------------------------------------------------------------

    def status(self, keys: list[str]) -> EndpointPhase:
        owner = {hash_api_key(key): key for key in keys}
        found = self.db.rows(  # the phases' purchases: not those of a --history
            "SELECT p.id, r.api_key_hash FROM purchase p JOIN reseller r ON r.id = p.reseller_id WHERE r.api_key_hash IN %s", tuple(owner)
        )
        pairs = [(owner[bytes(r["api_key_hash"])], int(r["id"])) for r in found if bytes(r["api_key_hash"]) in owner]
        random.Random(5).shuffle(pairs)  # consecutive requests go to different resellers
        pairs = pairs[:STATUS_MAX_REQUESTS]
        host = self._host(self.bench.web_url)
        requests = (http_request("GET", f"/status/{pid}", host, {"x-api-key": key}) for key, pid in pairs)
        load, cpu, groups, _ = self._load("status", "GET /status/{id}", self.bench.web_url, requests)  # read-only: few commits to time
        rows = {"purchases read / reseller keys": f"{len(pairs)} / {len({k for k, _ in pairs})} (each read with its owner's key)"}
        return EndpointPhase("GET /status", "GET /status/{id}", load, cpu, TARGETS["status"], None, rows, groups)

    # -- POST /webhooks/digiflazz ------------------------------------------------------------------------------------

    def webhooks(self) -> EndpointPhase:
        secret, prefix = self.bench.webhook_secret.encode(), f"whb{int(time.time())}"
        host = self._host(self.bench.web_url)

        def bodies() -> Iterator[bytes]:
            for n in range(self.args.webhook_bodies):
                data = {
                    "ref_id": f"{prefix}-{n}",
                    "status": "Sukses",
                    "rc": "00",
                    "sn": f"SN{n:09d}",
                    "message": "Transaksi Sukses",
                }
                body = json.dumps({"data": data}, separators=(",", ":")).encode()
                signature = "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()
                yield http_request("POST", "/webhooks/digiflazz", host,
                                   {"Content-Type": "application/json", "X-Hub-Signature": signature}, body)  # fmt: skip

        after = int(self.db.one("SELECT COALESCE(MAX(id), 0) AS m FROM webhook_event")["m"])
        load, cpu, groups, stall_row = self._load(
            "webhooks", "POST /webhooks/digiflazz", self.bench.web_url, bodies(), {"duplicate": '"duplicate":true'}
        )
        where = f"FROM webhook_event WHERE id > %s AND reference LIKE '{prefix}-%%'"
        waited, _ = self._wait("webhooks", f"SELECT COUNT(*) AS n, SUM(outcome <> 'received') AS done {where}", after)
        t = self.db.one(
            f"SELECT COUNT(*) AS n, TIMESTAMPDIFF(MICROSECOND, MIN(received_at), MAX(handled_at)) AS span_us, "
            f"TIMESTAMPDIFF(MICROSECOND, MAX(received_at), MAX(handled_at)) AS tail_us {where}",
            after,
        )
        outcomes = {
            r["outcome"]: int(r["n"]) for r in self.db.rows(f"SELECT outcome, COUNT(*) AS n {where} GROUP BY outcome", after)
        }
        stored, span, tail = int(t["n"]), int(t["span_us"] or 0) / 1e6, max(int(t["tail_us"] or 0), 0) / 1e6
        handled = stored - outcomes.get("received", 0)
        self.say(f"  {stored} webhook_event rows, outcomes {outcomes}; handled in {span:.1f}s from the first intake "
                 f"({handled / span if span else 0:.1f}/s), {tail:.1f}s after the last; waited {waited:.1f}s")  # fmt: skip
        duplicates = load.marks.get("duplicate", 0)
        repeated = load.sent > load.requests_file_lines
        if set(outcomes) - {"unmatched"}:
            self.problems.append(f"webhooks: outcomes other than unmatched: {outcomes}")
        if not load.ok - duplicates <= stored <= load.ok + self.args.connections:
            self.problems.append(f"webhooks: {stored} events stored for {load.ok} 2xx ({duplicates} duplicate=true)")
        if duplicates and not repeated:
            self.problems.append(f"webhooks: {duplicates} duplicate=true answers although no body was sent twice")
        rows = stall_row | {
            "distinct bodies / requests sent": f"{load.requests_file_lines} / {load.sent}"
            + (" (bodies repeated: duplicates)" if repeated else " (each body at most once)"),
            "answers with duplicate=true": str(duplicates),
            "webhook_event rows stored (outcomes)": f"{stored} ({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))})",
            "workers: handled /s (first intake -> last handled)": f"{handled / span if span else 0:.1f} ({handled} in {span:.1f}s)",
            "workers: done after the last intake": f"{tail:.1f}s",
            "workers: received -> handled p50 / p99 / max ms": self._percentiles(
                "TIMESTAMPDIFF(MICROSECOND, received_at, handled_at)", where + " AND handled_at IS NOT NULL", after
            ),
        }
        note = "INSERT webhook_event + INSERT outbox, one commit (lighter than the accept transaction)"
        return EndpointPhase("POST /webhooks/digiflazz", "POST /webhooks/digiflazz", load, cpu, TARGETS["webhooks"], note, rows, groups)

    # -- POST /api/v1/transactions ---------------------------------------------------------------------------------

    def qris(self) -> list[EndpointPhase]:
        admin = issue_staff_token(self.bench.jwt_secret, "bench-admin", ADMIN_LEVEL)
        locations = []
        with httpx.Client(base_url=self.bench.web_url, timeout=10, headers={"authorization": f"Bearer {admin}"}) as api:
            for n in range(max(1, self.args.qris_locations)):
                response = api.post("/api/v1/locations", json={"ml_name": f"Bench kiosk {n} {time.time_ns()}"})
                if response.status_code != 201:
                    raise RuntimeError(f"create location failed: {response.status_code} {response.text}")
                locations.append(int(response.json()["data"]["ml_id"]))
        config = self.bench.sim_config(gateway_latency_ms=self.args.gateway_latency_ms)
        self.say(f"[QRIS] locations {locations}; sim gateway_latency_ms={config['gateway_latency_ms']}")
        # One kiosk per location, as deployed: a kiosk's token acts for its own location only.
        tokens = {
            loc: issue_staff_token(self.bench.jwt_secret, f"bench-kiosk-{loc}", STAFF_LEVEL, ttl_seconds=24 * 3600, location_id=loc)
            for loc in locations
        }
        return [self._qris_phase(wait, tokens) for wait in qris_waits(self.args)]

    def _qris_phase(self, wait_ms: int, tokens: dict[int, str]) -> EndpointPhase:
        name = f"web-qris{wait_ms}"
        url = self.bench.start_web_variant(name, {"QRIS_CREATE_WAIT_MS": str(wait_ms)})
        try:
            host = self._host(url)
            requests = (
                http_request(
                    "POST", "/api/v1/transactions", host, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                    json.dumps({"location_id": loc}).encode(),
                )
                for loc, token in tokens.items()
            )
            after = int(self.db.one("SELECT COALESCE(MAX(tr_id), 0) AS m FROM qris_transaction")["m"])
            codes_before = len(httpx.get(f"{self.bench.sim_url}/_sim/qr_codes", timeout=30).json())
            label = f"POST /api/v1/transactions, QRIS_CREATE_WAIT_MS={wait_ms}"
            marks = {"qr_null": '"tr_qris_string":null', "qr_set": '"tr_qris_string":"'}
            load, cpu, groups, stall_row = self._load(f"qris{wait_ms}", label, url, requests, marks)
        finally:
            self.bench.stop_process(name)
        where = "FROM qris_transaction WHERE tr_id > %s"
        waited, _ = self._wait(
            label, f"SELECT COUNT(*) AS n, SUM(tr_qris_string IS NOT NULL OR tr_status <> 'PENDING') AS done {where}", after
        )
        t = self.db.one(
            f"SELECT COUNT(*) AS n, COALESCE(SUM(tr_qris_string IS NOT NULL), 0) AS qr, COALESCE(SUM(tr_status = 'FAILED'), 0) AS failed, "
            "TIMESTAMPDIFF(MICROSECOND, MIN(tr_created_at), MAX(CASE WHEN tr_qris_string IS NOT NULL THEN tr_updated_at END)) AS span_us, "
            f"TIMESTAMPDIFF(MICROSECOND, MAX(tr_created_at), MAX(tr_updated_at)) AS tail_us {where}",
            after,
        )
        codes = len(httpx.get(f"{self.bench.sim_url}/_sim/qr_codes", timeout=30).json()) - codes_before
        rows_n, qr, failed = int(t["n"]), int(t["qr"]), int(t["failed"])
        span, tail = int(t["span_us"] or 0) / 1e6, max(int(t["tail_us"] or 0), 0) / 1e6
        set_, null = load.marks.get("qr_set", 0), load.marks.get("qr_null", 0)
        self.say(f"  201 with QR set {set_}, null {null}; {rows_n} rows, {qr} with QR after {waited:.1f}s drain, "
                 f"{failed} FAILED, {codes} gateway QR codes")  # fmt: skip
        if failed:
            self.problems.append(f"{label}: {failed} transactions FAILED")
        if codes != rows_n:
            self.problems.append(f"{label}: {codes} QR codes at the gateway for {rows_n} transactions")
        if set_ + null != load.ok:
            self.problems.append(f"{label}: {load.ok - set_ - null} 2xx bodies without tr_qris_string")
        share = (lambda n: f"{n} ({100 * n / load.ok:.0f}%)") if load.ok else str
        rows = stall_row | {
            "QRIS_CREATE_WAIT_MS / gateway latency": f"{wait_ms} / {self.args.gateway_latency_ms} ms"
            + (" (the create waits for the worker's gateway call: latency includes it)" if wait_ms else " (no wait)"),
            "201 with tr_qris_string set / null": f"{share(set_)} / {share(null)}",
            "transactions in DB / QR attached after drain / FAILED": f"{rows_n} / {qr} / {failed}",
            "workers: QR attached /s (first create -> last attached)": f"{qr / span if span else 0:.1f} ({qr} in {span:.1f}s)",
            "workers: done after the last create": f"{tail:.1f}s",
        }
        note = "INSERT qris_transaction + INSERT outbox, one commit" + (", then waits for the QR" if wait_ms else "")
        return EndpointPhase(
            f"QRIS create, wait {wait_ms} ms", "POST /api/v1/transactions", load, cpu, TARGETS["qris"], note, rows, groups
        )
