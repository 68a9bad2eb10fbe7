#!/usr/bin/env python3
"""Tutorial 1, "Hello World!": one producer, one consumer, one named queue."""

import interop

url = interop.start()
queue = interop.temp_queue("hello")

consumer_conn = interop.connect(url)
consumer = consumer_conn.channel()
consumer.queue_declare(queue=queue)

got = []
consumer.basic_consume(
    queue=queue,
    on_message_callback=lambda ch, method, props, body: got.append(body),
    auto_ack=True,
)

producer_conn = interop.connect(url)
producer = producer_conn.channel()
producer.queue_declare(queue=queue)  # idempotent, as in the tutorial
producer.basic_publish(exchange="", routing_key=queue, body=b"Hello World!")

if not interop.pump([consumer_conn, producer_conn], lambda: len(got) >= 1):
    interop.check(False, "no message arrived within %d s" % interop.WAIT)
interop.expect_equal(got, [b"Hello World!"], "received")

producer_conn.close()
consumer_conn.close()
interop.finish("hello_world")
