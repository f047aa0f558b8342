"""Simulator settings (read once from the environment) and the runtime config that starts from them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError


@dataclass(frozen=True)
class Settings:
    """Startup settings of the simulator; the runtime config starts from these.

    Attributes:
        port: TCP port `python -m sim` listens on.
        ppob_username: Digiflazz buyer username the sim accepts.
        ppob_api_key: API key used in the request signature md5(username + api_key + ref_id).
        ppob_webhook_secret: key of the HMAC-SHA1 that signs outbound callbacks.
        callback_url: where callbacks are POSTed; empty string disables them.
        latency_ms: sleep before answering every provider call.
        error_rate: probability (0..1) of answering HTTP 503 without recording.
        timeout_rate: probability (0..1) of recording the call, then hanging.
        timeout_sleep_ms: how long a "hanging" call sleeps before answering.
        pending_ms: how long a Pending transaction takes to reach its final state.
        seed: seed of the random generator; None means non-deterministic.
        xendit_secret_key: the Xendit secret API key the gateway accepts (Basic auth user, empty password).
        xendit_callback_token: value of the x-callback-token header on outbound Xendit webhooks.
        xendit_callback_url: where Xendit webhooks are POSTed; empty string disables them.
        gateway_latency_ms: sleep before answering every /qr_codes call.
        gateway_error_rate: probability (0..1) of a /qr_codes create or get answering HTTP 503.
        midtrans_server_key: the Midtrans server key (Basic auth user, empty password; part of signature_key).
        midtrans_callback_url: where Midtrans HTTP notifications are POSTed; empty string disables them.
        paystack_secret_key: the Paystack secret key (Bearer token; HMAC-SHA512 key of webhook signatures).
        paystack_callback_url: where Paystack webhooks are POSTed; empty string disables them.
    """

    port: int = 8100
    ppob_username: str = "loket-dev"
    ppob_api_key: str = "dev-loket-key"
    ppob_webhook_secret: str = "dev-webhook-secret"
    callback_url: str = "http://127.0.0.1:8000/webhooks/digiflazz"
    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_sleep_ms: int = 30000
    pending_ms: int = 3000
    seed: int | None = None
    xendit_secret_key: str = "xnd_development_loket"
    xendit_callback_token: str = "dev-callback-token"
    xendit_callback_url: str = "http://127.0.0.1:8000/api/v1/webhooks/xendit"
    gateway_latency_ms: int = 0
    gateway_error_rate: float = 0.0
    midtrans_server_key: str = "SB-Mid-server-loket"
    midtrans_callback_url: str = "http://127.0.0.1:8000/webhooks/midtrans"
    paystack_secret_key: str = "sk_test_loket"
    paystack_callback_url: str = "http://127.0.0.1:8000/webhooks/paystack"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables.

        Args:
            env: variables to read; defaults to os.environ. Unset (or, for
                numbers, empty) variables keep the defaults.
        """
        src = os.environ if env is None else env
        d = cls()

        def num(name: str, default: float, kind: type) -> float:
            raw = src.get(name, "").strip()
            return kind(raw) if raw else default

        seed_raw = src.get("SIM_SEED", "").strip()
        return cls(
            port=int(num("SIM_PORT", d.port, int)),
            ppob_username=src.get("PPOB_USERNAME", d.ppob_username),
            ppob_api_key=src.get("PPOB_API_KEY", d.ppob_api_key),
            ppob_webhook_secret=src.get("PPOB_WEBHOOK_SECRET", d.ppob_webhook_secret),
            callback_url=src.get("SIM_CALLBACK_URL", d.callback_url),
            latency_ms=int(num("SIM_LATENCY_MS", d.latency_ms, int)),
            error_rate=float(num("SIM_ERROR_RATE", d.error_rate, float)),
            timeout_rate=float(num("SIM_TIMEOUT_RATE", d.timeout_rate, float)),
            timeout_sleep_ms=int(num("SIM_TIMEOUT_SLEEP_MS", d.timeout_sleep_ms, int)),
            pending_ms=int(num("SIM_PENDING_MS", d.pending_ms, int)),
            seed=int(seed_raw) if seed_raw else None,
            xendit_secret_key=src.get("XENDIT_SECRET_KEY", d.xendit_secret_key),
            xendit_callback_token=src.get("XENDIT_CALLBACK_TOKEN", d.xendit_callback_token),
            xendit_callback_url=src.get("SIM_XENDIT_CALLBACK_URL", d.xendit_callback_url),
            gateway_latency_ms=int(num("SIM_GATEWAY_LATENCY_MS", d.gateway_latency_ms, int)),
            gateway_error_rate=float(num("SIM_GATEWAY_ERROR_RATE", d.gateway_error_rate, float)),
            midtrans_server_key=src.get("MIDTRANS_SERVER_KEY", d.midtrans_server_key),
            midtrans_callback_url=src.get("SIM_MIDTRANS_CALLBACK_URL", d.midtrans_callback_url),
            paystack_secret_key=src.get("PAYSTACK_SECRET_KEY", d.paystack_secret_key),
            paystack_callback_url=src.get("SIM_PAYSTACK_CALLBACK_URL", d.paystack_callback_url),
        )


