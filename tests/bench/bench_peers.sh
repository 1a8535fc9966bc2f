#!/usr/bin/env bash
# relais against two Redis peers doing the same job, measured side by side.
#
#   tests/bench/bench_peers.sh            (make bench-peers runs it)
#
# Environment:
#   RELAIS_BIN       folder of relaisd, relais-bench and redis-peer (required)
#   ROUNDS           interleaved rounds (default 5)
#   RUN_SECONDS      length of each run (default 5)
#   SHAPES           "SENDERSxINFLIGHT ..." (default "4x100 50x1 1x1 4x400")
#   DURABILITIES     relaisd's durability settings to measure, each as a
#                    system of its own (default "commit wal")
#   REDIS_SERVER     the redis-server binary (default: redis-server on PATH)
#
# For every round and shape it runs, one after the other, relais
# (relais-bench, once per durability setting), Redis with XADD and Redis
# with one Lua script per event (redis-peer), rotating their order from
# round to round, so that the load
# of a shared machine falls on all three alike.  Each Redis run gets a fresh
# server in a temporary folder, listening only on a Unix socket there (no
# TCP port), with appendonly yes and appendfsync always: a reply means the
# command is in a synced AOF, as an ack from relais means the event is in a
# synced LMDB commit.  Each relais run gets a fresh store.
#
# It prints every run, then one table: the median over the rounds of each
# system's figure, and the median and range (min-max) of the ratios taken
# within each round.
set -u

bin=${RELAIS_BIN:?set RELAIS_BIN to the folder of relaisd, relais-bench and redis-peer}
rounds=${ROUNDS:-5}
secs=${RUN_SECONDS:-5}
shapes=${SHAPES:-"4x100 50x1 1x1 4x400"}
durabilities=${DURABILITIES:-"commit wal"}
redis_server=${REDIS_SERVER:-redis-server}

for tool in "$bin/relais-bench" "$bin/redis-peer" "$bin/relaisd"; do
	[ -x "$tool" ] || { echo "bench-peers: $tool is missing; run make" >&2; exit 1; }
