"""Bring the database named by DATABASE_URL to the newest schema: create it if needed, then
`alembic upgrade head` (db/migrations). `python -m db.apply [--drop]`.

schema.sql and procedures.sql are the readable snapshot of head; apply_snapshot loads them as
they are, for the test that compares them with what the migrations build.
"""

from __future__ import annotations

import logging
import pathlib
import sys

import pymysql
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from core.settings import load
from db.migrations.helpers import DuplicateRows
from db.sqlfile import file_statements, statements

__all__ = ["PROCEDURES", "SCHEMA", "apply_schema", "apply_snapshot", "create_database", "statements", "upgrade"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema.sql"
PROCEDURES = ROOT / "procedures.sql"
ALEMBIC_INI = ROOT / "alembic.ini"


def server_connection(database_url: str, database: str | None = None) -> pymysql.Connection:
    """An autocommit connection to the server of database_url.

    database: the database to USE, or None for none (to create or drop one).
    """
    url = make_url(database_url)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=database,
        charset="utf8mb4",
        autocommit=True,
    )


def create_database(database_url: str, drop_first: bool = False) -> None:
    """Create the database of database_url if it does not exist.

    drop_first: drop it before (tests and benchmarks only).
    """
    name = make_url(database_url).database
    conn = server_connection(database_url)
    try:
        with conn.cursor() as cur:
            if drop_first:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration of alembic.ini, aimed at database_url (env.py reads the attribute)."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Run the migrations of db/migrations on database_url up to revision."""
    command.upgrade(alembic_config(database_url), revision)


def apply_schema(database_url: str, drop_first: bool = False) -> None:
    """Create the database if needed and upgrade it to head.

    database_url: the SQLAlchemy URL of the target database (any mysql driver name).
    drop_first: drop the database before creating it (tests and benchmarks only).
    """
    create_database(database_url, drop_first=drop_first)
    upgrade(database_url)


def apply_snapshot(database_url: str, drop_first: bool = False) -> None:
    """Create the database and load schema.sql and procedures.sql into it as they are, without
    migrations or a version table: what the snapshot describes."""
    create_database(database_url, drop_first=drop_first)
    conn = server_connection(database_url, make_url(database_url).database)
    try:
        with conn.cursor() as cur:
            for statement in file_statements(SCHEMA, PROCEDURES):
                cur.execute(statement)
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    """Upgrade the database of DATABASE_URL (`--drop`: drop it first); 1 when a revision refuses."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = load(secrets=False).database_url
    try:
        apply_schema(url, drop_first="--drop" in argv)
    except DuplicateRows as refused:
        print(f"upgrade stopped: {refused}", file=sys.stderr)
        return 1
    print(f"schema of {make_url(url).database} at head")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
