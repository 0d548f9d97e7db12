#!/usr/bin/env bash
# bench/storage.sh: the outbox and the event log stay bounded under
# sustained load, without any manual VACUUM.
#
# Starts a throwaway cluster (test/lib.sh: postgres OS user, unix socket in a
# mktemp directory, stopped by data directory from an EXIT trap) with
# shared_preload_libraries = 'emissions', max_worker_processes = 32 and a
# short emissions.retention (STORAGE_RETENTION seconds, 120), otherwise
# initdb's defaults: fsync, synchronous_commit and autovacuum on
# (STORAGE_AUTOVACUUM=off turns it off; log_autovacuum_min_duration = 0
# only logs what autovacuum does).
# pgbench -M prepared -c CLIENTS -j 2 runs for STORAGE_SECONDS a mix of the
# producer benchmark's bench/producer/emissions_1.sql and emissions_10.sql
# (a business row, then 1 or 10 ~195-byte events; STORAGE_MIX weighs the
# two per transaction) while the delivery worker drains, so the retention
# passes several times.  Every STORAGE_SAMPLE seconds one query records
# events delivered, events pending, the total relation size (heap, TOAST,
# indexes) of the outbox partitions emissions_outbox_0..2, of the log
# partitions emissions_log_0..2 and of emissions_state, the events the log
# holds and the age of its oldest, the database size, the business tables,
# the WAL position and pg_wal's size, dead tuples and autovacuum counts
# (pg_stat_user_tables).  Then emissions_wait_delivered() waits for the rest.
#
# Prints a Markdown report (also written to bench/results/storage-DATE.md,
# the samples to storage-DATE.tsv and, when gnuplot is there or can be
# installed from Debian, a plot to storage-DATE.png): sizes over time, the
# largest outbox and log against the log size expected from the delivery
# rate and the retention, autovacuum's activity, and the verdict: the
# outbox and the rest of the database (less the business tables, the log
# and the outbox) are bounded when their largest sample in the last third
# of the run exceeds the largest of the second third by no more than
# STORAGE_MARGIN percent (25) or 2 MB (the outbox's rotation size),
# whichever is larger; the log, whose size follows the delivery rate, when
# the same holds for its bytes per event delivered in the 1.5 retentions
# before each sample (margin in percent only) and its oldest event stays
# younger than twice the retention.  A verdict never fails the run; the
# script exits 1 only when the benchmark itself broke (pgbench errors,
# events not delivered or ids not contiguous, business rows missing).
#
# Usage: bash bench/storage.sh      (as root, from anywhere; STORAGE_SECONDS
# plus about a minute)
# Environment: STORAGE_SECONDS (600), STORAGE_SAMPLE (seconds between
# samples, 10), STORAGE_RETENTION (seconds, 120), STORAGE_MIX (weights of
# the 1-event and the 10-event transaction, "1:1"), STORAGE_ADAPTER
# ("table" adds a table adapter into bench_sink, which then grows with
# every event; empty: the default NOTIFY adapter alone), STORAGE_MARGIN
# (percent, 25), STORAGE_REPORT_EVERY (seconds between the report's rows,
# 60), STORAGE_PLOT (1; 0 skips the plot), STORAGE_AUTOVACUUM (on, the
# default; off shows that nothing depends on it), STORAGE_HOLD_FROM
# (seconds; from then to the end of the load a session holds an ACCESS
# SHARE lock on emissions_log, as a long reader would, so that no log
# partition can be truncated: shows what that does, and that the verdict
# catches a log that keeps growing; empty: none), CLIENTS (8), WAIT
# (seconds emissions_wait_delivered() may take, 300).
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"
cd "$top"
# shellcheck source=bench/delivery/common.sh
source "$top/bench/delivery/common.sh"

