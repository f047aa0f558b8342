"""The web command: `python -m web.serve`, uvicorn with the production settings.

uvloop + httptools (the asyncio loop with --workers leaves TCP_NODELAY off, uvicorn #3149), no
access log (a line per request costs more than the request), no proxy headers (nothing reads the
client's address; the middleware was ~1.5% of the web's CPU per request), HOST/PORT/WEB_PROCESSES from the
environment (or LISTEN_FD, core.listen). With several processes their metrics share a fresh multiprocess folder.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from core.listen import inherited_fd
from core.settings import get_settings


def main() -> None:
    settings = get_settings()
    processes = int(os.environ.get("WEB_PROCESSES", "1"))
    if processes > 1:
        folder = Path(os.environ.get("LOKET_METRICS_DIR", Path(tempfile.gettempdir()) / "loket-metrics")) / f"web-{settings.port}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    # On a socket handed over by the starter (core.listen), else on HOST:PORT.
    fd = inherited_fd()
    where = ["--fd", str(fd)] if fd is not None else ["--host", os.environ.get("HOST", "127.0.0.1"), "--port", str(settings.port)]
    command = [
        "uvicorn", "web.main:app", *where,
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-proxy-headers", "--workers", str(processes),
        "--timeout-graceful-shutdown", "10",
    ]  # fmt: skip
    os.execv(str(Path(sys.executable).parent / "uvicorn"), command)


if __name__ == "__main__":
    main()
