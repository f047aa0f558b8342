"""Benchmark POST /beli end to end: `python -m bench.run [--duration 15] [--connections 64] ...`.

Phases: start a private stack (loket_bench, Redis db 5); a short warm-up; wrk with one reseller
per connection; wrk with every connection on ONE reseller (the hot saldo row); each followed by
waiting until all its purchases are final. Then the stack is stopped and the same transaction is
run straight against MariaDB (bench.raw_db) for the ceiling. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
import redis

from bench import drain, history, mariadb_settings, phases, readme_table, report
from bench.commit_stalls import CommitStallMeter
from bench.cpu import CpuMeter, machine_busy_seconds, pid_of
from bench.env import DATABASE_URL, REDIS_URL, BenchStack, Database, Options, flush_redis
from bench.groups import describe as describe_groups
from bench.load import run_wrk, write_script, wrk_available
from bench.raw_db import run_processes
from core.settings import get_settings
from db.engine import engine_size_beside
from workers.resources import worker_pool_size

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent
WARMUP_SECONDS = 2
LOG_LINES_SHOWN = 5
OTHER_CPU_NOTE = 10  # % of one core used by processes outside the benchmark worth a note
LATE_NOTE = 0.01  # share of an open loop's requests sent behind their slot worth a note


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark Loket's POST /beli (accept and completion).")
    p.add_argument("--duration", type=float, default=15, help="seconds of each load phase (default 15)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections, also raw-DB tasks (default 64)")
    p.add_argument("--provider-latency-ms", type=int, default=0, help="simulator delay per provider call")
    p.add_argument("--workers", type=int, default=1, help="dramatiq worker processes (default 1, the Procfile's)")
    p.add_argument("--threads", type=int, default=8, help="threads per dramatiq process (default 8, the Procfile's)")
    p.add_argument("--prefetch", type=int, default=64, help="messages a dramatiq process holds per queue (default 64, the Procfile's)")
    p.add_argument("--web-workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2, one per core)")
    p.add_argument("--raw-processes", type=int, default=1, help="client processes of the raw-DB run (default 1)")
    p.add_argument("--drain-timeout", type=float, default=600, help="max seconds to wait for purchases to end")
    p.add_argument("--no-hot", action="store_true", help="skip the one-reseller (hot row) phases")
    p.add_argument("--stock-mariadb", action="store_true",
                   help="leave MariaDB's settings as they are (default: ops/mariadb/loket.cnf for the run, then put back)")
    p.add_argument("--accept-alone", action="store_true",
                   help="also a /beli phase with the workers paused (SIGSTOP) while wrk runs, then draining")  # fmt: skip
    p.add_argument("--rates", default="",
                   help="open-loop /beli phases at these offered rates per second, comma-separated (e.g. 1000,2000)")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep loket_bench and Redis db 5 afterwards")
    p.add_argument("--history", type=int, default=0,
                   help="first write this many ended purchases and their ledger entries (bench/history.py)")
    p.add_argument("--readme", action="store_true", help="replace the README's benchmark table with this run's figures")
    phases.add_arguments(p)
    return p.parse_args(argv)


def open_rates(args: argparse.Namespace) -> list[float]:
    return [float(v) for v in str(args.rates).split(",") if v.strip()]


def say(message: str) -> None:
    print(message, flush=True)


def web_phase(bench: BenchStack, db: Database, args: argparse.Namespace, keys: list[str], tag: str, label: str,
              duration: float, log_dir: Path, pause_workers: bool = False, rate: float = 0) -> report.WebPhase:  # fmt: skip
    """One wrk run, then wait until everything it bought is final.

    pause_workers: stop the dramatiq processes (SIGSTOP) while wrk runs and let them go (SIGCONT)
    after, so the accept figures are the web's and MariaDB's alone and the drain is the workers'.
    rate: purchases per second offered on a fixed schedule (open loop); 0: closed loop.
    """
    threads = max(1, min(args.wrk_threads, args.connections))
    after = drain.last_purchase_id(db)
    script = write_script(log_dir / f"{tag}.lua", keys, tag, threads, rate=rate)
    meter = CpuMeter(
        groups=bench.pgids(), pids={"mariadb": pid_of("mariadbd", "mysqld") or 0, "redis": pid_of("redis-server") or 0}
    )
    calls_before = provider_calls(bench.sim_url)  # the previous phase has drained: nothing in flight
    groups = bench.group_meter()
    say(f"[{label}] wrk -c {args.connections} -t {threads} for {duration:.0f}s over {len(keys)} reseller key(s)")
    stalls = CommitStallMeter(db)
    groups.start()
    meter.start()
    stalls.start()
    if pause_workers:
        bench.signal_workers(signal.SIGSTOP)
    try:
        load = run_wrk(
            bench.web_url, script, connections=args.connections, threads=threads, duration=duration, log=log_dir / f"{tag}.wrk.txt"
        )
    finally:
        if pause_workers:
            bench.signal_workers(signal.SIGCONT)
    commit_stall_ms = stalls.stop()
    cpu_accept = meter.stop("wrk")
    groups_accept = describe_groups(groups.stop())
    say(f"  {load.ok} x 200 ({load.ok_per_second:.1f}/s), {load.not_ok} non-200 {load.statuses}, "
        f"latency p50/p90/p99/max {load.latency_ms['p50']:.1f}/{load.latency_ms['p90']:.1f}/"
        f"{load.latency_ms['p99']:.1f}/{load.latency_ms['max']:.1f} ms"
        + (f", {load.late} sent 2+ ms after their slot" if rate else "")
        + f"; longest stretch without a commit {commit_stall_ms:.0f} ms, ending at {stalls.longest_at:.2f}")  # fmt: skip
    for sample in load.samples:
        say(f"  non-200: {sample}")
    groups.start()
    meter.start()
    waited, timed_out, relayed = drain.wait_final(db, after, args.drain_timeout, progress=say)
    cpu_drain = meter.stop()
    groups_drain = describe_groups(groups.stop())
    completion = drain.measure(db, after, waited, timed_out)
    calls = provider_calls(bench.sim_url) - calls_before
    say(f"  {completion.final}/{completion.rows} final in {completion.span_s:.1f}s from first accept "
        f"({completion.completed_per_second:.1f}/s); accept->final p50/p99 "
        f"{completion.latency_ms['p50']:.0f}/{completion.latency_ms['p99']:.0f} ms")  # fmt: skip
    return report.WebPhase(label, load, completion, cpu_accept, cpu_drain, calls, relayed, groups_accept, groups_drain, rate, commit_stall_ms)


def provider_calls(sim_url: str) -> int:
    """Requests the simulator has received for all its transactions so far."""
    return sum(t["calls"] for t in httpx.get(f"{sim_url}/_sim/transactions", timeout=30).json())


def phase_problems(phase: report.WebPhase, connections: int) -> list[str]:
    """What looked wrong in one web phase."""
    found: list[str] = []
    load, done = phase.load, phase.completion
    if load.not_ok:
        found.append(f"{phase.label}: {load.not_ok} non-200 responses {load.statuses}; samples: {load.samples}")
    if any(load.socket_errors.values()):
        found.append(f"{phase.label}: wrk socket errors {load.socket_errors}")
    # wrk drops the requests in flight when its time is up; the server may still commit those.
    if not load.ok <= done.rows <= load.ok + connections:
        found.append(f"{phase.label}: {done.rows} purchases in the database for {load.ok} HTTP 200s")
    if done.timed_out or done.open_by_status:
        found.append(f"{phase.label}: not final after {done.waited_s:.0f}s: {done.open_by_status}")
    if phase.provider_calls != done.rows:
        found.append(f"{phase.label}: {phase.provider_calls} provider calls for {done.rows} purchases")
    if phase.relayed:
        found.append(f"{phase.label}: the relay pushed {phase.relayed} job(s) a second time (outbox attempts > 0)")
    if done.gagal:
        found.append(f"{phase.label}: {done.gagal} purchases ended gagal (the sim should answer Sukses)")
    return found


def phase_notes(phase: report.WebPhase) -> list[str]:
    """Notes on a web phase's measurement: CPU used by processes outside the benchmark, an open
    loop that could not keep its schedule."""
    late = phase.load.late / phase.load.sent if phase.load.sent else 0.0
    behind = [
        f"{phase.label}: {100 * late:.1f}% of the requests left 2+ ms after their slot (every connection was busy), "
        "so the offered rate was not held and the latency of those is measured from their sending"
    ] if late > LATE_NOTE else []  # fmt: skip
    return behind + [
        f"{phase.label}, {name} phase: processes outside this benchmark used {cpu['other']:.0f}% of a core; "
        "its figures are lower than on an idle machine"
        for name, cpu in (("accept", phase.cpu_accept), ("drain", phase.cpu_drain))
        if cpu.get("other", 0.0) > OTHER_CPU_NOTE
    ]


def queue_problems(db: Database) -> list[str]:
    """Outbox rows left behind, jobs the relay had to push again, dead-lettered messages."""
    found: list[str] = []
    row = db.one("SELECT COUNT(*) AS n, COALESCE(SUM(attempts > 0), 0) AS relayed FROM outbox")
    if int(row["n"]):
        found.append(f"{row['n']} outbox row(s) left after every purchase ended ({row['relayed']} relayed again)")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        dead = {key.decode(): client.zcard(key) for key in client.scan_iter("dramatiq:*.XQ")}
    finally:
        client.close()
    for key, count in dead.items():
        if count:
            found.append(f"{count} message(s) in the dead-letter queue {key}")
    return found


def log_problems(log_dir: Path) -> list[str]:
    """Warnings, errors and tracebacks in the processes' logs (LOG_LEVEL=WARNING keeps only those)."""
    found: list[str] = []
    for path in sorted(log_dir.glob("*.log")):
        bad = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                level = json.loads(line).get("level", "")
            except ValueError:
                level = "ERROR" if ("Traceback" in line or "Error" in line) else ""
            if level in ("WARNING", "ERROR", "CRITICAL"):
                bad.append(line[:400])
        if bad:
            found.append(
                f"{path.name}: {len(bad)} warning/error line(s), first ones:\n    " + "\n    ".join(bad[:LOG_LINES_SHOWN])
            )
    return found


