"""The disk's fsync latency, beside a benchmark run: is a stall of every commit the disk's?

`python -m bench.fsync_probe [--seconds 100] [--dir /var/lib/mysql] [--slow-ms 80]` writes 4 KiB
and fsyncs it every 5 ms in a file of its own on MariaDB's file system (removed at the end), as a
commit's redo log write does, and prints the latencies' p50 / p99 / max and each fsync slower than
--slow-ms with the time it ended: compare them with the benchmark's "longest stretch without a
commit ... ending at" lines. ~200 small fsyncs a second: a little load of its own on the disk.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

BLOCK = b"\0" * 4096
PAUSE_SECONDS = 0.005


def probe(directory: Path, seconds: float, slow_ms: float) -> tuple[list[float], list[tuple[float, float]]]:
    """(every fsync's latency in ms, sorted; (end time, ms) of each slower than slow_ms)."""
    path = directory / f"loket-fsync-probe-{os.getpid()}.tmp"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    latencies: list[float] = []
    slow: list[tuple[float, float]] = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            os.pwrite(fd, BLOCK, 0)
            os.fsync(fd)
            ms = (time.perf_counter() - started) * 1e3
            latencies.append(ms)
            if ms > slow_ms:
                slow.append((time.time(), ms))
            time.sleep(PAUSE_SECONDS)
    finally:
        os.close(fd)
        path.unlink()
    return sorted(latencies), slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=100)
    parser.add_argument("--dir", type=Path, default=Path("/var/lib/mysql"), help="a folder on MariaDB's file system")
    parser.add_argument("--slow-ms", type=float, default=80)
    args = parser.parse_args()
    latencies, slow = probe(args.dir, args.seconds, args.slow_ms)
    n = len(latencies)
    print(f"{n} fsyncs: p50 {latencies[n // 2]:.2f} ms, p99 {latencies[int(n * 0.99)]:.2f} ms, max {latencies[-1]:.1f} ms")
    for ended, ms in slow:
        print(f"  {ms:.0f} ms, ending at {ended:.2f}")


if __name__ == "__main__":
    main()
