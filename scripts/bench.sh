#!/usr/bin/env bash
# Builds Warren, warren-perf and warren-bench, starts a fresh Warren (empty
# temporary storage), and runs the benchmark scenario set against it and, if
# it is running, against the local RabbitMQ, alternating per scenario.
#
#   scripts/bench.sh [warren-bench flags...]
#
# Environment:
#   WARREN_PORT   port for the Warren started here (default 5683)
#   RABBIT_URL    second broker (default amqp://guest:guest@127.0.0.1:5672/;
#                 set it empty to run Warren alone)
#   RABBIT_PID    its PID for RSS (default: the beam.smp found by pgrep)
#   OUT           also write the Markdown report there
# Extra arguments go to warren-bench, e.g. -no-footprint -time 5s -scenarios a,c.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
port=${WARREN_PORT:-5683}
rabbit_url=${RABBIT_URL-amqp://guest:guest@127.0.0.1:5672/}

bin=$(mktemp -d)
data=$(mktemp -d)
warren_pid=
cleanup() {
	if [[ -n "$warren_pid" ]]; then
		kill "$warren_pid" 2>/dev/null || true
		wait "$warren_pid" 2>/dev/null || true
	fi
	rm -rf "$bin" "$data"
}
trap cleanup EXIT

go build -o "$bin/" ./cmd/warren ./cmd/warren-perf ./cmd/warren-bench

"$bin/warren" --amqp.listen "127.0.0.1:$port" --storage.dir "$data" --log.level warn &
warren_pid=$!
for _ in $(seq 50); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done

args=(-url1 "amqp://guest:guest@127.0.0.1:$port/" -pid1 "$warren_pid")
if [[ -n "$rabbit_url" ]]; then
	rabbit_pid=${RABBIT_PID:-$(pgrep -o beam.smp || true)}
	args+=(-url2 "$rabbit_url")
	if [[ -n "$rabbit_pid" ]]; then args+=(-pid2 "$rabbit_pid"); fi
fi
if [[ -n "${OUT:-}" ]]; then args+=(-out "$OUT"); fi

"$bin/warren-bench" "${args[@]}" "$@"