class ConfigError(ValueError):
    """A runtime-config update named unknown keys or had invalid values."""


class _RuntimeConfig(BaseModel):
    """A runtime-config model that can be patched key by key."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def merged(self, patch: Mapping[str, Any]) -> Self:
        """A copy with some keys replaced; raises ConfigError on unknown keys or invalid values.

        Args:
            patch: config keys and their new values.
        """
        unknown = sorted(set(patch) - set(type(self).model_fields))
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        try:
            return type(self).model_validate({**self.model_dump(), **patch})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(problems) from exc


class SimConfig(_RuntimeConfig):
    """Runtime config, changeable through POST /_sim/config.

    Attributes:
        latency_ms: sleep before answering every provider call.
        error_rate: probability of an HTTP 503 without recording anything.
        timeout_rate: probability of recording the call, then sleeping timeout_sleep_ms.
        timeout_sleep_ms: how long a hanging call sleeps before answering.
        fail_next: the next N calls get the 503.
        timeout_next: the next N calls are recorded, then hang.
        pending_ms: time from creation until a Pending record reaches its final state.
        pending_check_resolves: if false, status checks keep answering Pending.
        callback_url: default callback target; empty disables (a request's cb_url wins).
        callback_on_create: also send an event 'create' callback for every new record.
    """

    latency_ms: int = Field(0, ge=0)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0)
    timeout_sleep_ms: int = Field(30000, ge=0)
    fail_next: int = Field(0, ge=0)
    timeout_next: int = Field(0, ge=0)
    pending_ms: int = Field(3000, ge=0)
    pending_check_resolves: bool = True
    callback_url: str = ""
    callback_on_create: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SimConfig:
        """Initial config.

        Args:
            settings: environment settings that supply the defaults.
        """
        return cls(
            latency_ms=settings.latency_ms,
            error_rate=settings.error_rate,
            timeout_rate=settings.timeout_rate,
            timeout_sleep_ms=settings.timeout_sleep_ms,
            pending_ms=settings.pending_ms,
            callback_url=settings.callback_url,
        )


class GatewayConfig(_RuntimeConfig):
    """Runtime config of the Xendit QR gateway, changeable through POST /_sim/config.

    Attributes:
        webhook_format: payment webhook body: "v2" (api-version 2022-07-31), "legacy" (QR Codes v1)
            or "seed" (the minimal {external_id, status, xendit_id} shape).
        webhook_retry_delay_ms: pause between webhook delivery attempts.
        xendit_callback_url: webhook target; empty disables webhooks.
        allow_expired_payment: let a simulated payment go through on an expired QR code.
        gateway_latency_ms: sleep before answering every /qr_codes call.
        gateway_error_rate: probability of a create or get answering 503 without creating anything.
        gateway_fail_next: the next N create calls get the 503.
        gateway_timeout_next: the next N create calls create the QR code, then hang.
        gateway_timeout_sleep_ms: how long a hanging create sleeps before answering.
        gateway_payments_down: GET /qr_codes/{qr_id}/payments answers 503 (Xendit's read API down).
    """

    webhook_format: Literal["v2", "legacy", "seed"] = "v2"
    webhook_retry_delay_ms: int = Field(1000, ge=0)
    xendit_callback_url: str = ""
    allow_expired_payment: bool = False
    gateway_latency_ms: int = Field(0, ge=0)
    gateway_error_rate: float = Field(0.0, ge=0.0, le=1.0)
    gateway_fail_next: int = Field(0, ge=0)
    gateway_timeout_next: int = Field(0, ge=0)
    gateway_timeout_sleep_ms: int = Field(30000, ge=0)
    gateway_payments_down: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        """Initial config.

        Args:
            settings: environment settings that supply the defaults.
        """
        return cls(
            xendit_callback_url=settings.xendit_callback_url,
            gateway_latency_ms=settings.gateway_latency_ms,
            gateway_error_rate=settings.gateway_error_rate,
        )


class DepositGatewayConfig(_RuntimeConfig):
    """Runtime config shared by the Midtrans and Paystack deposit gateways, changeable through POST /_sim/config.

    Attributes:
        deposit_webhook_retry_delay_ms: pause between notification delivery attempts (both gateways).
        midtrans_callback_url: Midtrans notification target; empty disables notifications.
        paystack_callback_url: Paystack webhook target; empty disables webhooks.
        midtrans_status_down: GET /midtrans/v2/{order_id}/status answers 503 (Midtrans' status API down).
    """

    deposit_webhook_retry_delay_ms: int = Field(1000, ge=0)
    midtrans_callback_url: str = ""
    paystack_callback_url: str = ""
    midtrans_status_down: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> DepositGatewayConfig:
        """Initial config.

        Args:
            settings: environment settings that supply the defaults.
        """
        return cls(midtrans_callback_url=settings.midtrans_callback_url,
                   paystack_callback_url=settings.paystack_callback_url)
