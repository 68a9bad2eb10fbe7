#!/usr/bin/env bash
# Tutorial 5, "Topics" with amqp-tools: Q1 binds "*.orange.*", Q2 binds
# "*.*.rabbit" and "lazy.#". amq.topic stands in for "topic_logs"; every
# binding and routing key gets this run's token as an extra first word, which
# keeps the patterns' meaning. Expectations are the tutorial's, plus "lazy"
# alone (# matches zero words) and a key matching both Q2 bindings (once).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_start "$@"

start_consumer q1 -x -A -e amq.topic -r "$TOKEN.*.orange.*"
pid1=$CONSUMER_PID
start_consumer q2 -x -A -e amq.topic -r "$TOKEN.*.*.rabbit,$TOKEN.lazy.#"
pid2=$CONSUMER_PID
probe_until_ready amq.topic "$TOKEN.quick.orange.rabbit" q1 q2 || fail "subscribers not bound within ${WAIT}s"

# key: queues that should get it
routes=(
	"quick.orange.rabbit:q1 q2"
	"lazy.orange.elephant:q1 q2"
	"quick.orange.fox:q1"
	"lazy.brown.fox:q2"
	"lazy.pink.rabbit:q2"
	"quick.brown.fox:"
	"orange:"
	"quick.orange.male.rabbit:"
	"lazy.orange.male.rabbit:q2"
	"lazy:q2"
	"quick.orange:"
)
want_q1=""
want_q2=""
for r in "${routes[@]}"; do
	key=${r%%:*}
	dest=" ${r#*:} "
	timeout 5 amqp-publish -u "$URL" -e amq.topic -r "$TOKEN.$key" -b "$TOKEN.$key"
	[[ "$dest" == *" q1 "* ]] && want_q1+="$TOKEN.$key"$'\n'
	[[ "$dest" == *" q2 "* ]] && want_q2+="$TOKEN.$key"$'\n'
done
want_q1=${want_q1%$'\n'}
want_q2=${want_q2%$'\n'}

got_all() { [[ "$(received q1)" == "$want_q1" && "$(received q2)" == "$want_q2" ]]; }
wait_until "$WAIT" got_all || true
sleep 0.3 # catch extra deliveries
stop "$pid1" "$pid2"
expect_equal "$(received q1)" "$want_q1" "Q1 (binds *.orange.*) received"
expect_equal "$(received q2)" "$want_q2" "Q2 (binds *.*.rabbit, lazy.#) received"

interop_finish topics
