'use strict';
// Tutorial 3, "Publish/Subscribe": a fanout exchange and two subscribers,
// each with its own exclusive, server-named queue; both get every message.

const t = require('./interop');

t.run('publish_subscribe', async () => {
  const exchange = t.tempExchange('logs');

  const subscribers = [];
  for (let i = 0; i < 2; i++) {
    const conn = await t.connect();
    const ch = await conn.createChannel();
    await ch.assertExchange(exchange, 'fanout', { durable: false });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    t.check(queue.startsWith('amq.gen-'), `server-named queue ${queue} should start with amq.gen-`);
    await ch.bindQueue(queue, exchange, '');
    const got = [];
    await ch.consume(queue, (msg) => got.push(msg.content.toString()), { noAck: true });
    subscribers.push({ conn, queue, got });
  }
  t.check(subscribers[0].queue !== subscribers[1].queue, 'server-named queues should differ');

  const producerConn = await t.connect();
  const producer = await producerConn.createChannel();
  await producer.assertExchange(exchange, 'fanout', { durable: false });
  const sent = [0, 1, 2].map((i) => `log line ${i}`);
  for (const body of sent) producer.publish(exchange, '', Buffer.from(body));

  await t.waitFor(() => subscribers.every((s) => s.got.length >= sent.length));
  subscribers.forEach((s, i) => t.expectEqual(s.got, sent, `subscriber ${i} received`));

  // Exclusive queues go away with their connection.
  for (const s of subscribers) await s.conn.close();
  for (const s of subscribers) {
    const ch = await producerConn.createChannel();
    ch.on('error', () => {}); // the 404 closes this channel
    try {
      await ch.checkQueue(s.queue);
      t.check(false, `exclusive queue ${s.queue} still exists after its connection closed`);
    } catch (err) {
      t.check(err.code === 404, `checkQueue of a deleted queue: ${err.message}`);
    }
  }
});
