"""One log format for every process: a JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
import time

from core import context


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, var in (("request_id", context.request_id), ("subject", context.subject)):
            value = var.get()
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def describe_failure(failure: BaseException) -> str:
    """A failure for a log line: its kind and first argument (for a database error the driver's,
    with its code), without the statement and its parameters."""
    cause = getattr(failure, "orig", None) or failure
    return f"{type(cause).__name__} {cause.args[0] if cause.args else ''}".strip()


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Request lines would carry nothing an operator needs and cost time at load.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Dramatiq's few INFO lines (booting, ready, shutting down) are what process supervisors and
    # ops.stack wait for, whatever LOG_LEVEL says.
    logging.getLogger("dramatiq").setLevel(min(logging.getLevelName(level) if isinstance(level, str) else level, logging.INFO))
