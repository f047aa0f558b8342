"""Counts of a table's rows by status, at a cost that follows the new and the open rows, not the table.

A GROUP BY over each table every 5 s would cost MariaDB a fraction of a second per refresh at a
few million purchases, growing with the history. Yet a row of these tables that has reached a final status never changes
it again and is never deleted (purchase: settled once, from pending or proses; qris_transaction:
every transition is from PENDING; webhook_event: handled once, from received). So a row is read
once when it is old enough, and again only while it is open.

Old enough: a row whose transaction has not committed yet is invisible, while rows with higher
ids may be visible. So a row is counted for good only below the highest id seen SETTLED_AFTER_SECONDS
earlier; Loket's transactions take milliseconds.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

SETTLED_AFTER_SECONDS = 60.0

Labels = tuple[str, ...]


@dataclass
class StatusTally:
    """The rows of `table` by the values of `labels`, refreshed by count().

    table: the table's name.
    key: its AUTO_INCREMENT primary key.
    labels: the columns to count by, e.g. "status" or "source, outcome".
    open_where: the SQL condition of a row that may still change, e.g. "status IN ('pending', 'proses')";
        the table needs an index that starts with its column.
    settled_after: seconds before a row's id is old enough to be counted for good.
    """

    table: str
    key: str
    labels: str
    open_where: str
    settled_after: float = SETTLED_AFTER_SECONDS
    _final: Counter[Labels] = field(default_factory=Counter)
    """The rows up to _upto that were final when read, by labels."""
    _open: set[int] = field(default_factory=set)
    """The ids up to _upto whose rows were open when last read."""
    _upto: int = 0
    _old_enough: int = 0
    _highest_seen: deque[tuple[float, int]] = field(default_factory=deque)

    @property
    def read_for_good_upto(self) -> int:
        """The highest id up to which rows are no longer read, but while they are open."""
        return self._upto

    async def count(self, conn: AsyncConnection) -> Counter[Labels]:
        """Every row by labels, as the transaction of conn sees them.

        conn: in a REPEATABLE READ transaction. Its statements must read one snapshot: under READ
        COMMITTED, a row that ended between the two statements of _read_for_good would be neither
        counted as final nor kept as open, and never counted again."""
        highest: int = (await conn.execute(text(f"SELECT COALESCE(MAX({self.key}), 0) FROM {self.table}"))).scalar_one()
        upto = self._note_highest(highest)
        if upto > self._upto:
            await self._read_for_good(conn, upto)
        still_open = await self._still_open(conn)  # first: those that ended join _final
        counts = self._final + still_open
        counts.update(await self._counts(conn, f"{self.key} > :upto", upto=self._upto))
        return counts

    def _note_highest(self, highest: int) -> int:
        """Notes the highest id now; answers the highest seen settled_after seconds ago or more."""
        now = time.monotonic()
        self._highest_seen.append((now, highest))
        while self._highest_seen and self._highest_seen[0][0] <= now - self.settled_after:
            self._old_enough = self._highest_seen.popleft()[1]
        return self._old_enough

    async def _read_for_good(self, conn: AsyncConnection, upto: int) -> None:
        """Reads the rows after _upto up to upto: the final ones into the counts, the open ones' ids."""
        between = f"{self.key} > :after AND {self.key} <= :upto"
        bounds = {"after": self._upto, "upto": upto}
        final = await self._counts(conn, f"{between} AND NOT ({self.open_where})", **bounds)
        rows = await conn.execute(text(f"SELECT {self.key} FROM {self.table} WHERE {self.open_where} AND {between}"), bounds)
        opened = {row[0] for row in rows}
        self._final.update(final)
        self._open.update(opened)
        self._upto = upto

    async def _still_open(self, conn: AsyncConnection) -> Counter[Labels]:
        """The rows up to _upto that are open now, by labels; those that have ended since the last
        refresh join the final counts. Reads the open rows through open_where's index, and the
        rows that ended by their ids."""
        if not self._open:
            return Counter()
        rows = (
            await conn.execute(
                text(f"SELECT {self.key}, {self.labels} FROM {self.table} WHERE {self.open_where} AND {self.key} <= :upto"),
                {"upto": self._upto},
            )
        ).all()
        still_open = {row[0] for row in rows}
        ended = self._open - still_open
        if ended:
            ids = ", ".join(str(int(id_)) for id_ in sorted(ended))
            self._final.update(await self._counts(conn, f"{self.key} IN ({ids})"))
        self._open = still_open  # final rows never open again: these were all open when read
        return Counter(tuple(cast("tuple[str, ...]", row)[1:]) for row in rows)

    async def _counts(self, conn: AsyncConnection, where: str, **params: int) -> Counter[Labels]:
        rows = await conn.execute(
            text(f"SELECT {self.labels}, COUNT(*) FROM {self.table} WHERE {where} GROUP BY {self.labels}"),
            params,
        )
        counts: Counter[Labels] = Counter()
        for row in rows:
            *labels, n = cast("tuple[Any, ...]", row)
            counts[tuple(labels)] = int(n)
        return counts
