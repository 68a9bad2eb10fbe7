#!/usr/bin/env bash
# Tutorial 2, "Work queues" with amqp-tools: a durable queue
# (amqp-declare-queue -d), persistent tasks (amqp-publish -p), and two workers
# with prefetch 1 (amqp-consume -p 1) that ack a task when their command exits.
#
# The tasks are queued first. The slow worker starts, takes a task and holds
# it for SLOW seconds; then the fast worker starts. With prefetch 1 the slow
# worker holds only one task, so the fast worker gets the rest; a broker that
# ignored the prefetch would have pushed every task to the slow worker.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_start "$@"

TASKS=10
SLOW=1

temp_queue task_queue
queue=$REPLY
timeout 5 amqp-declare-queue -u "$URL" -q "$queue" -d >/dev/null
sent=""
for i in $(seq 1 "$TASKS"); do
	body="task $i $TOKEN"
	sent+="$body"$'\n'
	timeout 5 amqp-publish -u "$URL" -r "$queue" -p -b "$body"
done

# Each worker records a task in W.recv on receipt and in W.out when done;
# amqp-consume acks it right after.
CONSUMER_CMD="printf '%s\n' \"\$b\" >>'$WORK/slow.recv'; sleep $SLOW; " start_consumer slow -q "$queue" -p 1
slow_pid=$CONSUMER_PID
has_recv() { [[ -s "$WORK/slow.recv" ]]; }
wait_until "$WAIT" has_recv || fail "slow worker got no task within ${WAIT}s: $(cat "$WORK/slow.err")"
start_consumer fast -q "$queue" -p 1
fast_pid=$CONSUMER_PID

all_done() { (($(lines slow) + $(lines fast) >= TASKS)); }
wait_until "$WAIT" all_done || fail "only $(($(lines slow) + $(lines fast))) of $TASKS tasks done within ${WAIT}s"
sleep 0.5 # the last task's ack follows its record
stop "$slow_pid" "$fast_pid"

nslow=$(lines slow)
nfast=$(lines fast)
echo "slow worker: $nslow tasks, fast worker: $nfast tasks"
expect_equal "$(cat "$WORK/slow.out" "$WORK/fast.out" | sort)" "$(printf '%s' "$sent" | sort)" "tasks processed (each exactly once)"
((nslow >= 1 && nfast >= 1)) || fail "both workers should get tasks: slow $nslow, fast $nfast"
((nslow < nfast)) || fail "fair dispatch (prefetch 1): slow worker got $nslow tasks, fast $nfast"

# Every task was acked, so the workers' going away requeued nothing.
rc=0
left=$(timeout 5 amqp-get -u "$URL" -q "$queue") || rc=$?
expect_equal "$rc:$left" "2:" "amqp-get after the workers stopped (exit status:body)"

interop_finish work_queues
