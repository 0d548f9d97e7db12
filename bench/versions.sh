#!/usr/bin/env bash
# bench/versions.sh: the producer and drain benchmarks on several PostgreSQL
# versions in one run, side by side.
#
# For each version of BENCH_VERSIONS it first builds and installs the
# extension (test/lib.sh's prepare, in test/pgenv.sh's environment for a
# version this machine has no server of).  Then ROUNDS rounds: in each,
# bench/producer.sh (one round of its every scenario, PRODUCER_DURATION
# seconds a run) runs on every version, then bench/drain.sh (its NOTIFY and
# NOTIFY + table runs, DRAIN_DURATION seconds each, DRAIN_EVENTS events per
# transaction) on every version; the order of the versions is reversed in
# every other round, so drift on the machine hits all alike.  Each run
# starts its own throwaway cluster and writes its own report to
# bench/results/ as usual; this script takes their figures (BENCH_RAW) and
# reports, per version, the median over the rounds: producer tps against
# that version's own baseline (a business row, no event) for every
# scenario and client count, and the drain's events/s and the delivery
# worker's CPU time per event; beside them the ratio of each version's
# figure to the first version's (18/15).  Ratios, not a verdict: nothing is
# marked PASS or MISS here.
#
# Prints the Markdown report and writes it to bench/results/versions-DATE.md
# (each step's output goes to bench/results/versions-DATE.log).  Exits
# non-zero only when the benchmark itself broke: a build, or a producer or
# drain run that exited non-zero (their checks: pgbench errors, events not
# stored or not delivered).
#
# Usage: bash bench/versions.sh        (as root, from anywhere; ~11 minutes)
# Environment: BENCH_VERSIONS ("15 18"), ROUNDS (2), PRODUCER_DURATION
# (seconds per producer run, 2), DRAIN_DURATION (seconds per drain run,
# 10), DRAIN_EVENTS (events per transaction in the drain, 1 or 10; 1).
set -euo pipefail

# One version's build: PG_MAJOR=N bash bench/versions.sh --prepare prints the
# server's version line once the extension is built and installed for it.
if [ "${1:-}" = --prepare ]; then
	# shellcheck source=test/lib.sh
	source "$(dirname "$0")/../test/lib.sh"
	become_root "$@"
	prepare
	"$PGBIN/postgres" --version
	exit 0
fi

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/.." && pwd)"
BENCH_VERSIONS="${BENCH_VERSIONS:-15 18}"
ROUNDS="${ROUNDS:-2}"
PRODUCER_DURATION="${PRODUCER_DURATION:-2}"
DRAIN_DURATION="${DRAIN_DURATION:-10}"
DRAIN_EVENTS="${DRAIN_EVENTS:-1}"
[ "$(id -u)" -eq 0 ] ||
	exec sudo env BENCH_VERSIONS="$BENCH_VERSIONS" ROUNDS="$ROUNDS" \
		PRODUCER_DURATION="$PRODUCER_DURATION" DRAIN_DURATION="$DRAIN_DURATION" \
		DRAIN_EVENTS="$DRAIN_EVENTS" bash "$here/versions.sh" "$@"
# shellcheck source=bench/delivery/common.sh
source "$here/delivery/common.sh" # calc, median, count_servers
read -ra versions <<<"$BENCH_VERSIONS"
first="${versions[0]}"

work="$(mktemp -d /tmp/emissions-bench-versions.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$top/bench/results"
stamp="$(date +%Y%m%d-%H%M%S)"
report="$top/bench/results/versions-$stamp.md"
log="$top/bench/results/versions-$stamp.log"
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

declare -A SERVER
for v in "${versions[@]}"; do
	step "build for PostgreSQL $v" env PG_MAJOR="$v" bash "$here/versions.sh" --prepare ||
		exit 1
	SERVER[$v]="$(tail -n 1 "$log")"
done

