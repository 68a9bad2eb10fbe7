'use strict';
// Tutorial 5, "Topics": a topic exchange; Q1 binds "*.orange.*", Q2 binds
// "*.*.rabbit" and "lazy.#". Expectations are the tutorial's, plus "lazy"
// alone (# matches zero words) and a key that matches both of Q2's bindings
// (delivered once).

const t = require('./interop');

const BINDINGS = { Q1: ['*.orange.*'], Q2: ['*.*.rabbit', 'lazy.#'] };
const ROUTES = {
  'quick.orange.rabbit': ['Q1', 'Q2'],
  'lazy.orange.elephant': ['Q1', 'Q2'],
  'quick.orange.fox': ['Q1'],
  'lazy.brown.fox': ['Q2'],
  'lazy.pink.rabbit': ['Q2'], // matches both Q2 bindings: delivered once
  'quick.brown.fox': [],
  orange: [],
  'quick.orange.male.rabbit': [],
  'lazy.orange.male.rabbit': ['Q2'],
  lazy: ['Q2'],
  'quick.orange': [],
};

t.run('topics', async () => {
  const exchange = t.tempExchange('topic_logs');

  const got = {};
  for (const [sname, keys] of Object.entries(BINDINGS)) {
    const conn = await t.connect();
    const ch = await conn.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: false });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    for (const key of keys) await ch.bindQueue(queue, exchange, key);
    got[sname] = [];
    await ch.consume(queue, (msg) => got[sname].push(msg.fields.routingKey), { noAck: true });
  }

  const producerConn = await t.connect();
  const producer = await producerConn.createChannel();
  await producer.assertExchange(exchange, 'topic', { durable: false });
  for (const key of Object.keys(ROUTES)) producer.publish(exchange, key, Buffer.from(`to ${key}`));

  const want = {};
  for (const sname of Object.keys(BINDINGS)) {
    want[sname] = Object.keys(ROUTES).filter((key) => ROUTES[key].includes(sname));
  }
  await t.waitFor(() => Object.keys(want).every((n) => got[n].length >= want[n].length));
  await t.sleep(300); // catch extra deliveries
  for (const sname of Object.keys(BINDINGS)) {
    t.expectEqual(got[sname], want[sname], `${sname} (binds ${BINDINGS[sname]}) received`);
  }
});
