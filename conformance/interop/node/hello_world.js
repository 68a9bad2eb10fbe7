'use strict';
// Tutorial 1, "Hello World!": one producer, one consumer, one named queue.

const t = require('./interop');

t.run('hello_world', async () => {
  const queue = t.tempQueue('hello');

  const consumerConn = await t.connect();
  const consumer = await consumerConn.createChannel();
  await consumer.assertQueue(queue, { durable: false });
  const got = [];
  await consumer.consume(queue, (msg) => got.push(msg.content.toString()), { noAck: true });

  const producerConn = await t.connect();
  const producer = await producerConn.createChannel();
  await producer.assertQueue(queue, { durable: false });
  producer.sendToQueue(queue, Buffer.from('Hello World!'));

  if (!(await t.waitFor(() => got.length >= 1))) t.check(false, `no message arrived within ${t.WAIT_MS} ms`);
  t.expectEqual(got, ['Hello World!'], 'received');
});
