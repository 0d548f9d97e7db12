#!/usr/bin/env bash
# bench/trigger.sh: what an outbox trigger costs a bulk UPDATE.
#
# Starts a throwaway cluster (test/lib.sh: postgres OS user, unix socket in a
# mktemp directory, stopped by data directory from an EXIT trap) with
# shared_preload_libraries = 'emissions' and max_worker_processes = 32, and a
# table accounts of ROWS rows (bench/trigger/setup.sql).  Times the same
# UPDATE accounts SET balance = balance + 1, one transaction, COMMIT
# included, in the server (clock_timestamp() around it in a procedure that
# commits), under four variants:
#
#   none       no trigger
#   hand       a hand-written PL/pgSQL AFTER ROW trigger inserting each change
#              into outbox_hand (bigserial key, jsonb payload and metadata)
#   row        emissions_trigger(), AFTER UPDATE ... FOR EACH ROW
#   statement  emissions_trigger(), AFTER UPDATE REFERENCING NEW TABLE AS n
#              OLD TABLE AS o FOR EACH STATEMENT
#   capture    a control, not in the goals: the same statement-level trigger
#              and transition tables calling a PL/pgSQL function that does
#              nothing (what capturing the rows costs)
#
# alternated over ROUNDS rounds (every variant once per round), median
# reported.  Before each run: the trigger is dropped and the variant's one
# created, outbox_hand truncated, emissions_wait_delivered() waits out the
# worker, VACUUM accounts, CHECKPOINT.  The timing excludes delivery, which
# is asynchronous: after an emissions run, emissions_wait_delivered() waits
# for the worker (that time is reported apart).
#
# Prints a Markdown report (also written to bench/results/trigger-DATE.md):
# median, min and max per variant, the spread between rounds, the ratios and
# the issue's goals as PASS/MISS (which never fail the run).  Exits 1 only
# when the benchmark itself broke: an UPDATE that did not change ROWS rows,
# an emissions run whose events_delivered did not grow by exactly ROWS, a
# hand-written run that did not leave ROWS rows in outbox_hand, events or
# outbox rows where the variant makes none, or a delivery wait timing out.
#
# Usage: bash bench/trigger.sh      (as root, from anywhere; ~3 minutes)
# Environment: ROUNDS (5), ROWS (100000), WAIT (seconds
# emissions_wait_delivered() may take, 300).
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"
cd "$top"
# shellcheck source=bench/delivery/common.sh
source "$top/bench/delivery/common.sh"

ROUNDS="${ROUNDS:-5}"
ROWS="${ROWS:-100000}"
WAIT="${WAIT:-300}"
VARIANTS=(none hand row statement capture)
for v in ROUNDS ROWS WAIT; do
	if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
		echo "$v must be a positive integer" >&2
		exit 2
	fi
done

prepare
cluster_start "shared_preload_libraries = 'emissions'" "max_worker_processes = 32"
q "SELECT 1" >/dev/null
psql -qAtX -v ON_ERROR_STOP=1 -v rows="$ROWS" -f "$top/bench/trigger/setup.sql" >/dev/null
# Every run is preceded by an explicit VACUUM: keep autovacuum away from the
# two tables the runs write (the extension's own tables keep the default).
q "ALTER TABLE accounts SET (autovacuum_enabled = off)"
q "ALTER TABLE outbox_hand SET (autovacuum_enabled = off)"
require_delivery
broken=0

now() {
	date +%s.%N
}

# events_delivered once it has reached at least $1, waiting up to 10 s for
# the counter (published just after the worker's transaction commits).
delivered_at_least() {
	local d _
	for _ in $(seq 1 200); do
		d="$(stats_col events_delivered)"
		[ "$d" -ge "$1" ] && break
		sleep 0.05
	done
	echo "$d"
}

# Wait until the worker has delivered everything committed; 1 if it timed out.
wait_delivered() {
	if [ "$(q "SELECT emissions_wait_delivered('$WAIT s')")" != t ]; then
		echo "# emissions_wait_delivered('$WAIT s') timed out," \
			"$(stats_col events_pending) events still pending" >&2
		return 1
	fi
}

# The run's variant trigger in place of the previous one, clean tables, no
# delivery in flight, a vacuumed table and a checkpoint.
between_runs() {
	PGOPTIONS="-c client_min_messages=warning" q "DROP TRIGGER IF EXISTS bench_trigger ON accounts"
	[ "$1" = none ] || psql -qAtX -v ON_ERROR_STOP=1 -f "$top/bench/trigger/$1.sql" >/dev/null
	q "TRUNCATE outbox_hand"
	wait_delivered || broken=1
	q "VACUUM accounts"
	q "CHECKPOINT"
}