RUN_SECONDS="${STORAGE_SECONDS:-600}"
SAMPLE="${STORAGE_SAMPLE:-10}"
RETENTION="${STORAGE_RETENTION:-120}"
MIX="${STORAGE_MIX:-1:1}"
ADAPTER="${STORAGE_ADAPTER:-}"
MARGIN="${STORAGE_MARGIN:-25}"
REPORT_EVERY="${STORAGE_REPORT_EVERY:-60}"
PLOT="${STORAGE_PLOT:-1}"
AUTOVACUUM="${STORAGE_AUTOVACUUM:-on}"
HOLD_FROM="${STORAGE_HOLD_FROM:-}"
CLIENTS="${CLIENTS:-8}"
WAIT="${WAIT:-300}"
JOBS=$((CLIENTS > 1 ? 2 : 1))
W1="${MIX%%:*}" W10="${MIX##*:}"
case "$W1:$W10" in
*[!0-9:]* | :* | *:) echo "STORAGE_MIX must be W1:W10 (integers)" >&2; exit 2 ;;
esac
case "$HOLD_FROM" in
*[!0-9]*) echo "STORAGE_HOLD_FROM must be a number of seconds" >&2; exit 2 ;;
esac
case "$AUTOVACUUM" in
on | off) ;;
*) echo "STORAGE_AUTOVACUUM must be on or off" >&2; exit 2 ;;
esac
case "$ADAPTER" in
'' | table) ;;
*) echo "STORAGE_ADAPTER must be empty or table" >&2; exit 2 ;;
esac
SLACK=$((2 * 1024 * 1024))	# bytes: one outbox rotation (256 blocks)

prepare
PGBENCH="$PGBIN/pgbench"

# gnuplot for the plot: installed from Debian (gnuplot-nox) when missing;
# no plot when that fails.
have_gnuplot=0
if [ "$PLOT" = 1 ]; then
	if ! command -v gnuplot >/dev/null; then
		echo "# installing gnuplot-nox (for the plot only)" >&2
		export DEBIAN_FRONTEND=noninteractive
		{ apt-get update -qq && apt-get install -y -qq gnuplot-nox; } >/dev/null 2>&1 || true
	fi
	command -v gnuplot >/dev/null && have_gnuplot=1
fi

cluster_start "shared_preload_libraries = 'emissions'" "max_worker_processes = 32" \
	"emissions.retention = '${RETENTION}s'" "log_autovacuum_min_duration = 0" \
	"autovacuum = $AUTOVACUUM"
q "\\i $top/bench/delivery/setup.sql" >/dev/null
require_delivery
if [ "$ADAPTER" = table ]; then
	q "SELECT emissions_add_adapter('sink', 'table', 'bench_sink')" >/dev/null
fi
broken=0
SAMPLES="$CLUSTER/samples.tsv"

now() {
	date +%s.%N
}

# The columns of a sample (the TSV's header; sizes in bytes).
COLUMNS="elapsed_s delivered last_event_id pending outbox_bytes log_bytes
state_bytes db_bytes wal_bytes pg_wal_bytes orders_bytes sink_bytes
log_events oldest_s log_part outbox_0 outbox_1 outbox_2 log_0 log_1 log_2
dead_outbox dead_log dead_state autovacuums autoanalyzes"

# One sample, a tab-separated line of COLUMNS, on stdout.  Sizes are
# pg_total_relation_size (heap, TOAST and indexes); the log's events are
# those from the first id of its lowest row to its highest id, its oldest
# is that row's age.
sample() {
	psql -qAtX -F $'\t' -c "SET lock_timeout = '5s'" -c "
	SELECT round((extract(epoch FROM clock_timestamp()) - $t0)::numeric, 1),
		   s.events_delivered - $d0, s.last_event_id, s.events_pending,
		   o.total, l.total, pg_total_relation_size('emissions_state'),
		   pg_database_size(current_database()),
		   pg_current_wal_lsn() - '$lsn0'::pg_lsn,
		   (SELECT sum(size) FROM pg_ls_waldir()),
		   pg_total_relation_size('bench_orders'),
		   pg_total_relation_size('bench_sink'),
		   COALESCE(e.last_id - e.first_id + 1, 0),
		   COALESCE(round(extract(epoch FROM clock_timestamp() - e.oldest)::numeric, 1), 0),
		   st.log_part, o.p0, o.p1, o.p2, l.p0, l.p1, l.p2,
		   d.dout, d.dlog, d.dstate, d.av, d.an
	  FROM emissions_stats AS s, emissions_state AS st,
		   (SELECT sum(sz) AS total, sum(sz) FILTER (WHERE n = 0) AS p0,
				   sum(sz) FILTER (WHERE n = 1) AS p1, sum(sz) FILTER (WHERE n = 2) AS p2
			  FROM (SELECT n, pg_total_relation_size(format('emissions_outbox_%s', n)::regclass) AS sz
					  FROM generate_series(0, 2) AS n) AS x) AS o,
		   (SELECT sum(sz) AS total, sum(sz) FILTER (WHERE n = 0) AS p0,
				   sum(sz) FILTER (WHERE n = 1) AS p1, sum(sz) FILTER (WHERE n = 2) AS p2
			  FROM (SELECT n, pg_total_relation_size(format('emissions_log_%s', n)::regclass) AS sz
					  FROM generate_series(0, 2) AS n) AS x) AS l,
		   (SELECT (SELECT max(last_id) FROM emissions_log) AS last_id, f.first_id, f.oldest
			  FROM (SELECT NULL) AS dummy
			  LEFT JOIN (SELECT first_id, delivered_at AS oldest FROM emissions_log
						  ORDER BY last_id LIMIT 1) AS f ON true) AS e,
		   (SELECT COALESCE(sum(n_dead_tup) FILTER (WHERE relname LIKE 'emissions\\_outbox\\_%'), 0) AS dout,
				   COALESCE(sum(n_dead_tup) FILTER (WHERE relname LIKE 'emissions\\_log\\_%'), 0) AS dlog,
				   COALESCE(sum(n_dead_tup) FILTER (WHERE relname = 'emissions_state'), 0) AS dstate,
				   COALESCE(sum(autovacuum_count) FILTER (WHERE relname LIKE 'emissions\\_%'), 0) AS av,
				   COALESCE(sum(autoanalyze_count) FILTER (WHERE relname LIKE 'emissions\\_%'), 0) AS an
			  FROM pg_stat_user_tables) AS d"
}

