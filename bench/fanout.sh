#!/usr/bin/env bash
# bench/fanout.sh: producer throughput with listeners attached, emissions
# versus pg_notify in the producing transaction.
#
# Starts a throwaway cluster (test/lib.sh: postgres OS user, unix socket in a
# mktemp directory, stopped by data directory from an EXIT trap) with
# shared_preload_libraries = 'emissions' and max_worker_processes = 32.
# bench/listen.c (built here against libpq) keeps LISTENERS connections
# LISTENing on "emissions" and on "bench" (the direct channel) and consumes
# every notification.  pgbench -M prepared -c CLIENTS -j 2 then runs, for
# DURATION seconds, the producer benchmark's scripts: the same business
# INSERT into bench_orders, then
#   baseline   nothing (bench/producer/baseline.sql)
#   pg_notify  SELECT pg_notify('bench', <~195-byte JSON>) in the producer's
#              transaction (bench/producer/notify_1.sql)
#   emissions  SELECT emissions_start(), emissions_emit('order.created', ...)
#              (bench/producer/emissions_1.sql); the delivery worker NOTIFYs
#              the envelope on "emissions" after the commit
# Every scenario runs once per round, ROUNDS rounds, so drift hits all alike;
# bench_orders is truncated and a CHECKPOINT taken before each run.  After an
# emissions run, emissions_wait_delivered() waits for the worker before the
# listeners are stopped and counted: every listener must have received every
# event of its scenario once, envelope ids in increasing order.
#
# Prints a Markdown report (also written to bench/results/fanout-DATE.md):
# median tps per scenario, each against the baseline, emissions tps over
# pg_notify tps with the goal (>= 2) marked PASS or MISS (a MISS does not
# fail the run).  Exits non-zero only when the benchmark itself broke
# (pgbench errors, notifications lost or doubled).
#
# Usage: bash bench/fanout.sh        (as root, from anywhere; ~2.5 minutes)
# Environment: DURATION (seconds per run, 12), ROUNDS (3), CLIENTS (8),
# LISTENERS (8).
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"
cd "$top"
# shellcheck source=bench/delivery/common.sh
source "$top/bench/delivery/common.sh"

DURATION="${DURATION:-12}"
ROUNDS="${ROUNDS:-3}"
CLIENTS="${CLIENTS:-8}"
LISTENERS="${LISTENERS:-8}"
JOBS=$((CLIENTS > 1 ? 2 : 1))
SCRIPTS="$top/bench/producer"
SCENARIOS=(
	"baseline baseline.sql"
	"pg_notify notify_1.sql"
	"emissions emissions_1.sql"
)

prepare
PGBENCH="$PGBIN/pgbench"
cluster_start "shared_preload_libraries = 'emissions'" "max_worker_processes = 32"
q "\\i $top/bench/delivery/setup.sql" >/dev/null
require_delivery
build_bench_c listen
CHANNEL="$(q "SHOW emissions.notify_channel")"
RAW="$CLUSTER/raw.tsv"	# round key tps xacts received_min received_max pending_end drain_secs
: >"$RAW"
broken=0

# One run: run_one ROUND KEY SCRIPT.
run_one() {
	local round="$1" key="$2" script="$3" out="$CLUSTER/pgbench-$1-$2.out"
	local status=0 lpid xacts tps pending=- drain=- t1 got expected rmin rmax
	local ready="$CLUSTER/ready-$round-$key"
	q "TRUNCATE bench_orders"
	q "CHECKPOINT"
	"$CLUSTER/listen" -n "$LISTENERS" -r "$ready" "$CHANNEL" bench \
		>"$CLUSTER/listen-$round-$key.out" &
	lpid=$!
	while [ ! -e "$ready" ]; do
		kill -0 "$lpid" 2>/dev/null || { echo "# the listeners did not start" >&2; exit 1; }
		sleep 0.05
	done
	"$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$DURATION" \
		-f "$SCRIPTS/$script" >"$out" 2>&1 || status=$?
	if [ "$key" = emissions ]; then
		pending="$(stats_col events_pending)"
		t1="$(date +%s.%N)"
		if [ "$(q "SELECT emissions_wait_delivered('300 s')")" != t ]; then
			echo "# emissions_wait_delivered('300 s') timed out" >&2
			broken=1
		fi
		drain="$(calc "%.1f" "$(date +%s.%N) - $t1")"
	fi
	kill -TERM "$lpid"
	wait "$lpid" || { echo "# the listeners failed" >&2; broken=1; }
	pgbench_ok "$out" "$status" || broken=1
	xacts="$(pgbench_xacts "$out")" tps="$(pgbench_tps "$out")"
	xacts="${xacts:-0}" tps="${tps:-0}"
	# What each listener got on the scenario's channel, and on the other.
	case "$key" in
	emissions) got="$CHANNEL" ;;
	pg_notify) got=bench ;;
	*) got="" ;;
	esac
	read -r rmin rmax < <(awk -F '\t' -v c="$got" '$1 == c { print $3, $4 }' \
		"$CLUSTER/listen-$round-$key.out") || true
	rmin="${rmin:-0}" rmax="${rmax:-0}"
	expected="$xacts"
	[ -n "$got" ] || expected=0
	if [ "$rmin" -ne "$expected" ] || [ "$rmax" -ne "$expected" ] ||
		[ "$(awk -F '\t' '{ s += $5 } END { print s + 0 }' \
			"$CLUSTER/listen-$round-$key.out")" -ne 0 ] ||
		[ "$(awk -F '\t' -v c="$got" '$1 != c { s += $2 } END { print s + 0 }' \
			"$CLUSTER/listen-$round-$key.out")" -ne 0 ]; then
		echo "# $key: $xacts events; each listener should have received $expected" \
			"on ${got:-no channel}, envelope ids increasing; got (channel, total," \
			"min and max per listener, ids out of order):" >&2
		sed 's/^/#   /' "$CLUSTER/listen-$round-$key.out" >&2
		broken=1
	fi
	if [ "$(q "SELECT count(*) FROM bench_orders")" -ne "$xacts" ]; then
		echo "# $key: $xacts transactions but not as many business rows" >&2
		broken=1
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$key" "$tps" "$xacts" \
		"$rmin" "$rmax" "$pending" "$drain" >>"$RAW"
	printf '# round %s/%s  %-9s %9.1f tps  %7d xacts  per listener %s..%s%s\n' \
		"$round" "$ROUNDS" "$key" "$tps" "$xacts" "$rmin" "$rmax" \
		"$([ "$key" = emissions ] && echo "  backlog at end $pending, drained in ${drain} s")" >&2
}

