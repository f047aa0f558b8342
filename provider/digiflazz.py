"""The Digiflazz buyer API client (prepaid topup), also spoken by the local simulator.

What a call can end in, and what Loket may do next:
- an answer: Sukses, Gagal, Pending, or a rejection of the request itself (bad signature, rate
  limit) that says nothing about the order;
- ProviderUnreachable: the request never reached the provider, so trying again now is safe;
- ProviderOutcomeUnknown: it may have been processed (timeout after sending, a broken answer).
  Only a re-check with the same ref_id may decide it; it is never a failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import aiohttp
import orjson

from core import metrics
from domain.provider_answers import ProviderAnswer

UNREACHABLE_RETRY_WAITS = (0.2, 0.4)
"""Seconds before each retry of a call that did not reach the provider (three tries in all)."""
IDLE_CONNECTION_SECONDS = 4
"""Idle connections are dropped after this: servers commonly close them after 5 s (uvicorn's
default), and a request sent on a connection the server has just closed has an unknown outcome,
which costs its purchase a re-check a minute later."""


class ProviderUnreachable(Exception):
    """The request did not reach the provider (connection refused, DNS, 502/503/504)."""


class ProviderOutcomeUnknown(Exception):
    """The request may have been processed; re-check later with the same ref_id."""


def answer_from(data: dict[str, Any]) -> ProviderAnswer:
    """Read a `data` object of a response or a callback; raises ValueError when it is not one."""
    status, rc = data.get("status"), data.get("rc")
    if not isinstance(status, str) or not isinstance(rc, str):
        raise ValueError("status and rc must be strings")
    sn = data.get("sn")
    message = data.get("message")
    return ProviderAnswer(
        status=status, rc=rc, sn=str(sn) if sn else None, message=str(message) if message is not None else status
    )


class DigiflazzClient:
    """One client per process, with its own connections; close() it when the process stops.

    Whether a failed call may have sold is read from aiohttp's exception types: a failure to
    connect (refused, DNS, no connection within the connect timeout, which covers the wait for a
    free connection of the pool) means the request never went out; anything after that may have.
    aiohttp rather than a client in Rust: one took 60% of aiohttp's CPU per call (bench.provider_calls),
    yet neither a worker's CPU per purchase nor its drain rate differed beyond the noise (bench.run).

    base_url: e.g. https://api.digiflazz.com/v1 or the simulator's http://127.0.0.1:8100/v1.
    timeout: seconds before an unanswered call counts as ProviderOutcomeUnknown; a connection not
        made within 80% of it (at most 5 s) is ProviderUnreachable.
    connections: at most this many calls at once (one connection each); more wait for a free one,
        within the connect timeout.
    """

    def __init__(self, base_url: str, username: str, api_key: str, timeout: float, connections: int = 100) -> None:
        self._url = base_url.rstrip("/") + "/transaction"
        self._username = username
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout * 0.8, 5.0))
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections, keepalive_timeout=IDLE_CONNECTION_SECONDS),
            headers={"Content-Type": "application/json"},
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        await self._http.close()

    def sign(self, ref_id: str) -> str:
        return hashlib.md5(f"{self._username}{self._api_key}{ref_id}".encode()).hexdigest()

    async def topup(self, ref_id: str, buyer_sku_code: str, customer_no: str) -> ProviderAnswer:
        """Place (or, with a ref_id it has seen, look up) a prepaid order."""
        body = {
            "username": self._username,
            "buyer_sku_code": buyer_sku_code,
            "customer_no": customer_no,
            "ref_id": ref_id,
            "sign": self.sign(ref_id),
        }
        # Short retries only for requests that never arrived; anything else waits for a re-check.
        # A plain loop: a retry library's bookkeeping around every call, which nearly always
        # succeeds at once, costs a worker a noticeable share of its CPU per purchase.
        for wait in UNREACHABLE_RETRY_WAITS:
            try:
                return await self._timed_post(body)
            except ProviderUnreachable:
                await asyncio.sleep(wait)
        return await self._timed_post(body)

    async def _timed_post(self, body: dict[str, Any]) -> ProviderAnswer:
        started = time.perf_counter()
        outcome = "unknown"
        try:
            answer = await self._post(body)
            outcome = answer.outcome.value
            return answer
        except ProviderUnreachable:
            outcome = "unreachable"
            raise
        finally:
            metrics.provider_calls.labels(outcome).observe(time.perf_counter() - started)

    async def _post(self, body: dict[str, Any]) -> ProviderAnswer:
        # orjson both ways: aiohttp's json= and .json() are the standard library's, several times the CPU.
        try:
            async with self._http.post(self._url, data=orjson.dumps(body), timeout=self._timeout, allow_redirects=False) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            raise ProviderUnreachable(_described(error)) from error
        except (aiohttp.ClientError, TimeoutError) as error:  # sent, perhaps, then no (whole) answer
            raise ProviderOutcomeUnknown(_described(error)) from error
        if status in (502, 503, 504):
            raise ProviderUnreachable(f"HTTP {status}")
        try:
            return answer_from(orjson.loads(raw)["data"])
        except (ValueError, KeyError, TypeError) as error:
            raise ProviderOutcomeUnknown(f"unreadable answer (HTTP {status})") from error


def _described(error: Exception) -> str:
    if isinstance(error, TimeoutError) and not str(error):  # the total timeout: aiohttp gives no text
        return "timed out waiting for the answer"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
