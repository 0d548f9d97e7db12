#!/usr/bin/env bash
# bench/refs.sh: two builds of emissions (git refs) side by side in one run:
# commit-to-LISTEN latency (bench/latency.sh) and drain throughput
# (bench/drain.sh).
#
# Builds each ref into a copy of the server of its own (bench/build_ref.sh,
# in a mktemp directory removed at the end), then ROUNDS rounds: in each,
# bench/latency.sh on A then B, then bench/drain.sh on A then B, the order
# reversed every other round so that drift on the machine hits both alike.
# Each run starts its own throwaway cluster and writes its own report to
# bench/results/ as usual (the benchmark scripts of this work tree run
# against each build: the harness is the same for both); this script takes
# their figures (BENCH_RAW) and reports the median over the rounds for each
# ref, B/A beside them, and the goals of issue 13 (stable ids) for B:
# idle p50 within 1.5 x that of a pg_notify sent by a transaction that
# writes a row (direct_write), idle p99 under 5 ms, drain throughput no more
# than 10% below A's.  A MISS does not fail the run; the machine may be
# loaded by others (the report gives the load average and the number of
# other servers), so read the ratios, not the absolute figures.
#
# Prints the Markdown report and writes it to bench/results/refs-DATE.md
# (each step's output goes to bench/results/refs-DATE.log).  Exits non-zero
# only when the benchmark itself broke: a build, or a run that exited
# non-zero.
#
# Usage: bash bench/refs.sh REF_A REF_B    (as root; ~10 minutes)
#   e.g. bash bench/refs.sh main HEAD
# Environment: PG_MAJOR (15), ROUNDS (2), SAMPLES (latency samples of each
# kind per phase and run, 1000), LATENCY_DURATION (seconds of load in a
# latency run, 30), DRAIN_DURATION (seconds per drain run, 20),
# DRAIN_EVENTS (1 or 10; 1), DRAIN_BACKLOG (events of drain.sh's backlog
# run, the worker's drain rate with no producer running; 50000).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/.." && pwd)"
ROUNDS="${ROUNDS:-2}"
SAMPLES="${SAMPLES:-1000}"
LATENCY_DURATION="${LATENCY_DURATION:-30}"
DRAIN_DURATION="${DRAIN_DURATION:-20}"
DRAIN_EVENTS="${DRAIN_EVENTS:-1}"
DRAIN_BACKLOG="${DRAIN_BACKLOG:-50000}"
PG_MAJOR="${PG_MAJOR:-15}"
[ "$(id -u)" -eq 0 ] ||
	exec sudo env PG_MAJOR="$PG_MAJOR" ROUNDS="$ROUNDS" SAMPLES="$SAMPLES" \
		LATENCY_DURATION="$LATENCY_DURATION" DRAIN_DURATION="$DRAIN_DURATION" \
		DRAIN_EVENTS="$DRAIN_EVENTS" DRAIN_BACKLOG="$DRAIN_BACKLOG" \
		${EMISSIONS_PGBIN:+EMISSIONS_PGBIN="$EMISSIONS_PGBIN"} \
		bash "$here/refs.sh" "$@"
if [ "$#" -ne 2 ]; then
	echo "usage: bash bench/refs.sh REF_A REF_B" >&2
	exit 2
fi
export PG_MAJOR
# shellcheck source=bench/delivery/common.sh
source "$here/delivery/common.sh" # calc, median, verdict, count_servers

work="$(mktemp -d /tmp/emissions-bench-refs.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$top/bench/results"
stamp="$(date +%Y%m%d-%H%M%S)"
report="$top/bench/results/refs-$stamp.md"
log="$top/bench/results/refs-$stamp.log"
: >"$log"
broken=0
start="$(date +%s)"

