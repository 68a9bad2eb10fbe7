#!/usr/bin/env python3
"""Tutorial 2, "Work queues": a durable task queue, persistent tasks, and two
workers with prefetch 1 and manual acks.

The slow worker holds each task for SLOW seconds before acking it; the fast
one acks at once. With prefetch 1 the broker must never hand a worker a second
task while it holds one unacked, so the fast worker ends up with most tasks.
"""

import time

import pika

import interop

TASKS = 10
SLOW = 0.3

url = interop.start()
queue = interop.temp_queue("task_queue")

workers = {}
for wname in ("slow", "fast"):
    conn = interop.connect(url)
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    ch.basic_qos(prefetch_count=1)
    workers[wname] = {"conn": conn, "ch": ch, "got": [], "unacked": [], "violations": []}


def on_task(wname):
    w = workers[wname]

    def callback(ch, method, props, body):
        if w["unacked"]:
            w["violations"].append(body)
        if props.delivery_mode != 2:
            interop.check(False, "%s: task %r has delivery_mode %r, want 2" % (wname, body, props.delivery_mode))
        w["got"].append(body)
        w["unacked"].append((time.monotonic() + (SLOW if wname == "slow" else 0), method.delivery_tag))

    return callback


for wname, w in workers.items():
    w["ch"].basic_consume(queue=queue, on_message_callback=on_task(wname))

producer_conn = interop.connect(url)
producer = producer_conn.channel()
producer.queue_declare(queue=queue, durable=True)
sent = [("task %d %s" % (i, "." * (i % 3))).encode() for i in range(TASKS)]
for body in sent:
    producer.basic_publish(
        exchange="",
        routing_key=queue,
        body=body,
        properties=pika.BasicProperties(delivery_mode=2)  # persistent,
    )


def ack_due():
    now = time.monotonic()
    for w in workers.values():
        while w["unacked"] and w["unacked"][0][0] <= now:
            _, tag = w["unacked"].pop(0)
            w["ch"].basic_ack(delivery_tag=tag)


def all_done():
    ack_due()
    got = sum(len(w["got"]) for w in workers.values())
    pending = sum(len(w["unacked"]) for w in workers.values())
    return got >= TASKS and pending == 0


conns = [w["conn"] for w in workers.values()] + [producer_conn]
if not interop.pump(conns, all_done):
    interop.check(False, "tasks not all processed within %d s: slow got %r, fast got %r" % (
        interop.WAIT, workers["slow"]["got"], workers["fast"]["got"]))

slow, fast = workers["slow"]["got"], workers["fast"]["got"]
print("slow worker: %d tasks, fast worker: %d tasks" % (len(slow), len(fast)))
interop.expect_equal(sorted(slow + fast), sorted(sent), "tasks processed (each exactly once)")
for wname, w in workers.items():
    interop.check(not w["violations"], "%s worker got %r while holding an unacked task (prefetch 1)" % (wname, w["violations"]))
interop.check(len(slow) >= 1 and len(fast) >= 1, "both workers should get tasks: slow %d, fast %d" % (len(slow), len(fast)))
interop.check(len(slow) < len(fast), "fair dispatch: slow worker got %d tasks, fast %d" % (len(slow), len(fast)))

for w in workers.values():
    w["conn"].close()
# Every task was acked, so closing the workers requeued nothing.
left = producer.queue_declare(queue=queue, durable=True, passive=True).method.message_count
interop.expect_equal(left, 0, "messages left in the queue after the workers closed")
producer_conn.close()
interop.finish("work_queues")
