"""wrk replaying pre-built HTTP requests from a file: for endpoints whose requests Lua cannot build.

wrk's Lua has no HMAC and no JSON, so Python writes every request in full (request line, headers,
body) to a file, one request per line with each CR LF written as byte 1. Each wrk thread reads
the file in `init`, keeps every T-th line (T = threads) and sends its lines in turn, starting
over when it reaches the end. The responses are counted by status; the bodies of 2xx responses
are searched for plain substrings ("marks", e.g. `"tr_qris_string":null`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from bench.load import MARKER, LoadResult, run_wrk

_CRLF_CODE = b"\x01"

_SCRIPT = r"""
local file = __FILE__
local nthreads = __THREADS__
local patterns = {__MARKS__}
local threads = {}
local created = 0

function setup(thread)
  created = created + 1
  thread:set("tid", created)
  table.insert(threads, thread)
end

local function load(all)
  local kept, i = {}, 0
  for line in io.lines(file) do
    if all or i % nthreads == tid - 1 then kept[#kept + 1] = (line:gsub("\1", "\r\n")) end
    i = i + 1
  end
  return kept
end

function init(args)
  counter = 0
  statuses = {}
  samples = {}
  marks = {}
  for name, _ in pairs(patterns) do marks[name] = 0 end
  items = load(false)
  if #items == 0 then items = load(true) end  -- fewer lines than threads
  if #items == 0 then error("no requests in " .. file) end
end

function request()
  counter = counter + 1
  return items[(counter - 1) % #items + 1]
end

function response(status, headers, body)
  local code = tostring(status)
  statuses[code] = (statuses[code] or 0) + 1
  if status >= 200 and status < 300 then
    for name, pattern in pairs(patterns) do
      if body and string.find(body, pattern, 1, true) then marks[name] = marks[name] + 1 end
    end
  elseif #samples < 5 then
    table.insert(samples, code .. " " .. string.sub(body or "", 1, 300))
  end
end

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

local function object(t)
  local parts = {}
  for k, n in pairs(t) do table.insert(parts, string.format('"%s":%d', k, n)) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local merged, found, kept = {}, {}, {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do merged[code] = (merged[code] or 0) + n end
    for name, n in pairs(t:get("marks")) do found[name] = (found[name] or 0) + n end
    for _, s in ipairs(t:get("samples")) do table.insert(kept, quote(s)) end
  end
  local e = summary.errors
  io.write(string.format(
    '__MARKER__{"duration_us":%d,"requests":%d,"statuses":%s,"marks":%s,"samples":[%s],' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.duration, summary.requests, object(merged), object(found), table.concat(kept, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def http_request(method: str, path: str, host: str, headers: Mapping[str, str], body: bytes = b"") -> bytes:
    """One HTTP/1.1 request as wrk sends it (keep-alive is HTTP/1.1's default)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method in ("POST", "PUT"):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def write_requests(path: Path, requests: Iterable[bytes]) -> int:
    """Write the requests one per line (CR LF as byte 1); returns how many."""
    count = 0
    with path.open("wb") as out:
        for raw in requests:
            line = raw.replace(b"\r\n", _CRLF_CODE)
            if b"\n" in line or b"\r" in line or raw.count(_CRLF_CODE):
                raise ValueError(f"request {count} has a bare CR/LF or byte 1: {raw[:100]!r}")
            out.write(line + b"\n")
            count += 1
    return count


def write_script(path: Path, requests_file: Path, threads: int, marks: Mapping[str, str] | None = None) -> Path:
    """The Lua script that replays `requests_file`; `marks`: name -> substring counted in 2xx bodies."""
    lua_marks = ", ".join(f"[{json.dumps(name)}] = {json.dumps(text)}" for name, text in (marks or {}).items())
    script = (
        _SCRIPT.replace("__FILE__", json.dumps(str(requests_file.resolve())))
        .replace("__THREADS__", str(threads))
        .replace("__MARKS__", lua_marks)
        .replace("__MARKER__", MARKER)
    )
    path.write_text(script)
    return path


def replay(url: str, requests_file: Path, *, lines: int, tag: str, connections: int, threads: int, duration: float,
           log_dir: Path, marks: Mapping[str, str] | None = None) -> LoadResult:  # fmt: skip
    """Run wrk over the requests in `requests_file`; 200 and 201 count as success."""
    script = write_script(log_dir / f"{tag}.lua", requests_file, threads, marks)
    return run_wrk(url, script, connections=connections, threads=threads, duration=duration,
                   log=log_dir / f"{tag}.wrk.txt", ok_codes=(200, 201), lines=lines)  # fmt: skip
