#!/usr/bin/env bash
# Tutorial 6, "RPC" with amqp-tools -- an approximation. The server is
# amqp-consume on rpc_queue with prefetch 1, running a shell command per
# request that publishes fib(n) with amqp-publish and exits 0 (so the request
# is acked). The client's callback queue is an exclusive server-named queue
# (amqp-consume -x, no-ack) and requests carry it in reply_to (amqp-publish -t).
#
# What the CLI cannot do: amqp-consume hands the command only the body, not
# reply_to or correlation_id, and amqp-publish cannot set correlation_id. So
# each request body is "CORRELATION_ID REPLY_TO N" and each answer body is
# "CORRELATION_ID FIB"; the client matches answers to requests by that id.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_start "$@"

temp_queue rpc_queue
rpc_queue=$REPLY
timeout 5 amqp-declare-queue -u "$URL" -q "$rpc_queue" >/dev/null

fib() {
	local a=0 b=1 i t
	for ((i = 0; i < $1; i++)); do
		t=$((a + b))
		a=$b
		b=$t
	done
	echo "$a"
}

# Server: answers exactly the five requests (-c 5), one at a time (-p 1).
export URL
CONSUMER_CMD='set -- $b; a=0; x=1; i=0; while [ $i -lt $3 ]; do t=$((a + x)); a=$x; x=$t; i=$((i + 1)); done; timeout 5 amqp-publish -u "$URL" -r "$2" -b "$1 $a" || exit 1; ' \
	start_consumer server -q "$rpc_queue" -p 1 -c 5
server_pid=$CONSUMER_PID

# Client: an exclusive, server-named callback queue.
start_consumer client -x -A -c 5
client_pid=$CONSUMER_PID
wait_until "$WAIT" has_server_queue client || fail "client reported no callback queue: $(cat "$WORK/client.err")"
callback=$(server_queue client)

want=""
for n in 30 1 10 0 20; do
	corr="$TOKEN-$n-$RANDOM"
	want+="$corr $(fib "$n")"$'\n'
	timeout 5 amqp-publish -u "$URL" -r "$rpc_queue" -t "$callback" -b "$corr $callback $n"
done
want=$(printf '%s' "$want" | sort)

answered() { (($(lines client) >= 5)); }
wait_until "$WAIT" answered || fail "only $(lines client) of 5 answers within ${WAIT}s; server stderr: $(cat "$WORK/server.err")"
expect_equal "$(sort "$WORK/client.out")" "$want" "answers (correlation id, fib)"

# Both consumers stop by themselves after five messages; the requests were
# all acked.
wait "$server_pid" || fail "server amqp-consume exited $?: $(cat "$WORK/server.err")"
wait "$client_pid" || fail "client amqp-consume exited $?: $(cat "$WORK/client.err")"
rc=0
left=$(timeout 5 amqp-get -u "$URL" -q "$rpc_queue") || rc=$?
expect_equal "$rc:$left" "2:" "amqp-get on rpc_queue after the server stopped (exit status:body)"

interop_finish rpc