# Run one step, its output appended to the log: step NAME COMMAND...
# Prints how long it took, or the end of its output when it failed.
step() {
	local name="$1" t0 status=0
	shift
	t0="$(date +%s)"
	echo "## $name" >>"$log"
	"$@" >>"$log" 2>&1 || status=$?
	if [ "$status" -ne 0 ]; then
		echo "# $name: FAILED (exit $status); the end of its output:" >&2
		tail -n 15 "$log" | sed 's/^/#   /' >&2
		broken=1
		return 1
	fi
	echo "# $name: $(($(date +%s) - t0)) s (at $(($(date +%s) - start)) s)" >&2
}

declare -A REF COMMIT PGBIN_OF
REF[A]="$1"
REF[B]="$2"
for x in A B; do
	COMMIT[$x]="$(git -C "$top" rev-parse --short "${REF[$x]}^{commit}")"
	step "build $x: ${REF[$x]} (${COMMIT[$x]})" \
		bash "$here/build_ref.sh" "${REF[$x]}" "$work/$x" || exit 1
	PGBIN_OF[$x]="$(tail -n 1 "$log")"
done

# The rounds.  Every run's figures go to $work/KIND-X-ROUND.tsv.
servers_at_start="$(count_servers)"
load_start="$(cut -d ' ' -f 1 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
	order=(A B)
	[ $((r % 2)) -eq 0 ] && order=(B A)
	for x in "${order[@]}"; do
		step "round $r/$ROUNDS: latency on $x" \
			env EMISSIONS_PGBIN="${PGBIN_OF[$x]}" EMISSIONS_BUILT=1 \
			SAMPLES="$SAMPLES" DURATION="$LATENCY_DURATION" \
			BENCH_RAW="$work/latency-$x-$r.tsv" bash "$here/latency.sh" || true
	done
	for x in "${order[@]}"; do
		step "round $r/$ROUNDS: drain on $x" \
			env EMISSIONS_PGBIN="${PGBIN_OF[$x]}" EMISSIONS_BUILT=1 \
			DURATION="$DRAIN_DURATION" EVENTS="$DRAIN_EVENTS" BACKLOG="$DRAIN_BACKLOG" \
			BENCH_RAW="$work/drain-$x-$r.tsv" bash "$here/drain.sh" || true
	done
done
load_end="$(cut -d ' ' -f 1 /proc/loadavg)"

# Median over the rounds of a latency figure: lfig X PHASE KIND FIELD
# (latency.sh's BENCH_RAW: phase, kind, samples, lost, mean, p50, p90, p99,
# max, ack p50, ack p99; FIELD counts from the phase, 1).
lfig() {
	cat "$work/latency-$1"-*.tsv 2>/dev/null |
		awk -F '\t' -v p="$2" -v k="$3" -v f="$4" '$1 == p && $2 == k { print $f }' |
		median
}
# Median over the rounds of a drain figure: dfig X KEY AWK-EXPR over
# drain.sh's runs.tsv columns ($1 key, $2 events, ...).
dfig() {
	cat "$work/drain-$1"-*.tsv 2>/dev/null |
		awk -F '\t' -v k="$2" "\$1 == k { print $3 }" | median
}
# A / B to two places, or - when B is 0.
div() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}
# A table row: row LABEL FORMAT VALUE_A VALUE_B (with B/A).
row() {
	echo "| $1 | $(calc "$2" "$3") | $(calc "$2" "$4") | $(div "$4" "$3") |"
}

