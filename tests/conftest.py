"""Test harness: real MariaDB and Redis, Loket's real processes, the local provider simulator.

The machine's MariaDB (127.0.0.1:3306) and Redis (127.0.0.1:6379) serve every test; each stack
gets its own database, and tests that stop a server start their own instance (tests/servers.py).
"""

from __future__ import annotations

import os

from tests import isolation

# Settings for code imported into the test process itself (domain tests); before any import of them.
# A database and a key namespace per test session, so that two sessions on one machine never drop
# each other's tables, and never anything outside the names reserved for tests.
os.environ.update(isolation.session_environ(os.environ, str(os.getpid())))

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
from tests.invariants import database_exists, money_violations
from tests.servers import MariaDBServer, RedisServer

LOG_ROOT = pathlib.Path(__file__).resolve().parent.parent / ".run" / "tests" / str(os.getpid())


def pytest_configure(config: pytest.Config) -> None:
    if isolation.REFUSED:
        raise pytest.UsageError("the tests refuse to start:\n  " + "\n  ".join(isolation.REFUSED) + "\nUnset these variables to run the tests.")


@pytest.fixture(autouse=True)
def money_stays_right(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that used the shared database: its money invariants still hold."""
    yield
    if "db" in request.fixturenames:
        violations = money_violations(request.getfixturevalue("db"))
        assert not violations, "money invariants broken:\n" + "\n".join(violations)


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
    namespace = os.environ["REDIS_NAMESPACE"]
    for key in [*client.scan_iter(f"{namespace}:*"), *client.scan_iter(f"{namespace}-*")]:  # the private stacks' too
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
def mariadb_server() -> Iterator[MariaDBServer]:
    """A mariadbd of the test's own, on a spare port and data folder, that it may kill and restart."""
    server = MariaDBServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def make_stack(db: MariaDB) -> Iterator:
    """Start a private stack: its own database, and whatever Redis URL the test gives it."""
    started: list[LoketStack] = []

    def start(redis_url: str, extra_env: dict[str, str] | None = None, database_server: str | None = None, **options: object) -> LoketStack:
        """database_server: a server URL without a database (a test's own MariaDB); the machine's by default."""
        name = uuid.uuid4().hex[:8]
        url = f"{db.url}_{name}" if database_server is None else f"{database_server}/loket_{name}"
        # Queues of its own: on the shared stack's Redis, the shared workers would otherwise take
        # this stack's jobs and run them against the shared database.
        env = {"REDIS_NAMESPACE": f"{os.environ['REDIS_NAMESPACE']}-{name}", **(extra_env or {})}
        loket = LoketStack.start(name=name, database_url=url, redis_url=redis_url, log_dir=LOG_ROOT / name, extra_env=env, **options)
        started.append(loket)
        return loket

    yield start
    violations: list[str] = []
    for loket in started:
        loket.stop()
        if database_exists(loket.db):
            violations += money_violations(loket.db)
        loket.db.drop()
    assert not violations, "money invariants broken:\n" + "\n".join(violations)


__all__ = ["free_port"]
