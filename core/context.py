"""What a log line should say about the work it belongs to, carried across HTTP and jobs.

request_id: set by the web middleware (from X-Request-ID or new), copied into every message
the request enqueues, and set again by the worker middleware while that message runs.
subject: what the work is about (purchase:42, qris:7), set by the code doing it.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
subject: ContextVar[str | None] = ContextVar("subject", default=None)