scripts=()
[ "$W1" -gt 0 ] && scripts+=(-f "$top/bench/producer/emissions_1.sql@$W1")
[ "$W10" -gt 0 ] && scripts+=(-f "$top/bench/producer/emissions_10.sql@$W10")
if [ "${#scripts[@]}" -eq 0 ]; then
	echo "STORAGE_MIX: at least one weight must be positive" >&2
	exit 2
fi

q "CHECKPOINT"
# counters at the start: events delivered, stored, discarded; last id
read -r d0 p0 x0 id0 < <(q "SELECT events_delivered, events_persisted, events_discarded,
	COALESCE(last_event_id, 0) FROM emissions_stats" | tr '|' ' ')
wpid="$(stats_col worker_pid)"
lsn0="$(q "SELECT pg_current_wal_lsn()")"
read -r ckpt0 ckpt_req0 < <(q "SELECT checkpoints_timed + checkpoints_req, checkpoints_req
	FROM pg_stat_bgwriter" | tr '|' ' ')
out="$CLUSTER/pgbench.out"
printf '# %s\n' "$(tr -s ' \n' '\t' <<<"$COLUMNS" | sed 's/\t$//')" >"$SAMPLES"
echo "# pgbench -M prepared -c $CLIENTS -j $JOBS -T $RUN_SECONDS, emissions_1.sql@$W1" \
	"emissions_10.sql@$W10; emissions.retention $(q "SHOW emissions.retention");" \
	"a sample every $SAMPLE s" >&2
t0="$(now)"
sample >>"$SAMPLES"
status=0
"$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$RUN_SECONDS" \
	"${scripts[@]}" >"$out" 2>&1 &
pid=$!
hold_pid=""
n=1
while kill -0 "$pid" 2>/dev/null; do
	# STORAGE_HOLD_FROM: a reader that keeps the log locked from then on
	if [ -n "$HOLD_FROM" ] && [ -z "$hold_pid" ] &&
		awk -v t="$(now)" -v s="$(calc "%f" "$t0 + $HOLD_FROM")" 'BEGIN { exit !(t >= s) }'; then
		echo "# $HOLD_FROM s: a session locks emissions_log (ACCESS SHARE) until the load ends" >&2
		PGAPPNAME=storage_hold psql -qAtX -c "BEGIN; LOCK TABLE emissions_log IN ACCESS SHARE MODE;
			SELECT pg_sleep($RUN_SECONDS); COMMIT" >/dev/null 2>&1 &
		hold_pid=$!
	fi
	# sleep until the next multiple of SAMPLE seconds, or pgbench's end
	wake="$(calc "%.3f" "$t0 + $n * $SAMPLE")"
	while kill -0 "$pid" 2>/dev/null && awk -v w="$wake" -v t="$(now)" 'BEGIN { exit !(t < w) }'; do
		sleep 0.5
	done
	kill -0 "$pid" 2>/dev/null || break
	sample >>"$SAMPLES" || echo "# sample $n failed" >&2
	if [ $((n * SAMPLE % 60)) -lt "$SAMPLE" ]; then
		tail -n 1 "$SAMPLES" | awk -F '\t' '{ printf "# %4.0f s: %.0f events delivered, %.0f pending, outbox %.1f MB, log %.1f MB (%.0f events, oldest %.0f s)\n",
			$1, $2, $4, $5 / 1048576, $6 / 1048576, $13, $14 }' >&2
	fi
	n=$((n + 1))
done
wait "$pid" || status=$?
load_end="$(calc "%.1f" "$(now) - $t0")"
if [ -n "$hold_pid" ]; then
	q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'storage_hold'" >/dev/null
	wait "$hold_pid" || true
fi
sample >>"$SAMPLES"
ok="$(q "SELECT emissions_wait_delivered('$WAIT s')")"
drained_at="$(calc "%.1f" "$(now) - $t0")"
sample >"$CLUSTER/drained.tsv"

pgbench_ok "$out" "$status" || broken=1
xacts="$(pgbench_xacts "$out")"
xacts="${xacts:-0}"
tps="$(pgbench_tps "$out")"
# The events come from the server's counters: pgbench's per-script counts
# can miss a transaction or two at the end of -T.
read -r d1 p1 x1 id1 < <(q "SELECT events_delivered, events_persisted, events_discarded,
	COALESCE(last_event_id, 0) FROM emissions_stats" | tr '|' ' ')
delivered=$((d1 - d0)) events=$((p1 - p0)) discarded=$((x1 - x0))
if [ "$ok" != t ]; then
	echo "# emissions_wait_delivered('$WAIT s') timed out, $(stats_col events_pending) events still pending" >&2
	broken=1
fi
if [ "$delivered" -ne "$events" ] || [ "$discarded" -ne 0 ]; then
	echo "# $events events stored (events_persisted), but events_delivered grew by" \
		"$delivered ($discarded discarded)" >&2
	broken=1
fi
if [ "$((id1 - id0))" -ne "$delivered" ]; then
	echo "# last_event_id went from $id0 to $id1 for $delivered events delivered" >&2
	broken=1
fi
if [ "$xacts" -gt 0 ] && { [ "$events" -lt "$xacts" ] || [ "$events" -gt $((10 * xacts)) ]; }; then
	echo "# $events events stored for $xacts transactions of 1 or 10 events" >&2
	broken=1
fi
if [ "$(q "SELECT count(*) FROM bench_orders")" -ne "$xacts" ]; then
	echo "# $xacts transactions but not as many business rows" >&2
	broken=1
fi
if [ "$(stats_col worker_pid)" != "$wpid" ]; then
	echo "# the delivery worker changed during the run ($wpid, now $(stats_col worker_pid))" >&2
	broken=1
fi
ckpts=$(($(q "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter") - ckpt0))
ckpts_req=$(($(q "SELECT checkpoints_req FROM pg_stat_bgwriter") - ckpt_req0))
# The emissions tables' statistics at the end, and autovacuum's log lines.
q "SELECT relname, n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count,
		  COALESCE(to_char(last_autovacuum, 'HH24:MI:SS'), '-'),
		  COALESCE(to_char(last_autoanalyze, 'HH24:MI:SS'), '-'),
		  vacuum_count, pg_total_relation_size(relid)
	 FROM pg_stat_user_tables WHERE relname LIKE 'emissions\\_%' OR relname LIKE 'bench\\_%'
	ORDER BY relname" | tr '|' '\t' >"$CLUSTER/tables.tsv"
av_lines="$(grep -c 'automatic vacuum of table' "$CLUSTER/server.log" || true)"
av_emissions="$({ grep 'automatic vacuum of table' "$CLUSTER/server.log" || true; } |
	grep -c '\.emissions_' || true)"
av_tables="$({ grep -o 'automatic vacuum of table "[^"]*"' "$CLUSTER/server.log" || true; } |
	sed 's/.*"[^.]*\.[^.]*\.\([^"]*\)"/\1/' | sort | uniq -c |
	awk '{ printf "%s%s %d", sep, $2, $1; sep = ", " }')"
stamp="$(date +%Y%m%d-%H%M%S)"
report="$top/bench/results/storage-$stamp.md"
mkdir -p "$top/bench/results"
cp "$SAMPLES" "${report%.md}.tsv"

# Figures over the load's samples (elapsed <= load_end):
#   rate: events delivered per second over the whole run;
#   max outbox / log / state / database less business tables, and when;
#   the oldest retained event; per third (the verdict's), the largest
#   outbox, log and rest of the database (less the business tables, the
#   log and the outbox).
read -r rate max_out max_out_t max_log max_log_t max_log_ev max_oldest max_state \
	max_other max_pgwal max_dout max_dlog max_dstate av_count an_count \
	o2 o3 l2 l3 x2 x3 <<<"$(awk -F '\t' -v T="$load_end" '
	/^#/ { next }
	$1 > T + 0.5 { next }
	{
		t = $1; other = $8 - $11 - $12
		if ($5 > mo) { mo = $5; mot = t }
		if ($6 > ml) { ml = $6; mlt = t }
		if ($13 > mle) mle = $13
		if ($14 > mold) mold = $14
		if ($7 > ms) ms = $7
		if (other > mx) mx = other
		if ($10 > mw) mw = $10
		if ($22 > d1) d1 = $22
		if ($23 > d2) d2 = $23
		if ($24 > d3) d3 = $24
		av = $25; an = $26; last = $2; lastt = t
		third = (t < T / 3) ? 1 : (t < 2 * T / 3) ? 2 : 3
		rest = other - $5 - $6
		if (third == 2) { if ($5 > o2) o2 = $5; if ($6 > l2) l2 = $6; if (rest > x2) x2 = rest }
		if (third == 3) { if ($5 > o3) o3 = $5; if ($6 > l3) l3 = $6; if (rest > x3) x3 = rest }
	}
	END {
		# mawk: %d stops at 2^31, so integers go through %.0f
		printf "%.1f %.0f %s %.0f %s %.0f %s %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\n",
			(lastt > 0 ? last / lastt : 0), mo, mot, ml, mlt, mle, mold, ms, mx, mw,
			d1, d2, d3, av, an, o2, o3, l2, l3, x2, x3 }' "$SAMPLES")"
# The log's bytes per event: median over the samples after one retention.
bpe="$(awk -F '\t' -v T="$load_end" -v R="$RETENTION" '
	!/^#/ && $1 >= R && $1 <= T + 0.5 && $13 > 0 { print $6 / $13 }' "$SAMPLES" | median)"

mb() {
	calc "%.1f" "$1 / 1048576"
}
# Per sample from 1.5 retentions on: the events delivered in the 1.5
# retentions before it (interpolated between samples), which is what the
# log holds at most whatever the rate did, and the log's bytes per such
# event.  Then: the most such events (peak_ev), the largest bytes per
# event in the second and last thirds (n2, n3) and the delivery rate of
# each third (r2, r3).
read -r peak_ev n2 n3 r2 r3 <<<"$(awk -F '\t' -v T="$load_end" -v W="$(calc "%f" "1.5 * $RETENTION")" '
	!/^#/ && $1 <= T + 0.5 { n++; t[n] = $1; d[n] = $2; l[n] = $6 }
	END {
		j = 1
		for (i = 1; i <= n; i++) {
			third = (t[i] < T / 3) ? 1 : (t[i] < 2 * T / 3) ? 2 : 3
			if (third == 2 && s2 == "") s2 = i
			if (third == 3 && s3 == "") s3 = i
			if (t[i] < W) { if (d[i] > m) m = d[i]; continue }
			while (j < n && t[j + 1] <= t[i] - W) j++
			base = d[j]
			if (j < n && t[j + 1] > t[j])
				base = d[j] + (d[j + 1] - d[j]) * (t[i] - W - t[j]) / (t[j + 1] - t[j])
			v = d[i] - base
			if (v > m) m = v
			if (v <= 0) continue
			r = l[i] / v
			if (third == 2 && r > n2) n2 = r
			if (third == 3 && r > n3) n3 = r
		}
		rate2 = (s2 != "" && s3 != "" && t[s3] > t[s2]) ? (d[s3] - d[s2]) / (t[s3] - t[s2]) : 0
		rate3 = (s3 != "" && t[n] > t[s3]) ? (d[n] - d[s3]) / (t[n] - t[s3]) : 0
		printf "%.0f %.1f %.1f %.0f %.0f\n", m, n2, n3, rate2, rate3 }' "$SAMPLES")"
expected_ev="$(calc "%.0f" "$rate * $RETENTION")"
expected_log="$(calc "%.0f" "$expected_ev * $bpe")"
# allowed MAX_SECOND_THIRD SLACK: the most the last third may reach.
allowed() {
	calc "%.1f" "$1 + ($1 * $MARGIN / 100 > $2 ? $1 * $MARGIN / 100 : $2)"
}
# within VALUE LIMIT: bounded, NOT bounded, or n/a when the second third
# had nothing to compare with (a run shorter than 4.5 retentions).
within() {
	if awk -v m="$2" 'BEGIN { exit !(m <= 0) }'; then
		echo n/a
	elif awk -v v="$1" -v m="$2" 'BEGIN { exit !(v <= m) }'; then
		echo bounded
	else
		echo "NOT bounded"
	fi
}
v_out="$(within "$o3" "$(allowed "$o2" "$SLACK")")"
v_log="$(within "$n3" "$(allowed "$n2" 0)")"
v_rest="$(within "$x3" "$(allowed "$x2" "$SLACK")")"
v_abs="$(within "$l3" "$(allowed "$l2" "$SLACK")")"
retention_ok="$(verdict "$max_oldest" '<=' "$((2 * RETENTION + 2 * SAMPLE))")"
verdict_all=bounded
case "$v_out $v_log $v_rest $retention_ok" in
"bounded bounded bounded PASS") ;;
*NOT* | *MISS) verdict_all="NOT bounded" ;;
*) verdict_all="undecided (run at least 5 retentions: STORAGE_SECONDS >= 5 x STORAGE_RETENTION)" ;;
esac

