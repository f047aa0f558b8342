"""Prometheus metrics recorded by Loket's own code (the queue and table gauges live in workers/exporter.py).

In processes that share a host with siblings (dramatiq worker processes, uvicorn --workers),
PROMETHEUS_MULTIPROC_DIR is set before this module is imported (workers/run.py, web/serve.py),
so every process writes its own file and one scrape sums them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)

provider_calls = Histogram(
    "loket_provider_call_seconds", "PPOB provider calls by outcome (sukses, gagal, pending, rejected, unreachable, unknown).",
    ["outcome"], buckets=CALL_BUCKETS,
)  # fmt: skip
gateway_calls = Histogram(
    "loket_gateway_call_seconds", "Payment gateway calls by outcome (created, answered: a read, rejected, unavailable).", ["outcome"], buckets=CALL_BUCKETS
)
webhooks_received = Counter(
    "loket_webhooks_received_total", "Verified webhooks by source and result (stored, duplicate); refusals are loket_http_requests_total 4xx.", ["source", "result"]
)
http_requests = Counter("loket_http_requests_total", "HTTP requests by route and status.", ["method", "route", "status"])
http_latency = Histogram(
    "loket_http_request_seconds", "HTTP request latency by route.", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)  # fmt: skip
callback_deliveries = Counter(
    "loket_reseller_callbacks_total", "Reseller callback attempts by outcome (delivered, pending = will retry, failed = gave up).", ["outcome"]
)
# Served at 0 from the start, so the CallbacksFailing alert's increase() sees the first failure.
for _outcome in ("delivered", "pending", "failed"):
    callback_deliveries.labels(_outcome)
worker_in_flight = Gauge(
    "loket_worker_in_flight_work", "Provider, gateway and reseller callback calls (with their follow-up) handed to a worker's event loop, not yet ended (workers.in_flight).",
    multiprocess_mode="livesum",
)  # fmt: skip
job_retries = Counter(
    "loket_job_retries_total", "Retries scheduled by work that runs after its message was acknowledged (workers.in_flight), by actor.",
    ["actor_name"],
)  # fmt: skip
group_call_seconds = Histogram(
    "loket_group_call_seconds", "Runs of a group call (core.group_call) by name; rate(_sum) over loket_group_call_processes is the share of the time a process has one on its way: near 1, its callers queue behind it.",
    ["name"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)  # fmt: skip
group_call_items = Counter(
    "loket_group_call_items_total", "Items the group calls ran, by name; over loket_group_call_seconds_count, the mean group size.", ["name"]
)
group_call_processes = Gauge(
    "loket_group_call_processes", "Processes that have a group call of that name.", ["name"], multiprocess_mode="livesum"
)
