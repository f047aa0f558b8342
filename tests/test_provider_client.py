"""provider.digiflazz's client on the wire: what each way a call can go wrong ends in.

A refusal or a 502 never reached the provider (ProviderUnreachable, after the short retries); a
call that was sent and then got no whole, readable answer may have sold something
(ProviderOutcomeUnknown), whatever broke. The simulator plays the provider that hangs; a few
lines of asyncio play a provider that breaks in ways the simulator does not.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from domain.provider_answers import Outcome
from provider.digiflazz import DigiflazzClient, ProviderOutcomeUnknown, ProviderUnreachable
from sim.app import create_app
from sim.settings import Settings
from tests.test_sim import serve

SETTINGS = Settings(callback_url="", pending_ms=0)
SUKSES = b'{"data":{"ref_id":"r","status":"Sukses","rc":"00","sn":"SN1","message":"Transaksi Sukses"}}'

pytestmark = pytest.mark.asyncio

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def provider(reply: Reply) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A provider that reads each request's head and body, then does what reply does; yields its
    base URL and the requests it read."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
                requests.append(head + await reader.readexactly(length))
                await reply(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", requests
    finally:
        server.close()


def answer(status: int, body: bytes) -> Reply:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()

    return reply


def client(url: str, timeout: float = 5) -> DigiflazzClient:
    return DigiflazzClient(url, SETTINGS.ppob_username, SETTINGS.ppob_api_key, timeout=timeout)


async def test_a_sukses_answer_is_read() -> None:
    async with provider(answer(200, SUKSES)) as (url, requests):
        digiflazz = client(url)
        reply = await digiflazz.topup("r", "pulsa10", "081200000000")
        await digiflazz.close()
    assert (reply.outcome, reply.sn) == (Outcome.SUKSES, "SN1")
    assert b'"ref_id":"r"' in requests[0] and b"content-type: application/json" in requests[0].lower()


async def test_a_refused_connection_is_unreachable_after_three_tries() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    digiflazz = client(f"http://127.0.0.1:{port}/v1")
    started = time.monotonic()
    with pytest.raises(ProviderUnreachable):
        await digiflazz.topup("r", "pulsa10", "081200000000")
    assert time.monotonic() - started >= 0.6  # waited 0.2 s, then 0.4 s
    await digiflazz.close()


async def test_a_502_is_unreachable_after_three_tries() -> None:
    async with provider(answer(502, b"{}")) as (url, requests):
        digiflazz = client(url)
        with pytest.raises(ProviderUnreachable):
            await digiflazz.topup("r", "pulsa10", "081200000000")
        await digiflazz.close()
    assert len(requests) == 3


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _half_an_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n" + SUKSES[:40])
    await writer.drain()
    writer.close()


@pytest.mark.parametrize(
    "reply",
    [_hang_up, _half_an_answer, answer(200, b"<html>gateway error</html>"), answer(200, b'{"data":{"status":1}}')],
    ids=["hangs-up-after-reading", "half-an-answer", "not-json", "no-status"],
)
async def test_a_call_that_was_sent_and_got_no_readable_answer_is_unknown(reply: Reply) -> None:
    async with provider(reply) as (url, requests):
        digiflazz = client(url)
        with pytest.raises(ProviderOutcomeUnknown):
            await digiflazz.topup("r", "pulsa10", "081200000000")
        await digiflazz.close()
    assert len(requests) == 1  # never sent twice: the first may have sold


async def test_an_answer_later_than_the_timeout_is_unknown_and_the_order_stands() -> None:
    app = create_app(SETTINGS)
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url) as control:
            await control.post("/_sim/config", json={"timeout_next": 1, "timeout_sleep_ms": 3000})
            digiflazz = client(f"{url}/v1", timeout=0.5)
            # Given up by the client's own timeout, not answered by the provider's late reply.
            with pytest.raises(ProviderOutcomeUnknown, match="timed out"):
                await digiflazz.topup("r-late", "pulsa10", "081200000000")
            assert [t["ref_id"] for t in (await control.get("/_sim/transactions")).json()] == ["r-late"]
            again = await digiflazz.topup("r-late", "pulsa10", "081200000000")  # the re-check
            assert again.outcome is Outcome.SUKSES
            await digiflazz.close()
    await app.state.provider.aclose()


async def test_a_connection_the_provider_closed_while_idle_is_not_reused() -> None:
    """A provider that closes each connection after its answer (as servers close idle ones):
    the next call opens a new connection rather than failing on the closed one."""

    async def answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer(200, SUKSES)(reader, writer)
        writer.close()

    async with provider(answer_then_close) as (url, requests):
        digiflazz = client(url)
        for ref_id in ("r1", "r2", "r3"):
            assert (await digiflazz.topup(ref_id, "pulsa10", "081200000000")).outcome is Outcome.SUKSES
            await asyncio.sleep(0.05)
        await digiflazz.close()
    assert len(requests) == 3


async def test_a_provider_that_accepts_no_connection_is_unreachable() -> None:
    """A listener whose accept queue is full: Linux drops the SYN, and the connect times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = [socket.socket() for _ in range(3)]
        for sock in queued:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        await asyncio.sleep(0.2)
        digiflazz = client(f"http://127.0.0.1:{port}/v1", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ProviderUnreachable):
            await digiflazz.topup("r", "pulsa10", "081200000000")
        assert time.monotonic() - started >= 1.7  # three connects of 0.4 s and the waits of 0.2 and 0.4 s: 1.8 s
        await digiflazz.close()
        for sock in queued:
            sock.close()
