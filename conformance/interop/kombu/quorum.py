#!/usr/bin/env python3
"""A quorum queue through kombu, declared the way a Celery app declares its
task queues (durable, queue_arguments {"x-queue-type": "quorum"}):
publish with confirms, consume with kombu's default per-consumer prefetch,
requeue once and see x-delivery-count, ack.

kombu's Consumer.qos applies the prefetch per consumer (global=false) by
default, which quorum queues support. A global prefetch, which Celery
workers before 5.5 asked for on RabbitMQ, is refused when the consumer
starts: the script checks that error too (Celery 5.5 turns it off when it
detects quorum queues).

Takes the AMQP URL as its only argument; exits non-zero on failure.
"""

import os
import signal
import socket
import sys
import time
import uuid

import amqp.exceptions
from kombu import Connection, Consumer, Exchange, Producer, Queue

DEADLINE = 20
WAIT = 10
COUNT = 5

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL: " + what, flush=True)


def expect_equal(got, want, what):
    check(got == want, "%s: got %r, want %r" % (what, got, want))


def on_alarm(signum, frame):
    print("FAIL: script still running after %d s (broker not answering?)" % DEADLINE, flush=True)
    os._exit(3)


if len(sys.argv) != 2:
    print("usage: %s AMQP_URL" % sys.argv[0], file=sys.stderr)
    sys.exit(2)
url = sys.argv[1]
signal.signal(signal.SIGALRM, on_alarm)
signal.alarm(DEADLINE)

token = "%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
exchange = Exchange("celery-" + token, type="direct", durable=True)
queue = Queue("celery-quorum-" + token, exchange, routing_key="tasks", durable=True,
              queue_arguments={"x-queue-type": "quorum"})


def connection():
    return Connection(url, connect_timeout=5, transport_options={"confirm_publish": True})


def drain(conn, done):
    end = time.monotonic() + WAIT
    while not done() and time.monotonic() < end:
        try:
            conn.drain_events(timeout=0.2)
        except socket.timeout:
            pass
    return done()


try:
    with connection() as conn:
        ch = conn.channel()
        producer = Producer(ch, exchange=exchange, serializer="json")
        sent = [{"task": "add", "id": i} for i in range(COUNT)]
        for body in sent:
            # With confirm_publish a nack raises.
            producer.publish(body, routing_key="tasks", declare=[queue], delivery_mode=2, retry=False)

        got = []

        def on_message(body, message):
            count = (message.headers or {}).get("x-delivery-count")
            got.append((body["id"], count, message.delivery_info.get("redelivered")))
            if body["id"] == 0 and count is None:
                message.requeue()
            else:
                message.ack()

        cch = conn.channel()
        consumer = Consumer(cch, queues=[queue], callbacks=[on_message], accept=["json"])
        consumer.qos(prefetch_count=10)
        with consumer:
            if not drain(conn, lambda: len(got) >= COUNT + 1):
                check(False, "got %d of %d deliveries: %r" % (len(got), COUNT + 1, got))
        want = [(i, None, False) for i in range(COUNT)] + [(0, 1, True)]
        expect_equal(got, want, "deliveries (id, x-delivery-count, redelivered)")
        _, left, _ = queue(ch).queue_declare(passive=True)
        expect_equal(left, 0, "messages left")

    # A global prefetch, then consume: connection error 540.
    with connection() as conn:
        consumer = Consumer(conn.channel(), queues=[queue], callbacks=[], accept=["json"])
        consumer.qos(prefetch_count=5, apply_global=True)
        try:
            consumer.consume()
            conn.drain_events(timeout=2)
            check(False, "consume after a global basic.qos succeeded")
        except amqp.exceptions.AMQPNotImplementedError as e:
            expect_equal(e.reply_code, 540, "global qos: reply code")
            check("does not support global qos" in e.reply_text, "global qos: reply text %r" % e.reply_text)
finally:
    try:
        with connection() as conn:
            ch = conn.channel()
            queue(ch).delete()
            exchange(ch).delete()
    except Exception as e:  # cleanup is best effort
        print("cleanup: %r" % (e,), flush=True)

if failures:
    print("quorum (kombu): %d check(s) failed" % len(failures), flush=True)
    sys.exit(1)
print("quorum (kombu): ok", flush=True)
