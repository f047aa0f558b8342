"""ops/mariadb/loket.cnf, the MariaDB settings Loket recommends, applied to the server the
benchmark measures for the length of a run, then put back as they were.

All but one can be set at runtime on MariaDB 10.11 (the buffer pool and the redo log resize
online), so the machine's server keeps running; `--stock-mariadb` leaves it alone. The one that
cannot (innodb_doublewrite) is checked instead: the run notes it if it differs.
"""

from __future__ import annotations

import configparser
import time
from pathlib import Path

from bench.env import Database

SETTINGS_FILE = Path(__file__).resolve().parent.parent / "ops" / "mariadb" / "loket.cnf"
CHECKED_ONLY = frozenset({"innodb_doublewrite"})
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
RESIZE_TIMEOUT_SECONDS = 120


def recommended(path: Path = SETTINGS_FILE) -> dict[str, int]:
    """The [mariadb] section of the settings file, each value as the number SET GLOBAL takes."""
    parser = configparser.ConfigParser(inline_comment_prefixes=("#",))
    parser.read_string(path.read_text())
    return {name: _number(value) for name, value in parser["mariadb"].items()}


def _number(value: str) -> int:
    value = value.strip()
    if value.upper() in ("ON", "OFF"):
        return int(value.upper() == "ON")
    unit = _UNITS.get(value[-1:].upper(), 0)
    return int(value[:-1]) * unit if unit else int(value)


def apply(db: Database, wanted: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """Set each wanted value that differs; answers the values found (to restore()) and, for a
    setting that cannot be changed at runtime and differs, a line saying so."""
    found = {name: _number(value) for name, value in db.server_variables(*wanted).items()}
    differing: list[str] = []
    try:
        for name, value in wanted.items():
            if found.get(name) == value:
                continue
            if name in CHECKED_ONLY:
                differing.append(f"{name} is {found.get(name)}, not {value} (set at server start only)")
                continue
            _set(db, name, value)
    except BaseException:
        restore(db, found)  # a run that does not start leaves the server as it found it
        raise
    return found, differing


def restore(db: Database, found: dict[str, int]) -> None:
    """Put back the values apply() found."""
    now = {name: _number(value) for name, value in db.server_variables(*found).items()} if found else {}
    for name, value in found.items():
        if name not in CHECKED_ONLY and now.get(name) != value:
            _set(db, name, value)


def _set(db: Database, name: str, value: int) -> None:
    db.rows(f"SET GLOBAL {name} = %s", value, in_database=False)
    if name == "innodb_buffer_pool_size":
        _wait_for_buffer_pool_resize(db)


def _wait_for_buffer_pool_resize(db: Database) -> None:
    """The buffer pool resizes in the background after SET GLOBAL returns."""
    deadline = time.monotonic() + RESIZE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status = db.rows("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_resize_status'", in_database=False)
        text = status[0]["Value"] if status else ""
        if not text or "complete" in text.lower():
            return
        time.sleep(0.2)
    raise TimeoutError("MariaDB's buffer pool resize did not complete")
