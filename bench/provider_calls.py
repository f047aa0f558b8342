"""CPU per provider call of provider.digiflazz's client, against the simulator in its own process.

    .venv/bin/python -m bench.provider_calls [--calls 20000] [--concurrency 64] [--rounds 3]

A purchase makes one provider call, so this client's CPU is a direct share of a worker's CPU per
purchase. The simulator runs as a separate process (SIM_LATENCY_MS=0, no callbacks), so the CPU
measured (this process's user + system time over the calls) is the client's and its event loop's
alone. Each round prints calls per second and CPU microseconds per call; compare clients by running
this alternately in two checkouts in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import uvloop

from domain.provider_answers import Outcome
from ops.stack import Stack
from provider.digiflazz import DigiflazzClient
from sim.settings import Settings

SIM = Settings()


async def one_round(base_url: str, calls: int, concurrency: int) -> tuple[float, float]:
    """(calls per second, CPU µs per call) of `calls` topups, `concurrency` at a time."""
    client = DigiflazzClient(base_url, SIM.ppob_username, SIM.ppob_api_key, timeout=10, connections=concurrency)
    queue = iter(range(calls))
    failures = 0

    async def caller() -> None:
        nonlocal failures
        for n in queue:
            answer = await client.topup(f"bench-{os.getpid()}-{time.monotonic_ns()}-{n}", "pulsa10", "081200000000")
            failures += answer.outcome not in (Outcome.SUKSES, Outcome.PENDING)

    try:
        await asyncio.gather(*(caller() for _ in range(min(concurrency, 8))))  # warm the connections
        queue = iter(range(calls))
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await client.close()
    if failures:
        raise SystemExit(f"{failures} calls got neither Sukses nor Pending: the figures would not compare")
    return calls / wall, cpu / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="provider calls per round")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight at once")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        stack = Stack(env={"SIM_LATENCY_MS": "0", "SIM_PENDING_MS": "0", "SIM_CALLBACK_URL": "", "LOG_LEVEL": "WARNING"}, log_dir=Path(logs))
        try:
            port = stack.reserve_port()
            stack.start_sim(port)
            results = [uvloop.run(one_round(f"http://127.0.0.1:{port}/v1", args.calls, args.concurrency)) for _ in range(args.rounds)]
        finally:
            stack.stop()
    for n, (rate, cpu_us) in enumerate(results, 1):
        print(f"round {n}: {rate:8.0f} calls/s  {cpu_us:6.1f} µs CPU per call")
    print(f"median: {statistics.median(r for r, _ in results):8.0f} calls/s  {statistics.median(c for _, c in results):6.1f} µs CPU per call")


if __name__ == "__main__":
    main()
