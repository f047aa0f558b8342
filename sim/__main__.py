"""Run the simulator: `python -m sim` (port from SIM_PORT, default 8100)."""

from __future__ import annotations

import os

import uvicorn

from sim.app import create_app
from sim.settings import Settings


def main() -> None:
    """Serve the simulator on SIM_HOST (default 127.0.0.1) until interrupted."""
    settings = Settings.from_env()
    uvicorn.run(create_app(settings), host=os.environ.get("SIM_HOST", "127.0.0.1"), port=settings.port,
                loop="uvloop", http="httptools", log_level="warning")


if __name__ == "__main__":
    main()
