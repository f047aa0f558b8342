"""What the revisions share: running SQL as written, and reading what the live database has."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alembic import op
from sqlalchemy import text

from db.sqlfile import file_statements


def execute_sql(statement: str) -> None:
    """Run one statement as written, through op.execute: its colons and percent signs are text,
    never parameters (procedure bodies hold both).

    statement: one statement, a whole CREATE PROCEDURE body included, without a delimiter.
    """
    op.execute(text(statement.replace(":", r"\:")))


def execute_files(*paths: pathlib.Path) -> None:
    """Run every statement of the SQL files in turn (`DELIMITER` lines understood)."""
    for statement in file_statements(*paths):
        execute_sql(statement)


def rows(query: str, **params: Any) -> list[dict[str, Any]]:
    """The rows of a read on the migrating connection, as dicts."""
    return [dict(row._mapping) for row in op.get_bind().execute(text(query), params)]


def column(table: str, name: str) -> dict[str, Any] | None:
    """information_schema's row of the column table.name in the current database, or None."""
    found = rows(
        "SELECT COLUMN_NAME, IS_NULLABLE, COLUMN_TYPE FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table AND COLUMN_NAME = :name",
        table=table, name=name,
    )  # fmt: skip
    return found[0] if found else None


def index_exists(table: str, name: str) -> bool:
    """Whether table has an index (a key or a unique key) called name."""
    return bool(rows(
        "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table AND INDEX_NAME = :name LIMIT 1",
        table=table, name=name,
    ))  # fmt: skip


def duplicates(table: str, columns: tuple[str, ...], key: str = "id", limit: int = 20) -> list[dict[str, Any]]:
    """The groups of rows of table that share a value of columns (NULLs never clash in a UNIQUE
    key, so groups holding a NULL are left out): a UNIQUE key on columns would refuse them.

    key: the column that names each row in the answer (its ids, comma-separated, in "ids").
    limit: at most this many groups.
    """
    listed = ", ".join(columns)
    not_null = " AND ".join(f"{name} IS NOT NULL" for name in columns)
    return rows(
        f"SELECT {listed}, COUNT(*) AS copies, GROUP_CONCAT({key} ORDER BY {key}) AS ids FROM {table}"
        f" WHERE {not_null} GROUP BY {listed} HAVING COUNT(*) > 1 ORDER BY MIN({key}) LIMIT {int(limit)}"
    )


class DuplicateRows(RuntimeError):
    """Rows that a UNIQUE key about to be added would refuse: the upgrade stops before any change
    of its revision, and the message names them."""


@dataclass(frozen=True)
class Repair:
    """One thing a table may lack.

    what: how the log names it.
    missing: whether the live database lacks it.
    clause: the ALTER TABLE clause that adds it.
    unique: the columns of the UNIQUE key it adds, whose rows are checked for duplicates first.
    settle: what the operator does about such duplicates, in the refusal.
    """

    table: str
    what: str
    missing: Callable[[], bool]
    clause: str
    unique: tuple[str, ...] = ()
    settle: str = ""


def lacks_column(table: str, name: str) -> Callable[[], bool]:
    """A Repair.missing: table has no column called name."""
    return lambda: column(table, name) is None


def lacks_index(table: str, name: str) -> Callable[[], bool]:
    """A Repair.missing: table has no index called name."""
    return lambda: not index_exists(table, name)


def not_nullable(table: str, name: str) -> Callable[[], bool]:
    """A Repair.missing: the column table.name exists and refuses NULL."""
    return lambda: (column(table, name) or {}).get("IS_NULLABLE") == "NO"


def refuse_duplicates(missing: list[Repair], revision: str) -> None:
    """Stop, naming them, when rows break a UNIQUE key that is about to be added."""
    problems = []
    for repair in missing:
        if not repair.unique or any(column(repair.table, name) is None for name in repair.unique):
            continue  # a column added by this revision holds only NULLs: nothing can clash
        for group in duplicates(repair.table, repair.unique):
            values = ", ".join(f"{name}={group[name]!r}" for name in repair.unique)
            problems.append(f"{repair.table} rows {group['ids']} share {values} ({group['copies']} copies): {repair.settle}")
    if problems:
        raise DuplicateRows(
            f"revision {revision} cannot add a UNIQUE key that rows of the database break, and changed nothing."
            " Settle the rows by hand, then upgrade again:\n  " + "\n  ".join(problems)
        )


def apply_repairs(repairs: list[Repair], revision: str, log: logging.Logger) -> None:
    """Add each thing of repairs that the database lacks, logging it, one ALTER TABLE per table;
    first refuse (DuplicateRows) when rows break a UNIQUE key among them.

    revision: the revision that repairs, as its refusal names it.
    """
    missing = [repair for repair in repairs if repair.missing()]
    if not missing:
        log.info("nothing to repair: every column and key of schema.sql is present")
        return
    refuse_duplicates(missing, revision)
    for table in dict.fromkeys(repair.table for repair in missing):
        clauses = [repair for repair in missing if repair.table == table]
        for repair in clauses:
            log.warning("missing %s: adding it", repair.what)
        op.execute(f"ALTER TABLE {table} " + ", ".join(repair.clause for repair in clauses))
