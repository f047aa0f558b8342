"""Settings from the environment, validated once at start-up.

Every process (web, worker, clock, tools) reads the same names; the environment always wins. A
value that does not fit stops the process with SettingsError, which names each variable at fault.

LOKET_ENV is `production` unless set to `development`. In production every secret must be set
and differ from the development value it has here, and development-only switches stay off:
a forgotten variable stops the process instead of running on a key that anyone can read in this
file. `make run`, the tests and the benchmark set LOKET_ENV=development themselves.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_MASTER_KEY = "bG9rZXQtZGV2LW9ubHktbWFzdGVyLWtleS0zMmJ5dGU="  # 32 bytes, for local use only

# The development value of each secret, by its variable. In development an unset secret takes it.
DEVELOPMENT_SECRETS = {
    "JWT_SECRET": "dev-jwt-secret-change-me-in-production",
    "LOKET_MASTER_KEY": DEV_MASTER_KEY,
    "PPOB_API_KEY": "dev-loket-key",
    "PPOB_WEBHOOK_SECRET": "dev-webhook-secret",
    "XENDIT_SECRET_KEY": "xnd_development_loket",
    "XENDIT_CALLBACK_TOKEN": "dev-callback-token",
    "MIDTRANS_SERVER_KEY": "SB-Mid-server-loket",
    "PAYSTACK_SECRET_KEY": "sk_test_loket",
}
# Gateways a production deployment may leave unconfigured: unset, their webhooks are refused.
OPTIONAL_GATEWAY_SECRETS = {"MIDTRANS_SERVER_KEY": "midtrans", "PAYSTACK_SECRET_KEY": "paystack"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PerMinute = Annotated[int, Field(ge=0)]
"""A per-minute allowance: a whole number >= 0 (0 turns the limit off)."""
Port = Annotated[int, Field(ge=1, le=65535)]
Positive = Annotated[int, Field(gt=0)]
Seconds = Annotated[float, Field(gt=0)]


class SettingsError(SystemExit):
    """The environment holds settings this process cannot run with; the message names each one."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True, hide_input_in_errors=True)

    loket_env: Literal["production", "development"] = "production"
    """production refuses unset and development secrets; development fills them in."""
    database_url: str = "mysql+asyncmy://root@127.0.0.1:3306/loket"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_namespace: str = Field("dramatiq", min_length=1)
    """Prefix of Dramatiq's keys: several deployments (or test sessions) can share one Redis."""
    port: Port = 8000
    jwt_secret: SecretStr = SecretStr("")
    """Signs staff and kiosk tokens (HS256)."""
    master_key: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("LOKET_MASTER_KEY"))
    """Base64 of 32 bytes: the AES-256-GCM key that encrypts private keys at rest."""
    ppob_base_url: str = "http://127.0.0.1:8100/v1"
    ppob_username: str = "loket-dev"
    ppob_api_key: SecretStr = SecretStr("")
    ppob_webhook_secret: SecretStr = SecretStr("")
    """Key of the HMAC-SHA1 (X-Hub-Signature) on the provider's callbacks."""
    ppob_timeout_seconds: Seconds = 15.0
    """How long one provider call may take before its outcome counts as unknown."""
    ppob_recheck_seconds: Positive = 60
    """Delay between re-checks of a purchase the provider left Pending (Digiflazz asks >= 60 s)."""
    outbox_lease_seconds: Positive = 60
    """How long a pushed job may take before the relay pushes it again."""
    outbox_relay_interval: Seconds = 1.0
    db_pool_size: Positive = 20
    db_lock_wait_seconds: Positive = 5
    """How long a statement of the web's hot paths waits for a row lock before it fails (MariaDB's
    50 s by default): the calls of the same moment share one transaction (web.intake), so one order
    stuck behind a held saldo row must not hold the others for long."""
    broker_heartbeat_timeout_ms: Positive = 30000
    broker_maintenance_chance: Annotated[int, Field(ge=1, le=1_000_000)] = 1_000_000
    """Per million broker calls, how many run Dramatiq's maintenance, which gives a dead worker's
    messages (delayed re-checks and expiry timers among them) to the living. Every call: without a
    dead worker it is two sorted-set range reads, and a killed worker's timers are back within the
    heartbeat timeout (tests/test_recovery_time.py); at 1% they can wait minutes on an idle queue."""
    worker_processes: Positive = 1
    worker_threads: Positive = 8
    worker_in_flight: Positive = 256
    """Provider, gateway and reseller callback calls (with their follow-up) a worker process keeps in flight at once (workers.in_flight)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    xendit_base_url: str = "http://127.0.0.1:8100"
    xendit_secret_key: SecretStr = SecretStr("")
    xendit_api_version: str = "2022-07-31"
    xendit_callback_token: SecretStr = SecretStr("")
    """The x-callback-token Xendit sends on its webhooks."""
    xendit_timeout_seconds: Seconds = 10.0
    deposit_gateway: Literal["xendit", "midtrans", "paystack"] = "xendit"
    """Where reseller deposits are paid: xendit (QRIS), midtrans or paystack."""
    midtrans_base_url: str = "http://127.0.0.1:8100/midtrans"
    midtrans_server_key: SecretStr = SecretStr("")
    paystack_base_url: str = "http://127.0.0.1:8100/paystack"
    paystack_secret_key: SecretStr = SecretStr("")
    qris_ttl_seconds: Positive = 900
    """How long a QRIS code may be paid (the expiry of a kiosk transaction)."""
    qris_create_wait_ms: Annotated[int, Field(ge=0)] = 2000
    """How long POST /api/v1/transactions waits for the QR string before answering without it."""
    qris_create_deadline_seconds: Positive = 120
    """How long the gateway may keep failing before the transaction ends FAILED."""
    photobox_default_amount: Positive = 40000
    photo_retention_days: Positive = 14
    qris_sweep_interval_seconds: Seconds = 5.0
    photo_purge_interval_seconds: Seconds = 60.0
    gallery_url: str = "http://127.0.0.1:8000/api/v1/transactions/{external_id}/photos"
    """The gallery link in the photo e-mail; {external_id} is replaced."""
    smtp_host: str = "127.0.0.1"
    smtp_port: Port = 8025
    smtp_sender: str = "Photobox <photobox@loket.local>"
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    response_encryption_key: SecretStr = SecretStr("")
    """Base64 of 32 bytes enables AES-256-GCM on the public kiosk endpoints; empty disables it."""
    clock_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9300
    """Where the clock serves the queue and table gauges (0: not at all)."""
    callback_retry_scale: Seconds = 1.0
    """Multiplies the callback retry delays (10 s ... 12 h); tests shrink a day to seconds."""
    callback_allow_private_networks: bool = False
    """Let reseller callbacks go to loopback/private addresses (development and tests only: core.outbound)."""
    require_request_signature: bool = False
    """Every reseller request must be signed (X-Timestamp, X-Signature), not only those of accounts that ask."""
    signature_window_seconds: Positive = 300
    rate_limit_per_minute: PerMinute = 6000
    """Requests per API key per minute (0: no limit)."""
    metrics_host: str = "127.0.0.1"
    metrics_token: SecretStr = SecretStr("")
    """Bearer token GET /metrics of the web requires. Unset, the web's /metrics is open in
    development and not served (404) in production, where it would share the public port."""
    address_key_attempts_per_minute: PerMinute = 60
    """Requests per client address per minute that carry an API key this web process has not seen
    work (0: no limit): refused with 429 before the key is looked up, so spraying keys is cheap to stop."""
    registrations_per_minute: PerMinute = 5
    """POST /register per client address per minute (0: no limit); registrations by an admin token are not counted."""
    deposits_per_minute: PerMinute = 10
    """POST /deposit per reseller per minute (0: no limit): each one asks the gateway for a QR code."""
    public_lookups_per_minute: PerMinute = 600
    """Public kiosk reads (a transaction by external id, a photo gallery) per client address per minute (0: no limit)."""
    rate_limit_max_keys: Positive = 100_000
    """Counters one web process keeps per limit and minute; beyond them the oldest are forgotten here
    (their counts stay in Redis and come back at the next settle)."""
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = ()
    """Comma-separated addresses/networks of the reverse proxies whose X-Forwarded-For names the
    client; empty: the socket's peer is the client and the header is ignored."""
    token_revocation_refresh_seconds: Seconds = 5.0
    """How often each web process reloads the revoked staff tokens from the database."""

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = []
        for entry in (part.strip() for part in value.split(",")):
            if not entry:
                continue
            try:
                found.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (e.g. 10.0.0.5,10.1.0.0/16)") from None
        return tuple(found)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("master_key", "response_encryption_key")
    @classmethod
    def _aes_key(cls, value: SecretStr) -> SecretStr:
        """Base64 of exactly 32 bytes (AES-256), or empty."""
        if raw := value.get_secret_value():
            try:
                size = len(base64.b64decode(raw, validate=True))
            except (binascii.Error, ValueError):
                raise ValueError("not base64 (expected base64 of 32 random bytes)") from None
            if size != 32:
                raise ValueError(f"decodes to {size} bytes, not 32 (AES-256)")
        return value

    def secret(self, variable: str) -> SecretStr:
        """The secret set by `variable` (a key of DEVELOPMENT_SECRETS)."""
        return getattr(self, "master_key" if variable == "LOKET_MASTER_KEY" else variable.lower())

    def gateway_configured(self, gateway: str) -> bool:
        """Whether Loket holds a key of its own for `gateway` (midtrans, paystack); webhooks of a
        gateway without one are refused, as their signatures would prove nothing."""
        variable = next(v for v, name in OPTIONAL_GATEWAY_SECRETS.items() if name == gateway)
        return bool(self.secret(variable).get_secret_value())