# The timed UPDATE: prints "milliseconds rows-updated".
timed_update() {
	psql -qAtX -v ON_ERROR_STOP=1 -F ' ' -c "CALL bench_update()" \
		-c "SELECT current_setting('bench.ms'), current_setting('bench.rows')"
}

# One run: run_variant VARIANT ROUND.  Appends to $CLUSTER/runs.tsv:
# variant round ms rows_updated events_delivered outbox_rows delivery_secs
run_variant() {
	local v="$1" r="$2" d0 d1 ms n outbox t1 t2 want_events=0 want_outbox=0
	between_runs "$v"
	d0="$(delivered_at_least 0)"
	read -r ms n < <(timed_update)
	t1="$(now)"
	wait_delivered || broken=1
	t2="$(now)"
	case "$v" in
	hand) want_outbox="$ROWS" ;;
	row | statement) want_events="$ROWS" ;;
	esac
	d1="$(delivered_at_least $((d0 + want_events)))"
	outbox="$(q "SELECT count(*) FROM outbox_hand")"
	if [ "$n" -ne "$ROWS" ]; then
		echo "# $v, round $r: the UPDATE changed $n rows, not $ROWS" >&2
		broken=1
	fi
	if [ $((d1 - d0)) -ne "$want_events" ]; then
		echo "# $v, round $r: events_delivered grew by $((d1 - d0)), not $want_events" >&2
		broken=1
	fi
	if [ "$outbox" -ne "$want_outbox" ]; then
		echo "# $v, round $r: outbox_hand holds $outbox rows, not $want_outbox" >&2
		broken=1
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$v" "$r" "$ms" "$n" "$((d1 - d0))" "$outbox" \
		"$(calc "%.3f" "$t2 - $t1")" >>"$CLUSTER/runs.tsv"
	# what else ran on the machine: other PostgreSQL servers, load average
	others=$(($(count_servers) - 1))
	[ "$others" -gt "$max_others" ] && max_others="$others"
	load="$(cut -d' ' -f1 /proc/loadavg)"
	[ "$(verdict "$load" '>' "$max_load")" = PASS ] && max_load="$load"
	local after=""
	[ "$want_events" -gt 0 ] && after=" ($(calc "%.1f" "$t2 - $t1") s after the commit)"
	echo "# round $r, $v: $ms ms, $n rows updated, $((d1 - d0)) events delivered$after," \
		"$outbox outbox_hand rows" >&2
}

# Warm-up, untimed: the first UPDATE after the load doubles the table (the
# new row versions go to new pages); after it and a VACUUM every UPDATE
# reuses the space the previous one freed, as in the timed runs.
between_runs none
timed_update >/dev/null

: >"$CLUSTER/runs.tsv"
max_others=0
load_start="$(cut -d' ' -f1 /proc/loadavg)"
max_load="$load_start"
start="$(now)"
for r in $(seq 1 "$ROUNDS"); do
	for v in "${VARIANTS[@]}"; do
		run_variant "$v" "$r"
	done
done
elapsed="$(calc "%.0f" "$(now) - $start")"
q "DROP TRIGGER IF EXISTS bench_trigger ON accounts"

# Column 3 (ms) of variant $1's runs, one a line.
times_of() {
	awk -F '\t' -v v="$1" '$1 == v { print $3 }' "$CLUSTER/runs.tsv"
}
declare -A med lo hi
for v in "${VARIANTS[@]}"; do
	med[$v]="$(times_of "$v" | median)"
	lo[$v]="$(times_of "$v" | sort -g | head -1)"
	hi[$v]="$(times_of "$v" | sort -g | tail -1)"
done
# Median of the per-round ratios A/B (the two runs of a round are a minute
# apart at most, so the paired ratio is less sensitive to drift).
paired() {
	awk -F '\t' -v a="$1" -v b="$2" '
		$1 == a { x[$2] = $3 } $1 == b { y[$2] = $3 }
		END { for (r in x) if (r in y && y[r] > 0) print x[r] / y[r] }' "$CLUSTER/runs.tsv" | median
}
ratio() {
	calc "%.2f" "${med[$1]} / ${med[$2]}"
}
delivery_median() {
	awk -F '\t' -v v="$1" '$1 == v { print $7 }' "$CLUSTER/runs.tsv" | median
}

