"""Split a SQL file into statements, as the mysql client does."""

from __future__ import annotations

import pathlib
import re

_DELIMITER = re.compile(r"^DELIMITER\s+(\S+)\s*$", re.MULTILINE)


def statements(sql: str) -> list[str]:
    """The statements of sql, `DELIMITER //` lines included (procedure bodies hold semicolons).

    sql: the text of a file such as schema.sql or procedures.sql; `--` comments are dropped.
    """
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


def file_statements(*paths: pathlib.Path) -> list[str]:
    """The statements of each file in turn."""
    return [statement for path in paths for statement in statements(path.read_text())]
