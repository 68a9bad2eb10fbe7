'use strict';
// Tutorial 4, "Routing": a direct exchange; one subscriber binds "error", the
// other "info", "warning" and "error"; "debug" goes nowhere.

const t = require('./interop');

const BINDINGS = { errors: ['error'], all: ['info', 'warning', 'error'] };

t.run('routing', async () => {
  const exchange = t.tempExchange('direct_logs');

  const got = {};
  for (const [sname, keys] of Object.entries(BINDINGS)) {
    const conn = await t.connect();
    const ch = await conn.createChannel();
    await ch.assertExchange(exchange, 'direct', { durable: false });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    for (const key of keys) await ch.bindQueue(queue, exchange, key);
    got[sname] = [];
    await ch.consume(queue, (msg) => got[sname].push([msg.fields.routingKey, msg.content.toString()]), {
      noAck: true,
    });
  }

  const producerConn = await t.connect();
  const producer = await producerConn.createChannel();
  await producer.assertExchange(exchange, 'direct', { durable: false });
  const sent = ['info', 'warning', 'error', 'debug', 'error'].map((sev) => [sev, `${sev} message`]);
  for (const [sev, body] of sent) producer.publish(exchange, sev, Buffer.from(body));

  const want = {};
  for (const [sname, keys] of Object.entries(BINDINGS)) want[sname] = sent.filter(([sev]) => keys.includes(sev));
  await t.waitFor(() => Object.keys(want).every((n) => got[n].length >= want[n].length));
  await t.sleep(300); // a late, unexpected delivery (e.g. "debug") shows up here
  for (const sname of Object.keys(BINDINGS)) {
    t.expectEqual(got[sname], want[sname], `subscriber ${sname} (binds ${BINDINGS[sname]}) received`);
  }
});
