"""Run the simulator: `python -m sim` (port from SIM_PORT, default 8100)."""

from __future__ import annotations

import os

import uvicorn

from sim.app import create_app
from sim.settings import Settings


def main() -> None:
    """Serve the simulator on SIM_HOST (default 127.0.0.1) until interrupted.

    No access log and no proxy headers: the simulator stands in for a provider and a gateway on
    other machines, yet shares the benchmark's cores, so its own cost per call is kept small
    (it was a quarter of a core at 2,000 purchases a second, issue 4)."""
    settings = Settings.from_env()
    uvicorn.run(create_app(settings), host=os.environ.get("SIM_HOST", "127.0.0.1"), port=settings.port,
                loop="uvloop", http="httptools", log_level="warning", access_log=False, proxy_headers=False)


if __name__ == "__main__":
    main()
