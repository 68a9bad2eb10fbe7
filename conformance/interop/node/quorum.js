'use strict';
// A quorum queue through amqplib: declare (and the refusal of a non-durable
// one), publish on a confirm channel, consume with a per-consumer prefetch,
// nack with requeue and see x-delivery-count, and the connection error for
// a global prefetch.
//
// As RabbitMQ 3.10.8 does it: a consumer's first delivery has no
// x-delivery-count header, a requeued one has 1.

const amqp = require('amqplib');
const t = require('./interop');

const COUNT = 5;

// Runs f, which must fail with an AMQP error; returns it (null if f worked).
async function refused(f) {
  try {
    await f();
    return null;
  } catch (err) {
    return err;
  }
}

t.run('quorum', async (url) => {
  const queue = t.tempQueue('quorum');
  const args = { 'x-queue-type': 'quorum' };
  const conn = await t.connect();

  // A quorum queue must be durable: a channel error.
  const bad = await conn.createChannel();
  bad.on('error', () => {});
  const err = await refused(() => bad.assertQueue(t.name('quorum-transient'), { durable: false, arguments: args }));
  t.check(err !== null, 'a non-durable quorum queue was declared');
  if (err) {
    t.expectEqual(err.code, 406, 'non-durable declare: reply code');
    t.check(/invalid property 'non-durable'/.test(err.message), `non-durable declare: ${err.message}`);
  }

  const ch = await conn.createConfirmChannel();
  const ok = await ch.assertQueue(queue, { durable: true, arguments: args });
  t.expectEqual(ok.messageCount, 0, 'declare-ok message count');

  const sent = [];
  for (let i = 0; i < COUNT; i++) {
    sent.push(`m${i}`);
    ch.sendToQueue(queue, Buffer.from(`m${i}`), { persistent: true });
  }
  await ch.waitForConfirms();

  const cons = await conn.createChannel();
  await cons.prefetch(10); // per consumer (global=false)
  const got = [];
  await cons.consume(queue, (msg) => {
    const count = msg.properties.headers ? msg.properties.headers['x-delivery-count'] : undefined;
    const body = msg.content.toString();
    got.push([body, count === undefined ? null : count, msg.fields.redelivered]);
    if (body === sent[0] && count === undefined) cons.nack(msg, false, true);
    else cons.ack(msg);
  });
  if (!(await t.waitFor(() => got.length >= COUNT + 1))) t.check(false, `got ${got.length} of ${COUNT + 1} deliveries`);
  const want = sent.map((b) => [b, null, false]).concat([[sent[0], 1, true]]);
  t.expectEqual(got, want, 'deliveries [body, x-delivery-count, redelivered]');
  const left = await ch.checkQueue(queue);
  t.expectEqual(left.messageCount, 0, 'messages left');

  // A global prefetch is not supported by quorum queues: consuming after
  // basic.qos global=true is a connection error (540).
  const gconn = await amqp.connect(url, { timeout: 5000 });
  let closed = null;
  gconn.on('error', (e) => { closed = e; });
  const gch = await gconn.createChannel();
  gch.on('error', () => {});
  await gch.prefetch(5, true);
  const gerr = await refused(() => gch.consume(queue, () => {}));
  t.check(gerr !== null, 'consume after a global basic.qos succeeded');
  await t.waitFor(() => closed !== null);
  t.check(closed !== null && closed.code === 540 && /does not support global qos/.test(closed.message),
    `global qos: connection error ${closed && closed.message}`);
});
