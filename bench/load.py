"""POST /beli load from wrk, a separate process: a generated Lua script and the parsed result."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "BENCH_JSON "

# Each wrk thread takes every T-th key, so with 64 keys and 64 connections over T threads a key
# is reused only after its thread has sent one request per key: at most about one in-flight
# purchase per reseller (wrk gives Lua no handle on the connection itself).
# Destinations end in 0, so none is one of the sim's Pending/Gagal test numbers (...1232-1234).
_SCRIPT = r"""
local keys = {%(keys)s}
local tag = "%(tag)s"
local nthreads = %(threads)d
local produk_id = %(produk_id)d
local threads = {}
local created = 0
local rate = %(rate)s

function setup(thread)
  created = created + 1
  thread:set("tid", created)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  late = 0
  statuses = {}
  samples = {}
  mine = {}
  for i = tid, #keys, nthreads do table.insert(mine, keys[i]) end
  if #mine == 0 then mine = keys end
end

function request()
  counter = counter + 1
  local key = mine[(counter - 1) %% #mine + 1]
  local body = string.format('{"produk_id":%%d,"nomor_tujuan":"0812%%d%%07d0","ref_id":"%%s-%%d-%%d"}',
    produk_id, tid, counter, tag, tid, counter)
  return wrk.format("POST", "/beli", {["Content-Type"] = "application/json", ["x-api-key"] = key}, body)
end

-- Open loop (rate > 0): this thread's requests leave on a fixed schedule of rate / nthreads per
-- second, whichever of its connections is free taking the next slot, so a slow answer does not
-- hold back the requests after it. A request sent 2 ms or more after its slot counts as late: all
-- of the thread's connections were waiting, and its latency is measured from its sending only.
if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock_id, bench_timespec *tp);
  ]]
  local now = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, now)  -- CLOCK_MONOTONIC
    return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
  end
  local interval = 1000 * nthreads / rate
  local slot = nil

  function delay()
    local t = now_ms()
    slot = (slot or t) + interval
    local wait = slot - t
    if wait <= -2 then late = late + 1 end
    return wait > 0 and math.floor(wait + 0.5) or 0
  end
end

function response(status, headers, body)
  local code = tostring(status)
  statuses[code] = (statuses[code] or 0) + 1
  if status ~= 200 and #samples < 5 then table.insert(samples, code .. " " .. string.sub(body, 1, 300)) end
end

local function quote(s)
  return '"' .. s:gsub('[%%c"\\]', function(c) return string.format("\\u%%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local merged, kept, all_late = {}, {}, 0
  for _, t in ipairs(threads) do
    all_late = all_late + t:get("late")
    for code, n in pairs(t:get("statuses")) do merged[code] = (merged[code] or 0) + n end
    for _, s in ipairs(t:get("samples")) do table.insert(kept, quote(s)) end
  end
  local parts = {}
  for code, n in pairs(merged) do table.insert(parts, string.format('"%%s":%%d', code, n)) end
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"duration_us":%%d,"requests":%%d,"late":%%d,"statuses":{%%s},"samples":[%%s],' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"p50":%%d,"p90":%%d,"p99":%%d,"max":%%d,"mean":%%.1f}}\n',
    summary.duration, summary.requests, all_late, table.concat(parts, ","), table.concat(kept, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What wrk saw. Latency covers every response, whatever its status."""

    seconds: float
    statuses: dict[int, int]
    samples: list[str]
    """Up to 5 bodies of non-200 responses per wrk thread."""
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    """p50, p90, p99, max, mean."""
    ok_codes: tuple[int, ...] = (200,)
    """The statuses that count as success (POST /beli: 200 only; other endpoints also 201)."""
    marks: dict[str, int] = field(default_factory=dict)
    """Successful responses whose body matched each of the replay script's patterns."""
    requests_file_lines: int = 0
    """Distinct requests the replay script cycled through (0 for the /beli script)."""
    late: int = 0
    """Open loop only: requests sent 2 ms or more after their slot (every connection of a wrk thread was busy)."""

    @property
    def ok(self) -> int:
        return sum(self.statuses.get(code, 0) for code in self.ok_codes)

    @property
    def not_ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if code not in self.ok_codes)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds


def write_script(path: Path, keys: list[str], tag: str, threads: int, produk_id: int = 1, rate: float = 0) -> Path:
    """Write the Lua script; `tag` prefixes every ref_id so that phases never collide.

    rate: requests per second on a fixed schedule (open loop); 0 sends each connection's next
    request as soon as the last is answered (closed loop).
    """
    quoted = ", ".join(f'"{key}"' for key in keys)
    values = {"keys": quoted, "tag": tag, "threads": threads, "produk_id": produk_id, "marker": MARKER, "rate": repr(float(rate))}
    path.write_text(_SCRIPT % values)
    return path


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str, script: Path, *, connections: int, threads: int, duration: float, log: Path,
    ok_codes: tuple[int, ...] = (200,), lines: int = 0,
) -> LoadResult:  # fmt: skip
    """Run wrk to completion (it stops itself after `duration`); its output is kept in `log`."""
    command = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
        "--timeout", "30s", "-s", str(script), url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}:\n{done.stderr[-2000:]}")
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result line:\n{done.stdout[-2000:]}")
    data = json.loads(line[len(MARKER) :])
    return LoadResult(
        seconds=data["duration_us"] / 1e6,
        statuses={int(code): n for code, n in data["statuses"].items()},
        samples=data["samples"],
        socket_errors={k: v for k, v in data["errors"].items() if k != "status"},
        latency_ms={k: v / 1000 for k, v in data["latency_us"].items()},
        ok_codes=ok_codes,
        marks=data.get("marks", {}),
        requests_file_lines=lines,
        late=data.get("late", 0),
    )
