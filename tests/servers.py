"""Private server instances for tests that stop or restart a server.

The machine's own MariaDB and Redis stay up for every other test.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql
import redis

from ops.stack import free_port


class RedisServer:
    """A redis-server on a spare port and folder, stoppable and restartable on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="loket-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--save", "", "--appendonly", "no",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.process.returncode} (port taken?)")
            try:
                # The server answering must be the one started here, not another on a reused port.
                if client.info("server")["process_id"] == self.process.pid:
                    return
                raise RuntimeError(f"port {self.port} is served by another redis-server")
            except redis.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        """Stop without saving: everything in it is lost, as after a crash of a cache-only Redis."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MariaDBServer:
    """A mariadbd of its own on a spare port and data folder, killable and restartable on the same port.

    Its root user has no password and is reached over TCP only, as the machine's own server is.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="loket-mariadb-"))
        self.datadir = self.dir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [
                shutil.which("mariadb-install-db") or "mariadb-install-db", "--no-defaults",
                f"--datadir={self.datadir}", "--user=root", "--auth-root-authentication-method=normal",
                "--skip-test-db", "--skip-name-resolve",
            ],  # fmt: skip
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        """The server's URL without a database."""
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}"

    def start(self) -> None:
        with (self.dir / "error.log").open("ab") as error_log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [
                    "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                    "--bind-address=127.0.0.1", f"--port={self.port}", f"--socket={self.dir / 'mysqld.sock'}",
                    f"--pid-file={self.dir / 'mysqld.pid'}", "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
                    "--innodb-log-file-size=32M", "--max-connections=200", "--character-set-server=utf8mb4",
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=error_log,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd on port {self.port} exited with {self.process.returncode}; see {self.dir}/error.log")
            try:
                conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1)
            except pymysql.err.OperationalError:
                time.sleep(0.1)
                continue
            with conn:  # the server answering must be this one, not another on a reused port
                with conn.cursor() as cur:
                    cur.execute("SELECT @@datadir")
                    (datadir,) = cur.fetchone() or ("",)
            if Path(datadir).resolve() != self.datadir.resolve():
                raise RuntimeError(f"port {self.port} is served by another MariaDB ({datadir})")
            return
        raise TimeoutError("mariadbd did not start")

    def kill(self) -> None:
        """SIGKILL: what a crashed or OOM-killed database looks like to its clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self.process = None

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
