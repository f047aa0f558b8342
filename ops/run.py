"""`make run`: every Procfile process in the foreground, then demo purchases and a QRIS payment, until Ctrl-C.

The Procfile is the one list of commands: each line runs through bash, so ${VAR:-default}
reads the environment exactly as a Procfile runner (honcho, foreman, a PaaS) would.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import orjson

from core.security import ResponseCipher, issue_staff_token
from core.settings import get_settings
from ops.stack import BIN, ROOT, Stack

DEMO_NUMBERS = {"081234567890": "sukses", "087800001232": "gagal (refunded)", "087800001233": "pending, then sukses"}


def procfile() -> list[tuple[str, str]]:
    entries = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries.append((name.strip(), command.strip()))
    return entries


def start_all(stack: Stack, web_url: str) -> None:
    sim_health = "http://127.0.0.1:{}/health".format(os.environ.get("SIM_PORT", "8100"))
    readiness: dict[str, dict[str, str]] = {
        "web": {"url": f"{web_url}/health"}, "sim": {"url": sim_health}, "mail": {"ready": "mailbox listening"}, "clock": {"ready": "clock ready"},
    }  # fmt: skip
    order = sorted(procfile(), key=lambda entry: entry[0] != "sim")  # the provider first, as in production
    for name, command in order:
        wait = readiness.get(name, {"ready": "Worker process is ready"})
        stack.start(name, ["bash", "-c", f"exec {command}"], ready=wait.get("ready"), url=wait.get("url"))
        print(f"  started {name}")


def demo(web_url: str) -> None:
    settings = get_settings()
    token = issue_staff_token(settings.jwt_secret.get_secret_value(), "make-run-demo", 100)
    with httpx.Client(base_url=web_url, timeout=10) as api:
        email = f"demo{int(time.time())}@loket.local"
        account = api.post("/register", json={"nama": "Toko Demo", "email": email, "saldo": 100_000}, headers={"authorization": f"Bearer {token}"}).json()
        headers = {"x-api-key": account["api_key"]}
        print(f"\nreseller {account['id']} registered with saldo 100000 (api key {account['api_key'][:8]}...)")
        ids = {}
        for number, expected in DEMO_NUMBERS.items():
            accepted = api.post("/beli", json={"produk_id": 1, "nomor_tujuan": number}, headers=headers).json()
            ids[accepted["id"]] = expected
            print(f"POST /beli {number} -> {accepted}  (expect {expected})")
        deadline = time.monotonic() + 120
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            time.sleep(1)
            for purchase_id in sorted(pending):
                status = api.get(f"/status/{purchase_id}", headers=headers).json()
                if status["status"] in ("sukses", "gagal"):
                    pending.discard(purchase_id)
                    print(f"GET /status/{purchase_id} -> {status['status']} sn={status['sn']} ({status['hasil_eksekusi']})")
        print(f"GET /saldo -> {api.get('/saldo', headers=headers).json()}  (100000 - 2 x 12000: the gagal one was refunded)")


def public_data(body: dict, key: str) -> dict:
    """The `data` of a public kiosk answer, opened as a kiosk would when RESPONSE_ENCRYPTION_KEY is set."""
    return orjson.loads(ResponseCipher(key).open(body["data"]))["data"] if key else body["data"]


def demo_qris(web_url: str) -> None:
    """A kiosk session: location, QRIS transaction, the customer pays (simulated), photos e-mailed."""
    settings = get_settings()
    staff = {"authorization": "Bearer " + issue_staff_token(settings.jwt_secret.get_secret_value(), "make-run-demo", 50)}
    sim_url = settings.xendit_base_url
    with httpx.Client(base_url=web_url, timeout=10) as api, httpx.Client(base_url=sim_url, timeout=10) as gateway:
        location = api.post("/api/v1/locations", json={"ml_name": f"Demo Mall {int(time.time())}"}, headers=staff).json()["data"]
        data = api.post("/api/v1/transactions", json={"location_id": location["ml_id"]}, headers=staff).json()["data"]
        external_id = data["tr_external_id"]
        print(f"\nPOST /api/v1/transactions -> {external_id} {data['tr_status']} Rp{data['tr_amount']} qris={str(data['tr_qris_string'])[:24]}...")
        qr = next(q for q in gateway.get("/_sim/qr_codes").json() if q["reference_id"] == external_id)
        gateway.post(f"/qr_codes/{qr['id']}/payments/simulate", json={}, auth=(settings.xendit_secret_key.get_secret_value(), ""), headers={"api-version": "2022-07-31"})
        print("the customer pays: the gateway simulator sends Loket its qr.payment webhook")
        for _ in range(30):
            status = public_data(api.get(f"/api/v1/transactions/external/{external_id}").json(), settings.response_encryption_key.get_secret_value())
            if status["tr_status"] != "PENDING":
                break
            time.sleep(0.5)
        print(f"GET /api/v1/transactions/external/{external_id} -> {status['tr_status']} paid_at={status['tr_paid_at']}")
        photos = {"email": "pelanggan@contoh.id", "photos": [{"url": f"https://cdn.example/{external_id}/{i}.jpg"} for i in range(3)]}
        print(f"POST .../photos -> {api.post(f'/api/v1/transactions/{external_id}/photos', json=photos, headers=staff).status_code} (the mail process prints the e-mail)")


def main() -> None:
    settings = get_settings()
    web_url = f"http://127.0.0.1:{settings.port}"
    os.environ["PATH"] = f"{BIN}:{os.environ['PATH']}"
    # Each process ends with this one, even when it is SIGKILLed (a parent-death signal).
    stack = Stack(env={}, log_dir=Path(ROOT / ".run" / "logs"), die_with_parent=True)
    # A closed terminal (SIGHUP) or a service manager (SIGTERM) stops everything, as Ctrl-C does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: sys.exit(0))
    try:
        print("starting the Procfile's processes (logs in .run/logs/)")
        start_all(stack, web_url)
        demo(web_url)
        demo_qris(web_url)
        print(f"\nLoket is running on {web_url}; Ctrl-C stops everything.")
        while all(p.popen.poll() is None for p in stack.processes):
            time.sleep(1)
        print("a process exited; stopping:", [p.name for p in stack.processes if p.popen.poll() is not None])
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
