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


def web_command(port: int, workers: int = 1) -> list[str]:
    return [
        str(BIN / "uvicorn"), "web.main:app", "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--workers", str(workers),
    ]  # fmt: skip


def worker_command(processes: int, threads: int, queues: list[str] | None = None) -> list[str]:
    command = [str(BIN / "dramatiq"), "workers.entry", "--processes", str(processes), "--threads", str(threads)]
    return command + (["--queues", *queues] if queues else [])


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

    def start(self, name: str, command: list[str], ready: str | None = None, url: str | None = None, timeout: float = 30) -> Process:
        """Start a process; wait until its log shows `ready` or `url` answers 200."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        seen_before = log_path.read_text(errors="replace").count(ready) if ready and log_path.exists() else 0
        out = open(log_path, "ab")
        popen = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
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
        return self.start("web", web_command(port, workers), url=f"http://127.0.0.1:{port}/health")

    def start_worker(self, processes: int = 1, threads: int = 8, name: str = "worker") -> Process:
        return self.start(name, worker_command(processes, threads), ready="Worker process is ready")

    def start_clock(self) -> Process:
        return self.start("clock", clock_command(), ready="clock started")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
