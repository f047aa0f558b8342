"""Operator commands: dead letters (list, show, requeue, drop) and a purchase re-check."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from ops.stack import ROOT
from tests.harness import LoketStack, final_statuses, register
from workers.enqueue import NAMESPACE


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def dead_letter(url: str, actor_name: str, args: tuple) -> str:
    """Make a dead letter the way Dramatiq does: a fetched message that is nacked."""
    broker = RedisBroker(url=url, namespace=NAMESPACE)
    broker.declare_queue("photos")
    broker.enqueue(dramatiq.Message(queue_name="photos", actor_name=actor_name, args=args, kwargs={}, options={"retries": 200}))
    consumer = broker.consume("photos", prefetch=1, timeout=500)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = next(consumer)
        if message is not None:
            consumer.nack(message)
            consumer.close()
            return message.options["redis_message_id"]
    raise AssertionError("no message")


def test_dead_letters_can_be_listed_shown_requeued_and_dropped(redis_server):
    env = {"REDIS_URL": redis_server.url}
    first = dead_letter(redis_server.url, "send_photo_email", (41,))
    second = dead_letter(redis_server.url, "send_photo_email", (42,))

    listed = run("-m", "ops.dead_letters", "list", env=env)
    assert listed.returncode == 0 and "2 dead letter(s)" in listed.stdout
    assert first in listed.stdout and "send_photo_email(41,)" in listed.stdout and "retries=200" in listed.stdout
    shown = run("-m", "ops.dead_letters", "show", second, env=env)
    assert '"actor_name": "send_photo_email"' in shown.stdout and "42" in shown.stdout

    assert run("-m", "ops.dead_letters", "requeue", first, env=env).returncode == 0
    assert run("-m", "ops.dead_letters", "drop", second, env=env).returncode == 0
    assert "0 dead letter(s)" in run("-m", "ops.dead_letters", "list", env=env).stdout
    requeued = RedisBroker(url=redis_server.url, namespace=NAMESPACE).consume("photos", prefetch=1, timeout=500)
    message = next(m for m in iter(lambda: next(requeued), "never") if m is not None)
    assert message.args == (41,) and "retries" not in message.options
    assert run("-m", "ops.dead_letters", "show", "nope", env=env).returncode == 1


async def test_recheck_pushes_an_open_purchase_and_leaves_an_ended_one(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=100_000)
    purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "081299991111"}, headers=reseller.headers)).json()
    await final_statuses(api, reseller, [purchase["id"]])
    env = {"DATABASE_URL": stack.db.url, "REDIS_URL": stack.processes.env["REDIS_URL"]}
    ended = run("-m", "ops.recheck", str(purchase["id"]), env=env)
    assert "has ended (sukses)" in ended.stdout
    # An open purchase: put it back to proses as if the provider had not answered yet.
    stack.db.rows("UPDATE purchase SET status = 'proses', sn = NULL WHERE id = %s", purchase["id"])
    pushed = run("-m", "ops.recheck", str(purchase["id"]), env=env)
    assert "pushed for a re-check" in pushed.stdout
    again = await final_statuses(api, reseller, [purchase["id"]])
    assert again[purchase["id"]]["status"] == "sukses" and again[purchase["id"]]["sn"]
    assert stack.db.value("SELECT COUNT(*) FROM ledger_entry WHERE purchase_id = %s", purchase["id"]) == 1
