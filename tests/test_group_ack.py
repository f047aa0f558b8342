"""Dramatiq messages acknowledged in groups (workers.group_ack), against a real redis-server."""

from __future__ import annotations

import threading
import time

import dramatiq
import pytest
import redis
from dramatiq.errors import ConnectionClosed

from workers.group_ack import AckGroup, GroupAckRedisBroker

NAMESPACE = "ackgroup-test"
QUEUE = "purchases"


def broker_on(url: str) -> GroupAckRedisBroker:
    broker = GroupAckRedisBroker(url=url, namespace=NAMESPACE)
    broker.declare_queue(QUEUE)
    return broker


def send(broker: GroupAckRedisBroker, count: int) -> None:
    for n in range(count):
        broker.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name="execute_purchase", args=(n,), kwargs={}, options={}))


def fetch(broker: GroupAckRedisBroker, count: int) -> list:
    consumer = broker.consume(QUEUE, prefetch=count, timeout=100)
    messages: list = []
    deadline = time.monotonic() + 5
    while len(messages) < count and time.monotonic() < deadline:
        message = next(consumer)
        if message is not None:
            messages.append(message)
    assert len(messages) == count
    return [consumer, messages]


def in_redis(client: redis.Redis, broker: GroupAckRedisBroker) -> tuple[int, int]:
    """(payloads kept in the queue's .msgs hash, ids in this worker's set of fetched messages)."""
    return client.hlen(f"{NAMESPACE}:{QUEUE}.msgs"), client.scard(f"{NAMESPACE}:__acks__.{broker.broker_id}.{QUEUE}")


def test_messages_acknowledged_from_many_threads_are_each_forgotten_once(redis_server):
    broker = broker_on(redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    send(broker, 300)
    consumer, messages = fetch(broker, 300)
    assert in_redis(client, broker) == (300, 300)
    calls: list[int] = []
    original = broker.ack_group(QUEUE)._send

    def counted(ids: list[str]) -> None:
        calls.append(len(ids))
        time.sleep(0.002)  # a round trip long enough for acks to pile up behind it
        original(ids)

    broker.ack_group(QUEUE)._send = counted
    threads = [threading.Thread(target=lambda part=messages[i::16]: [consumer.ack(m) for m in part]) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    consumer.close()
    assert in_redis(client, broker) == (0, 0)
    assert sum(calls) == 300
    assert client.zcard(f"{NAMESPACE}:{QUEUE}.acked") == 300  # noted for the outbox relay (workers.enqueue.still_in_redis)
    assert len(calls) < 150  # grouped: far fewer calls than messages
    assert consumer.outstanding_message_count == 0


def test_a_message_another_worker_took_over_is_not_deleted_by_a_late_ack(redis_server):
    broker = broker_on(redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    send(broker, 2)
    consumer, (first, second) = fetch(broker, 2)
    # As Dramatiq's maintenance does for a worker that stopped beating: the id leaves its set
    # and goes back on the queue, for another worker.
    client.srem(f"{NAMESPACE}:__acks__.{broker.broker_id}.{QUEUE}", first.options["redis_message_id"])
    client.rpush(f"{NAMESPACE}:{QUEUE}", first.options["redis_message_id"])
    consumer.ack(first)
    consumer.ack(second)
    assert in_redis(client, broker) == (1, 0)  # the taken-over one's payload stays for its new worker
    assert client.hexists(f"{NAMESPACE}:{QUEUE}.msgs", first.options["redis_message_id"])


def test_acks_that_fail_while_redis_is_down_are_sent_when_it_is_back(redis_server):
    broker = broker_on(redis_server.url)
    send(broker, 3)
    consumer, messages = fetch(broker, 3)
    consumer.ack(messages[0])
    client = redis.Redis.from_url(redis_server.url)
    assert in_redis(client, broker) == (2, 2)
    client.save()  # the restarted server loads this: the two unacknowledged messages survive the outage
    redis_server.stop()
    with pytest.raises(ConnectionClosed):
        consumer.ack(messages[1])
    with pytest.raises(ConnectionClosed):
        consumer.ack(messages[2])
    assert broker.ack_group(QUEUE).waiting == 2
    redis_server.start()
    assert in_redis(client, broker) == (2, 2)
    # What Dramatiq's worker thread does after a failed ack: try the same message again. The ack
    # sends every one still waiting, and a message acknowledged twice is forgotten once.
    retried = time.monotonic() + 10
    while True:
        try:
            consumer.ack(messages[2])
            break
        except ConnectionClosed:
            assert time.monotonic() < retried
            time.sleep(0.2)
    assert in_redis(client, broker) == (0, 0)
    assert broker.ack_group(QUEUE).waiting == 0


def test_acks_handed_over_while_a_call_is_on_its_way_go_together_in_the_next():
    sent: list[list[str]] = []
    gate = threading.Event()

    def slow_send(ids: list[str]) -> None:
        sent.append(ids)
        gate.wait(5)

    group = AckGroup(slow_send)
    first = threading.Thread(target=group.ack, args=("a",))
    first.start()
    time.sleep(0.05)
    group.ack("b")  # a call is on its way: left to it, returns at once
    group.ack("c")
    assert sent == [["a"]]
    gate.set()
    first.join(5)
    assert sent == [["a"], ["b", "c"]] and group.waiting == 0
