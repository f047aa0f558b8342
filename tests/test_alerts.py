"""Alerts reach someone: every rule is unit-tested with promtool, every process has a down and a
missing rule, and Alertmanager posts to the configured webhook (checked with amtool)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from ops.stack import ROOT

PROMETHEUS = ROOT / "ops" / "prometheus"
ALERTMANAGER = ROOT / "ops" / "alertmanager"


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    assert shutil.which(args[0]), f"{args[0]} is not installed (.ci/run installs Debian's prometheus and prometheus-alertmanager)"
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kwargs)


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for rule in group["rules"]]


def test_every_rule_fires_on_a_broken_deployment_and_stays_quiet_on_a_healthy_one():
    result = _run("promtool", "test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fired = {check["alertname"] for test in tests for check in test["alert_rule_test"] if check["exp_alerts"]}
    quiet = {check["alertname"] for test in tests for check in test["alert_rule_test"] if not check["exp_alerts"]}
    names = {rule["alert"] for rule in _rules()}
    assert names == fired == quiet, (names - fired, names - quiet)


def test_the_rule_tests_fail_when_a_rule_stops_firing(tmp_path: Path):
    """The unit tests are not vacuous: with one threshold raised out of reach, promtool fails them."""
    for name in ("alerts.yml", "alerts_test.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    rules = (tmp_path / "alerts.yml").read_text()
    assert "loket_purchase_oldest_proses_age_seconds > 1800" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace("loket_purchase_oldest_proses_age_seconds > 1800", "loket_purchase_oldest_proses_age_seconds > 86400"))
    result = _run("promtool", "test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode != 0 and "PurchasesStuckInProses" in result.stdout + result.stderr


def test_every_scraped_process_has_a_down_and_a_missing_rule_and_alerts_go_to_alertmanager():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    rules = _rules()
    assert any(rule["alert"] == "ProcessDown" and rule["expr"].strip() == "up == 0" for rule in rules)
    missing = {rule["labels"]["job"] for rule in rules if rule["alert"] == "ProcessMissing"}
    assert missing == jobs
    for rule in rules:
        if rule["alert"] == "ProcessMissing":
            assert rule["expr"] == f'absent(up{{job="{rule["labels"]["job"]}"}})'
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    web = next(job for job in config["scrape_configs"] if job["job_name"] == "web")
    assert web["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics_token"}


def _render(tmp_path: Path, url: str) -> Path:
    """ops/alertmanager/start.sh as compose runs it, told to write the config and stop."""
    out = tmp_path / "alertmanager.yml"
    env = {"PATH": os.environ["PATH"], "ALERT_WEBHOOK_URL": url, "CONFIG_IN": str(ALERTMANAGER / "alertmanager.yml"),
           "CONFIG_OUT": str(out), "RENDER_ONLY": "1"}  # fmt: skip
    result = _run("sh", str(ALERTMANAGER / "start.sh"), env=env)
    assert result.returncode == 0, result.stderr
    return out


def test_alertmanager_posts_every_alert_to_the_configured_webhook_url(tmp_path: Path):
    url = "https://hooks.example.id/alerts?token=a&b=c#x"
    config_path = _render(tmp_path, url)
    checked = _run("amtool", "check-config", str(config_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(config_path.read_text())
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    assert all(route.get("receiver", config["route"]["receiver"]) in receivers for route in config["route"].get("routes", []))
    hooks = [hook for receiver in receivers.values() for hook in receiver["webhook_configs"]]
    assert hooks and all(hook["url"] == url and hook["send_resolved"] for hook in hooks)


def test_alertmanager_refuses_to_start_without_a_webhook_url(tmp_path: Path):
    env = {"PATH": os.environ["PATH"], "CONFIG_IN": str(ALERTMANAGER / "alertmanager.yml"), "CONFIG_OUT": str(tmp_path / "a.yml")}
    result = _run("sh", str(ALERTMANAGER / "start.sh"), env=env)
    assert result.returncode != 0 and "ALERT_WEBHOOK_URL" in result.stderr
    assert not (tmp_path / "a.yml").exists()


def test_compose_runs_alertmanager_with_a_required_receiver_and_prometheus_sends_to_it():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    alertmanager = services["alertmanager"]
    assert alertmanager["environment"]["ALERT_WEBHOOK_URL"].startswith("${ALERT_WEBHOOK_URL:?")
    assert alertmanager["entrypoint"] == ["/bin/sh", "/etc/alertmanager/loket/start.sh"]
    assert "./ops/alertmanager:/etc/alertmanager/loket:ro" in alertmanager["volumes"]
    assert "alertmanager" in services["prometheus"]["depends_on"]
    assert services["prometheus"]["secrets"] == ["metrics_token"]
