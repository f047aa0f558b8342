"""Test harness: real MariaDB and Redis, Loket's real processes, the local provider simulator.

The machine's MariaDB (127.0.0.1:3306) and Redis (127.0.0.1:6379) serve every test; each stack
gets its own database, and tests that stop a server start their own instance (tests/servers.py).
"""

from __future__ import annotations

import os

# Settings for code imported into the test process itself (domain tests); before any import of them.
# A database per test session, so that two sessions on one machine never drop each other's tables.
os.environ.setdefault("DATABASE_URL", f"mysql+asyncmy://root@127.0.0.1:3306/loket_test_{os.getpid()}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("REDIS_NAMESPACE", f"loket-test-{os.getpid()}")  # and its own Redis keys

import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis as sync_redis

from core.security import issue_staff_token
from db.apply import apply_schema
from ops.stack import free_port
from sim.mailbox import Mailbox, serve
from tests.harness import LoketStack, MariaDB, fast_env
from tests.servers import RedisServer

LOG_ROOT = pathlib.Path(__file__).resolve().parent.parent / ".run" / "tests" / str(os.getpid())


@pytest.fixture(scope="session")
def db() -> Iterator[MariaDB]:
    """The database that the in-process domain tests and the shared stack use."""
    url = os.environ["DATABASE_URL"]
    apply_schema(url, drop_first=True)
    database = MariaDB(url)
    yield database
    database.drop()


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a spare port: where the shared stack's workers send e-mail."""
    box = Mailbox()
    controller = serve("127.0.0.1", free_port(), box)
    yield box
    controller.stop()


@pytest.fixture(scope="session")
def stack(db: MariaDB, mailbox: Mailbox) -> Iterator[LoketStack]:
    """One shared stack (sim, web, worker, clock) on the machine's Redis (database 9)."""
    redis_url = os.environ["REDIS_URL"]
    loket = LoketStack.start(
        name="shared",
        database_url=db.url,
        redis_url=redis_url,
        log_dir=LOG_ROOT / "shared",
        apply=False,
        extra_env={"SMTP_PORT": str(mailbox.port)},
    )
    yield loket
    loket.stop()
    client = sync_redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{os.environ['REDIS_NAMESPACE']}*"):  # the private stacks' namespaces too
        client.delete(key)


@pytest.fixture
async def api(stack: LoketStack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the shared stack's web process; the simulator is reset for each test."""
    async with httpx.AsyncClient(base_url=stack.web_url, timeout=30) as client:
        await stack.reset_sim()
        yield client


@pytest.fixture(scope="session")
def admin_token() -> str:
    return issue_staff_token(fast_env()["JWT_SECRET"], "test-admin", 100)


def staff_headers(sub: str, level: int) -> dict[str, str]:
    return {"authorization": "Bearer " + issue_staff_token(fast_env()["JWT_SECRET"], sub, level)}


@pytest.fixture(scope="session")
def admin() -> dict[str, str]:
    """Headers of a staff member with role_level 50 (writes master data)."""
    return staff_headers("ops-ani", 50)


@pytest.fixture(scope="session")
def kiosk() -> dict[str, str]:
    """Headers of a kiosk: role_level 1 (reads, creates transactions)."""
    return staff_headers("kiosk-7", 1)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, on a spare port, that it may stop and restart."""
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def make_stack(db: MariaDB) -> Iterator:
    """Start a private stack: its own database, and whatever Redis URL the test gives it."""
    started: list[LoketStack] = []

    def start(redis_url: str, extra_env: dict[str, str] | None = None, **options: object) -> LoketStack:
        name = "t" + uuid.uuid4().hex[:8]
        url = db.url.rsplit("/", 1)[0] + f"/loket_{name}"
        # Queues of its own: on the shared stack's Redis, the shared workers would otherwise take
        # this stack's jobs and run them against the shared database.
        env = {"REDIS_NAMESPACE": f"{os.environ['REDIS_NAMESPACE']}-{name}", **(extra_env or {})}
        loket = LoketStack.start(name=name, database_url=url, redis_url=redis_url, log_dir=LOG_ROOT / name, extra_env=env, **options)
        started.append(loket)
        return loket

    yield start
    for loket in started:
        loket.stop()
        loket.db.drop()


__all__ = ["free_port"]
