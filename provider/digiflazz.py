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
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import orjson
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import ConnectError, ConnectTimeoutError, DetailedPyreqwestError, PyreqwestError

from core import metrics

# Gagal answers that reject the request before any order lookup: the order (if an earlier call
# created one) lives on, so these must never refund. Signature, username, IP, rate limits, a
# ref_id clash, a malformed payload.
REQUEST_REJECTED_RCS = frozenset({"40", "41", "42", "45", "49", "83", "85", "86"})
PENDING_RCS = frozenset({"03", "99"})
UNREACHABLE_RETRY_WAITS = (0.2, 0.4)
"""Seconds before each retry of a call that did not reach the provider (three tries in all)."""
IDLE_CONNECTION_SECONDS = 4
"""Idle connections are dropped after this: servers commonly close them after 5 s (uvicorn's
default), and a request sent on a connection the server has just closed has an unknown outcome,
which costs its purchase a re-check a minute later."""


class Outcome(StrEnum):
    SUKSES = "sukses"
    GAGAL = "gagal"
    PENDING = "pending"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ProviderAnswer:
    status: str
    rc: str
    sn: str | None
    message: str

    @property
    def outcome(self) -> Outcome:
        return classify(self.status, self.rc)


def classify(status: str, rc: str) -> Outcome:
    if status == "Sukses" and rc == "00":
        return Outcome.SUKSES
    if status == "Pending" or rc in PENDING_RCS:
        return Outcome.PENDING
    if status == "Gagal" and rc in REQUEST_REJECTED_RCS:
        return Outcome.REJECTED
    if status == "Gagal":
        return Outcome.GAGAL
    return Outcome.PENDING  # an answer we cannot read is not a failure


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

    pyreqwest (reqwest, in Rust) rather than aiohttp: one call per purchase, and aiohttp's request
    machinery was ~40% of a worker's CPU (py-spy); pyreqwest took half of aiohttp's CPU per call
    against the simulator, and a worker draining purchases 0.23-0.25 ms of CPU per purchase
    against 0.29-0.30 ms (issue 4; the README's Benchmark says what it did not change).

    base_url: e.g. https://api.digiflazz.com/v1 or the simulator's http://127.0.0.1:8100/v1.
    timeout: seconds before an unanswered call counts as ProviderOutcomeUnknown; a connection not
        made within 80% of it (at most 5 s) is ProviderUnreachable.
    connections: at most this many calls at once (one connection each); more wait for a free one,
        within their timeout.
    """

    def __init__(self, base_url: str, username: str, api_key: str, timeout: float, connections: int = 100) -> None:
        self._url = base_url.rstrip("/") + "/transaction"
        self._username = username
        self._api_key = api_key
        self._http: Client = (
            ClientBuilder()
            .timeout(timedelta(seconds=timeout))
            .connect_timeout(timedelta(seconds=min(timeout * 0.8, 5.0)))
            .pool_idle_timeout(timedelta(seconds=IDLE_CONNECTION_SECONDS))
            .max_connections(connections)
            .follow_redirects(False)
            .http1_only()
            .build()
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
        # A plain loop: tenacity's bookkeeping around every call, which nearly always succeeds
        # at once, was 9% of a worker's CPU while draining purchases (py-spy).
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
        # The body goes as orjson's bytes: a JSON body of the client's own is json.dumps, ~20x orjson's CPU.
        request = self._http.post(self._url).body_bytes(orjson.dumps(body)).header("Content-Type", "application/json")
        try:
            response = await request.build().send()
            status, raw = response.status, bytes(await response.bytes())
        except (ConnectError, ConnectTimeoutError) as error:
            if _never_connected(error):
                raise ProviderUnreachable(_causes(error)) from error
            raise ProviderOutcomeUnknown(_causes(error)) from error
        except PyreqwestError as error:  # perhaps sent, then no (whole) answer
            raise ProviderOutcomeUnknown(_causes(error)) from error
        if status in (502, 503, 504):
            raise ProviderUnreachable(f"HTTP {status}")
        try:
            return answer_from(orjson.loads(raw)["data"])
        except (ValueError, KeyError, TypeError) as error:
            raise ProviderOutcomeUnknown(f"unreadable answer (HTTP {status})") from error


def _causes(error: PyreqwestError) -> str:
    causes = error.details.get("causes") if isinstance(error, DetailedPyreqwestError) else None
    return "; ".join(cause["message"] for cause in causes or []) or type(error).__name__


def _never_connected(error: ConnectError | ConnectTimeoutError) -> bool:
    """Whether the call failed while connecting, so the request never went out.

    pyreqwest's class does not tell: it raises ConnectError when the connection closed after the
    request went out ("connection closed before message completed"), and ConnectTimeoutError when
    the total timeout ran out while waiting for the answer. Only hyper's cause, "client error
    (Connect)", marks a failure to connect. Anything else may have sold (tests/test_provider_client.py
    holds each case, so a release that words it otherwise fails them, and meanwhile such a call
    waits for a re-check, the safe side)."""
    return any(cause["message"] == "client error (Connect)" for cause in error.details.get("causes") or [])
