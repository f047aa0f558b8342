"""`make run` leaves nothing behind: however it ends (a hang-up, a SIGTERM, a SIGKILL of its
runner), every process it started stops and its ports are free for the next `make run`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.harness import MariaDB

ROOT = Path(__file__).resolve().parent.parent
# What the Procfile's processes listen on with `make run`'s defaults.
PORTS = [8000, 8100, 8025, 9191, 9192, 9193, 9194, 9300]


def marked(mark: str) -> list[int]:
    """Processes whose environment carries `mark`: everything `make run` started, at any depth."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if f"LOKET_RUN_MARK={mark}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                pass  # gone meanwhile, or not ours to read
    return found


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def runner_pid(make: subprocess.Popen[str], mark: str) -> int:
    """The `python -m ops.run` under make."""
    for pid in marked(mark):
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", b"ops.run"]:
            return pid
    raise AssertionError("ops.run is not running")


@pytest.mark.parametrize("ending", ["SIGHUP to the terminal's process group", "SIGTERM to the runner", "SIGKILL of the runner"])
def test_make_run_stops_every_process_it_started(db: MariaDB, ending: str):
    taken = [port for port in PORTS if not port_free(port)]
    assert not taken, f"ports {taken} are in use; `make run` needs them"
    mark = uuid.uuid4().hex
    env = {
        **os.environ,
        "DATABASE_URL": f"{db.url}_run",
        "REDIS_NAMESPACE": f"{os.environ['REDIS_NAMESPACE']}-run",
        "LOKET_RUN_MARK": mark,
        "SIM_PENDING_MS": "300",
    }
    make = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: list[str] = []
    try:
        assert make.stdout is not None
        for line in make.stdout:
            output.append(line)
            if "Loket is running" in line:
                break
        else:
            raise AssertionError("make run ended before it was running:\n" + "".join(output[-40:]))
        started = marked(mark)
        assert len(started) >= 10, started  # make, ops.run, eight Procfile processes and dramatiq's forks
        if ending.startswith("SIGHUP"):
            os.killpg(make.pid, signal.SIGHUP)
        else:
            os.kill(runner_pid(make, mark), signal.SIGTERM if ending.startswith("SIGTERM") else signal.SIGKILL)
        deadline = time.monotonic() + 40
        while (left := marked(mark)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left if Path(f"/proc/{pid}").exists()]
        assert [port for port in PORTS if not port_free(port)] == []
    finally:
        for pid in marked(mark):
            os.kill(pid, signal.SIGKILL)
        make.wait(10)
        MariaDB(f"{db.url}_run").drop()
