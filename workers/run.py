"""The worker command: `python -m workers.run [--metrics-port P] [--processes N] [--threads T] [--prefetch M] [queue ...]`.

It prepares a fresh multiprocess metrics folder for this worker pool (so several dramatiq pools
on one host never share a port or a folder, see Dramatiq issue #280), then replaces itself with
`dramatiq workers.entry`, so signals reach Dramatiq directly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from core.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("queues", nargs="*", help="queues to consume (all when none are given)")
    parser.add_argument("--processes", type=int, default=int(os.environ.get("WORKER_PROCESSES", 1)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WORKER_THREADS", 8)))
    parser.add_argument("--metrics-port", type=int, default=9191, help="where this pool's Prometheus metrics are served")
    parser.add_argument(
        "--prefetch", type=int, default=0,
        help="messages a worker process may hold from each queue, fetched and not yet acknowledged (0: Dramatiq's twice the threads)",
    )  # fmt: skip
    args = parser.parse_args()
    get_settings()  # a setting at fault stops the pool here, named, before any worker process forks

    folder = Path(os.environ.get("LOKET_METRICS_DIR", Path(tempfile.gettempdir()) / "loket-metrics")) / f"worker-{args.metrics_port}"
    shutil.rmtree(folder, ignore_errors=True)  # counters of processes from an earlier run must not add up
    folder.mkdir(parents=True)
    os.environ["dramatiq_prom_db"] = os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    os.environ["dramatiq_prom_port"] = str(args.metrics_port)
    os.environ.setdefault("dramatiq_prom_host", os.environ.get("METRICS_HOST", "127.0.0.1"))

    # Each worker process sizes its database pool to its threads (workers.resources).
    os.environ["WORKER_THREADS"] = str(args.threads)
    # A hand-off actor's thread is free again at once, but its message counts against the
    # prefetch until its grouped acknowledgement lands (workers.group_ack): with 8 threads,
    # Dramatiq's 16 leave the consumer fetching in small bites between idle waits.
    if args.prefetch > 0:
        os.environ["dramatiq_queue_prefetch"] = str(args.prefetch)
    command = ["dramatiq", "workers.entry", "--processes", str(args.processes), "--threads", str(args.threads)]
    if args.queues:
        command += ["--queues", *args.queues]
    dramatiq = shutil.which("dramatiq", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    os.execv(dramatiq or "dramatiq", command)


if __name__ == "__main__":
    main()
