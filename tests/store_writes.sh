#!/usr/bin/env bash
# Every change the broker makes to its store goes through store_put,
# store_del, store_cursor_put or store_cursor_del (broker/store.h): with
# durability = wal they record it for the write-ahead log, and a change
# made straight through LMDB would be lost by a crash before the next
# checkpoint.  This fails, naming the lines, if a broker file other than
# the store's own (with its upgrade, which runs before any log is open),
# the replay and the offline copies calls LMDB's writes.
set -u
cd "$(dirname "$0")/.."
found=$(grep -nE '\b(mdb_put|mdb_del|mdb_cursor_put|mdb_cursor_del|mdb_drop)[[:space:]]*\(' \
    broker/*.c | grep -vE '^broker/(store|store_upgrade|redo|backup|wal_copy)\.c:' |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*)')
if [ -n "$found" ]; then
	echo "store_writes: these write to LMDB directly; use store_put," \
	    "store_del, store_cursor_put or store_cursor_del (broker/store.h):"
	echo "$found"
	exit 1
fi
echo "store_writes: every broker write goes through the store's recorded writes"
