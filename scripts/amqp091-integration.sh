#!/usr/bin/env bash
# Runs rabbitmq/amqp091-go's own integration suite (build tag "integration")
# against a broker, and prints which tests pass, fail and skip.
#
#   scripts/amqp091-integration.sh AMQP_URL [RESULTS_FILE]
#
# AMQP_URL      e.g. amqp://guest:guest@127.0.0.1:5672/
# RESULTS_FILE  optional: write the sorted "STATUS TestName" list there
#               (conformance/interop/amqp091-baseline.txt holds the list for
#               RabbitMQ 3.10, which is what Warren is compared with).
#
# The module is copied from the module cache (which is read-only) to a temp
# dir; the version is the one go.mod requires. RABBITMQ_RABBITMQCTL_PATH is
# left unset, so tests that drive rabbitmqctl skip themselves.
# Exit status: 0 if go test passed, 1 otherwise. When the env var
# BASELINE=FILE is set, the exit status is instead 0 unless some test that
# passes in FILE does not pass now.
set -euo pipefail

if [[ $# -lt 1 || -z "$1" ]]; then
	echo "usage: $0 AMQP_URL [RESULTS_FILE]" >&2
	exit 2
fi
url=$1
results_out=${2:-}

export PATH="/usr/local/go/bin:$PATH"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod=github.com/rabbitmq/amqp091-go
version=$(cd "$repo" && go list -m -f '{{.Version}}' "$mod")
src=$(cd "$repo" && go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [[ -z "$src" || ! -d "$src" ]]; then
	echo "cannot find $mod@$version in the module cache" >&2
	exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$src/." "$work/amqp091-go"
chmod -R u+w "$work/amqp091-go"

echo "== amqp091-go $version integration tests against $url"
status=0
(
	cd "$work/amqp091-go"
	unset RABBITMQ_RABBITMQCTL_PATH
	AMQP_URL=$url GOWORK=off GOFLAGS=-mod=mod \
		go test -tags integration -count=1 -timeout 10m -json ./...
) >"$work/test.json" 2>"$work/stderr" || status=$?

# test2json writes one object per line with the fields in a fixed order:
# Time, Action, Package, Test, ...
results=$work/results.txt
sed -n 's/.*"Action":"\(pass\|fail\|skip\)","Package":"[^"]*","Test":"\([^"]*\)".*/\1 \2/p' "$work/test.json" |
	awk '{ print toupper($1), $2 }' | sort -k2 -k1 >"$results"

# Output of each failed test (and of its package when the binary died).
failed=$(awk '$1 == "FAIL" { print $2 }' "$results")
for t in $failed; do
	echo "---- output of $t"
	grep -F "\"Test\":\"$t\"" "$work/test.json" |
		sed -n 's/.*"Action":"output".*"Output":"\(.*\)"}$/\1/p' |
		sed -e 's/\\n$//' -e 's/\\t/\t/g' -e 's/\\"/"/g' | head -60
done
pkgfail=$(grep -c '"Action":"fail","Package":"[^"]*","Elapsed"' "$work/test.json" || true)
if [[ -s "$work/stderr" ]]; then
	echo "---- go test stderr"
	cat "$work/stderr"
fi
if [[ "$status" -ne 0 && -z "$failed" ]]; then
	echo "---- go test failed without a failing test (build error, panic or timeout):"
	sed -n 's/.*"Action":"output".*"Output":"\(.*\)"}$/\1/p' "$work/test.json" | sed 's/\\n$//' | tail -40
fi

echo "== results"
cat "$results"
npass=$(grep -c '^PASS ' "$results" || true)
nfail=$(grep -c '^FAIL ' "$results" || true)
nskip=$(grep -c '^SKIP ' "$results" || true)
echo "== failing tests:"
grep '^FAIL ' "$results" | sed 's/^FAIL /  /' || echo "  (none)"
echo "== packages failed: $pkgfail, go test exit status: $status"
echo "amqp091-go: $npass passed, $nfail failed, $nskip skipped"

if [[ -n "$results_out" ]]; then
	cp "$results" "$results_out"
fi

if [[ -n "${BASELINE:-}" ]]; then
	regressed=$(comm -23 <(awk '$1 == "PASS" { print $2 }' "$BASELINE" | sort) \
		<(awk '$1 == "PASS" { print $2 }' "$results" | sort))
	if [[ -n "$regressed" ]]; then
		echo "== pass in $BASELINE but not now:"
		echo "$regressed" | sed 's/^/  /'
		exit 1
	fi
	echo "== every test that passes in $BASELINE passes now"
	exit 0
fi
[[ "$status" -eq 0 ]]
