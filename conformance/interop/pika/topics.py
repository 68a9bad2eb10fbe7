#!/usr/bin/env python3
"""Tutorial 5, "Topics": a topic exchange; Q1 binds "*.orange.*", Q2 binds
"*.*.rabbit" and "lazy.#". Expectations are the tutorial's, plus "lazy"
alone (# matches zero words) and a key that matches both of Q2's bindings
(delivered once)."""

import interop

url = interop.start()
exchange = interop.exchange("topic_logs")

BINDINGS = {"Q1": ["*.orange.*"], "Q2": ["*.*.rabbit", "lazy.#"]}
ROUTES = {
    "quick.orange.rabbit": ["Q1", "Q2"],
    "lazy.orange.elephant": ["Q1", "Q2"],
    "quick.orange.fox": ["Q1"],
    "lazy.brown.fox": ["Q2"],
    "lazy.pink.rabbit": ["Q2"],  # matches both Q2 bindings: delivered once
    "quick.brown.fox": [],
    "orange": [],
    "quick.orange.male.rabbit": [],
    "lazy.orange.male.rabbit": ["Q2"],
    "lazy": ["Q2"],
    "quick.orange": [],
}

subscribers = {}
for sname, keys in BINDINGS.items():
    conn = interop.connect(url)
    ch = conn.channel()
    ch.exchange_declare(exchange=exchange, exchange_type="topic")
    queue = ch.queue_declare(queue="", exclusive=True).method.queue
    for key in keys:
        ch.queue_bind(exchange=exchange, queue=queue, routing_key=key)
    got = []
    ch.basic_consume(
        queue=queue,
        on_message_callback=lambda c, m, p, body, got=got: got.append(m.routing_key),
        auto_ack=True,
    )
    subscribers[sname] = {"conn": conn, "got": got}

producer_conn = interop.connect(url)
producer = producer_conn.channel()
producer.exchange_declare(exchange=exchange, exchange_type="topic")
for key in ROUTES:
    producer.basic_publish(exchange=exchange, routing_key=key, body=("to " + key).encode())

want = {sname: [k for k, dest in ROUTES.items() if sname in dest] for sname in BINDINGS}
conns = [s["conn"] for s in subscribers.values()] + [producer_conn]
interop.pump(conns, lambda: all(len(subscribers[n]["got"]) >= len(want[n]) for n in want))
interop.pump(conns, lambda: False, timeout=0.3)  # catch extra deliveries
for sname in BINDINGS:
    interop.expect_equal(subscribers[sname]["got"], want[sname], "%s (binds %s) received" % (sname, BINDINGS[sname]))

for s in subscribers.values():
    s["conn"].close()
producer_conn.close()
interop.finish("topics")
