"""Reading database errors."""

from __future__ import annotations

from asyncmy.constants import CR, ER
from asyncmy.errors import InterfaceError as DriverInterfaceError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# The server cannot be reached, went away mid-statement, is shutting down, or refuses connections.
_UNREACHABLE = {
    CR.CR_CONNECTION_ERROR, CR.CR_CONN_HOST_ERROR, CR.CR_SERVER_GONE_ERROR, CR.CR_SERVER_LOST,
    ER.CON_COUNT_ERROR, ER.SERVER_SHUTDOWN, 1927, 4031,  # 1927 connection killed, 4031 idle timeout
}  # fmt: skip
# The statement lost a lock race; the same request a moment later succeeds.
_BUSY = {ER.LOCK_WAIT_TIMEOUT, ER.LOCK_DEADLOCK}


def is_duplicate_key(error: IntegrityError) -> bool:
    """The statement hit a UNIQUE key (MySQL error 1062)."""
    return bool(error.orig is not None and error.orig.args and error.orig.args[0] == ER.DUP_ENTRY)


def error_code(error: DBAPIError) -> int | None:
    """The server's or the client library's error number, if the driver gave one."""
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def unavailability(error: BaseException) -> str | None:
    """Why the database cannot serve now ("unreachable", "busy"), or None for any other error.

    Either is worth a retry a moment later: the server rolls back a transaction whose connection
    it lost, and a request carrying a ref_id finds, on retry, whatever did commit.
    """
    if isinstance(error, PoolTimeout):
        return "busy"
    if not isinstance(error, DBAPIError):
        return None
    code = error_code(error)
    if error.connection_invalidated or code in _UNREACHABLE or isinstance(error.orig, DriverInterfaceError):
        return "unreachable"
    if code in _BUSY:
        return "busy"
    return None
