#!/usr/bin/env python3
"""Scheduling as MassTransit's delayed scheduler does it: a durable
x-delayed-message exchange (x-delayed-type fanout) bound to the destination
exchange, which feeds the queue; persistent messages published with
confirms and an x-delay header arrive when due, in due order, with x-delay
set to the negative delay."""

import time

import pika

import interop

url = interop.start()
delay_x = interop.exchange("orders_delay")
dest_x = interop.exchange("orders")
queue = interop.temp_queue("orders")

conn = interop.connect(url)
ch = conn.channel()
ch.exchange_declare(exchange=delay_x, exchange_type="x-delayed-message", durable=True,
                    arguments={"x-delayed-type": "fanout"})
ch.exchange_declare(exchange=dest_x, exchange_type="fanout", durable=True)
ch.exchange_bind(destination=dest_x, source=delay_x)
ch.queue_declare(queue=queue, durable=True)
ch.queue_bind(queue=queue, exchange=dest_x)
ch.confirm_delivery()

start = time.monotonic()
sent = {}
for body, delay in (("in 900 ms", 900), ("in 300 ms", 300), ("in 600 ms", 600)):
    ch.basic_publish(exchange=delay_x, routing_key="", body=body.encode(),
                     properties=pika.BasicProperties(delivery_mode=2, headers={"x-delay": delay},
                                                     content_type="application/json"))
    sent[body] = delay
ch.basic_publish(exchange=delay_x, routing_key="", body=b"now",
                 properties=pika.BasicProperties(delivery_mode=2))

got = []
def on_message(c, m, p, body):
    got.append((body.decode(), (p.headers or {}).get("x-delay"), time.monotonic() - start))
    c.basic_ack(m.delivery_tag)

ch.basic_consume(queue=queue, on_message_callback=on_message)
interop.pump([conn], lambda: len(got) >= 4)
interop.expect_equal([g[0] for g in got], ["now", "in 300 ms", "in 600 ms", "in 900 ms"], "arrival order")
interop.expect_equal([g[1] for g in got], [None, -300, -600, -900], "x-delay headers on delivery")
for body, _, at in got[1:]:
    interop.check(at >= sent[body] / 1000.0, "%r arrived after %.3f s, before its delay" % (body, at))
conn.close()
interop.finish("delayed_scheduling")
