"""Create the database named by DATABASE_URL if needed and apply schema.sql, then
procedures.sql: `python -m db.apply`."""

from __future__ import annotations

import pathlib
import re
import sys

import pymysql
from sqlalchemy.engine import make_url

from core.settings import get_settings

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema.sql"
PROCEDURES = ROOT / "procedures.sql"
_DELIMITER = re.compile(r"^DELIMITER\s+(\S+)\s*$", re.MULTILINE)


def statements(sql: str) -> list[str]:
    """Split a file as the mysql client does, `DELIMITER //` lines included (procedure bodies
    hold semicolons)."""
    without_comments = re.sub(r"--[^\n]*", "", sql)
    found: list[str] = []
    delimiter = ";"
    position = 0
    for switch in [*_DELIMITER.finditer(without_comments), None]:
        end = switch.start() if switch else len(without_comments)
        found += [s.strip() for s in without_comments[position:end].split(delimiter) if s.strip()]
        if switch:
            delimiter, position = switch.group(1), switch.end()
    return found


def apply_schema(database_url: str, drop_first: bool = False) -> None:
    """Apply schema.sql and procedures.sql.

    database_url: the SQLAlchemy URL of the target database.
    drop_first: drop the database before creating it (tests and benchmarks only).
    """
    url = make_url(database_url)
    conn = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            if drop_first:
                cur.execute(f"DROP DATABASE IF EXISTS `{url.database}`")
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{url.database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cur.execute(f"USE `{url.database}`")
            for statement in statements(SCHEMA.read_text()) + statements(PROCEDURES.read_text()):
                cur.execute(statement)
    finally:
        conn.close()


if __name__ == "__main__":
    apply_schema(get_settings().database_url, drop_first="--drop" in sys.argv)
    print(f"schema applied to {make_url(get_settings().database_url).database}")
