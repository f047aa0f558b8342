"""Reading database errors."""

from __future__ import annotations

from asyncmy.constants import ER
from sqlalchemy.exc import IntegrityError


def is_duplicate_key(error: IntegrityError) -> bool:
    """The statement hit a UNIQUE key (MySQL error 1062)."""
    return bool(error.orig is not None and error.orig.args and error.orig.args[0] == ER.DUP_ENTRY)
