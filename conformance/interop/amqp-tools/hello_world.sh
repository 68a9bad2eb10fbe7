#!/usr/bin/env bash
# Tutorial 1, "Hello World!" with amqp-tools: declare a queue, publish to it
# through the default exchange, consume one message (amqp-consume -c 1), and
# fetch a second with basic.get (amqp-get).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_start "$@"

temp_queue hello
queue=$REPLY
expect_equal "$(timeout 5 amqp-declare-queue -u "$URL" -q "$queue")" "$queue" "amqp-declare-queue output"
timeout 5 amqp-publish -u "$URL" -r "$queue" -b "Hello World!"

got=$(timeout "$WAIT" amqp-consume -u "$URL" -q "$queue" -c 1 -- cat) || fail "amqp-consume -c 1 exited $? (no message within ${WAIT}s?)"
expect_equal "$got" "Hello World!" "consumed"

timeout 5 amqp-publish -u "$URL" -r "$queue" -b "Hello again"
got=$(timeout 5 amqp-get -u "$URL" -q "$queue") || fail "amqp-get exited $?"
expect_equal "$got" "Hello again" "amqp-get"

# Both were acked: the queue is empty (amqp-get exits 2 on basic.get-empty).
rc=0
timeout 5 amqp-get -u "$URL" -q "$queue" >/dev/null || rc=$?
expect_equal "$rc" 2 "amqp-get on the emptied queue exit status"

interop_finish hello_world
