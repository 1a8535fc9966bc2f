#!/usr/bin/env bash
# redis-peer's argument handling: usage errors exit 2 with a message and
# never touch a server; --help exits 0.  (No Redis is started here: the
# benchmark itself is `make bench-peers`.)
set -u
peer=${RELAIS_BIN:?set RELAIS_BIN}/redis-peer
fails=0

# expect STATUS PATTERN ARGS...: the exit status, and PATTERN in the output.
expect() {
	local want=$1 pattern=$2 out rc
	shift 2
	out=$("$peer" "$@" 2>&1)
	rc=$?
	if [ "$rc" -ne "$want" ] || ! grep -q -- "$pattern" <<<"$out"; then
		echo "FAIL: redis-peer $*: expected status $want and \"$pattern\"," \
		    "got status $rc and:"
		echo "$out" | sed 's/^/    /'
		fails=$((fails + 1))
	else
		echo "ok: redis-peer $* -> $rc"
	fi
}

expect 0 "usage: redis-peer" --help
expect 2 "--socket is required" --mode xadd
expect 2 "bad value for --mode: sql" --socket /nonexistent --mode sql
expect 2 "bad value for --connections: 0" --socket /nonexistent --connections 0
expect 2 "bad value for --connections: 257" --socket /nonexistent --connections 257
expect 2 "bad value for --inflight: -1" --socket /nonexistent --inflight -1
expect 2 "bad value for --seconds: x" --socket /nonexistent --seconds x
expect 2 "usage: redis-peer" --socket /nonexistent extra
# A server that is not there: a run-time failure (1) that says where.
expect 1 "cannot connect to /nonexistent/redis.sock" \
    --socket /nonexistent/redis.sock --seconds 1
expect 1 "cannot connect to /nonexistent/redis.sock" \
    --socket /nonexistent/redis.sock --mode lua --seconds 1
[ "$fails" -eq 0 ]