done
command -v "$redis_server" >/dev/null || {
	echo "bench-peers: $redis_server not found; run make deps (Debian package redis-server)" >&2
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-peers.XXXXXX") || exit 1
redis_pid=
cleanup() {
	if [ -n "$redis_pid" ]; then
		kill "$redis_pid" 2>/dev/null
		wait "$redis_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

results=$work/results       # round shape system events_per_s p50 p99

redis_start() {
	local d=$1
	mkdir -p "$d"
	"$redis_server" --port 0 --unixsocket "$d/redis.sock" --unixsocketperm 700 \
	    --dir "$d" --appendonly yes --appendfsync always --save '' \
	    --daemonize no --logfile "$d/redis.log" &
	redis_pid=$!
	for _ in $(seq 1 200); do
		[ -S "$d/redis.sock" ] && return 0
		kill -0 "$redis_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench-peers: redis-server did not open $d/redis.sock; its log:" >&2
	cat "$d/redis.log" >&2
	return 1
}

redis_stop() {
	kill "$redis_pid" 2>/dev/null
	wait "$redis_pid" 2>/dev/null
	redis_pid=
}

# run ROUND SHAPE SYSTEM: one measurement, appended to $results.
run() {
	local round=$1 shape=$2 sys=$3 n=${2%x*} k=${2#*x} out rc line
	out=$work/run.out
	case $sys in
	relais-*)
		"$bin/relais-bench" --senders "$n" --inflight "$k" \
		    --durability "${sys#relais-}" \
		    --seconds "$secs" --events 100000000 >"$out" 2>&1
		rc=$?
		;;
	xadd|lua)
		redis_start "$work/redis-$round-$shape-$sys" || return 1
		"$bin/redis-peer" --socket "$work/redis-$round-$shape-$sys/redis.sock" \
		    --mode "$sys" --connections "$n" --inflight "$k" \
		    --seconds "$secs" --events 100000000 >"$out" 2>&1
		rc=$?
		redis_stop
		rm -rf "$work/redis-$round-$shape-$sys"
		;;
	esac
	line=$(grep '^result ' "$out")
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		echo "bench-peers: the $sys run at $shape failed (status $rc):" >&2
		cat "$out" >&2
		return 1
	fi
	# "result events_per_s=X ack_p50_ms=Y ack_p99_ms=Z" -> "X Y Z"
	set -- $(echo "$line" | sed 's/[a-z0-9_]*=//g; s/^result //')
	printf '%s %s %s %s %s %s\n' "$round" "$shape" "$sys" "$1" "$2" "$3" >>"$results"
	printf '  round %d  %-6s %-13s %9.0f events/s   ack p50 %6.2f ms   p99 %6.2f ms\n' \
	    "$round" "$shape" "$sys" "$1" "$2" "$3"
}

echo "bench-peers: relais against Redis (XADD, appendfsync always) and Redis"
echo "             (one Lua script per event: SET NX, XADD log, XADD mailbox, HSET, ZADD;"
echo "             appendfsync always), $rounds rounds of ${secs} s runs, interleaved"
echo "machine      $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), Linux $(uname -r)"
echo "date         $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "redis        $("$redis_server" --version | sed 's/ sha=.*//')"
echo "load         $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min load average at the start)"
echo

systems=()
for d in $durabilities; do
	systems+=("relais-$d")
done
systems+=(xadd lua)
nsys=${#systems[@]}
for round in $(seq 1 "$rounds"); do
	for shape in $shapes; do
		for i in $(seq 0 $((nsys - 1))); do
			sys=${systems[$(( (i + round - 1) % nsys ))]}
			run "$round" "$shape" "$sys" || exit 1
		done
	done
done

echo
echo "load         $(cut -d' ' -f1-3 /proc/loadavg) (at the end)"
echo
# The table: medians over rounds, ratios within a round (median, min-max).
awk -v shapes="$shapes" -v durabilities="$durabilities" '
function sort(a, n,    i, j, x) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			x = a[j]; a[j] = a[j - 1]; a[j - 1] = x
		}
}
function median(a, n) {
	sort(a, n)
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# Median of field f of system s at shape sh over the rounds.
function med(sh, s, f,    r, a, n) {
	n = 0
	for (r = 1; r <= R; r++)
		if ((r, sh, s) in v)
			a[++n] = v[r, sh, s, f]
	return median(a, n)
}
# Ratio num/den of field f within each round: "median (min-max)".
function ratio(sh, num, den, f,    r, a, n, lo, hi, m) {
	n = 0
	for (r = 1; r <= R; r++)
		if ((r, sh, num) in v && (r, sh, den) in v && v[r, sh, den, f] > 0)
			a[++n] = v[r, sh, num, f] / v[r, sh, den, f]
	if (n == 0)
		return "-"
	m = median(a, n)
	return sprintf("%.2f× (%.2f–%.2f)", m, a[1], a[n])
}
function k(x) { return x >= 1000 ? sprintf("%.1f k/s", x / 1000) : sprintf("%.0f /s", x) }
{
	v[$1, $2, $3] = 1
	v[$1, $2, $3, 4] = $4; v[$1, $2, $3, 5] = $5; v[$1, $2, $3, 6] = $6
	if ($1 > R) R = $1
}
END {
	print "| shape | relais | Redis XADD, appendfsync always | relais / XADD | Redis Lua per event, appendfsync always | relais / Lua |"
	print "|---|---|---|---|---|---|"
	ns = split(shapes, sh, " ")
	nd = split(durabilities, dur, " ")
	for (i = 1; i <= ns; i++) {
		split(sh[i], nk, "x")
		for (j = 1; j <= nd; j++) {
			rs = "relais-" dur[j]
			printf "| %s senders × %s in flight, events/s, durability = %s | %s | %s | %s | %s | %s |\n", \
			    nk[1], nk[2], dur[j], k(med(sh[i], rs, 4)), k(med(sh[i], "xadd", 4)), \
			    ratio(sh[i], rs, "xadd", 4), k(med(sh[i], "lua", 4)), \
			    ratio(sh[i], rs, "lua", 4)
		}
		if (sh[i] != "1x1")
			continue
		for (j = 1; j <= nd; j++) {
			rs = "relais-" dur[j]
			printf "| 1 × 1, ack p50, durability = %s (ratio: time of relais / time of the peer) | %.2f ms | %.2f ms | %s | %.2f ms | %s |\n", \
			    dur[j], med(sh[i], rs, 5), med(sh[i], "xadd", 5), ratio(sh[i], rs, "xadd", 5), \
			    med(sh[i], "lua", 5), ratio(sh[i], rs, "lua", 5)
			printf "| 1 × 1, ack p99, durability = %s | %.2f ms | %.2f ms | %s | %.2f ms | %s |\n", \
			    dur[j], med(sh[i], rs, 6), med(sh[i], "xadd", 6), ratio(sh[i], rs, "xadd", 6), \
			    med(sh[i], "lua", 6), ratio(sh[i], rs, "lua", 6)
		}
	}
	printf "\nFigures: medians of %d rounds; ratios: median (min–max) of the ratios within each round.\n", R
}' "$results"