def _pools(threads: int) -> str:
    """The connections a web and a worker process may open: the hot pool (db.raw) and the engine's."""
    size = get_settings().db_pool_size
    worker = worker_pool_size(size, threads + get_settings().worker_in_flight)
    return f"web {size} hot + {engine_size_beside(size)}+10, worker {worker} hot + {engine_size_beside(worker)}"


def describe(args: argparse.Namespace, db: Database) -> dict[str, str]:
    """The settings line of the summary: what ran, and how MariaDB is configured."""
    variables = db.server_variables("version", "innodb_flush_log_at_trx_commit", "innodb_buffer_pool_size", "innodb_log_file_size", "innodb_io_capacity")
    mib = {name: f"{int(variables.get(name, 0)) >> 20} MiB" for name in ("innodb_buffer_pool_size", "innodb_log_file_size")}
    return {
        "duration": f"{args.duration:g}s", "connections": str(args.connections), "wrk threads": str(args.wrk_threads),
        "web workers": str(args.web_workers), "dramatiq": f"{args.workers}x{args.threads} threads, prefetch {args.prefetch}",
        "provider latency": f"{args.provider_latency_ms} ms", "DB pool per process": _pools(args.threads),
        "raw client processes": str(args.raw_processes), "PPOB_RECHECK_SECONDS": "60", "OUTBOX_LEASE_SECONDS": "60",
        "LOG_LEVEL": "WARNING", "MariaDB": variables.get("version", "?"),
        "innodb_flush_log_at_trx_commit": variables.get("innodb_flush_log_at_trx_commit", "?"),
        "MariaDB settings": "stock (--stock-mariadb)" if args.stock_mariadb else "ops/mariadb/loket.cnf, applied for the run",
        **mib, "innodb_io_capacity": variables.get("innodb_io_capacity", "?"), "history": f"{args.history:,} purchases",
    }  # fmt: skip


