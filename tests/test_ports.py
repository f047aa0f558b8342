"""Where the suite's servers listen: a port is held from the moment it is chosen until the process
started on it takes it over, and a readiness check accepts only the process it started."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from core.listen import INSTANCE_HEADER
from ops.stack import Stack, listening_socket
from tests.harness import LoketStack


class AlwaysHealthy(BaseHTTPRequestHandler):
    """Another program on the port: it answers 200 to everything, as a stray server would."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stray_server() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), AlwaysHealthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_reserved_port_cannot_be_taken_before_its_server_starts(tmp_path: Path):
    stack = Stack(env={}, log_dir=tmp_path)
    port = stack.reserve_port()
    try:
        with pytest.raises(OSError):
            listening_socket(port)
    finally:
        stack.stop()
    listening_socket(port).close()  # released with the stack


def test_a_stray_server_answering_200_is_not_taken_for_the_process_started(tmp_path: Path, stray_server: int):
    """A process that never serves, checked at a URL another program answers: never ready."""
    stack = Stack(env={}, log_dir=tmp_path)
    try:
        with pytest.raises(TimeoutError, match="not ready"):
            stack.start("idle", [sys.executable, "-c", "import time; time.sleep(30)"], url=f"http://127.0.0.1:{stray_server}/health", timeout=2)
    finally:
        stack.stop()


def test_a_web_process_is_not_started_on_a_port_another_program_holds(tmp_path: Path, stray_server: int):
    stack = Stack(env={}, log_dir=tmp_path)
    try:
        with pytest.raises(OSError):
            stack.start_web(stray_server)
        assert stack.processes == []
    finally:
        stack.stop()


async def test_the_shared_stack_answers_as_the_processes_it_started(stack: LoketStack):
    """Each server echoes the instance token its starter gave it; a second server on the same port
    is impossible while the first holds it."""
    for url, name in ((stack.web_url, "web"), (stack.sim_url, "sim")):
        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.get("/health")
        started = stack.process(name)
        assert answer.headers[INSTANCE_HEADER] and answer.headers[INSTANCE_HEADER] == started_instance(started.popen.pid)
        with pytest.raises(OSError):
            listening_socket(int(url.rsplit(":", 1)[1]))


def started_instance(pid: int) -> str:
    """The LOKET_INSTANCE a running process was started with, read from its environment."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"LOKET_INSTANCE="))


def test_a_listening_socket_is_handed_over_not_closed_by_the_child(tmp_path: Path):
    """The harness's copy is closed once the child is ready: only the child holds the port."""
    stack = Stack(env={}, log_dir=tmp_path)
    listener = listening_socket()
    port = listener.getsockname()[1]
    code = "import os, socket, time; s = socket.socket(fileno=int(os.environ['LISTEN_FD'])); print('ready', flush=True); time.sleep(30)"
    try:
        stack.start("holder", [sys.executable, "-c", code], ready="ready", listener=listener)
        assert listener.fileno() == -1
        with pytest.raises(OSError):
            listening_socket(port)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # the child's socket accepts into its backlog
    finally:
        stack.stop()
