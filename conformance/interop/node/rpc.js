'use strict';
// Tutorial 6, "RPC": a server consumes rpc_queue and answers fib(n) to each
// request's replyTo with its correlationId; the client sends several requests
// at once from an exclusive callback queue and matches the answers by id.

const crypto = require('node:crypto');
const t = require('./interop');

function fib(n) {
  let a = 0;
  let b = 1;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

t.run('rpc', async () => {
  const rpcQueue = t.name('rpc_queue');

  // Server.
  const serverConn = await t.connect();
  const server = await serverConn.createChannel();
  await server.assertQueue(rpcQueue, { durable: false, autoDelete: true });
  await server.prefetch(1);
  await server.consume(rpcQueue, (msg) => {
    const n = parseInt(msg.content.toString(), 10);
    server.sendToQueue(msg.properties.replyTo, Buffer.from(String(fib(n))), {
      correlationId: msg.properties.correlationId,
    });
    server.ack(msg);
  });

  // Client.
  const clientConn = await t.connect();
  const client = await clientConn.createChannel();
  const { queue: callbackQueue } = await client.assertQueue('', { exclusive: true });
  const pending = new Map();
  const responses = new Map();
  const strays = [];
  await client.consume(
    callbackQueue,
    (msg) => {
      const id = msg.properties.correlationId;
      if (pending.has(id)) responses.set(id, msg.content.toString());
      else strays.push([id, msg.content.toString()]);
    },
    { noAck: true },
  );

  for (const n of [30, 1, 10, 0, 20]) {
    const correlationId = crypto.randomUUID();
    pending.set(correlationId, n);
    client.sendToQueue(rpcQueue, Buffer.from(String(n)), { correlationId, replyTo: callbackQueue });
  }

  if (!(await t.waitFor(() => responses.size >= pending.size))) {
    t.check(false, `only ${responses.size} of ${pending.size} responses within ${t.WAIT_MS} ms`);
  }
  for (const [id, n] of pending) {
    t.expectEqual(responses.get(id), String(fib(n)), `fib(${n}) answer (correlationId ${id})`);
  }
  t.expectEqual(strays, [], 'responses with unknown correlation ids');
});