def development_filled(settings: Settings) -> Settings:
    """In development, each unset secret takes its development value."""
    if settings.loket_env != "development":
        return settings
    unset = {v: SecretStr(dev) for v, dev in DEVELOPMENT_SECRETS.items() if not settings.secret(v).get_secret_value()}
    return settings.model_copy(update={("master_key" if v == "LOKET_MASTER_KEY" else v.lower()): s for v, s in unset.items()})


def production_problems(settings: Settings) -> list[str]:
    """What production refuses: each secret unset or at its development value, development switches on."""
    if settings.loket_env != "production":
        return []
    problems = []
    for variable, development in DEVELOPMENT_SECRETS.items():
        value = settings.secret(variable).get_secret_value()
        optional = OPTIONAL_GATEWAY_SECRETS.get(variable)
        if not value and optional is not None and settings.deposit_gateway != optional:
            continue  # that gateway is not used: its webhooks are refused
        if not value:
            problems.append(f"{variable}: unset; production needs a secret of its own")
        elif value == development:
            problems.append(f"{variable}: the development value; production needs a secret of its own")
    if settings.callback_allow_private_networks:
        problems.append("CALLBACK_ALLOW_PRIVATE_NETWORKS: allowed only with LOKET_ENV=development (it lets callbacks reach internal addresses)")
    return problems


def load(secrets: bool = True) -> Settings:
    """Read and check the settings in the process environment.

    secrets: False for tools that use no secret (migrations, the dead-letter tool), which then run
        in production without them.

    Raises SettingsError naming every variable that is malformed, out of range, not one of its
    choices, or (in production, with `secrets`) an unset or development secret."""
    try:
        settings = Settings()
    except ValidationError as invalid:
        raise SettingsError(_report([_problem(error) for error in invalid.errors()])) from None
    if secrets and (problems := production_problems(settings)):
        raise SettingsError(_report(problems + ["(LOKET_ENV=development allows the development values, never in production)"]))
    return development_filled(settings)


def _problem(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else "?"
    variable = "LOKET_MASTER_KEY" if field in ("master_key", "LOKET_MASTER_KEY") else field.upper()
    shown = "" if variable in DEVELOPMENT_SECRETS or variable.endswith(("PASSWORD", "_KEY")) else f" (got {error['input']!r})"
    return f"{variable}: {error['msg']}{shown}"


def _report(problems: list[str]) -> str:
    return "Loket cannot start with these settings:\n  " + "\n  ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """This process's settings, read once."""
    return load()
