#!/usr/bin/env bash
# bench/drain.sh: sustained drain throughput of the delivery worker.
#
# Starts a throwaway cluster (test/lib.sh: postgres OS user, unix socket in a
# mktemp directory, stopped by data directory from an EXIT trap) with
# shared_preload_libraries = 'emissions' and max_worker_processes = 32.
# pgbench producers (-c CLIENTS -j 2 -M prepared, bench/producer/emissions_1.sql:
# a business row and one ~195-byte event per transaction; EVENTS=10 runs
# emissions_10.sql, ten events per transaction) run for DURATION
# seconds while the delivery worker drains; emissions_stats (events_pending,
# events_delivered) is sampled every second.  When pgbench is done,
# emissions_wait_delivered() waits for the rest.  Two runs: the default
# NOTIFY adapter alone (nobody listening), then with a table adapter added
# (emissions_add_adapter('sink', 'table', 'bench_sink')), whose rows are
# counted afterwards: each event exactly once.  With BACKLOG=N, between the
# two, a backlog run measures the worker alone: a session locks the event
# log against writes (LOCK TABLE emissions_log IN SHARE MODE: readers such
# as emissions_stats go on), so the worker stops at its first delivery;
# the producers commit N events (pgbench -t); the lock is
# released, and the time the worker takes to deliver them all gives its
# drain rate, with no producer competing (NOTIFY adapter alone).
#
# Prints a Markdown report (also written to bench/results/drain-DATE.md):
# producer events/s, delivered events/s during the run and to the end of the
# drain, the backlog's maximum, its value when the producers stop and its
# growth over the run's second half, and the goal (backlog bounded) marked
# PASS or MISS.  Exits non-zero only when the benchmark itself broke
# (pgbench errors, events not delivered, sink rows missing or doubled, the
# events_delivered counter not grown by the events produced), and says
# BROKEN.
#
# Usage: bash bench/drain.sh        (as root, from anywhere; ~2.5 minutes)
# Environment: PG_MAJOR (15; see test/lib.sh), DURATION (seconds per run,
# 60), CLIENTS (8), EVENTS (events per transaction, 1 or 10), WAIT (seconds
# emissions_wait_delivered() may take, 300), BENCH_RAW (a file to copy each
# run's figures to, the tab-separated lines of runs.tsv described at
# run_drain; bench/versions.sh reads it), BACKLOG (events of the backlog
# run, 0: none).
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"
cd "$top"
# shellcheck source=bench/delivery/common.sh
source "$top/bench/delivery/common.sh"

DURATION="${DURATION:-60}"
CLIENTS="${CLIENTS:-8}"
WAIT="${WAIT:-300}"
JOBS=$((CLIENTS > 1 ? 2 : 1))
EVENTS="${EVENTS:-1}"
BACKLOG="${BACKLOG:-0}"
case "$EVENTS" in
1 | 10) ;;
*) echo "EVENTS must be 1 or 10" >&2; exit 2 ;;
esac
SCRIPT="$top/bench/producer/emissions_$EVENTS.sql"

prepare
PGBENCH="$PGBIN/pgbench"
cluster_start "shared_preload_libraries = 'emissions'" "max_worker_processes = 32"
q "\\i $top/bench/delivery/setup.sql" >/dev/null
require_delivery
broken=0

now() {
	date +%s.%N
}

# CPU seconds (user + system) the process PID has used so far, 0 if gone.
cpu_secs() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' \
		"/proc/$1/stat" 2>/dev/null || echo 0
}

