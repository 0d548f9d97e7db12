#!/usr/bin/env bash
# bench/subscription_read.sh: reading a subscription's next page costs the
# same however many events the log keeps behind its position.
#
# Starts a throwaway cluster (test/lib.sh: postgres OS user, unix socket in a
# mktemp directory, stopped by data directory from an EXIT trap) with
# shared_preload_libraries = 'emissions', otherwise initdb's defaults, and
# two databases, one per depth: SUBREAD_SMALL (10,000) and SUBREAD_LARGE
# (1,000,000) events kept behind the subscription's position, and
# SUBREAD_AHEAD (5,000) after it.  The events are committed by pgbench in
# transactions of SUBREAD_PER_TX (10) ~100-byte events (one log row each)
# and delivered by the worker, the real path; then the log is analyzed
# (autovacuum would, sooner or later) and a subscription created at the
# depth.  Then pgbench -n -M prepared -c 1 runs
#     SELECT count(*) FROM emissions_read('bench', 1000)
# (the next page of 1,000 events, decoded; the position does not move) for
# SUBREAD_SECONDS (10) in each database in turn, SUBREAD_ROUNDS (3) times,
# so that both depths see the same machine.  Prints the plan of the log
# query emissions_read runs, each round's average latency, the median per
# depth, and the ratio large / small (goal: at most 1.5).  Exits 1 only when
# the benchmark itself broke (events missing, pgbench failed).
#
# Usage: bash bench/subscription_read.sh   (as root, from anywhere; about
# five minutes, most of it committing and delivering the million events)
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"
prepare

SMALL="${SUBREAD_SMALL:-10000}"
LARGE="${SUBREAD_LARGE:-1000000}"
AHEAD="${SUBREAD_AHEAD:-5000}"
PER_TX="${SUBREAD_PER_TX:-10}"
SECONDS_EACH="${SUBREAD_SECONDS:-10}"
ROUNDS="${SUBREAD_ROUNDS:-3}"

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32"
work="$CLUSTER/bench"
mkdir -p "$work"

q() {
	psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

cat >"$work/emit.sql" <<SQL
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit('bench.event',
	jsonb_build_object('n', g, 'note', 'a payload of about a hundred bytes, as an order event might carry')))
  FROM generate_series(1, $PER_TX) AS g;
COMMIT;
SQL
echo "SELECT count(*) FROM emissions_read('bench', 1000);" >"$work/read.sql"

# Fill database bench_DEPTH with DEPTH + AHEAD delivered events and put the
# subscription "bench" DEPTH events into them.
fill() {
	local depth="$1" db="bench_$1" total txs kept first position
	total=$((depth + AHEAD))
	txs=$(((total + PER_TX - 1) / PER_TX))
	q postgres "CREATE DATABASE $db" >/dev/null
	q "$db" "CREATE EXTENSION emissions" >/dev/null
	echo "# $db: committing $txs transactions of $PER_TX events" >&2
	pgbench -n -M prepared -c 2 -j 2 -t $((txs / 2 + 1)) -f "$work/emit.sql" \
		"$db" >"$work/$db.fill" 2>&1 ||
		{ cat "$work/$db.fill" >&2; return 1; }
	q "$db" "SELECT emissions_wait_delivered('600s')" >/dev/null
	q "$db" "VACUUM ANALYZE emissions_log" >/dev/null
	kept="$(q "$db" "SELECT COALESCE(sum(last_id - first_id + 1), 0)
		FROM emissions_log")"
	first="$(q "$db" "SELECT min(first_id) FROM emissions_log")"
	[ "$kept" -ge "$total" ] || { echo "# $db: only $kept events" >&2; return 1; }
	position=$((first + depth - 1))
	q "$db" "SELECT emissions_subscribe('bench', $position)" >/dev/null
	echo "# $db: $kept events kept in $(q "$db" "SELECT count(*) FROM emissions_log") log rows; position $position, $(q "$db" "SELECT sum(last_id - first_id + 1) FROM emissions_log WHERE last_id <= $position") events behind it, $(q "$db" "SELECT events_behind FROM emissions_subscriptions") after" >&2
}

# Print pgbench's average latency (ms) of reading a page in bench_DEPTH.
measure() {
	pgbench -n -M prepared -c 1 -T "$SECONDS_EACH" -f "$work/read.sql" \
		"bench_$1" 2>&1 | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p'
}

median() {
	tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 }
		END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

fill "$SMALL"
fill "$LARGE"

echo "## Reading a subscription's next page of 1,000 events"
echo
echo "PostgreSQL $(q postgres 'SHOW server_version'), $(nproc) cores;" \
	"$PER_TX events per transaction (one log row each)."
echo
echo "The first of the log queries emissions_read runs (in bench_$LARGE," \
	"its parameters filled in; the next ones scan on from where it stopped," \
	"for the rows the rest of the page needs):"
echo
echo '```'
q "bench_$LARGE" "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
	SELECT first_id, last_id, txid, delivered_at, data FROM emissions_log
	 WHERE last_id > $(q "bench_$LARGE" "SELECT position FROM emissions_subscriptions")
	 ORDER BY last_id LIMIT 16"
echo '```'
echo
small_runs=""
large_runs=""
echo "| round | $SMALL behind (ms) | $LARGE behind (ms) |"
echo "|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
	s="$(measure "$SMALL")"
	l="$(measure "$LARGE")"
	[ -n "$s" ] && [ -n "$l" ] || { echo "pgbench failed" >&2; exit 1; }
	small_runs="$small_runs $s"
	large_runs="$large_runs $l"
	echo "| $round | $s | $l |"
done
s="$(median <<<"$small_runs")"
l="$(median <<<"$large_runs")"
echo
echo "Median: $s ms with $SMALL events behind, $l ms with $LARGE;" \
	"ratio $(awk -v a="$l" -v b="$s" 'BEGIN { printf "%.2f", a / b }')" \
	"(goal: at most 1.5)."
cluster_stop "$CLUSTER"