def busy_before_start() -> float:
    """CPU (% of one core) the machine spends over one second before anything is started."""
    busy = machine_busy_seconds()
    time.sleep(1)
    return 100 * (machine_busy_seconds() - busy)


def raw_phase(run: report.Run, args: argparse.Namespace, label: str, keys: list[str]) -> None:
    """The accept transaction straight against MariaDB (the stack is stopped); adds to `run`."""
    env = {"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "LOG_LEVEL": "WARNING", "OUTBOX_LEASE_SECONDS": "60"}
    say(f"[{label}] {args.connections} tasks in {args.raw_processes} process(es) for {args.duration:.0f}s")
    raw = run_processes(keys, args.connections, args.duration, f"raw{len(run.raw)}", env, args.raw_processes)
    say(f"  {raw.per_second:.1f} commits/s, p50/p99 {raw.latency_ms['p50']:.1f}/{raw.latency_ms['p99']:.1f} ms, "
        f"{raw.errors} errors, CPU: client {raw.client_cpu_pct:.0f}%, mariadb {raw.mariadb_cpu_pct:.0f}%, "
        f"other {raw.other_cpu_pct:.0f}%")  # fmt: skip
    run.raw.append((label, raw))
    if raw.other_cpu_pct > OTHER_CPU_NOTE:
        run.notes.append(f"{label}: processes outside this benchmark used {raw.other_cpu_pct:.0f}% of a core")
    if raw.errors:
        run.problems.append(f"{label}: {raw.errors} failed transactions, first: {raw.first_error}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk_available():
        say("wrk is not installed: apt-get install -y wrk")
        return 2
    # Explicitly: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    log_dir = RESULTS / "logs" / time.strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    options = Options(workers=args.workers, threads=args.threads, prefetch=args.prefetch, web_workers=args.web_workers,
                      provider_latency_ms=args.provider_latency_ms)  # fmt: skip
    db = Database(DATABASE_URL)
    found, differing = ({}, []) if args.stock_mariadb else mariadb_settings.apply(db, mariadb_settings.recommended())
    run = report.Run(settings=describe(args, db) | phases.settings(args))
    run.notes += [f"MariaDB: {line}" for line in differing]
    busy = busy_before_start()
    if busy > OTHER_CPU_NOTE:
        run.notes.append(f"before the run, processes outside this benchmark used {busy:.0f}% of a core")
    bench: BenchStack | None = None
    say(f"logs: {log_dir}; machine busy before start: {busy:.0f}% of a core")
    try:
        bench = BenchStack.start(options, log_dir)
        say(f"stack up: web {bench.web_url}, sim {bench.sim_url}")
        spread = max(1, args.connections)
        keys = bench.register(spread + 1)
        if args.history:
            seconds = history.seed(bench, db, args.history, say)
            run.notes.append(f"history: {args.history:,} purchases and their ledger entries written first, in {seconds:.0f} s")
        spread_keys, hot_keys = keys[:spread], keys[spread:]
        web_phase(bench, db, args, spread_keys, "warm", "warm-up", WARMUP_SECONDS, log_dir)
        run.web.append(web_phase(bench, db, args, spread_keys, "spread", f"{spread} resellers", args.duration, log_dir))
        for rate in open_rates(args):
            run.web.append(web_phase(bench, db, args, spread_keys, f"open{rate:g}", f"{spread} resellers, {rate:g}/s offered",
                                     args.duration, log_dir, rate=rate))  # fmt: skip
        if not args.no_hot:
            run.web.append(web_phase(bench, db, args, hot_keys, "hot", "1 reseller (hot row)", args.duration, log_dir))
        if args.accept_alone or args.all:
            run.web.append(web_phase(bench, db, args, spread_keys, "alone", f"{spread} resellers, workers paused",
                                     args.duration, log_dir, pause_workers=True))  # fmt: skip
        run.endpoints = phases.Phases(bench, db, args, log_dir, say, run.problems, run.notes).run(keys)
        for phase in run.web:
            run.problems += phase_problems(phase, args.connections)
            run.notes += phase_notes(phase)
        run.problems += queue_problems(db)
        run.problems += log_problems(log_dir)
        bench.stop()  # the raw runs get the machine to themselves
        raw_sets = [(f"raw, {spread} resellers", spread_keys)] + (
            [] if args.no_hot else [("raw, 1 reseller (hot row)", hot_keys)]
        )
        for label, raw_keys in raw_sets:
            raw_phase(run, args, label, raw_keys)
        run.problems += drain.health_checks(db)
        text = report.render(run)
        report.write(run, RESULTS / "latest.md")
        say("\n" + text)
        say(f"written: {RESULTS / 'latest.md'}")
        if args.readme:
            readme_table.replace_in(ROOT / "README.md", readme_table.table(run, sys.argv[1:] if argv is None else argv))
            say("README.md: benchmark table replaced")
        return 0
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        # A second Ctrl-C must not cut the cleanup short and leave processes or the database behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if bench is not None:
            bench.stop()
        if not args.keep:
            db.drop()
            flush_redis()
        mariadb_settings.restore(db, found)


if __name__ == "__main__":
    sys.exit(main())