# One run: run_drain KEY.  Appends a tab-separated line to $CLUSTER/runs.tsv:
# key events tps(events/s) duration pending_end delivered_run delivered_total max_backlog
# slope drain_secs total_secs sink_rows sink_distinct wait_ok worker_cpu_secs
run_drain() {
	local key="$1" out="$CLUSTER/pgbench-$1.out" samples="$CLUSTER/samples-$1.tsv"
	local status=0 pid t0 t1 t2 d0 d1 d2 p1 xacts events tps ok rows=- distinct=-
	local wpid c0 c2
	q "TRUNCATE bench_orders, bench_sink"
	q "CHECKPOINT"
	d0="$(stats_col events_delivered)"
	wpid="$(stats_col worker_pid)"
	c0="$(cpu_secs "${wpid:-0}")"
	: >"$samples"
	echo "# $key: pgbench -M prepared -c $CLIENTS -j $JOBS -T $DURATION, ${SCRIPT##*/}" >&2
	t0="$(now)"
	"$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$DURATION" \
		-f "$SCRIPT" >"$out" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		# elapsed, events_pending, events_delivered since the start
		psql -qAtX -F $'\t' -c "SELECT $(now) - $t0, events_pending,
			events_delivered - $d0 FROM emissions_stats" >>"$samples" || true
		sleep 1
	done
	wait "$pid" || status=$?
	t1="$(now)"
	p1="$(stats_col events_pending)"
	d1="$(stats_col events_delivered)"
	printf '%s\t%s\t%s\n' "$(calc "%.3f" "$t1 - $t0")" "$p1" "$((d1 - d0))" >>"$samples"
	ok="$(q "SELECT emissions_wait_delivered('$WAIT s')")"
	t2="$(now)"
	c2="$(cpu_secs "${wpid:-0}")"
	d2="$(stats_col events_delivered)"
	if [ "$(stats_col worker_pid)" != "$wpid" ]; then
		echo "# $key: the delivery worker changed during the run ($wpid, now $(stats_col worker_pid))" >&2
		broken=1
	fi
	pgbench_ok "$out" "$status" || broken=1
	xacts="$(pgbench_xacts "$out")" tps="$(pgbench_tps "$out")"
	xacts="${xacts:-0}" tps="${tps:-0}"
	events=$((xacts * EVENTS))
	if [ "$ok" != t ]; then
		echo "# $key: emissions_wait_delivered('$WAIT s') timed out," \
			"$(stats_col events_pending) events still pending" >&2
		broken=1
	fi
	if [ "$(q "SELECT count(*) FROM bench_orders")" -ne "$xacts" ]; then
		echo "# $key: $xacts transactions but not as many business rows" >&2
		broken=1
	fi
	if [ "$key" = table ]; then
		rows="$(q "SELECT count(*) FROM bench_sink")"
		distinct="$(q "SELECT count(DISTINCT id) FROM bench_sink")"
		if [ "$rows" -ne "$events" ] || [ "$distinct" -ne "$events" ]; then
			echo "# table: $events events but $rows rows in bench_sink ($distinct distinct ids)" >&2
			broken=1
		fi
	fi
	# max backlog; growth of the backlog over the second half of the run
	# (least-squares slope, events/s)
	read -r maxb slope < <(awk -F '\t' -v half="$(calc "%f" "($t1 - $t0) / 2")" '
		{ if ($2 > m) m = $2 }
		$1 >= half { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
		END { s = (n > 1 && n * sxx - sx * sx != 0) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0;
			  printf "%d %.1f\n", m, s }' "$samples")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$key" "$events" "$(calc "%.1f" "$tps * $EVENTS")" "$(calc "%.3f" "$t1 - $t0")" "$p1" "$((d1 - d0))" \
		"$((d2 - d0))" "$maxb" "$slope" "$(calc "%.3f" "$t2 - $t1")" \
		"$(calc "%.3f" "$t2 - $t0")" "$rows" "$distinct" "$ok" \
		"$(calc "%.2f" "$c2 - $c0")" >>"$CLUSTER/runs.tsv"
	if [ "$((d2 - d0))" -ne "$events" ]; then
		echo "# BROKEN: $key: $events events produced, but events_delivered grew by $((d2 - d0))" >&2
		broken=1
	fi
	echo "# $key: $events events, $(calc "%.0f" "$tps") tps; backlog max $maxb," \
		"$p1 at the end, growth $slope/s; drained $(calc "%.1f" "$t2 - $t1") s later" >&2
}

# The backlog run: run_backlog N.  Writes $CLUSTER/backlog.tsv, one line
# in runs.tsv's layout: key "backlog", events, producer events/s 0 (they
# are done when the drain starts), then the drain's seconds as the run's
# duration, the backlog (events pending when the lock goes) as pending,
# delivered and max backlog, slope 0, the drain's seconds again (drain and
# total), -, -, whether all were delivered, the worker's CPU seconds.
run_backlog() {
	local n="$1" tx out="$CLUSTER/pgbench-backlog.out" status=0 holder
	local wpid pending t0 t1 c0 c1 d0 d1 ok events
	tx=$(((n + EVENTS * CLIENTS - 1) / (EVENTS * CLIENTS)))
	q "TRUNCATE bench_orders"
	q "CHECKPOINT"
	psql -X -q -c "BEGIN" -c "LOCK TABLE emissions_log IN SHARE MODE" \
		-c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 1 100); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity
			WHERE query = 'SELECT pg_sleep(3600)'")" -gt 0 ] && break
		sleep 0.1
	done
	echo "# backlog: the log locked, pgbench -M prepared -c $CLIENTS -j $JOBS -t $tx, ${SCRIPT##*/}" >&2
	d0="$(stats_col events_delivered)"
	"$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$JOBS" -t "$tx" -f "$SCRIPT" \
		>"$out" 2>&1 || status=$?
	pgbench_ok "$out" "$status" || broken=1
	events=$(($(pgbench_xacts "$out") * EVENTS))
	pending="$(stats_col events_pending)"
	wpid="$(stats_col worker_pid)"
	c0="$(cpu_secs "${wpid:-0}")"
	t0="$(now)"
	q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		WHERE query = 'SELECT pg_sleep(3600)'" >/dev/null
	ok="$(q "SELECT emissions_wait_delivered('$WAIT s')")"
	t1="$(now)"
	c1="$(cpu_secs "${wpid:-0}")"
	d1="$(stats_col events_delivered)"
	wait "$holder" || true
	if [ "$ok" != t ] || [ "$((d1 - d0))" -ne "$events" ] ||
		[ "$pending" -ne "$events" ]; then
		echo "# BROKEN: backlog: $events events produced, $pending pending when" \
			"the lock went, $((d1 - d0)) delivered (wait: $ok)" >&2
		broken=1
	fi
	printf '%s\t%s\t0\t%s\t%s\t%s\t%s\t%s\t0\t%s\t%s\t-\t-\t%s\t%s\n' \
		backlog "$events" "$(calc "%.3f" "$t1 - $t0")" "$pending" \
		"$((d1 - d0))" "$((d1 - d0))" "$pending" "$(calc "%.3f" "$t1 - $t0")" \
		"$(calc "%.3f" "$t1 - $t0")" "$ok" "$(calc "%.2f" "$c1 - $c0")" \
		>"$CLUSTER/backlog.tsv"
	echo "# backlog: $pending events delivered in $(calc "%.2f" "$t1 - $t0") s" >&2
}

