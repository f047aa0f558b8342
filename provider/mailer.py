"""Sending e-mail over SMTP (aiosmtplib); host, port, sender and TLS are settings."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from core.settings import Settings


def photo_email(settings: Settings, to: str, external_id: str, photo_count: int) -> EmailMessage:
    gallery = settings.gallery_url.format(external_id=external_id)
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = to
    message["Subject"] = "Foto photobox kamu sudah siap"
    # A fixed Message-ID: if a crash makes the job send twice, mail clients show one message.
    message["Message-ID"] = f"<photos-{external_id}@loket>"
    message.set_content(
        f"Halo!\n\n{photo_count} foto dari sesi {external_id} bisa dilihat dan diunduh di:\n{gallery}\n\n"
        f"Galeri tersedia selama {settings.photo_retention_days} hari.\n"
    )
    return message


async def send(settings: Settings, message: EmailMessage) -> None:
    """Raises aiosmtplib.SMTPException or OSError when the server refuses or cannot be reached."""
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_tls == "tls",
        start_tls=True if settings.smtp_tls == "starttls" else False,
        username=settings.smtp_username or None,
        password=settings.smtp_password.get_secret_value() or None,
        timeout=30,
    )
