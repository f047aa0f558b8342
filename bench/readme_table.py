"""The README's benchmark table: the headline figures of the latest run, replacing the previous ones.

The table sits between two markers in README.md; `bench.run --readme` (what `make bench` runs)
rewrites what is between them, so the README always shows one run, the latest.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from bench.report import Run, machine

BEGIN, END = "<!-- benchmark:begin -->", "<!-- benchmark:end -->"


def table(run: Run, command: list[str]) -> str:
    """Markdown: where and how it ran, then one row per phase: its rate, p99, completions and CPU."""
    info = machine()
    rows: list[list[str]] = []
    for phase in run.web:
        load = phase.load
        shares = {name: pct for name, pct in phase.cpu_accept.items() if name != "other"}
        cpu = sum(10 * pct / load.ok_per_second for pct in shares.values()) if load.ok_per_second else 0
        rows.append([f"`POST /beli`, {phase.label}", f"{load.ok_per_second:,.0f}/s", f"{load.latency_ms['p99']:.1f} ms",
                     f"{phase.completion.completed_per_second:,.0f}/s", f"{cpu:.3f}" if cpu else "-"])  # fmt: skip
        if "paused" in phase.label:
            rows.append(["worker drain on its own, after the paused phase", "-", "-", f"{phase.completion.drain_per_second:,.0f}/s", "-"])
    for endpoint in run.endpoints:
        load = endpoint.load
        name = f"`{endpoint.request}`" + ("" if endpoint.label.split(" ")[-1] in endpoint.request else f", {endpoint.label}")
        rows.append([name, f"{load.ok / load.seconds:,.0f}/s", f"{load.latency_ms['p99']:.1f} ms", "-", "-"])
    for label, raw in run.raw:
        rows.append([f"MariaDB alone, the accept transaction, {label.removeprefix('raw, ')}", f"{raw.per_second:,.0f}/s", "-", "-", "-"])
    problems = "none" if not run.problems else f"{len(run.problems)}, listed in bench/results/latest.md"
    lines = [
        f"`{shlex.join(['python', '-m', 'bench.run', *command])}` on {info['nproc']} cores ({info['cpu']}), "
        f"{info['date']}; the load generator, Loket, MariaDB and Redis share the cores. Problems seen: {problems}.",
        "",
        "| phase | answered | p99 | completed | CPU ms per purchase |",
        "| --- | --- | --- | --- | --- |",
        *["| " + " | ".join(cells) + " |" for cells in rows],
    ]
    return "\n".join(lines)


def replace_in(readme: Path, text: str) -> None:
    """Put `text` between the markers of `readme`, dropping what was there."""
    current = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(current):
        raise ValueError(f"{readme} has no {BEGIN} ... {END} block")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", current, count=1))
