"""A local SMTP server for development: `python -m sim.mailbox` prints every e-mail it receives.

Listens on SMTP_HOST:SMTP_PORT (127.0.0.1:8025), where Loket's workers send by default.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Mailbox:
    """aiosmtpd handler that keeps (and optionally prints) what arrives.

    echo: print a summary and the text of each message.
    refuse_next: how many of the next messages to refuse with a temporary failure (451), as a
        server under load or greylisting does; the sender should try again later.
    delay_seconds: how long each message takes to be accepted, as a slow server's.
    """

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.refuse_next = 0
        self.delay_seconds = 0.0
        self.port: int | None = None
        self.messages: list[Message] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return "451 4.3.0 Temporary failure, try again later"
        message = message_from_bytes(envelope.original_content or b"")
        with self.arrived:
            self.messages.append(message)
            self.arrived.notify_all()
        if self.echo:
            payload = message.get_payload(decode=True)
            body = payload if isinstance(payload, bytes) else b""
            print(f"--- mail to {', '.join(envelope.rcpt_tos)}: {message['Subject']}\n{body.decode(errors='replace')}", flush=True)
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float) -> list[Message]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)


def serve(host: str, port: int, mailbox: Mailbox) -> Controller:
    controller = Controller(mailbox, hostname=host, port=port)
    controller.start()
    mailbox.port = port
    return controller


def main() -> None:
    controller = serve(os.environ.get("SMTP_HOST", "127.0.0.1"), int(os.environ.get("SMTP_PORT", "8025")), Mailbox(echo=True))
    print(f"mailbox listening on {controller.hostname}:{controller.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
