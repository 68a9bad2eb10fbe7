#!/usr/bin/env bash
# Tutorial 4, "Routing" with amqp-tools: a direct exchange; one subscriber
# binds "error", the other "info", "warning" and "error" (amqp-consume -r takes
# a comma-separated list); "debug" goes nowhere. amq.direct stands in for
# "direct_logs" and the severities carry this run's token.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_start "$@"

start_consumer errors -x -A -e amq.direct -r "$TOKEN.error"
pid1=$CONSUMER_PID
start_consumer all -x -A -e amq.direct -r "$TOKEN.info,$TOKEN.warning,$TOKEN.error"
pid2=$CONSUMER_PID
probe_until_ready amq.direct "$TOKEN.error" errors all || fail "subscribers not bound within ${WAIT}s"

for sev in info warning error debug error; do
	timeout 5 amqp-publish -u "$URL" -e amq.direct -r "$TOKEN.$sev" -b "$sev message $TOKEN"
done
want_errors="error message $TOKEN"$'\n'"error message $TOKEN"
want_all="info message $TOKEN"$'\n'"warning message $TOKEN"$'\n'"$want_errors"

got_all() { [[ "$(received errors)" == "$want_errors" && "$(received all)" == "$want_all" ]]; }
wait_until "$WAIT" got_all || true
sleep 0.3 # a late, unexpected delivery (e.g. "debug") shows up here
stop "$pid1" "$pid2"
expect_equal "$(received errors)" "$want_errors" "subscriber binding error received"
expect_equal "$(received all)" "$want_all" "subscriber binding info,warning,error received"

interop_finish routing
