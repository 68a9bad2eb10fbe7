#!/usr/bin/env python3
"""A quorum queue through pika: declare (and the refusal of a non-durable
one), publish with confirms, consume with a per-consumer prefetch, nack with
requeue and see x-delivery-count, and the connection error for a global
prefetch.

As RabbitMQ 3.10.8 does it: a consumer's first delivery has no
x-delivery-count header, a requeued one has 1; a requeued message goes to
the back of the queue.
"""

import pika
import pika.exceptions

import interop

COUNT = 5

url = interop.start()
queue = interop.temp_queue("quorum")
args = {"x-queue-type": "quorum"}

conn = interop.connect(url)
ch = conn.channel()

# A quorum queue must be durable.
try:
    ch.queue_declare(queue=interop.name("quorum-transient"), durable=False, arguments=args)
    interop.check(False, "a non-durable quorum queue was declared")
except pika.exceptions.ChannelClosedByBroker as e:
    interop.expect_equal(e.reply_code, 406, "non-durable declare: reply code")
    interop.check("invalid property 'non-durable'" in e.reply_text, "non-durable declare: reply text %r" % e.reply_text)
    ch = conn.channel()

ok = ch.queue_declare(queue=queue, durable=True, arguments=args)
interop.expect_equal(ok.method.message_count, 0, "declare-ok message count")
# Redeclaring with the same arguments is fine; without x-queue-type it is not.
ch.queue_declare(queue=queue, durable=True, arguments=args)
try:
    ch.queue_declare(queue=queue, durable=True)
    interop.check(False, "redeclare without x-queue-type succeeded")
except pika.exceptions.ChannelClosedByBroker as e:
    interop.expect_equal(e.reply_code, 406, "redeclare without x-queue-type: reply code")
    interop.check("inequivalent arg 'x-queue-type'" in e.reply_text, "redeclare: reply text %r" % e.reply_text)
    ch = conn.channel()

# Publish with confirms: BlockingChannel raises on a nack.
ch.confirm_delivery()
sent = [("m%d" % i).encode() for i in range(COUNT)]
for body in sent:
    ch.basic_publish(exchange="", routing_key=queue, body=body,
                     properties=pika.BasicProperties(delivery_mode=2))

cons = conn.channel()
cons.basic_qos(prefetch_count=10)
got = []
headers = {}


def on_message(c, method, props, body):
    count = (props.headers or {}).get("x-delivery-count")
    got.append((body, count, method.redelivered))
    if body == sent[0] and count is None:
        c.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
    else:
        c.basic_ack(delivery_tag=method.delivery_tag)


cons.basic_consume(queue=queue, on_message_callback=on_message)
if not interop.pump([conn], lambda: len(got) >= COUNT + 1):
    interop.check(False, "got %d of %d deliveries: %r" % (len(got), COUNT + 1, got))
want = [(b, None, False) for b in sent] + [(sent[0], 1, True)]
interop.expect_equal(got, want, "deliveries (body, x-delivery-count, redelivered)")
left = ch.queue_declare(queue=queue, durable=True, arguments=args, passive=True).method.message_count
interop.expect_equal(left, 0, "messages left")

# A global prefetch is not supported by quorum queues: consuming after
# basic.qos global=true is a connection error.
gconn = interop.connect(url)
gch = gconn.channel()
gch.basic_qos(prefetch_count=5, global_qos=True)
try:
    gch.basic_consume(queue=queue, on_message_callback=on_message)
    interop.check(False, "consume after a global basic.qos succeeded")
except pika.exceptions.ConnectionClosedByBroker as e:
    interop.expect_equal(e.reply_code, 540, "global qos: reply code")
    interop.check("does not support global qos" in e.reply_text, "global qos: reply text %r" % e.reply_text)

conn.close()
interop.finish("quorum")
