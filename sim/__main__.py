"""Run the simulator: `python -m sim` (port from SIM_PORT, default 8100)."""

from __future__ import annotations

import os

import uvicorn

from core.listen import inherited_fd
from sim.app import create_app
from sim.settings import Settings


def main() -> None:
    """Serve the simulator on SIM_HOST (default 127.0.0.1) until interrupted.

    No access log and no proxy headers: the simulator stands in for a provider and a gateway on
    other machines, yet shares the benchmark's cores, so its own cost per call is kept small
    (a quarter of a core at 2,000 purchases a second with an access log)."""
    settings = Settings.from_env()
    # On a socket handed over by the starter (core.listen), else on SIM_HOST:SIM_PORT.
    options = dict(loop="uvloop", http="httptools", log_level="warning", access_log=False, proxy_headers=False)
    if (fd := inherited_fd()) is not None:
        uvicorn.run(create_app(settings), fd=fd, **options)  # type: ignore[arg-type]
    else:
        uvicorn.run(create_app(settings), host=os.environ.get("SIM_HOST", "127.0.0.1"), port=settings.port, **options)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
