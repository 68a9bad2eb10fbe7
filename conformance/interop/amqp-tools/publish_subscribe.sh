#!/usr/bin/env bash
# Tutorial 3, "Publish/Subscribe" with amqp-tools: two subscribers, each an
# amqp-consume -x -e amq.fanout with a server-named exclusive queue; both get
# every message. (amqp-tools cannot declare an exchange, so the predeclared
# amq.fanout stands in for "logs"; messages without this run's token are
# someone else's and are ignored.)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_start "$@"

# A fanout exchange ignores the binding key, but amqp-consume needs one
# (without -r it crashes, with -r "" it does not bind).
start_consumer sub1 -x -A -e amq.fanout -r "$TOKEN"
pid1=$CONSUMER_PID
start_consumer sub2 -x -A -e amq.fanout -r "$TOKEN"
pid2=$CONSUMER_PID
wait_until "$WAIT" has_server_queue sub1 || fail "sub1 reported no queue: $(cat "$WORK/sub1.err")"
wait_until "$WAIT" has_server_queue sub2 || fail "sub2 reported no queue: $(cat "$WORK/sub2.err")"
q1=$(server_queue sub1)
q2=$(server_queue sub2)
[[ "$q1" == amq.gen-* && "$q2" == amq.gen-* ]] || fail "server-named queues should start with amq.gen-: $q1, $q2"
[[ "$q1" != "$q2" ]] || fail "server-named queues should differ: $q1"

probe_until_ready amq.fanout "" sub1 sub2 || fail "subscribers not bound within ${WAIT}s"
sent=""
for i in 1 2 3; do
	sent+="log line $i $TOKEN"$'\n'
	timeout 5 amqp-publish -u "$URL" -e amq.fanout -b "log line $i $TOKEN"
done
sent=${sent%$'\n'}

got_all() { [[ "$(received sub1)" == "$sent" && "$(received sub2)" == "$sent" ]]; }
wait_until "$WAIT" got_all || true
expect_equal "$(received sub1)" "$sent" "subscriber 1 received"
expect_equal "$(received sub2)" "$sent" "subscriber 2 received"

# Exclusive queues go away with their connection.
stop "$pid1" "$pid2"
gone() {
	local out
	out=$(timeout 5 amqp-get -u "$URL" -q "$1" 2>&1) && return 1
	[[ "$out" == *404* ]]
}
for q in "$q1" "$q2"; do
	wait_until 5 gone "$q" || fail "exclusive queue $q still exists after its connection closed"
done

interop_finish publish_subscribe
