#!/usr/bin/env bash
# Two builds of relaisd side by side: which change is faster, on a machine
# whose load comes and goes.
#
#   tests/bench/bench_ab.sh OLD_DIR NEW_DIR     (folders holding a relaisd)
#
# Environment:
#   ROUNDS        rounds (default 4); each runs OLD then NEW, or NEW then OLD
#                 on even rounds, at every shape
#   RUN_SECONDS   length of each run (default 4)
#   SHAPES        "SENDERSxINFLIGHT ..." (default "1x1 50x1 4x100")
#   BENCH         the relais-bench driving both (default: NEW_DIR's)
#
# Absolute figures on a shared machine are noise; what means something is
# the ratio NEW / OLD taken within each round, printed as its median and
# range for events/s, ack p50 and the broker's CPU time per event (ratios
# of time below 1 are better).  CPU per event is the steadiest of the three
# on a loaded machine; ack p50 at 1x1 is mostly the disk's sync.
set -u
old=${1:?usage: bench_ab.sh OLD_DIR NEW_DIR}
new=${2:?usage: bench_ab.sh OLD_DIR NEW_DIR}
rounds=${ROUNDS:-4}
secs=${RUN_SECONDS:-4}
shapes=${SHAPES:-"1x1 50x1 4x100"}
bench=${BENCH:-$new/relais-bench}
for f in "$old/relaisd" "$new/relaisd" "$bench"; do
	[ -x "$f" ] || { echo "bench_ab: $f is missing" >&2; exit 1; }
done
results=$(mktemp "${TMPDIR:-/tmp}/bench-ab.XXXXXX") || exit 1
trap 'rm -f "$results"' EXIT

# run ROUND SHAPE WHICH DIR: one run, "round shape which events/s p50 p99 cpu".
run() {
	local out line n=${2%x*} k=${2#*x}
	out=$(RELAIS_BIN=$4 "$bench" --senders "$n" --inflight "$k" \
	    --seconds "$secs" --events 100000000 2>&1)
	line=$(grep '^result ' <<<"$out")
	if [ -z "$line" ]; then
		echo "bench_ab: the $3 run at $2 failed:" >&2
		echo "$out" >&2
		return 1
	fi
	set -- "$1" "$2" "$3" $(sed 's/[a-z0-9_]*=//g; s/^result //' <<<"$line")
	echo "$*" >>"$results"
	printf '  round %d  %-6s %-3s %9.0f events/s  ack p50 %6.3f ms  p99 %6.3f ms  cpu %6.2f us/event\n' "$@"
}

echo "bench_ab: OLD $old, NEW $new; $rounds rounds of ${secs} s runs"
echo "date $(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
for r in $(seq 1 "$rounds"); do
	for s in $shapes; do
		if [ $((r % 2)) -eq 1 ]; then
			run "$r" "$s" old "$old" && run "$r" "$s" new "$new" || exit 1
		else
			run "$r" "$s" new "$new" && run "$r" "$s" old "$old" || exit 1
		fi
	done
done
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v shapes="$shapes" '
function med(a, n,    i, j, x) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			x = a[j]; a[j] = a[j - 1]; a[j - 1] = x
		}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function ratio(sh, f,    r, a, n, m) {
	n = 0
	for (r = 1; r <= R; r++)
		if ((r, sh, "old", f) in v && v[r, sh, "old", f] > 0)
			a[++n] = v[r, sh, "new", f] / v[r, sh, "old", f]
	m = med(a, n)
	return sprintf("%.3f (%.3f-%.3f)", m, a[1], a[n])
}
{ v[$1, $2, $3, 4] = $4; v[$1, $2, $3, 5] = $5; v[$1, $2, $3, 7] = $7; if ($1 > R) R = $1 }
END {
	printf "%-8s %-24s %-24s %s\n", "shape", "NEW/OLD events/s", "NEW/OLD ack p50",
	    "NEW/OLD CPU per event"
	ns = split(shapes, sh, " ")
	for (i = 1; i <= ns; i++)
		printf "%-8s %-24s %-24s %s\n", sh[i], ratio(sh[i], 4), ratio(sh[i], 5),
		    ratio(sh[i], 7)
	print "median (min-max) of the per-round ratios"
}' "$results"
