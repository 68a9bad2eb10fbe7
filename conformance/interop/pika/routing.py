#!/usr/bin/env python3
"""Tutorial 4, "Routing": a direct exchange; one subscriber binds "error",
the other "info", "warning" and "error"; "debug" goes nowhere."""

import interop

url = interop.start()
exchange = interop.exchange("direct_logs")

BINDINGS = {"errors": ["error"], "all": ["info", "warning", "error"]}

subscribers = {}
for sname, keys in BINDINGS.items():
    conn = interop.connect(url)
    ch = conn.channel()
    ch.exchange_declare(exchange=exchange, exchange_type="direct")
    queue = ch.queue_declare(queue="", exclusive=True).method.queue
    for key in keys:
        ch.queue_bind(exchange=exchange, queue=queue, routing_key=key)
    got = []
    ch.basic_consume(
        queue=queue,
        on_message_callback=lambda c, m, p, body, got=got: got.append((m.routing_key, body)),
        auto_ack=True,
    )
    subscribers[sname] = {"conn": conn, "got": got}

producer_conn = interop.connect(url)
producer = producer_conn.channel()
producer.exchange_declare(exchange=exchange, exchange_type="direct")
sent = [(sev, ("%s message" % sev).encode()) for sev in ("info", "warning", "error", "debug", "error")]
for sev, body in sent:
    producer.basic_publish(exchange=exchange, routing_key=sev, body=body)

want = {sname: [m for m in sent if m[0] in keys] for sname, keys in BINDINGS.items()}
conns = [s["conn"] for s in subscribers.values()] + [producer_conn]
interop.pump(conns, lambda: all(len(subscribers[n]["got"]) >= len(want[n]) for n in want))
# A late, unexpected delivery (e.g. "debug") shows up within this grace period.
interop.pump(conns, lambda: False, timeout=0.3)
for sname in BINDINGS:
    interop.expect_equal(subscribers[sname]["got"], want[sname], "subscriber %r (binds %s) received" % (sname, BINDINGS[sname]))

for s in subscribers.values():
    s["conn"].close()
producer_conn.close()
interop.finish("routing")
