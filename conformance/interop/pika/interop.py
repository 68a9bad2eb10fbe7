"""Helpers shared by the pika versions of the RabbitMQ tutorials.

Each tutorial script takes the AMQP URL as its only argument, names what it
declares with a per-run token so it can share a broker, never runs longer
than DEADLINE seconds, prints what went wrong and exits non-zero on failure.
"""

import atexit
import os
import signal
import sys
import time
import uuid

import pika

# Whole-script bound: a broker that never answers must not hang the suite.
DEADLINE = 20
# How long to wait for messages that should arrive.
WAIT = 10

TOKEN = "%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])

_failures = []


def _on_alarm(signum, frame):
    print("FAIL: script still running after %d s (broker not answering?)" % DEADLINE, flush=True)
    os._exit(3)


def start():
    """Parse argv and arm the watchdog; returns the AMQP URL."""
    if len(sys.argv) != 2:
        print("usage: %s AMQP_URL" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(DEADLINE)
    global _url
    _url = sys.argv[1]
    return _url


def name(base):
    return "%s-%s" % (base, TOKEN)


_url = None
_queues = []
_exchanges = []


def temp_queue(base):
    """Name a queue and delete it when the script exits, however it exits."""
    q = name(base)
    _queues.append(q)
    return q


def exchange(base):
    """Name an exchange and delete it when the script exits."""
    x = name(base)
    _exchanges.append(x)
    return x


@atexit.register
def _cleanup():
    if not (_queues or _exchanges):
        return
    try:
        conn = connect(_url)
        ch = conn.channel()
        for q in _queues:
            ch.queue_delete(queue=q)
        for x in _exchanges:
            ch.exchange_delete(exchange=x)
        conn.close()
    except Exception as e:  # cleanup is best effort
        print("cleanup: %r" % (e,), flush=True)


def connect(url):
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.stack_timeout = 5
    params.blocked_connection_timeout = 5
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


def pump(conns, done, timeout=WAIT):
    """Process I/O on every connection until done() or timeout; returns done()."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            return False
        for c in conns:
            c.process_data_events(time_limit=0.02)
    return True


def check(ok, what):
    if not ok:
        _failures.append(what)
        print("FAIL: " + what, flush=True)


def expect_equal(got, want, what):
    check(got == want, "%s: got %r, want %r" % (what, got, want))


def finish(script):
    if _failures:
        print("%s: %d check(s) failed" % (script, len(_failures)), flush=True)
        sys.exit(1)
    print("%s: ok" % script, flush=True)
    sys.exit(0)