{
	echo "# emissions storage under sustained load, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "$(environment_line); emissions.retention=$(q "SHOW emissions.retention")," \
		"max_wal_size=$(q "SHOW max_wal_size"), checkpoint_timeout=$(q "SHOW checkpoint_timeout")."
	echo "Load: pgbench -M prepared -c $CLIENTS -j $JOBS -T $RUN_SECONDS, per transaction" \
		"a business INSERT into bench_orders and 1 (bench/producer/emissions_1.sql, weight $W1)" \
		"or 10 (emissions_10.sql, weight $W10) ~195-byte events;" \
		"$(if [ "$ADAPTER" = table ]; then echo "NOTIFY and a table adapter into bench_sink"; else echo "the default NOTIFY adapter alone (nobody listening)"; fi)." \
		"A sample every $SAMPLE s; no VACUUM was run by the benchmark." \
		"${HOLD_FROM:+From $HOLD_FROM s to the end of the load a session held an ACCESS SHARE lock on emissions_log (a long reader), so no log partition could be truncated.}"
	echo
	echo "**Events:** $events stored (events_persisted) in $xacts transactions over $load_end s" \
		"($(calc "%.0f" "$events / $load_end") events/s produced, $(calc "%.0f" "${tps:-0}") tps);" \
		"all delivered $(calc "%.1f" "$drained_at - $load_end") s after the load stopped" \
		"(emissions_wait_delivered: $ok; events_delivered grew by $delivered, $discarded discarded," \
		"last_event_id went from $id0 to $id1)." \
		"WAL: $(mb "$(tail -n 1 "$CLUSTER/drained.tsv" | cut -f 9)") MB written" \
		"($(calc "%.0f" "$(tail -n 1 "$CLUSTER/drained.tsv" | cut -f 9) / ($events > 0 ? $events : 1)") bytes per event," \
		"business rows included), $ckpts checkpoints ($ckpts_req of them requested by WAL volume)," \
		"pg_wal at most $(mb "$max_pgwal") MB."
	echo
	echo "Sizes over time, per ${REPORT_EVERY}-second window of samples (total relation size:" \
		"heap, TOAST and indexes; \"other\" is the database less the business tables" \
		"bench_orders and bench_sink; the log is given as its smallest and largest sample" \
		"in the window, the rest as the largest; a point sample every minute would always" \
		"catch the log at the same phase of its rotation):"
	echo
	echo "| window end | events delivered | events/s | pending | outbox | log | events in log | oldest in log | emissions_state | bench_orders | other | database | pg_wal | dead tuples outbox / log |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	# one row per window (the first sample, at 0 s, alone); mawk: integers
	# are printed with %.0f
	awk -F '\t' -v every="$REPORT_EVERY" -v T="$load_end" -v half="$(calc "%f" "$SAMPLE / 2")" '
		function mx(a, b) { return (a > b) ? a : b }
		function flush(label) {
			printf "| %s | %.0f | %s | %.0f | %.1f MB | %.1f–%.1f MB | %.0f | %.0f s | %.0f kB | %.0f MB | %.1f MB | %.0f MB | %.0f MB | %.0f / %.0f |\n",
				label, d, (pt == "" || t == pt) ? "" : sprintf("%.0f", (d - pd) / (t - pt)),
				pend, out / 1048576, lmin / 1048576, lmax / 1048576, lev, old, st / 1024,
				ord / 1048576, oth / 1048576, db / 1048576, wal / 1048576, dout, dlog
			pt = t; pd = d; n = 0
		}
		/^#/ || $1 > T + 0.5 { next }
		{
			# a sample up to half a sample period late counts in the window before
			w = ($1 < half) ? -1 : int(($1 - half) / every)
			if (n > 0 && w != cw) flush(label)
			if (n == 0) { pend = out = lev = old = st = oth = db = wal = dout = dlog = 0; lmin = $6; lmax = 0 }
			cw = w; n++
			e = (w < 0) ? 0 : (w + 1) * every
			if (e > T) e = T
			label = sprintf("%d:%02d", int(e / 60), int(e) % 60)
			t = $1; d = $2; ord = $11
			pend = mx(pend, $4); out = mx(out, $5); lmax = mx(lmax, $6)
			if ($6 < lmin) lmin = $6
			lev = mx(lev, $13); old = mx(old, $14); st = mx(st, $7)
			oth = mx(oth, $8 - $11 - $12); db = mx(db, $8); wal = mx(wal, $10)
			dout = mx(dout, $22); dlog = mx(dlog, $23)
		}
		END { if (n > 0) flush(label) }' "$SAMPLES"
	awk -F '\t' '{ printf "| drained | %.0f | | %.0f | %.1f MB | %.1f MB | %.0f | %.0f s | %.0f kB | %.0f MB | %.1f MB | %.0f MB | %.0f MB | %.0f / %.0f |\n",
		$2, $4, $5 / 1048576, $6 / 1048576, $13, $14, $7 / 1024, $11 / 1048576,
		($8 - $11 - $12) / 1048576, $8 / 1048576, $10 / 1048576, $22, $23 }' "$CLUSTER/drained.tsv"
	echo
	echo "| figure | measured |"
	echo "|---|---:|"
	echo "| events delivered | $delivered in $load_end s, $(calc "%.0f" "$rate") events/s |"
	echo "| largest outbox (3 partitions) | $(mb "$max_out") MB at ${max_out_t} s |"
	echo "| largest log (3 partitions, with their last_id indexes) | $(mb "$max_log") MB at ${max_log_t} s, $max_log_ev events |"
	echo "| log bytes per event (median over the samples after one retention) | $(calc "%.0f" "$bpe") |"
	echo "| log expected: rate × retention = $expected_ev events × $(calc "%.0f" "$bpe") bytes | $(mb "$expected_log") MB; the log keeps 1 to 1.5 retentions (at most 2): $(mb "$expected_log")–$(mb "$(calc "%.0f" "1.5 * $expected_log")") MB (≤ $(mb "$((2 * expected_log))") MB) |"
	echo "| largest log against rate × retention | $(calc "%.2f" "$max_log / ($expected_log > 0 ? $expected_log : 1)") × |"
	echo "| most events delivered in any 1.5 retentions ($(calc "%.0f" "1.5 * $RETENTION") s) × bytes per event | $peak_ev events, $(mb "$(calc "%.0f" "$peak_ev * $bpe")") MB (largest log: $max_log_ev events, $(mb "$max_log") MB) |"
	echo "| oldest event in the log, at most (retention ${RETENTION} s; docs: about 1.5 times, at most 2) | ${max_oldest} s: $retention_ok |"
	echo "| emissions_state, largest | $(calc "%.0f" "$max_state / 1024") kB |"
	echo "| database less the business tables, largest | $(mb "$max_other") MB |"
	echo "| dead tuples (n_dead_tup), largest seen: outbox / log / emissions_state | $max_dout / $max_dlog / $max_dstate |"
	echo "| autovacuum runs on emissions tables (pg_stat_user_tables.autovacuum_count, summed) | $av_count (and $an_count autoanalyze) |"
	echo "| autovacuum runs logged (log_autovacuum_min_duration = 0), all tables / emissions tables | $av_lines / $av_emissions${av_tables:+ ($av_tables)} |"
	echo
	echo "Tables at the end (pg_stat_user_tables; TRUNCATE resets n_live_tup and n_dead_tup):"
	echo
	echo "| table | n_live_tup | n_dead_tup | autovacuum_count | autoanalyze_count | last_autovacuum | last_autoanalyze | vacuum_count | total size |"
	echo "|---|---:|---:|---:|---:|---|---|---:|---:|"
	awk -F '\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %.1f MB |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 / 1048576 }' \
		"$CLUSTER/tables.tsv"
	echo
	echo "**Verdict: $verdict_all.** Rule: the outbox, and the rest of the database (less the" \
		"business tables, the log and the outbox), are bounded when their largest sample in the" \
		"last third of the load (from $(calc "%.0f" "2 * $load_end / 3") s) exceeds the largest of the" \
		"second third ($(calc "%.0f" "$load_end / 3") to $(calc "%.0f" "2 * $load_end / 3") s) by at most" \
		"$MARGIN % or 2 MB (one outbox rotation), whichever is larger. The log holds a retention's" \
		"worth of events, so its size follows the delivery rate, which moves on a shared machine:" \
		"the same rule is applied to its size per event delivered in the 1.5 retentions before" \
		"each sample (what it may hold), with the $MARGIN % margin, and the oldest event it holds" \
		"must stay younger than twice the retention. The verdict holds when all of these do."
	echo
	echo "| size | largest, 2nd third | largest, last third | allowed | verdict |"
	echo "|---|---:|---:|---:|---|"
	echo "| outbox | $(mb "$o2") MB | $(mb "$o3") MB | $(mb "$(allowed "$o2" "$SLACK")") MB | $v_out |"
	echo "| log, bytes per event delivered in the 1.5 retentions before | $n2 | $n3 | $(allowed "$n2" 0) | $v_log |"
	echo "| rest of the database | $(mb "$x2") MB | $(mb "$x3") MB | $(mb "$(allowed "$x2" "$SLACK")") MB | $v_rest |"
	echo "| oldest event in the log (all the load) | | ${max_oldest} s | $((2 * RETENTION + 2 * SAMPLE)) s (2 retentions + 2 samples) | $(if [ "$retention_ok" = PASS ]; then echo bounded; else echo "NOT bounded"; fi) |"
	echo "| for information: the log's size (delivery rate $r2 and $r3 events/s) | $(mb "$l2") MB | $(mb "$l3") MB | $(mb "$(allowed "$l2" "$SLACK")") MB | $v_abs |"
	echo
	echo "Samples: bench/results/storage-$stamp.tsv (sizes in bytes)."
} >"$report"