# The rounds.  Every run's figures go to $work/KIND-VERSION-ROUND.tsv.
servers_at_start="$(count_servers)"
load_start="$(cut -d ' ' -f 1 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
	order=("${versions[@]}")
	if [ $((r % 2)) -eq 0 ]; then
		order=()
		for ((i = ${#versions[@]} - 1; i >= 0; i--)); do order+=("${versions[i]}"); done
	fi
	for v in "${order[@]}"; do
		step "round $r/$ROUNDS: producer on PostgreSQL $v" \
			env PG_MAJOR="$v" EMISSIONS_BUILT=1 ROUNDS=1 DURATION="$PRODUCER_DURATION" \
			BENCH_RAW="$work/producer-$v-$r.tsv" bash "$here/producer.sh" || true
	done
	for v in "${order[@]}"; do
		step "round $r/$ROUNDS: drain on PostgreSQL $v" \
			env PG_MAJOR="$v" EMISSIONS_BUILT=1 DURATION="$DRAIN_DURATION" \
			EVENTS="$DRAIN_EVENTS" BENCH_RAW="$work/drain-$v-$r.tsv" \
			bash "$here/drain.sh" || true
	done
done
load_end="$(cut -d ' ' -f 1 /proc/loadavg)"

# All runs of KIND, each line prefixed with its version and round.
all_runs() {
	local f base
	for f in "$work/$1"-*.tsv; do
		[ -e "$f" ] || continue
		base="$(basename "$f" .tsv)"
		awk -F '\t' -v OFS='\t' -v v="$(cut -d - -f 2 <<<"$base")" \
			-v r="$(cut -d - -f 3 <<<"$base")" '{ print v, r, $0 }' "$f"
	done
}
all_runs producer >"$work/producer.tsv" # v r round key clients events tps ...
all_runs drain >"$work/drain.tsv"       # v r key events tps dur ... wcpu

# Median over the rounds of a producer scenario's tps: ptps VERSION KEY CLIENTS.
ptps() {
	awk -F '\t' -v v="$1" -v k="$2" -v c="$3" '$1 == v && $4 == k && $5 == c { print $7 }' \
		"$work/producer.tsv" | median
}
# Median over the rounds of a drain figure: dfig VERSION KEY AWK-EXPR, the
# expression over runs.tsv's columns shifted by two ($3 key, $4 events, ...).
dfig() {
	awk -F '\t' -v v="$1" -v k="$2" "\$1 == v && \$3 == k { print $3 }" \
		"$work/drain.tsv" | median
}
# A / B to two places, or - when B is 0 or missing.
div() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}
# The cells of one figure: the versions' values, then each later version's
# over the first's.  cells FORMAT VALUE...
cells() {
	local fmt="$1" x out=""
	shift
	local vals=("$@")
	for x in "${vals[@]}"; do
		if [ "$x" = - ]; then out+=" - |"; else out+=" $(calc "$fmt" "$x") |"; fi
	done
	for x in "${vals[@]:1}"; do out+=" $(div "$x" "${vals[0]}") |"; done
	echo "$out"
}
heads() {
	local v h=""
	for v in "${versions[@]}"; do h+=" $v |"; done
	for v in "${versions[@]:1}"; do h+=" $v/$first |"; done
	echo "$h"
}
aligns() {
	local n=$((2 * ${#versions[@]} - 1)) i a=""
	for ((i = 0; i < n; i++)); do a+="---:|"; done
	echo "$a"
}

# The producer scenarios in producer.sh's order, and their labels.
# shellcheck source=bench/producer/label.sh
source "$here/producer/label.sh"
mapfile -t scenarios < <(awk -F '\t' '!seen[$4]++ { print $4 "\t" $6 }' "$work/producer.tsv")
mapfile -t clients < <(awk -F '\t' '{ print $5 }' "$work/producer.tsv" | sort -nu)

commit="$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$top" diff --quiet HEAD -- src sql 2>/dev/null || commit="$commit+uncommitted"
elapsed=$(($(date +%s) - start))
{
	echo "# emissions on PostgreSQL ${BENCH_VERSIONS// / and }, $(date '+%Y-%m-%d %H:%M %Z')"
	echo
	for v in "${versions[@]}"; do
		echo "- PostgreSQL $v: ${SERVER[$v]}"
	done
	echo "- emissions $commit; $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1))," \
		"$(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM;" \
		"other PostgreSQL servers running at the start: $servers_at_start;" \
		"load average $load_start at the start of the rounds, $load_end at the end;" \
		"$((elapsed / 60)) min $((elapsed % 60)) s in all."
	echo "- $ROUNDS round(s); in each, bench/producer.sh (one round, $PRODUCER_DURATION s a run)" \
		"on every version, then bench/drain.sh ($DRAIN_DURATION s a run, $DRAIN_EVENTS" \
		"event(s) per transaction) on every version, the versions' order reversed every other" \
		"round; medians over the rounds. Each run has its own throwaway cluster with the" \
		"benchmark's settings (see bench/README.md)."
	echo
	echo "Producer: median tps over the baseline's (a business row, no event) on the same" \
		"version with as many clients; the baseline row gives its median tps."
	echo
	for c in "${clients[@]}"; do
		echo "| $c client(s): scenario | events/tx |$(heads)"
		echo "|---|---:|$(aligns)"
		for s in "${scenarios[@]}"; do
			IFS=$'\t' read -r key events <<<"$s"
			vals=()
			for v in "${versions[@]}"; do
				t="$(ptps "$v" "$key" "$c")"
				if [ "$key" = baseline ]; then
					vals+=("$t")
				else
					x="$(div "$t" "$(ptps "$v" baseline "$c")")"
					vals+=("$x")
				fi
			done
			if [ "$key" = baseline ]; then fmt="%.0f"; else fmt="%.2f"; fi
			echo "| $(label "$key") | $events |$(cells "$fmt" "${vals[@]}")"
		done
		echo
	done
	echo "Baseline tps in each round, in the order run:"
	for v in "${versions[@]}"; do
		echo "PostgreSQL $v:" "$(for c in "${clients[@]}"; do
			awk -F '\t' -v v="$v" -v c="$c" '$1 == v && $4 == "baseline" && $5 == c {
				printf "%s%.0f", sep, $7; sep = " / " }' "$work/producer.tsv" |
				sed "s|^|$c client(s) |"
			echo
		done | paste -sd ';' | sed 's/;/; /g')."
	done
	echo
	echo "Drain: pgbench producers (${CLIENTS:-8} clients) emit while the delivery worker delivers;" \
		"medians over the rounds. Delivered events/s counts from the producers' start to" \
		"the end of the drain; worker CPU is the delivery worker's user + system time."
	echo
	echo "| adapters | figure |$(heads)"
	echo "|---|---|$(aligns)"
	for key in notify table; do
		name="NOTIFY (default)"
		[ "$key" = table ] && name="NOTIFY + table"
		for f in "producer events/s;\$5;%.0f" "delivered events/s;\$9 / \$13;%.0f" \
			"worker CPU per event (us);(\$9 > 0 ? 1e6 * \$17 / \$9 : 0);%.1f" \
			"worker CPU (% of a core);100 * \$17 / \$13;%.0f" "max backlog (events);\$10;%.0f"; do
			IFS=';' read -r what expr fmt <<<"$f"
			vals=()
			for v in "${versions[@]}"; do vals+=("$(dfig "$v" "$key" "$expr")"); done
			echo "| $name | $what |$(cells "$fmt" "${vals[@]}")"
		done
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
