"""What an operator watches: metrics from every process, the compose monitoring files, request ids in logs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid

import httpx
import promql_parser
import yaml
from prometheus_client import CollectorRegistry, multiprocess

from core.security import issue_staff_token
from ops.stack import ROOT
from sim.mailbox import Mailbox
from tests.harness import LoketStack, fast_env, final_statuses, register, wait_until
from tests.test_kiosk_events import poll_qr
from tests.test_kiosk_flow import new_location, poll

PROMETHEUS = ROOT / "ops" / "prometheus"
DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "loket.json"
METRIC = re.compile(r"\b(?:loket|dramatiq)_[a-z_]+\b")


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def scrape(url: str) -> set[str]:
    text = httpx.get(url, timeout=5).text
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_promtool_accepts_the_prometheus_config_and_rules(tmp_path):
    # Fails rather than skips: the README promises that promtool checks these files (.ci/run installs it).
    assert shutil.which("promtool"), "promtool is not installed: apt-get install prometheus (Debian), as .ci/run does"
    # promtool wants the scrape token's file to exist: compose mounts it at /run/secrets, here a copy
    token = tmp_path / "metrics_token"
    token.write_text("token")
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert "/run/secrets/metrics_token" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/run/secrets/metrics_token", str(token)))
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    for args in (["check", "config", str(tmp_path / "prometheus.yml")], ["check", "rules", str(PROMETHEUS / "alerts.yml")]):
        result = subprocess.run(["promtool", *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_and_panel_is_valid_promql_with_the_fields_grafana_and_prometheus_need():
    for expr in alert_expressions() + dashboard_expressions():
        promql_parser.parse(expr)  # raises on a syntax error
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {"QueueGrowing", "OldestMessageOld", "DeadLetters", "ProviderFailing", "OutboxGrowing"}
    assert all(r["annotations"]["summary"] and r["labels"]["severity"] for r in rules)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "loket" and len([p for p in dashboard["panels"] if p["type"] == "timeseries"]) >= 15
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "./ops/prometheus:/etc/prometheus:ro" in compose["services"]["prometheus"]["volumes"]
    jobs = {job["job_name"] for job in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]}
    assert jobs == {"web", "worker", "qris_worker", "webhook_worker", "callback_worker", "exporter"}


async def test_every_metric_the_dashboard_and_alerts_use_is_served(api, stack: LoketStack, admin_token, mailbox: Mailbox):
    """After a purchase that meets a provider outage, then Pending and a callback, a kiosk
    transaction whose QR creation meets a gateway outage, and a photo e-mail that the SMTP server
    refuses once (a Dramatiq error and retry), the web, a worker and the clock serve every metric
    name used."""
    await stack.configure_sim(fail_next=4, pending_ms=300, gateway_fail_next=3)
    reseller = await register(api, admin_token, saldo=100_000)
    purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "087800001233"}, headers=reseller.headers)).json()
    await final_statuses(api, reseller, [purchase["id"]])
    staff = {"authorization": "Bearer " + issue_staff_token(fast_env()["JWT_SECRET"], "ops", 50)}
    location_id = await new_location(api, staff)
    external_id = (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=staff)).json()["data"]["tr_external_id"]
    await poll_qr(api, external_id)
    await stack.pay(external_id)
    await poll(api, external_id, ("COMPLETED",))
    before = len(mailbox.messages)
    mailbox.refuse_next = 1
    photos = {"email": "metrik@mail.id", "photos": [{"url": "https://cdn.test/m.jpg"}]}
    assert (await api.post(f"/api/v1/transactions/{external_id}/photos", json=photos, headers=staff)).status_code == 202
    messages = await asyncio.to_thread(mailbox.wait_for, before + 1, 15)
    assert [m["To"] for m in messages[before:]] == ["metrik@mail.id"]  # sent once, on the retry

    served: set[str] = set()

    async def everything_served() -> bool:
        served.clear()
        for url in (f"{stack.web_url}/metrics", stack.worker_metrics_url, stack.clock_metrics_url):
            served.update(scrape(url))
        return used <= served

    used = {name for expr in alert_expressions() + dashboard_expressions() for name in METRIC.findall(expr)}
    try:
        await wait_until(everything_served, timeout=15, every=1)
    except AssertionError:
        raise AssertionError(f"not served: {sorted(used - served)}") from None


async def test_http_metrics_are_labelled_by_route_template(api, admin_token):
    reseller = await register(api, admin_token)
    await api.get("/status/123456", headers=reseller.headers)
    text = (await api.get("/metrics")).text
    assert 'loket_http_requests_total{method="GET",route="/status/{purchase_id:int}",status="404"}' in text
    assert "/status/123456" not in text


async def test_the_request_id_follows_a_purchase_into_its_job(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=100_000)
    request_id = f"req-trace-{uuid.uuid4().hex[:8]}"
    response = await api.post(
        "/beli", json={"produk_id": 1, "nomor_tujuan": "081288880000"}, headers={**reseller.headers, "x-request-id": request_id}
    )
    assert response.headers["x-request-id"] == request_id
    purchase_id = response.json()["id"]
    await final_statuses(api, reseller, [purchase_id])
    worker_log = stack.process("worker").log()
    lines = [json.loads(line) for line in worker_log.splitlines() if request_id in line]
    assert lines and all(line["request_id"] == request_id and line["subject"] == f"purchase:{purchase_id}" for line in lines)
    generated = await api.get("/saldo", headers=reseller.headers)
    assert re.fullmatch(r"[0-9a-f]{16}", generated.headers["x-request-id"])


def test_a_web_process_on_its_way_out_takes_its_live_gauges_with_it(tmp_path):
    """With WEB_PROCESSES > 1 the processes share a metrics folder: one that stops (web.app's
    lifespan) drops its loket_group_call_processes, so the one uvicorn starts in its place is not
    counted beside it. Of two processes, the one that ends without it (a crash) is still counted."""
    script = (
        "import asyncio, sys\n"
        "from core.group_call import GroupCall\n"
        "from web.metrics import forget_this_process\n"
        "GroupCall(lambda items: asyncio.sleep(0, result=items), 1, name='test.process')\n"
        "if sys.argv[1] == 'leaves': forget_this_process()\n"
    )
    for how in ("crashes", "leaves"):
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
        subprocess.run([sys.executable, "-c", script, how], env=env, cwd=ROOT, check=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("loket_group_call_processes", {"name": "test.process"}) == 1
