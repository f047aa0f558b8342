"""Start and stop Loket's processes (the Procfile's commands) with a given environment.

Used by `make run` (ops.run), the tests and the benchmark, so all three run the same commands.
Each process gets its own session, so a whole dramatiq process tree can be killed at once. A
server's listening socket is bound here and handed to it (core.listen): the port cannot be taken
by anything else between choosing it and serving on it, and readiness is checked against the
instance token the process echoes, so a stray server on the same port is never mistaken for it.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.listen import INSTANCE_HEADER

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A port nothing listens on now, for servers that cannot take a socket (metrics exporters,
    redis-server): a collision makes them fail to bind, loudly, rather than serve somewhere else."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_socket(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    """A bound, listening socket for a child to inherit; port 0 picks a spare one.

    Raises OSError when the port is taken (SO_REUSEADDR only steps over connections of a
    process that has died, never over a live listener)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


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


PR_SET_PDEATHSIG = 1


def _terminate_with_parent(parent: int) -> None:
    """In the child between fork and exec: SIGTERM when the parent dies (it survives the exec).
    A parent that died before the call leaves the child adopted already: then it stops at once."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0 or os.getppid() != parent:
        os._exit(70)


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
        if sig == signal.SIGKILL:
            self.popen.wait(10)

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
    die_with_parent: bool = False
    """Each process gets SIGTERM when the process that started it dies, however it dies (Linux's
    parent-death signal); for a starter with no other threads, as a fork's pre-exec step needs."""
    processes: list[Process] = field(default_factory=list)
    reserved: dict[int, socket.socket] = field(default_factory=dict)

    def reserve_port(self) -> int:
        """A spare port, held by a listening socket until the server started on it takes it over."""
        sock = listening_socket()
        port = int(sock.getsockname()[1])
        self.reserved[port] = sock
        return port

    def _listener(self, port: int, wait: float = 10) -> socket.socket:
        """The socket reserved for `port`, or a new one on it once its last holder is gone (a
        killed process's children release it a moment after the signal)."""
        if (sock := self.reserved.pop(port, None)) is not None:
            return sock
        deadline = time.monotonic() + wait
        while True:
            try:
                return listening_socket(port, self.env.get("HOST", "127.0.0.1"))
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def start(
        self,
        name: str,
        command: list[str],
        ready: str | None = None,
        url: str | None = None,
        timeout: float = 30,
        env: dict[str, str] | None = None,
        listener: socket.socket | None = None,
    ) -> Process:
        """Start a process; wait until its log shows `ready` or `url` answers 200 as this process.

        env: variables for this process only, on top of the stack's.
        listener: a listening socket the process inherits (LISTEN_FD); this side's copy is closed
            once the process has started or failed.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        seen_before = log_path.read_text(errors="replace").count(ready) if ready and log_path.exists() else 0
        instance = uuid.uuid4().hex
        child_env = {**os.environ, **self.env, **(env or {}), "LOKET_INSTANCE": instance}
        if listener is not None:
            child_env["LISTEN_FD"] = str(listener.fileno())
        try:
            with open(log_path, "ab") as out:
                popen = subprocess.Popen(
                    command, cwd=ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                    pass_fds=(listener.fileno(),) if listener is not None else (),
                    preexec_fn=functools.partial(_terminate_with_parent, os.getpid()) if self.die_with_parent else None,
                )  # fmt: skip
            process = Process(name, popen, log_path)
            self.processes.append(process)
            self._wait_ready(process, instance, ready, seen_before, url, timeout)
        finally:
            if listener is not None:
                listener.close()
        return process

    @staticmethod
    def _wait_ready(process: Process, instance: str, ready: str | None, seen_before: int, url: str | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{process.log()[-3000:]}")
            if ready is not None and process.log().count(ready) > seen_before:
                return
            if url is not None:
                try:
                    answer = httpx.get(url, timeout=1)
                except httpx.HTTPError:
                    pass
                else:
                    if answer.status_code == 200 and answer.headers.get(INSTANCE_HEADER) == instance:
                        return
                    if answer.headers.get(INSTANCE_HEADER) not in (None, instance):
                        raise RuntimeError(f"{url} is answered by another process, not the {process.name} started here")
            time.sleep(0.1)
        raise TimeoutError(f"{process.name} not ready after {timeout}s:\n{process.log()[-3000:]}")

    def start_sim(self, port: int) -> Process:
        """The simulator on `port` (reserved with reserve_port, or bound now)."""
        return self.start("sim", sim_command(), url=f"http://127.0.0.1:{port}/health", listener=self._listener(port))

    def start_web(self, port: int, workers: int = 1) -> Process:
        """The web process on `port` (reserved with reserve_port, or bound now)."""
        return self.start(
            "web", web_command(), url=f"http://127.0.0.1:{port}/health", env={"PORT": str(port), "WEB_PROCESSES": str(workers)},
            listener=self._listener(port),
        )  # fmt: skip

    def start_worker(
        self, processes: int = 1, threads: int = 8, name: str = "worker", metrics_port: int | None = None, prefetch: int = 0
    ) -> Process:
        command = worker_command(processes, threads, metrics_port or free_port(), prefetch=prefetch)
        return self.start(name, command, ready="Worker process is ready")

    def start_clock(self, metrics_port: int | None = None) -> Process:
        port = metrics_port or free_port()
        # Ready once its metrics server is bound: a port taken meanwhile ends the clock with an error.
        return self.start("clock", clock_command(), ready="clock ready", env={"CLOCK_METRICS_PORT": str(port)})

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        for sock in self.reserved.values():
            sock.close()
        self.reserved.clear()
