#!/usr/bin/env python3
"""Tutorial 3, "Publish/Subscribe": a fanout exchange and two subscribers,
each with its own exclusive, server-named queue; both get every message."""

import interop

url = interop.start()
exchange = interop.exchange("logs")

subscribers = []
for i in range(2):
    conn = interop.connect(url)
    ch = conn.channel()
    ch.exchange_declare(exchange=exchange, exchange_type="fanout")
    result = ch.queue_declare(queue="", exclusive=True)
    queue = result.method.queue
    interop.check(queue.startswith("amq.gen-"), "server-named queue %r should start with amq.gen-" % queue)
    ch.queue_bind(exchange=exchange, queue=queue)
    got = []
    ch.basic_consume(queue=queue, on_message_callback=lambda c, m, p, body, got=got: got.append(body), auto_ack=True)
    subscribers.append({"conn": conn, "queue": queue, "got": got})
interop.check(subscribers[0]["queue"] != subscribers[1]["queue"], "server-named queues should differ")

producer_conn = interop.connect(url)
producer = producer_conn.channel()
producer.exchange_declare(exchange=exchange, exchange_type="fanout")
sent = [("log line %d" % i).encode() for i in range(3)]
for body in sent:
    producer.basic_publish(exchange=exchange, routing_key="", body=body)

conns = [s["conn"] for s in subscribers] + [producer_conn]
interop.pump(conns, lambda: all(len(s["got"]) >= len(sent) for s in subscribers))
for i, s in enumerate(subscribers):
    interop.expect_equal(s["got"], sent, "subscriber %d received" % i)

# Exclusive queues go away with their connection.
for s in subscribers:
    s["conn"].close()
for s in subscribers:
    ch = producer_conn.channel()
    try:
        ch.queue_declare(queue=s["queue"], passive=True)
        interop.check(False, "exclusive queue %s still exists after its connection closed" % s["queue"])
    except Exception as e:
        interop.check("404" in str(e) or "NOT_FOUND" in str(e), "passive declare of a deleted queue: %r" % (e,))
producer_conn.close()
interop.finish("publish_subscribe")
