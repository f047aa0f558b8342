"""Start and stop Loket's processes (the Procfile's commands) with a given environment.

Used by `make run` (ops.run), the tests and the benchmark, so all three run the same commands.
Each process gets its own session, so a whole dramatiq process tree can be killed at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def web_command() -> list[str]:
    """The Procfile's web command; PORT and WEB_PROCESSES come from the environment."""
    return [sys.executable, "-m", "web.serve"]


def worker_command(processes: int, threads: int, metrics_port: int, queues: list[str] | None = None, prefetch: int = 0) -> list[str]:
    """The Procfile's worker command; prefetch 0 leaves Dramatiq's own (twice the threads)."""
    command = [sys.executable, "-m", "workers.run", "--metrics-port", str(metrics_port), "--processes", str(processes), "--threads", str(threads)]
    return command + (["--prefetch", str(prefetch)] if prefetch else []) + (queues or [])


def clock_command() -> list[str]:
    return [sys.executable, "-m", "workers.clock"]


def sim_command() -> list[str]:
    return [sys.executable, "-m", "sim"]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (dramatiq forks its worker processes)."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            # Only the leader: dramatiq forwards SIGTERM to its children itself, and a second
            # one from the group signal makes them skip the clean shutdown.
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(5)


@dataclass
class Stack:
    """A set of Loket processes sharing one environment.

    env: variables on top of os.environ (DATABASE_URL, REDIS_URL, PORT, PPOB_BASE_URL, ...).
    log_dir: where each process's output goes, one file per process.
    """

    env: dict[str, str]
    log_dir: Path
    processes: list[Process] = field(default_factory=list)

    def start(
        self,
        name: str,
        command: list[str],
        ready: str | None = None,
        url: str | None = None,
        timeout: float = 30,
        env: dict[str, str] | None = None,
    ) -> Process:
        """Start a process; wait until its log shows `ready` or `url` answers 200.

        env: variables for this process only, on top of the stack's.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        seen_before = log_path.read_text(errors="replace").count(ready) if ready and log_path.exists() else 0
        out = open(log_path, "ab")
        popen = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **self.env, **(env or {})}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                raise RuntimeError(f"{name} exited with {popen.returncode}:\n{process.log()[-3000:]}")
            if ready is not None and process.log().count(ready) > seen_before:
                return process
            if url is not None:
                try:
                    if httpx.get(url, timeout=1).status_code == 200:
                        return process
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"{name} not ready after {timeout}s:\n{process.log()[-3000:]}")

    def start_sim(self, port: int) -> Process:
        return self.start("sim", sim_command(), url=f"http://127.0.0.1:{port}/health")

    def start_web(self, port: int, workers: int = 1) -> Process:
        return self.start("web", web_command(), url=f"http://127.0.0.1:{port}/health", env={"PORT": str(port), "WEB_PROCESSES": str(workers)})

    def start_worker(
        self, processes: int = 1, threads: int = 8, name: str = "worker", metrics_port: int | None = None, prefetch: int = 0
    ) -> Process:
        command = worker_command(processes, threads, metrics_port or free_port(), prefetch=prefetch)
        return self.start(name, command, ready="Worker process is ready")

    def start_clock(self, metrics_port: int | None = None) -> Process:
        port = metrics_port or free_port()
        return self.start("clock", clock_command(), url=f"http://127.0.0.1:{port}/metrics", env={"CLOCK_METRICS_PORT": str(port)})

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
