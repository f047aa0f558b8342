"""Where the suite may write: only databases and Redis keys under names reserved for tests.

The suite drops and recreates its databases and deletes its Redis keys, so it never takes a name
from the environment that could be an operator's: an exported `DATABASE_URL`, `REDIS_URL` or
`REDIS_NAMESPACE` that does not carry the reserved prefix makes it refuse to start. The servers it
uses are chosen with LOKET_TEST_MARIADB and LOKET_TEST_REDIS_URL, which name no database.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import make_url

DATABASE_PREFIX = "loket_test_"
NAMESPACE_PREFIX = "loket-test-"
DEFAULT_MARIADB = "mysql+asyncmy://root@127.0.0.1:3306"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"


def refusals(environ: Mapping[str, str]) -> list[str]:
    """Why the suite must not start in `environ`: one reason per variable that points elsewhere."""
    found = []
    if "DATABASE_URL" in environ:
        name = make_url(environ["DATABASE_URL"]).database or ""
        if not name.startswith(DATABASE_PREFIX):
            found.append(f"DATABASE_URL names the database {name!r}, which the tests would drop; they use only databases named {DATABASE_PREFIX}*")
    if "REDIS_NAMESPACE" in environ and not environ["REDIS_NAMESPACE"].startswith(NAMESPACE_PREFIX):
        found.append(f"REDIS_NAMESPACE is {environ['REDIS_NAMESPACE']!r}, whose keys the tests would delete; they use only {NAMESPACE_PREFIX}*")
    if "REDIS_URL" in environ:
        found.append("REDIS_URL is set; the tests choose their Redis with LOKET_TEST_REDIS_URL, so that they never write into one by accident")
    if "LOKET_TEST_MARIADB" in environ and make_url(environ["LOKET_TEST_MARIADB"]).database:
        found.append("LOKET_TEST_MARIADB names a database; it names only the server, the tests name their databases themselves")
    return found


# Why this session must not start, as seen in the environment it was started with.
REFUSED: list[str] = []


def session_environ(environ: Mapping[str, str], session: str) -> dict[str, str]:
    """The settings that point code the tests import at this session's own database and keys;
    none when `environ` is refused (the reasons are kept in REFUSED)."""
    REFUSED[:] = refusals(environ)
    if REFUSED:
        return {}
    server = environ.get("LOKET_TEST_MARIADB", DEFAULT_MARIADB).rstrip("/")
    return {
        "DATABASE_URL": f"{server}/{DATABASE_PREFIX}{session}",
        "REDIS_URL": environ.get("LOKET_TEST_REDIS_URL", DEFAULT_REDIS_URL),
        "REDIS_NAMESPACE": f"{NAMESPACE_PREFIX}{session}",
        "LOKET_ENV": "development",
    }
