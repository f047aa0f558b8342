"""Settings are checked once at start-up: a value at fault stops every entry point with a message
that names its variable, and production refuses to run on unset or development secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from core.settings import DEVELOPMENT_SECRETS, SettingsError, load
from ops.stack import Stack
from tests.harness import MariaDB

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = [
    ["-m", "web.serve"],
    ["-m", "workers.run", "--metrics-port", "0"],
    ["-m", "workers.clock"],
    ["-m", "ops.token", "--level", "50"],
]
REQUIRED = ["JWT_SECRET", "LOKET_MASTER_KEY", "PPOB_API_KEY", "PPOB_WEBHOOK_SECRET", "XENDIT_SECRET_KEY", "XENDIT_CALLBACK_TOKEN"]
# Secrets of a production deployment's own, valid in form.
OWN_SECRETS = {
    "JWT_SECRET": "a-production-jwt-secret-of-our-own-0123456789",
    "LOKET_MASTER_KEY": "cHJvZHVjdGlvbi1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=",
    "PPOB_API_KEY": "prod-provider-key",
    "PPOB_WEBHOOK_SECRET": "prod-webhook-secret",
    "XENDIT_SECRET_KEY": "xnd_production_key",
    "XENDIT_CALLBACK_TOKEN": "prod-callback-token",
}


def start(args: list[str], **environ: str) -> subprocess.CompletedProcess[str]:
    """An entry point started as an operator would, with only `environ` on top of a clean environment."""
    clean = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME", "LANG")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**clean, **environ}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args", ENTRY_POINTS, ids=lambda a: a[1])
def test_every_entry_point_refuses_production_without_its_secrets_naming_each(args: list[str]):
    done = start(args, DATABASE_URL=os.environ["DATABASE_URL"])
    assert done.returncode == 1, (done.stdout, done.stderr)
    for variable in REQUIRED:
        assert f"{variable}: unset" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr  # a message for the operator, not a crash


def test_development_values_are_refused_in_production_by_name_and_never_printed():
    done = start(ENTRY_POINTS[0], **{**OWN_SECRETS, "JWT_SECRET": DEVELOPMENT_SECRETS["JWT_SECRET"], "XENDIT_CALLBACK_TOKEN": DEVELOPMENT_SECRETS["XENDIT_CALLBACK_TOKEN"]})
    assert done.returncode == 1
    assert "JWT_SECRET: the development value" in done.stderr and "XENDIT_CALLBACK_TOKEN: the development value" in done.stderr
    assert "PPOB_API_KEY" not in done.stderr  # set to a value of its own: nothing to say
    assert DEVELOPMENT_SECRETS["JWT_SECRET"] not in done.stderr + done.stdout


@pytest.mark.parametrize(
    "variable, value, reason",
    [
        ("PORT", "80a", "valid integer"),
        ("PORT", "70000", "less than or equal to 65535"),
        ("LOG_LEVEL", "loud", "'DEBUG', 'INFO'"),
        ("DEPOSIT_GATEWAY", "bitcoin", "'xendit', 'midtrans' or 'paystack'"),
        ("SMTP_TLS", "maybe", "'none', 'starttls' or 'tls'"),
        ("LOKET_ENV", "staging", "'production' or 'development'"),
        ("RATE_LIMIT_PER_MINUTE", "-1", "greater than or equal to 0"),
        ("OUTBOX_LEASE_SECONDS", "0", "greater than 0"),
        ("REQUIRE_REQUEST_SIGNATURE", "perhaps", "valid boolean"),
        ("TRUSTED_PROXIES", "10.0.0.1,proxy.internal", "'proxy.internal' is not an IP address"),
        ("LOKET_MASTER_KEY", "c2hvcnQ=", "decodes to 5 bytes, not 32"),
        ("RESPONSE_ENCRYPTION_KEY", "not base64!", "not base64"),
    ],
)
def test_a_malformed_setting_stops_the_web_naming_it(variable: str, value: str, reason: str):
    done = start(ENTRY_POINTS[0], **{**OWN_SECRETS, variable: value})
    assert done.returncode == 1
    [line] = [line for line in done.stderr.splitlines() if line.strip().startswith(f"{variable}:")]
    assert reason in line, line
    if variable.endswith("KEY"):
        assert value not in done.stderr  # a key is never echoed, not even a wrong one


def test_a_development_switch_is_refused_in_production():
    done = start(ENTRY_POINTS[0], **OWN_SECRETS, CALLBACK_ALLOW_PRIVATE_NETWORKS="true")
    assert done.returncode == 1 and "CALLBACK_ALLOW_PRIVATE_NETWORKS: allowed only with LOKET_ENV=development" in done.stderr


def test_development_fills_in_the_secrets_and_production_keeps_its_own(monkeypatch):
    for variable in DEVELOPMENT_SECRETS:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LOKET_ENV", "development")
    assert load().jwt_secret.get_secret_value() == DEVELOPMENT_SECRETS["JWT_SECRET"]
    monkeypatch.setenv("LOKET_ENV", "production")
    for variable, value in OWN_SECRETS.items():
        monkeypatch.setenv(variable, value)
    settings = load()
    assert settings.master_key.get_secret_value() == OWN_SECRETS["LOKET_MASTER_KEY"]
    assert OWN_SECRETS["JWT_SECRET"] not in repr(settings)  # secrets stay out of logs and tracebacks
    assert not settings.gateway_configured("midtrans")  # not used, not set: its webhooks are refused
    monkeypatch.setenv("DEPOSIT_GATEWAY", "midtrans")
    with pytest.raises(SettingsError, match="MIDTRANS_SERVER_KEY: unset"):
        load()


@contextmanager
def production_web(db: MariaDB, log_dir: Path, **environ: str) -> Iterator[str]:
    """A web process started with production settings of its own; yields its base URL."""
    stack = Stack(env={**OWN_SECRETS, "LOKET_ENV": "production", "DATABASE_URL": db.url, "REDIS_URL": os.environ["REDIS_URL"],
                       "REDIS_NAMESPACE": os.environ["REDIS_NAMESPACE"], **environ}, log_dir=log_dir)  # fmt: skip
    port = stack.reserve_port()
    try:
        stack.start_web(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stack.stop()


def test_a_production_web_refuses_webhooks_of_a_gateway_it_has_no_key_for_and_hides_its_metrics(db: MariaDB, tmp_path: Path):
    with production_web(db, tmp_path) as url:
        body = {"order_id": "DEP-1", "status_code": "200", "gross_amount": "50000.00", "signature_key": "0" * 128, "transaction_status": "settlement"}
        for path in ("/webhooks/midtrans", "/webhooks/paystack"):
            answer = httpx.post(f"{url}{path}", json=body, headers={"x-paystack-signature": "0" * 128})
            assert answer.status_code == 404 and answer.json()["code"] == "gateway_not_configured", answer.text
        # no METRICS_TOKEN: the public port does not serve /metrics at all
        assert httpx.get(f"{url}/metrics").status_code == 404
    assert db.value("SELECT COUNT(*) FROM webhook_event WHERE source IN ('midtrans', 'paystack') AND reference = 'DEP-1'") == 0


def test_with_a_metrics_token_only_a_scraper_holding_it_reads_the_web_metrics(db: MariaDB, tmp_path: Path):
    token = "scrape-token-of-our-own-0123456789"
    with production_web(db, tmp_path, METRICS_TOKEN=token) as url:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": token}, {"authorization": f"Bearer {token}x"}):
            answer = httpx.get(f"{url}/metrics", headers=headers)
            assert answer.status_code == 401 and answer.json()["code"] == "metrics_token_required", (headers, answer.text)
            assert token not in answer.text
        answer = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and "loket_http_requests_total" in answer.text