echo "# $((ROUNDS * ${#SCENARIOS[@]})) runs of ${DURATION}s, $CLIENTS clients, $LISTENERS listeners" >&2
for round in $(seq 1 "$ROUNDS"); do
	for s in "${SCENARIOS[@]}"; do
		read -r key script <<<"$s"
		run_one "$round" "$key" "$script"
	done
done

med() {	# med KEY FIELD
	awk -F '\t' -v k="$1" -v f="$2" '$2 == k { print $f }' "$RAW" | median
}
rounds_tps() {
	awk -F '\t' -v k="$1" '$2 == k { printf "%s%.0f", sep, $3; sep = " / " }' "$RAW"
}
paired() {	# emissions tps / pg_notify tps of each round, one a line
	awk -F '\t' '$2 == "pg_notify" { n[$1] = $3 } $2 == "emissions" { e[$1] = $3 }
		END { for (r in e) if (n[r] > 0) print r "\t" e[r] / n[r] }' "$RAW" |
		sort -n | cut -f 2
}
declare -A TPS
for s in "${SCENARIOS[@]}"; do
	read -r key script <<<"$s"
	TPS[$key]="$(med "$key" 3)"
done

report="$(report_file fanout)"
{
	echo "# emissions fan-out: producer throughput with listeners, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "$(environment_line)."
	echo "pgbench -M prepared -c $CLIENTS -j $JOBS -T $DURATION, $ROUNDS rounds alternated," \
		"median shown; $LISTENERS listener connections (bench/listen.c) LISTEN on" \
		"\"$CHANNEL\" and \"bench\" and consume every notification; a business INSERT" \
		"and one ~195-byte JSON event per transaction."
	echo
	echo "| scenario | median tps | tps per round | vs baseline | notifications per listener (expected: one per transaction) |"
	echo "|---|---:|---|---:|---|"
	for s in "${SCENARIOS[@]}"; do
		read -r key script <<<"$s"
		echo "| $key ($script) | $(calc "%.0f" "${TPS[$key]}") | $(rounds_tps "$key") |" \
			"$(calc "%.2f" "${TPS[$key]} / ${TPS[baseline]}") |" \
			"$(awk -F '\t' -v k="$key" '$2 == k { printf "%s%s/%s", sep, (k == "baseline" ? "-" : $5), $4; sep = ", " }' "$RAW") |"
	done
	echo
	echo "emissions: backlog (events_pending) when pgbench stopped" \
		"$(awk -F '\t' '$2 == "emissions" { printf "%s%s", sep, $7; sep = " / " }' "$RAW")," \
		"emissions_wait_delivered() then took" \
		"$(awk -F '\t' '$2 == "emissions" { printf "%s%s", sep, $8; sep = " / " }' "$RAW") s."
	echo
	echo "emissions tps / pg_notify tps in each round (the two ran a few seconds apart):" \
		"$(paired | awk '{ printf "%s%.2f", sep, $1; sep = " / " }')."
	echo
	echo "| goal (from the issue) | measured | verdict |"
	echo "|---|---:|---|"
	r="$(calc "%.2f" "${TPS[emissions]} / ${TPS[pg_notify]}")"
	echo "| $CLIENTS clients, $LISTENERS listeners: emissions tps >= 2 x pg_notify tps (median tps over median tps) | $r | $(verdict "$r" '>=' 2) |"
	r="$(paired | median)"
	r="$(calc "%.2f" "$r")"
	echo "| same, median of the per-round ratios (less sensitive to drift between rounds) | $r | $(verdict "$r" '>=' 2) |"
} | tee "$report"
echo
echo "# report written to ${report#"$top"/}"

if [ "$broken" -ne 0 ]; then
	echo "# the benchmark itself had errors (see the messages above)" >&2
	exit 1
fi
