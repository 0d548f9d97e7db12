#!/usr/bin/env bash
# bench/latency.sh: commit-to-LISTEN latency, emissions versus direct NOTIFY.
#
# Starts a throwaway cluster (test/lib.sh: postgres OS user, unix socket in a
# mktemp directory, stopped by data directory from an EXIT trap) with
# shared_preload_libraries = 'emissions' and max_worker_processes = 32, and
# runs bench/latency.c (built here against libpq): a listener connection
# LISTENs on "emissions" and "bench_direct"; a producer connection commits
# one transaction per sample, in turn (random order within each round):
#   emissions:    BEGIN; SELECT emissions_start();
#                 SELECT emissions_emit('bench.latency', '{"n": N}'); COMMIT
#                 (the delivery worker NOTIFYs the envelope after the commit)
#   direct:       BEGIN; SELECT pg_notify('bench_direct', 'N'); COMMIT
#   direct_write: BEGIN; INSERT INTO bench_latency_rows VALUES (N);
#                 SELECT pg_notify('bench_direct', 'N'); COMMIT
# and times each from just before COMMIT is sent to the arrival of the
# notification carrying N.  (direct writes nothing, so its commit flushes no
# WAL; direct_write is a NOTIFY from a transaction that writes, as a real
# producer's does, and is shown for reference.)  Twice: idle, then while
# pgbench runs its standard TPC-B-like write script (-c LOAD_CLIENTS -j 2) on
# the same cluster.
#
# Prints a Markdown report (also written to bench/results/latency-DATE.md)
# with p50/p90/p99/mean/max of both, the emissions/direct ratios and the
# issue's goals marked PASS or MISS (a MISS does not fail the run).  Exits
# non-zero only when the benchmark itself broke.
#
# Usage: bash bench/latency.sh        (as root, from anywhere; ~2 minutes)
# Environment: SAMPLES (samples of each kind per phase, 2000), DURATION
# (seconds of load, 60; sampling under load stops 5 s before it ends),
# LOAD_CLIENTS (4), SCALE (pgbench scale, 10), GAP_US (pause before each
# sample, 1000), KINDS (all; a comma-separated list of emissions, direct and
# direct_write, or both = emissions,direct; "direct" needs no worker),
# BENCH_RAW (a file to copy the figures to: per phase and kind, the phase
# then the fields fig() lists below, tab-separated; bench/refs.sh reads it).
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"
cd "$top"
# shellcheck source=bench/delivery/common.sh
source "$top/bench/delivery/common.sh"

SAMPLES="${SAMPLES:-2000}"
DURATION="${DURATION:-60}"
LOAD_CLIENTS="${LOAD_CLIENTS:-4}"
SCALE="${SCALE:-10}"
GAP_US="${GAP_US:-1000}"
KINDS="${KINDS:-all}"
[ "$DURATION" -ge 10 ] || DURATION=10

prepare
PGBENCH="$PGBIN/pgbench"
cluster_start "shared_preload_libraries = 'emissions'" "max_worker_processes = 32"
q "CREATE EXTENSION emissions"
case ",$KINDS," in
*,emissions,* | *,both,* | *,all,*) require_delivery ;;
esac
build_bench_c latency

echo "# pgbench -i -s $SCALE" >&2
"$PGBENCH" -i -q -s "$SCALE" >"$CLUSTER/pgbench-init.out" 2>&1 || {
	sed 's/^/#   /' "$CLUSTER/pgbench-init.out" >&2
	exit 1
}
q "VACUUM ANALYZE"
q "CHECKPOINT"

echo "# idle: $SAMPLES rounds of samples ($KINDS)" >&2
t0="$(date +%s.%N)"
"$CLUSTER/latency" -n "$SAMPLES" -g "$GAP_US" -k "$KINDS" \
	-r "$CLUSTER/raw-idle.tsv" >"$CLUSTER/idle.tsv"
idle_secs="$(calc "%.1f" "$(date +%s.%N) - $t0")"
sed 's/^/# idle  /' "$CLUSTER/idle.tsv" >&2

echo "# under load: pgbench -c $LOAD_CLIENTS -j 2 -T $DURATION (TPC-B-like), sampling for $((DURATION - 5)) s" >&2
load_status=0
"$PGBENCH" -n -c "$LOAD_CLIENTS" -j 2 -T "$DURATION" >"$CLUSTER/load.out" 2>&1 &
load_pid=$!
sleep 3
"$CLUSTER/latency" -n "$SAMPLES" -T "$((DURATION - 5))" -g "$GAP_US" -k "$KINDS" \
	-r "$CLUSTER/raw-load.tsv" >"$CLUSTER/load.tsv"
