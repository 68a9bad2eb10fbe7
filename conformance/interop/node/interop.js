'use strict';
// Helpers shared by the amqplib versions of the RabbitMQ tutorials.
//
// Each tutorial script takes the AMQP URL as its only argument, names what it
// declares with a per-run token so it can share a broker, never runs longer
// than DEADLINE_MS, prints what went wrong and exits non-zero on failure.

const crypto = require('node:crypto');
const util = require('node:util');
const amqp = require('amqplib');

// Whole-script bound: a broker that never answers must not hang the suite.
const DEADLINE_MS = 20000;
// How long to wait for messages that should arrive.
const WAIT_MS = 10000;

const TOKEN = `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;

const failures = [];
const connections = [];
const tempQueues = [];
const tempExchanges = [];
let url;

function name(base) {
  return `${base}-${TOKEN}`;
}

// A queue deleted when the script ends, however it ends.
function tempQueue(base) {
  const q = name(base);
  tempQueues.push(q);
  return q;
}

// An exchange deleted when the script ends.
function tempExchange(base) {
  const x = name(base);
  tempExchanges.push(x);
  return x;
}

async function connect() {
  const conn = await amqp.connect(url, { timeout: 5000 });
  conn.on('error', (err) => check(false, `connection error: ${err.message}`));
  connections.push(conn);
  return conn;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Resolves true once cond() holds, or false after timeoutMs.
async function waitFor(cond, timeoutMs = WAIT_MS) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

function check(ok, what) {
  if (!ok) {
    failures.push(what);
    console.log(`FAIL: ${what}`);
  }
}

function expectEqual(got, want, what) {
  check(
    util.isDeepStrictEqual(got, want),
    `${what}: got ${util.inspect(got)}, want ${util.inspect(want)}`,
  );
}

async function cleanup() {
  for (const c of connections) {
    try {
      await c.close();
    } catch (_) {
      // already closed
    }
  }
  if (tempQueues.length === 0 && tempExchanges.length === 0) return;
  try {
    const conn = await amqp.connect(url, { timeout: 5000 });
    const ch = await conn.createChannel();
    for (const q of tempQueues) await ch.deleteQueue(q);
    for (const x of tempExchanges) await ch.deleteExchange(x);
    await conn.close();
  } catch (err) {
    console.log(`cleanup: ${err.message}`);
  }
}

// Runs the tutorial body main() and exits with its verdict.
function run(script, main) {
  if (process.argv.length !== 3) {
    console.error(`usage: ${process.argv[1]} AMQP_URL`);
    process.exit(2);
  }
  url = process.argv[2];
  setTimeout(() => {
    console.log(`FAIL: ${script} still running after ${DEADLINE_MS} ms (broker not answering?)`);
    process.exit(3);
  }, DEADLINE_MS).unref();
  main(url)
    .catch((err) => check(false, `error: ${err.stack || err}`))
    .then(cleanup)
    .then(() => {
      if (failures.length > 0) {
        console.log(`${script}: ${failures.length} check(s) failed`);
        process.exit(1);
      }
      console.log(`${script}: ok`);
      process.exit(0);
    });
}

module.exports = { WAIT_MS, name, tempQueue, tempExchange, connect, sleep, waitFor, check, expectEqual, run };
