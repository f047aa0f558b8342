"""How busy each group call (core.group_call) was over a phase, read from the processes' /metrics.

A group call runs one group at a time per process, so when its runs fill the process's time its
callers queue behind the run on its way: the share of the phase it was busy, the groups and
their mean size say whether a rate is bound there, or whether the group is only busy because the
cores are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import monotonic

import httpx
from prometheus_client.parser import text_string_to_metric_families

Totals = dict[tuple[str, str], dict[str, float]]
"""(process kind, group call name) -> seconds, runs, items, processes."""

_KINDS = {
    "loket_group_call_seconds_sum": "seconds",
    "loket_group_call_seconds_count": "runs",
    "loket_group_call_items_total": "items",
    "loket_group_call_processes": "processes",
}
"""The samples read, and what each adds up to."""


@dataclass(frozen=True)
class GroupFigures:
    """One group call of one kind of process over a phase."""

    source: str
    name: str
    busy: float
    """Share of the phase a run was on its way, per process having this call (1: always)."""
    runs_per_second: float
    mean_items: float
    mean_ms: float

    def text(self) -> str:
        return f"{self.source} {self.name} {100 * self.busy:.0f}% ({self.runs_per_second:.0f} runs/s x {self.mean_items:.1f}, {self.mean_ms:.1f} ms)"


def scrape(urls: dict[str, str]) -> Totals:
    """The group call totals each metrics URL serves, by kind of process; a URL that fails is left out."""
    totals: Totals = {}
    for source, url in urls.items():
        try:
            text = httpx.get(url, timeout=10).text
        except httpx.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                kind = _KINDS.get(sample.name)
                if kind is not None:
                    entry = totals.setdefault((source, sample.labels["name"]), dict.fromkeys(_KINDS.values(), 0.0))
                    entry[kind] += sample.value
    return totals


@dataclass
class GroupMeter:
    """Group call totals at start() and stop(); the figures of what ran in between.

    urls: process kind ("web", "worker") -> its /metrics URL.
    """

    urls: dict[str, str]
    _before: Totals = field(default_factory=dict)
    _started: float = 0.0

    def start(self) -> None:
        self._before, self._started = scrape(self.urls), monotonic()

    def stop(self) -> list[GroupFigures]:
        """The group calls that ran, busiest first."""
        after, seconds = scrape(self.urls), monotonic() - self._started
        figures = []
        for key, totals in after.items():
            before = self._before.get(key, {})
            runs = totals["runs"] - before.get("runs", 0.0)
            if runs <= 0 or seconds <= 0:
                continue
            busy_seconds = totals["seconds"] - before.get("seconds", 0.0)
            figures.append(GroupFigures(
                key[0], key[1], busy=busy_seconds / seconds / max(1.0, totals["processes"]), runs_per_second=runs / seconds,
                mean_items=(totals["items"] - before.get("items", 0.0)) / runs, mean_ms=1000 * busy_seconds / runs,
            ))  # fmt: skip
        return sorted(figures, key=lambda f: -f.busy)


def describe(figures: list[GroupFigures]) -> str:
    """One table cell: each group call as '<process> <name> <busy>% (<runs>/s x <mean items>, <mean ms>)'."""
    return " · ".join(f.text() for f in figures) or "-"