wait "$load_pid" || load_status=$?
sed 's/^/# load  /' "$CLUSTER/load.tsv" >&2
broken=0
pgbench_ok "$CLUSTER/load.out" "$load_status" || broken=1
load_tps="$(pgbench_tps "$CLUSTER/load.out")"

# Field F of KIND's line in PHASE's figures (1 kind, 2 samples, 3 lost,
# 4 mean, 5 p50, 6 p90, 7 p99, 8 max, 9 ack p50, 10 ack p99).
fig() {
	awk -F '\t' -v k="$2" -v f="$3" '$1 == k { print $f }' "$CLUSTER/$1.tsv"
}
ratio() {	# ratio PHASE FIELD [KIND]: emissions / KIND (direct)
	local e d
	e="$(fig "$1" emissions "$2")" d="$(fig "$1" "${3:-direct}" "$2")"
	if [ -n "$e" ] && [ -n "$d" ]; then calc "%.2f" "$e / ($d > 0 ? $d : 0.001)"; else echo "-"; fi
}
lost=0
for phase in idle load; do
	for kind in emissions direct direct_write; do
		l="$(fig "$phase" "$kind" 3)"
		[ -z "$l" ] || lost=$((lost + l))
	done
done

report="$(report_file latency)"
{
	echo "# emissions commit-to-LISTEN latency, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "$(environment_line)."
	echo "One producer and one listener connection (unix socket); each round takes" \
		"one sample of each kind in random order, ${GAP_US} us apart: emissions" \
		"(emissions_start + emissions_emit, the worker NOTIFYs), direct (pg_notify" \
		"alone: the commit flushes no WAL), direct_write (an INSERT and pg_notify)." \
		"The clock runs from just before COMMIT is sent to the arrival of the" \
		"notification at the listener (\"ack\": to the COMMIT result at the producer)." \
		"Idle: $SAMPLES rounds (${idle_secs} s). Load: pgbench TPC-B-like, scale $SCALE," \
		"-c $LOAD_CLIENTS -j 2 -T $DURATION, $(calc "%.0f" "${load_tps:-0}") tps, samples" \
		"taken for up to $((DURATION - 5)) s."
	echo
	echo "| phase | kind | samples | lost | mean ms | p50 ms | p90 ms | p99 ms | max ms | ack p50 ms | ack p99 ms |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for phase in idle load; do
		while IFS=$'\t' read -r kind n l mean p50 p90 p99 max a50 a99; do
			echo "| $phase | $kind | $n | $l | $mean | $p50 | $p90 | $p99 | $max | $a50 | $a99 |"
		done <"$CLUSTER/$phase.tsv"
	done
	if [ -n "$(fig idle emissions 2)" ] && [ -n "$(fig idle direct 2)" ]; then
		echo
		echo "emissions / direct: idle p50 $(ratio idle 5), p99 $(ratio idle 7), mean $(ratio idle 4);" \
			"under load p50 $(ratio load 5), p99 $(ratio load 7), mean $(ratio load 4)."
		if [ -n "$(fig idle direct_write 2)" ]; then
			echo "emissions / direct_write: idle p50 $(ratio idle 5 direct_write)," \
				"p99 $(ratio idle 7 direct_write), mean $(ratio idle 4 direct_write);" \
				"under load p50 $(ratio load 5 direct_write), p99 $(ratio load 7 direct_write)," \
				"mean $(ratio load 4 direct_write)."
		fi
		echo
		echo "| goal (from the issue) | measured | verdict |"
		echo "|---|---:|---|"
		r="$(ratio idle 5)"
		echo "| idle: emissions p50 within 2 x direct p50 | $r x | $(verdict "$r" '<=' 2) |"
		v="$(fig idle emissions 7)"
		echo "| idle: emissions p99 < 5 ms | $v ms | $(verdict "$v" '<' 5) |"
		r="$(ratio load 5)"
		echo "| under load: emissions p50 within 2 x direct p50 | $r x | $(verdict "$r" '<=' 2) |"
		v="$(fig load emissions 7)"
		echo "| under load: emissions p99 < 10 ms | $v ms | $(verdict "$v" '<' 10) |"
	fi
} | tee "$report"
echo
echo "# report written to ${report#"$top"/}"
if [ -n "${BENCH_RAW:-}" ]; then
	for phase in idle load; do
		sed "s/^/$phase\t/" "$CLUSTER/$phase.tsv"
	done >"$BENCH_RAW"
fi

if [ "$broken" -ne 0 ] || [ "$lost" -ne 0 ]; then
	echo "# the benchmark itself had errors ($lost notifications never arrived)" >&2
	exit 1
fi