: >"$CLUSTER/runs.tsv"
run_drain notify
[ "$BACKLOG" -le 0 ] || run_backlog "$BACKLOG"
q "SELECT emissions_add_adapter('sink', 'table', 'bench_sink')" >/dev/null
run_drain table

report="$(report_file drain)"
{
	echo "# emissions drain throughput, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "$(environment_line)."
	echo "Producers: pgbench -M prepared -c $CLIENTS -j $JOBS -T $DURATION," \
		"bench/producer/${SCRIPT##*/} (a business INSERT and $EVENTS ~195-byte event(s)" \
		"per transaction, one statement each); emissions_stats sampled every second; then" \
		"emissions_wait_delivered(). \"notify\": the default NOTIFY adapter alone" \
		"(channel $(q "SHOW emissions.notify_channel" 2>/dev/null || echo '?'), nobody listening);" \
		"\"table\": plus a table adapter into bench_sink."
	echo
	echo "| adapters | events produced | producer events/s | delivered during run | delivered/s during run | delivered/s to the end of the drain | max backlog | backlog at end | backlog growth, 2nd half (events/s) | drain after stop (s) | worker CPU | worker CPU per event |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	while IFS=$'\t' read -r key events tps dur p1 drun dtot maxb slope drain total rows distinct ok wcpu; do
		name="$key"
		[ "$key" = notify ] && name="NOTIFY (default)"
		[ "$key" = table ] && name="NOTIFY + table"
		echo "| $name | $events | $(calc "%.0f" "$tps") | $drun | $(calc "%.0f" "$drun / $dur") |" \
			"$(calc "%.0f" "$dtot / $total") | $maxb | $p1 | $slope | $drain |" \
			"$wcpu s ($(calc "%.0f" "100 * $wcpu / $total") % of a core) |" \
			"$(calc "%.0f" "($dtot > 0 ? 1e6 * $wcpu / $dtot : 0)") us |"
	done <"$CLUSTER/runs.tsv"
	echo
	if [ -s "$CLUSTER/backlog.tsv" ]; then
		IFS=$'\t' read -r _ events _ dur p1 _ dtot _ _ _ _ _ _ _ wcpu \
			<"$CLUSTER/backlog.tsv"
		echo
		echo "Backlog: $p1 events committed while the event log was locked, then" \
			"delivered in $dur s: $(calc "%.0f" "$dtot / $dur") events/s, worker CPU" \
			"$wcpu s ($(calc "%.0f" "($dtot > 0 ? 1e6 * $wcpu / $dtot : 0)") us per event)."
	fi
	echo
	echo "events_delivered counts what emissions_stats reports; bench_sink held" \
		"$(awk -F '\t' '$1 == "table" { print $12 " rows (" $13 " distinct ids) for " $2 " events" }' "$CLUSTER/runs.tsv")."
	echo
	echo "| goal (from the issue) | measured | verdict |"
	echo "|---|---:|---|"
	while IFS=$'\t' read -r key events tps dur p1 drun dtot maxb slope drain total rows distinct ok wcpu; do
		# bounded: over the run's second half the backlog grows by less than
		# 2% of the production rate, i.e. the worker keeps up
		lim="$(calc "%.1f" "0.02 * $tps")"	# tps: events/s here
		echo "| $key: backlog bounded (growth over the 2nd half < 2% of the production rate, $lim/s) |" \
			"$slope/s, max $maxb, $p1 at end | $(verdict "$slope" '<' "$lim") |"
	done <"$CLUSTER/runs.tsv"
	echo
	echo "Backlog (events_pending) per second:"
	echo
	echo '```'
	for key in notify table; do
		printf '%-7s' "$key"
		awk -F '\t' '{ printf " %d", $2 } END { print "" }' "$CLUSTER/samples-$key.tsv"
	done
	echo '```'
} | tee "$report"
echo
echo "# report written to ${report#"$top"/}"
[ -z "${BENCH_RAW:-}" ] ||
	cat "$CLUSTER/runs.tsv" "$CLUSTER/backlog.tsv" >"$BENCH_RAW" 2>/dev/null ||
	cp "$CLUSTER/runs.tsv" "$BENCH_RAW"

if [ "$broken" -ne 0 ]; then
	echo "# BROKEN: the benchmark itself had errors (see the messages above)" >&2
	exit 1
fi
