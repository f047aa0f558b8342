"""How a server process learns where to listen and proves who it is.

A starter (the tests, the benchmark, `make run`) binds the listening socket itself and hands it
over: the child inherits the descriptor named by LISTEN_FD, so no other process can take the port
between the choice of a number and the child's bind. LOKET_INSTANCE is a token the starter makes up
for each child; the child echoes it in the `x-loket-instance` header of its liveness answer, so a
readiness check knows it reached the process it started and not whatever else listens there.
"""

from __future__ import annotations

import os

INSTANCE_HEADER = "x-loket-instance"


def inherited_fd() -> int | None:
    """The listening socket's descriptor handed over by the starter, if any."""
    value = os.environ.get("LISTEN_FD", "")
    if not value:
        return None
    if not value.isascii() or not value.isdigit():
        raise SystemExit(f"LISTEN_FD must be a file descriptor number, not {value!r}")
    return int(value)


def instance_headers() -> dict[str, str]:
    """Headers that name this process to whoever started it (none when nobody asked)."""
    instance = os.environ.get("LOKET_INSTANCE", "")
    return {INSTANCE_HEADER: instance} if instance else {}
