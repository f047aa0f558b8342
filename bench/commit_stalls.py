"""The longest stretch in which MariaDB committed nothing, while a phase's load ran.

A commit waits for its redo log write to reach the disk (innodb_flush_log_at_trx_commit=1), so
a slow fsync of the machine's disk, or InnoDB flushing its dirty pages all at once, stops every
commit of every process together. Such a stall puts every request in flight at that moment into
the phase's p99, whatever Loket does; this meter tells those outliers from Loket's own.
It means something only where commits are dense (the /beli and webhook phases: a commit every few
ms); in a read-only or slow phase the stretches between commits are long by nature.
"""

from __future__ import annotations

import threading
import time

import pymysql

from bench.env import Database

COMMIT_STALL_ROW = "longest stretch without a commit, MariaDB-wide, while wrk ran (ms)"

POLL_SECONDS = 0.05
"""A status read every 50 ms: ~20 statements a second, nothing next to the load's."""


class CommitStallMeter:
    """Reads the server's Com_commit every POLL_SECONDS on a thread of its own while running."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.longest_ms = 0.0
        """The longest time between two reads that saw Com_commit grow (ms, to within POLL_SECONDS)."""
        self.longest_at = 0.0
        """When that stretch ended (time.time())."""

    def start(self) -> None:
        self._stop.clear()
        self.longest_ms, self.longest_at = 0.0, 0.0
        self._thread = threading.Thread(target=self._watch, name="commit-stalls", daemon=True)
        self._thread.start()

    def stop(self) -> float:
        """Stop reading; answers longest_ms."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.longest_ms

    def _watch(self) -> None:
        conn = self._db.server_connection()
        try:
            with conn.cursor() as cursor:
                # Timed from the first commit seen: before it, wrk is still starting.
                last_count, last_growth = _commits(cursor), None
                while not self._stop.wait(POLL_SECONDS):
                    count, now = _commits(cursor), time.monotonic()
                    if count == last_count:
                        continue
                    if last_growth is not None and (now - last_growth) * 1e3 > self.longest_ms:
                        self.longest_ms, self.longest_at = (now - last_growth) * 1e3, time.time()
                    last_count, last_growth = count, now
        finally:
            conn.close()


def _commits(cursor: pymysql.cursors.Cursor) -> int:
    cursor.execute("SHOW GLOBAL STATUS LIKE 'Com_commit'")
    return int(cursor.fetchone()[1])
