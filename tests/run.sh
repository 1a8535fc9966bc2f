#!/usr/bin/env bash
# Runs each test program in its own process with a time limit, prints its
# output, and closes with one line: "N passed, N failed".
# Usage: tests/run.sh TEST_BINARY...   (RELAIS_BIN names the binaries' folder)
set -u
limit=${RELAIS_TEST_TIMEOUT:-300}
passed=0
failed=0
failures=()
for t in "$@"; do
	name=$(basename "$t")
	echo "=== $name"
	if timeout --kill-after=10 "$limit" "$t"; then
		passed=$((passed + 1))
	else
		rc=$?
		[ "$rc" -eq 124 ] && echo "$name: timed out after ${limit}s"
		failed=$((failed + 1))
		failures+=("$name")
	fi
done
echo
[ "$failed" -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