if [ "$have_gnuplot" = 1 ]; then
	png="${report%.md}.png"
	if gnuplot >"$CLUSTER/gnuplot.log" 2>&1 <<EOF; then
set terminal pngcairo size 900,500 font ",10"
set output "$png"
set title "emissions storage under sustained load (retention ${RETENTION} s, $(calc "%.0f" "$rate") events/s)"
set xlabel "elapsed (minutes)"
set ylabel "MB"
set y2label "events delivered (millions)"
set y2tics
set ytics nomirror
set key top left
set grid
plot "${report%.md}.tsv" using (\$1/60):(\$5/1048576) with lines lw 2 title "outbox (3 partitions)", \
	'' using (\$1/60):(\$6/1048576) with lines lw 2 title "log (3 partitions)", \
	'' using (\$1/60):((\$8-\$11-\$12)/1048576) with lines title "database less business tables", \
	'' using (\$1/60):(\$2/1e6) axes x1y2 with lines dt 2 title "events delivered (right)"
EOF
		echo >>"$report"
		echo "Plot: bench/results/storage-$stamp.png." >>"$report"
	else
		echo "# gnuplot failed; no plot:" >&2
		sed 's/^/#   /' "$CLUSTER/gnuplot.log" >&2
	fi
fi

cat "$report"
echo
echo "# report written to ${report#"$top"/}"

if [ "$broken" -ne 0 ]; then
	echo "# the benchmark itself had errors (see the messages above)" >&2
	exit 1
fi
