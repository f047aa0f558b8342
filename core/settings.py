"""Settings from the environment, with defaults that work on a local machine.

Every process (web, worker, clock, tools) reads the same names; the environment always wins.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from functools import lru_cache

DEV_MASTER_KEY = "bG9rZXQtZGV2LW9ubHktbWFzdGVyLWtleS0zMmJ5dGU="  # 32 bytes, for local use only


def _str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _limit(name: str, default: int) -> int:
    """A per-minute allowance: a whole number >= 0 (0 turns the limit off)."""
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: {raw!r} is not a whole number") from None
    if value < 0:
        raise ValueError(f"{name}: {value} is below 0 (0 turns the limit off)")
    return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(name: str) -> tuple[Network, ...]:
    """Comma-separated IP addresses or CIDR networks; empty for none."""
    found = []
    for entry in (part.strip() for part in os.environ.get(name, "").split(",")):
        if not entry:
            continue
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{name}: {entry!r} is not an IP address or network (e.g. 10.0.0.5,10.1.0.0/16)") from None
    return tuple(found)


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    redis_namespace: str
    """Prefix of Dramatiq's keys: several deployments (or test sessions) can share one Redis."""
    port: int
    jwt_secret: str
    master_key: str
    """Base64 of 32 bytes: the AES-256-GCM key that encrypts private keys at rest."""
    ppob_base_url: str
    ppob_username: str
    ppob_api_key: str
    ppob_webhook_secret: str
    ppob_timeout_seconds: float
    """How long one provider call may take before its outcome counts as unknown."""
    ppob_recheck_seconds: int
    """Delay between re-checks of a purchase the provider left Pending (Digiflazz asks >= 60 s)."""
    outbox_lease_seconds: int
    """How long a pushed job may take before the relay pushes it again."""
    outbox_relay_interval: float
    db_pool_size: int
    db_lock_wait_seconds: int
    """How long a statement of the web's hot paths waits for a row lock before it fails (MariaDB's
    50 s by default): the calls of the same moment share one transaction (web.intake), so one order
    stuck behind a held saldo row must not hold the others for long."""
    broker_heartbeat_timeout_ms: int
    broker_maintenance_chance: int
    worker_processes: int
    worker_threads: int
    worker_in_flight: int
    """Provider, gateway and reseller callback calls (with their follow-up) a worker process keeps in flight at once (workers.in_flight)."""
    log_level: str
    xendit_base_url: str
    xendit_secret_key: str
    xendit_api_version: str
    xendit_callback_token: str
    xendit_timeout_seconds: float
    deposit_gateway: str
    """Where reseller deposits are paid: xendit (QRIS), midtrans or paystack."""
    midtrans_base_url: str
    midtrans_server_key: str
    paystack_base_url: str
    paystack_secret_key: str
    qris_ttl_seconds: int
    """How long a QRIS code may be paid (the expiry of a kiosk transaction)."""
    qris_create_wait_ms: int
    """How long POST /api/v1/transactions waits for the QR string before answering without it."""
    qris_create_deadline_seconds: int
    """How long the gateway may keep failing before the transaction ends FAILED."""
    photobox_default_amount: int
    photo_retention_days: int
    qris_sweep_interval_seconds: float
    photo_purge_interval_seconds: float
    gallery_url: str
    """The gallery link in the photo e-mail; {external_id} is replaced."""
    smtp_host: str
    smtp_port: int
    smtp_sender: str
    smtp_tls: str
    """none, starttls or tls."""
    smtp_username: str
    smtp_password: str
    response_encryption_key: str
    clock_metrics_port: int
    callback_retry_scale: float
    callback_allow_private_networks: bool
    """Let reseller callbacks go to loopback/private addresses (development and tests only: core.outbound)."""
    require_request_signature: bool
    """Every reseller request must be signed (X-Timestamp, X-Signature), not only those of accounts that ask."""
    signature_window_seconds: int
    rate_limit_per_minute: int
    """Requests per API key per minute (0: no limit)."""
    """Multiplies the callback retry delays (10 s ... 12 h); tests shrink a day to seconds."""
    """Where the clock serves the queue and table gauges (0: not at all)."""
    metrics_host: str
    """Base64 of 32 bytes enables AES-256-GCM on the public kiosk endpoints; empty disables it."""
    address_key_attempts_per_minute: int
    """Requests per client address per minute that carry an API key this web process has not seen
    work (0: no limit): refused with 429 before the key is looked up, so spraying keys is cheap to stop."""
    registrations_per_minute: int
    """POST /register per client address per minute (0: no limit); registrations by an admin token are not counted."""
    deposits_per_minute: int
    """POST /deposit per reseller per minute (0: no limit): each one asks the gateway for a QR code."""
    public_lookups_per_minute: int
    """Public kiosk reads (a transaction by external id, a photo gallery) per client address per minute (0: no limit)."""
    rate_limit_max_keys: int
    """Counters one web process keeps per limit and minute; beyond them the oldest are forgotten here
    (their counts stay in Redis and come back at the next settle)."""
    trusted_proxies: tuple[Network, ...]
    """Addresses/networks of the reverse proxies whose X-Forwarded-For names the client; empty: the
    socket's peer is the client and the header is ignored."""
    token_revocation_refresh_seconds: float
    """How often each web process reloads the revoked staff tokens from the database."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        database_url=_str("DATABASE_URL", "mysql+asyncmy://root@127.0.0.1:3306/loket"),
        redis_url=_str("REDIS_URL", "redis://127.0.0.1:6379/0"),
        redis_namespace=_str("REDIS_NAMESPACE", "dramatiq"),
        port=_int("PORT", 8000),
        jwt_secret=_str("JWT_SECRET", "dev-jwt-secret-change-me-in-production"),
        master_key=_str("LOKET_MASTER_KEY", DEV_MASTER_KEY),
        ppob_base_url=_str("PPOB_BASE_URL", "http://127.0.0.1:8100/v1"),
        ppob_username=_str("PPOB_USERNAME", "loket-dev"),
        ppob_api_key=_str("PPOB_API_KEY", "dev-loket-key"),
        ppob_webhook_secret=_str("PPOB_WEBHOOK_SECRET", "dev-webhook-secret"),
        ppob_timeout_seconds=_float("PPOB_TIMEOUT_SECONDS", 15.0),
        ppob_recheck_seconds=_int("PPOB_RECHECK_SECONDS", 60),
        outbox_lease_seconds=_int("OUTBOX_LEASE_SECONDS", 60),
        outbox_relay_interval=_float("OUTBOX_RELAY_INTERVAL", 1.0),
        db_pool_size=_int("DB_POOL_SIZE", 20),
        db_lock_wait_seconds=_int("DB_LOCK_WAIT_SECONDS", 5),
        broker_heartbeat_timeout_ms=_int("BROKER_HEARTBEAT_TIMEOUT_MS", 30000),
        broker_maintenance_chance=_int("BROKER_MAINTENANCE_CHANCE", 10000),
        worker_processes=_int("WORKER_PROCESSES", 1),
        worker_threads=_int("WORKER_THREADS", 8),
        worker_in_flight=_int("WORKER_IN_FLIGHT", 256),
        log_level=_str("LOG_LEVEL", "INFO"),
        xendit_base_url=_str("XENDIT_BASE_URL", "http://127.0.0.1:8100"),
        xendit_secret_key=_str("XENDIT_SECRET_KEY", "xnd_development_loket"),
        xendit_api_version=_str("XENDIT_API_VERSION", "2022-07-31"),
        xendit_callback_token=_str("XENDIT_CALLBACK_TOKEN", "dev-callback-token"),
        xendit_timeout_seconds=_float("XENDIT_TIMEOUT_SECONDS", 10.0),
        deposit_gateway=_str("DEPOSIT_GATEWAY", "xendit"),
        midtrans_base_url=_str("MIDTRANS_BASE_URL", "http://127.0.0.1:8100/midtrans"),
        midtrans_server_key=_str("MIDTRANS_SERVER_KEY", "SB-Mid-server-loket"),
        paystack_base_url=_str("PAYSTACK_BASE_URL", "http://127.0.0.1:8100/paystack"),
        paystack_secret_key=_str("PAYSTACK_SECRET_KEY", "sk_test_loket"),
        qris_ttl_seconds=_int("QRIS_TTL_SECONDS", 900),
        qris_create_wait_ms=_int("QRIS_CREATE_WAIT_MS", 2000),
        qris_create_deadline_seconds=_int("QRIS_CREATE_DEADLINE_SECONDS", 120),
        photobox_default_amount=_int("PHOTOBOX_DEFAULT_AMOUNT", 40000),
        photo_retention_days=_int("PHOTO_RETENTION_DAYS", 14),
        qris_sweep_interval_seconds=_float("QRIS_SWEEP_INTERVAL_SECONDS", 5.0),
        photo_purge_interval_seconds=_float("PHOTO_PURGE_INTERVAL_SECONDS", 60.0),
        gallery_url=_str("GALLERY_URL", "http://127.0.0.1:8000/api/v1/transactions/{external_id}/photos"),
        smtp_host=_str("SMTP_HOST", "127.0.0.1"),
        smtp_port=_int("SMTP_PORT", 8025),
        smtp_sender=_str("SMTP_SENDER", "Photobox <photobox@loket.local>"),
        smtp_tls=_str("SMTP_TLS", "none"),
        smtp_username=_str("SMTP_USERNAME", ""),
        smtp_password=_str("SMTP_PASSWORD", ""),
        response_encryption_key=_str("RESPONSE_ENCRYPTION_KEY", ""),
        clock_metrics_port=_int("CLOCK_METRICS_PORT", 9300),
        callback_retry_scale=_float("CALLBACK_RETRY_SCALE", 1.0),
        callback_allow_private_networks=_str("CALLBACK_ALLOW_PRIVATE_NETWORKS", "false").lower() in ("1", "true", "yes"),
        require_request_signature=_str("REQUIRE_REQUEST_SIGNATURE", "false").lower() in ("1", "true", "yes"),
        signature_window_seconds=_int("SIGNATURE_WINDOW_SECONDS", 300),
        rate_limit_per_minute=_int("RATE_LIMIT_PER_MINUTE", 6000),
        address_key_attempts_per_minute=_limit("ADDRESS_KEY_ATTEMPTS_PER_MINUTE", 60),
        registrations_per_minute=_limit("REGISTRATIONS_PER_MINUTE", 5),
        deposits_per_minute=_limit("DEPOSITS_PER_MINUTE", 10),
        public_lookups_per_minute=_limit("PUBLIC_LOOKUPS_PER_MINUTE", 600),
        rate_limit_max_keys=_limit("RATE_LIMIT_MAX_KEYS", 100_000),
        trusted_proxies=_networks("TRUSTED_PROXIES"),
        token_revocation_refresh_seconds=_float("TOKEN_REVOCATION_REFRESH_SECONDS", 5.0),
        metrics_host=_str("METRICS_HOST", "127.0.0.1"),
    )
