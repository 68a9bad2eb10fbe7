'use strict';
// Tutorial 2, "Work queues": a durable task queue, persistent tasks, and two
// workers with prefetch 1 and manual acks.
//
// The slow worker holds each task for SLOW_MS before acking it; the fast one
// acks at once. With prefetch 1 the broker must never hand a worker a second
// task while it holds one unacked, so the fast worker ends up with most tasks.

const t = require('./interop');

const TASKS = 10;
const SLOW_MS = 300;

t.run('work_queues', async () => {
  const queue = t.tempQueue('task_queue');

  const workers = {};
  for (const wname of ['slow', 'fast']) {
    const conn = await t.connect();
    const ch = await conn.createChannel();
    await ch.assertQueue(queue, { durable: true });
    await ch.prefetch(1);
    const w = { conn, ch, got: [], unacked: 0, violations: [] };
    workers[wname] = w;
    await ch.consume(
      queue,
      (msg) => {
        const body = msg.content.toString();
        if (w.unacked > 0) w.violations.push(body);
        t.check(msg.properties.deliveryMode === 2, `${wname}: task ${body} has deliveryMode ${msg.properties.deliveryMode}, want 2`);
        w.got.push(body);
        w.unacked++;
        setTimeout(
          () => {
            w.unacked--;
            ch.ack(msg);
          },
          wname === 'slow' ? SLOW_MS : 0,
        );
      },
      { noAck: false },
    );
  }

  const producerConn = await t.connect();
  const producer = await producerConn.createChannel();
  await producer.assertQueue(queue, { durable: true });
  const sent = [];
  for (let i = 0; i < TASKS; i++) {
    const body = `task ${i} ${'.'.repeat(i % 3)}`;
    sent.push(body);
    producer.sendToQueue(queue, Buffer.from(body), { persistent: true });
  }

  const { slow, fast } = workers;
  const done = () => slow.got.length + fast.got.length >= TASKS && slow.unacked + fast.unacked === 0;
  if (!(await t.waitFor(done))) {
    t.check(false, `tasks not all processed within ${t.WAIT_MS} ms: slow got ${slow.got}, fast got ${fast.got}`);
  }
  console.log(`slow worker: ${slow.got.length} tasks, fast worker: ${fast.got.length} tasks`);
  t.expectEqual([...slow.got, ...fast.got].sort(), [...sent].sort(), 'tasks processed (each exactly once)');
  for (const [wname, w] of Object.entries(workers)) {
    t.check(w.violations.length === 0, `${wname} worker got ${w.violations} while holding an unacked task (prefetch 1)`);
  }
  t.check(slow.got.length >= 1 && fast.got.length >= 1, `both workers should get tasks: slow ${slow.got.length}, fast ${fast.got.length}`);
  t.check(slow.got.length < fast.got.length, `fair dispatch: slow worker got ${slow.got.length} tasks, fast ${fast.got.length}`);

  // Every task was acked, so closing the workers requeues nothing. The
  // channels close first: amqplib interleaves frames from different
  // channels, so a connection.close on channel 0 could overtake the last
  // ack still queued on channel 1, and the broker would rightly requeue it.
  await slow.ch.close();
  await fast.ch.close();
  await slow.conn.close();
  await fast.conn.close();
  const { messageCount } = await producer.checkQueue(queue);
  t.expectEqual(messageCount, 0, 'messages left in the queue after the workers closed');
});