report="$(report_file trigger)"
{
	echo "# emissions trigger cost, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "$(environment_line)."
	echo "One transaction, \`UPDATE accounts SET balance = balance + 1\` over $ROWS rows" \
		"(accounts(id int primary key, balance int, name text, updated_at timestamptz))," \
		"timed in the server from before the UPDATE to after its COMMIT (clock_timestamp()" \
		"in a procedure that commits). $ROUNDS rounds, the variants alternated; before" \
		"each run the variant's trigger replaces the previous one, outbox_hand is" \
		"truncated, emissions_wait_delivered() waits out the worker, then VACUUM accounts" \
		"and CHECKPOINT; one untimed UPDATE before the first round. $elapsed s for the rounds."
	echo "During the rounds: up to $max_others other PostgreSQL servers running (counted after" \
		"each run), 1-minute load average $load_start at the start and up to $max_load" \
		"($(nproc) CPUs). Anything else running makes the rounds spread; the median of the" \
		"per-round ratios (the variants of a round run within seconds of each other) is" \
		"the steadier figure then."
	echo
	echo "The times exclude delivery, which is asynchronous: the delivery worker reads" \
		"the committed events afterwards (median $(delivery_median row) s after the" \
		"row-level runs, $(delivery_median statement) s after the statement-level ones, for" \
		"$ROWS events each), and the next run starts only once it is done."
	echo
	echo "| variant | median (ms) | per row (us) | min (ms) | max (ms) | spread (max - min) / median | vs no trigger |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for v in "${VARIANTS[@]}"; do
		case "$v" in
		none) name="no trigger" ;;
		hand) name="hand-written PL/pgSQL row trigger into outbox_hand" ;;
		row) name="emissions_trigger(), row level" ;;
		statement) name="emissions_trigger(), statement level (transition tables)" ;;
		capture) name="control: transition tables, a do-nothing statement trigger" ;;
		esac
		echo "| $name | $(calc "%.1f" "${med[$v]}") | $(calc "%.2f" "1000 * ${med[$v]} / $ROWS") |" \
			"$(calc "%.1f" "${lo[$v]}") | $(calc "%.1f" "${hi[$v]}") |" \
			"$(calc "%.1f" "100 * (${hi[$v]} - ${lo[$v]}) / ${med[$v]}") % | $(ratio "$v" none) |"
	done
	echo
	echo "| goal (from the issue) | median / median | median of per-round ratios | verdict |"
	echo "|---|---:|---:|---|"
	echo "| hand-written / row level >= 2 | $(ratio hand row) | $(calc "%.2f" "$(paired hand row)") |" \
		"$(verdict "$(ratio hand row)" '>=' 2) |"
	echo "| hand-written / statement level >= 3 | $(ratio hand statement) |" \
		"$(calc "%.2f" "$(paired hand statement)") | $(verdict "$(ratio hand statement)" '>=' 3) |"
	echo "| statement level / no trigger <= 2.5 | $(ratio statement none) |" \
		"$(calc "%.2f" "$(paired statement none)") | $(verdict "$(ratio statement none)" '<=' 2.5) |"
	echo
	echo "The control (transition tables captured, a statement trigger that does nothing," \
		"work_mem=$(q "SHOW work_mem")) takes $(ratio capture none) times the UPDATE with no trigger;" \
		"the statement-level emissions_trigger() adds $(calc "%.1f" "${med[statement]} - ${med[capture]}") ms" \
		"($(calc "%.2f" "1000 * (${med[statement]} - ${med[capture]}) / $ROWS") us per row) to it," \
		"the row-level one $(calc "%.1f" "${med[row]} - ${med[none]}") ms" \
		"($(calc "%.2f" "1000 * (${med[row]} - ${med[none]}) / $ROWS") us per row) to no trigger," \
		"the hand-written trigger $(calc "%.1f" "${med[hand]} - ${med[none]}") ms" \
		"($(calc "%.2f" "1000 * (${med[hand]} - ${med[none]}) / $ROWS") us per row)."
	echo
	echo "Every run (ms):"
	echo
	echo "| round |$(printf ' %s |' "${VARIANTS[@]}")"
	echo "|---:|$(printf -- '---:|%.0s' "${VARIANTS[@]}")"
	for r in $(seq 1 "$ROUNDS"); do
		echo "| $r |$(for v in "${VARIANTS[@]}"; do
			awk -F '\t' -v v="$v" -v r="$r" '$1 == v && $2 == r { printf " %.1f |", $3 }' "$CLUSTER/runs.tsv"
		done)"
	done
	echo
	echo "Checked in every run: the UPDATE changed $ROWS rows; events_delivered grew by" \
		"$ROWS in each emissions run and by 0 otherwise; outbox_hand held $ROWS rows" \
		"after each hand-written run and none otherwise."
} | tee "$report"
echo
echo "# report written to ${report#"$top"/}"

if [ "$broken" -ne 0 ]; then
	echo "# the benchmark itself had errors (see the messages above)" >&2
	exit 1
fi
