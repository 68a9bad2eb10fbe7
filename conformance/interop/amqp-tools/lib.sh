# shellcheck shell=bash
# Helpers shared by the amqp-tools (rabbitmq-c CLI) versions of the RabbitMQ
# tutorials. Source it after `set -euo pipefail`; call `interop_start "$@"`.
#
# Every blocking call runs under `timeout`; background consumers are started
# by start_consumer (also under timeout) and killed, by pid, when the script
# ends. Names carry a per-run token so scripts can share a broker.
#
# amqp-tools cannot declare exchanges, so the exchange tutorials use the
# exchanges every vhost predeclares (amq.fanout, amq.direct, amq.topic), put
# the token in routing keys and bodies, and ignore foreign messages.

WAIT=10     # seconds to wait for messages that should arrive
LIFETIME=25 # upper bound on any background consumer

TOKEN="$$-$RANDOM$RANDOM"
FAILURES=0
PIDS=()
TEMP_QUEUES=()
WORK=""
URL=""

fail() {
	echo "FAIL: $*"
	FAILURES=$((FAILURES + 1))
}

# expect_equal GOT WANT WHAT
expect_equal() {
	if [[ "$1" != "$2" ]]; then
		fail "$3: got [$(printf '%s' "$1" | tr '\n' '|')], want [$(printf '%s' "$2" | tr '\n' '|')]"
	fi
}

_cleanup() {
	local pid q
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	for q in "${TEMP_QUEUES[@]}"; do
		timeout 5 amqp-delete-queue -u "$URL" -q "$q" >/dev/null 2>&1 || true
	done
	[[ -n "$WORK" ]] && rm -rf "$WORK"
}

interop_start() {
	if [[ $# -ne 1 ]]; then
		echo "usage: $0 AMQP_URL" >&2
		exit 2
	fi
	URL=$1
	# rabbitmq-c reads the path of amqp://host:port/ as the empty vhost (as the
	# AMQP URI spec says), where pika and amqplib mean "/"; name "/" explicitly.
	if [[ "$URL" =~ ^amqps?://[^/]*/?$ ]]; then
		URL="${URL%/}/%2f"
	fi
	WORK=$(mktemp -d)
	trap _cleanup EXIT
	# set -e ends the script on a failed command; say which one first.
	trap 'echo "FAIL: $0 line $LINENO: \"$BASH_COMMAND\" exited $?"' ERR
}

# temp_queue BASE: prints a name that is deleted when the script exits.
# Call it in the main shell (not in $(...)) via: temp_queue base; q=$REPLY
temp_queue() {
	REPLY="$1-$TOKEN"
	TEMP_QUEUES+=("$REPLY")
}

# start_consumer NAME [amqp-consume options...]: runs amqp-consume in the
# background; each message body becomes one line of $WORK/NAME.out. Extra
# per-message shell code can be given in CONSUMER_CMD (it sees the body in $b).
start_consumer() {
	local name=$1
	shift
	: >"$WORK/$name.out"
	timeout "$LIFETIME" amqp-consume -u "$URL" "$@" -- \
		sh -c "b=\$(cat); ${CONSUMER_CMD:-}printf '%s\n' \"\$b\" >>'$WORK/$name.out'" \
		2>"$WORK/$name.err" &
	PIDS+=("$!")
	CONSUMER_PID=$!
}

# lines NAME [PATTERN]: how many lines of NAME.out match PATTERN.
lines() {
	grep -c -- "${2:-}" "$WORK/$1.out" 2>/dev/null || true
}

# wait_until SECONDS CMD...: polls CMD until it succeeds; false on timeout.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.05
	done
}

# server_queue NAME: the server-named queue amqp-consume reported on stderr.
server_queue() {
	sed -n 's/^Server provided queue name: //p' "$WORK/$1.err" | head -n1
}

has_server_queue() { [[ -n "$(server_queue "$1")" ]]; }

# probe_until_ready EXCHANGE KEY CONSUMER...: a consumer of a server-named
# queue reports the queue's name before binding it, and no tool can list
# bindings, so publish "probe-TOKEN" until every consumer has received one.
probe_until_ready() {
	local exchange=$1 key=$2
	shift 2
	local end=$((SECONDS + WAIT)) c ready
	while ((SECONDS < end)); do
		ready=1
		for c in "$@"; do
			[[ "$(lines "$c" "^probe-$TOKEN\$")" -ge 1 ]] || ready=0
		done
		((ready)) && return 0
		timeout 5 amqp-publish -u "$URL" -e "$exchange" -r "$key" -b "probe-$TOKEN"
		sleep 0.1
	done
	for c in "$@"; do
		echo "consumer $c stderr:"
		cat "$WORK/$c.err"
	done
	return 1
}

# received NAME: the lines NAME got that carry this run's token, no probes.
received() {
	grep -F -- "$TOKEN" "$WORK/$1.out" | grep -v -- "^probe-$TOKEN\$" || true
}

# stop PID...: ends background consumers this script started.
stop() {
	local pid
	for pid in "$@"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

interop_finish() {
	if ((FAILURES > 0)); then
		echo "$1: $FAILURES check(s) failed"
		exit 1
	fi
	echo "$1: ok"
	exit 0
}
