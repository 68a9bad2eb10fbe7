#!/usr/bin/env python3
"""Tutorial 6, "RPC": a server consumes rpc_queue and answers fib(n) to each
request's reply_to with its correlation_id; the client sends several requests
at once from an exclusive callback queue and matches the answers by id."""

import uuid

import pika

import interop


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


url = interop.start()
rpc_queue = interop.name("rpc_queue")

# Server.
server_conn = interop.connect(url)
server = server_conn.channel()
server.queue_declare(queue=rpc_queue, auto_delete=True)
server.basic_qos(prefetch_count=1)


def on_request(ch, method, props, body):
    n = int(body)
    ch.basic_publish(
        exchange="",
        routing_key=props.reply_to,
        properties=pika.BasicProperties(correlation_id=props.correlation_id),
        body=str(fib(n)).encode(),
    )
    ch.basic_ack(delivery_tag=method.delivery_tag)


server.basic_consume(queue=rpc_queue, on_message_callback=on_request)

# Client.
client_conn = interop.connect(url)
client = client_conn.channel()
callback_queue = client.queue_declare(queue="", exclusive=True).method.queue
responses = {}
strays = []


def on_response(ch, method, props, body):
    if props.correlation_id in pending:
        responses[props.correlation_id] = body
    else:
        strays.append((props.correlation_id, body))


client.basic_consume(queue=callback_queue, on_message_callback=on_response, auto_ack=True)

requests = [30, 1, 10, 0, 20]
pending = {}
for n in requests:
    corr_id = str(uuid.uuid4())
    pending[corr_id] = n
    client.basic_publish(
        exchange="",
        routing_key=rpc_queue,
        properties=pika.BasicProperties(reply_to=callback_queue, correlation_id=corr_id),
        body=str(n).encode(),
    )

if not interop.pump([client_conn, server_conn], lambda: len(responses) >= len(pending)):
    interop.check(False, "only %d of %d responses within %d s" % (len(responses), len(pending), interop.WAIT))
for corr_id, n in pending.items():
    interop.expect_equal(responses.get(corr_id), str(fib(n)).encode(), "fib(%d) answer (correlation_id %s)" % (n, corr_id))
interop.expect_equal(strays, [], "responses with unknown correlation ids")

client_conn.close()
server_conn.close()
interop.finish("rpc")