elapsed=$(($(date +%s) - start))
{
	echo "# emissions ${REF[A]} (A) and ${REF[B]} (B) side by side, $(date '+%Y-%m-%d %H:%M %Z')"
	echo
	echo "- A: ${REF[A]} = ${COMMIT[A]}; B: ${REF[B]} = ${COMMIT[B]};" \
		"$("${PGBIN_OF[A]}/postgres" --version)"
	echo "- $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1));" \
		"other PostgreSQL servers running at the start: $servers_at_start;" \
		"load average $load_start at the start of the rounds, $load_end at the end;" \
		"$((elapsed / 60)) min $((elapsed % 60)) s in all."
	echo "- $ROUNDS round(s); in each, bench/latency.sh ($SAMPLES samples of each kind" \
		"per phase, $LATENCY_DURATION s of pgbench load) on A and B, then bench/drain.sh" \
		"($DRAIN_DURATION s a run, $DRAIN_EVENTS event(s) per transaction) on A and B," \
		"the order reversed every other round; medians over the rounds."
	echo
	echo "Commit-to-LISTEN latency, ms (direct_write: a pg_notify from a transaction" \
		"that inserts a row, the reference of the goals):"
	echo
	echo "| figure | A | B | B/A |"
	echo "|---|---:|---:|---:|"
	for phase in idle load; do
		for kind in emissions direct_write; do
			row "$phase, $kind p50" "%.3f" "$(lfig A $phase $kind 6)" "$(lfig B $phase $kind 6)"
			row "$phase, $kind p99" "%.3f" "$(lfig A $phase $kind 8)" "$(lfig B $phase $kind 8)"
		done
	done
	for x in A B; do
		echo
		echo "$x: emissions / direct_write p50: idle $(div "$(lfig $x idle emissions 6)" "$(lfig $x idle direct_write 6)")," \
			"under load $(div "$(lfig $x load emissions 6)" "$(lfig $x load direct_write 6)")."
	done
	echo
	echo "Drain (bench/drain.sh: pgbench producers emit while the worker delivers, then" \
		"emissions_wait_delivered(); delivered events/s from the producers' start to the" \
		"end of the drain. Backlog: $DRAIN_BACKLOG events committed while the worker" \
		"was held, then delivered with no producer running: the worker's own rate):"
	echo
	echo "| adapters | figure | A | B | B/A |"
	echo "|---|---|---:|---:|---:|"
	for key in notify backlog table; do
		name="NOTIFY (default)"
		[ "$key" = table ] && name="NOTIFY + table"
		figures=("producer events/s;\$3;%.0f" "delivered events/s;\$7 / \$11;%.0f"
			"max backlog (events);\$8;%.0f")
		if [ "$key" = backlog ]; then
			name="NOTIFY, backlog drained"
			figures=("delivered events/s;\$7 / \$11;%.0f")
		fi
		for f in "${figures[@]}" \
			"worker CPU per event (us);(\$7 > 0 ? 1e6 * \$15 / \$7 : 0);%.1f"; do
			IFS=';' read -r what expr fmt <<<"$f"
			a="$(dfig A "$key" "$expr")"
			b="$(dfig B "$key" "$expr")"
			echo "| $name | $what | $(calc "$fmt" "$a") | $(calc "$fmt" "$b") | $(div "$b" "$a") |"
		done
	done
	echo
	echo "| goal for B (issue 13) | measured | verdict |"
	echo "|---|---:|---|"
	r="$(div "$(lfig B idle emissions 6)" "$(lfig B idle direct_write 6)")"
	echo "| idle p50 within 1.5 x direct_write's | $r x | $(verdict "$r" '<=' 1.5) |"
	v="$(lfig B idle emissions 8)"
	echo "| idle p99 under 5 ms | $(calc "%.3f" "$v") ms | $(verdict "$v" '<' 5) |"
	for key in notify backlog table; do
		r="$(div "$(dfig B $key "\$7 / \$11")" "$(dfig A $key "\$7 / \$11")")"
		echo "| drain ($key) no more than 10% below A | $r x A | $(verdict "$r" '>=' 0.9) |"
	done
	if [ "$broken" -ne 0 ]; then
		echo
		echo "BROKEN: a step failed (see $log); its figures are missing from the medians."
	fi
} | tee "$report"
echo
echo "# report written to ${report#"$top"/}, the steps' output to ${log#"$top"/}"

if [ "$broken" -ne 0 ]; then
	echo "# BROKEN: a step of the benchmark failed (see above)" >&2
	exit 1
fi
