#!/usr/bin/env bash
# bench/producer.sh: what emitting events costs the producing transaction.
#
# Starts a throwaway cluster (test/lib.sh: postgres OS user, unix socket in a
# mktemp directory, stopped by data directory from an EXIT trap) with fsync
# and synchronous_commit on and emissions not preloaded: producers store
# their events in the outbox as always, but no delivery worker drains it,
# just as nothing relays the hand-written outbox and PgQ's ticker does not
# run, so every design pays only what its producers pay, and what each
# stored can be counted after the run (bench/drain.sh and bench/fanout.sh
# measure delivery).  It runs pgbench -M prepared with the scripts in bench/producer/: a business
# INSERT per transaction, then nothing (baseline), a hand-written outbox
# INSERT, pg_notify, PgQ's pgq.insert_event or emissions_emit per event, at 1
# and 10 events per transaction, plus 100 events in one statement (bulk);
# 1 client (-c 1 -j 1) and 8 clients (-c 8 -j 2); and the same 1 and 10
# events written into the business INSERT's own statement (WITH ...
# RETURNING), which adds no round trip.  Every scenario runs once per round,
# ROUNDS rounds, so drift hits all alike; tables are truncated and a CHECKPOINT
# taken before each run.  WAL bytes come from pg_current_wal_lsn() around
# each run.  Then the buffer's memory per event is read from
# emissions_buffer_status() with MEM_EVENTS events pending.
#
# Prints a Markdown report (also written to bench/results/producer-DATE.md)
# with the issue's targets marked PASS or MISS; a MISS does not fail the run.
# Exits non-zero only when the benchmark itself broke (pgbench errors, events
# not stored).
#
# Installs postgresql-PG_MAJOR-pgq3 (PgQ) with apt-get when it is missing:
# only the benchmark needs it, the tests do not.
#
# Usage: bash bench/producer.sh        (as root, from anywhere)
# Environment: PG_MAJOR (15; see test/lib.sh), ROUNDS (3), DURATION (seconds
# per run, 5), MEM_EVENTS (10000), BENCH_RAW (a file to copy every run's
# figures to, tab-separated: round key clients events tps xacts failed
# wal_bytes stored; bench/versions.sh reads it).
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"
cd "$top"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
MEM_EVENTS="${MEM_EVENTS:-10000}"
SCRIPTS="$top/bench/producer"

prepare
PGBENCH="$(pg_config --bindir)/pgbench"

# PgQ, the established queue emissions is compared with.  The package pulls
# in pgqd, PgQ's ticker daemon; where apt may start services it starts one
# for the default cluster, which cannot reach this one (unix socket in a
# mktemp directory, no TCP) and which producing does not need.
PGQ_PACKAGE="postgresql-$PG_MAJOR-pgq3"
if ! dpkg-query -W -f='${Status}' "$PGQ_PACKAGE" 2>/dev/null |
	grep -q 'ok installed'; then
	echo "# installing $PGQ_PACKAGE" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq "$PGQ_PACKAGE" >/dev/null
fi

cluster_start "fsync = on" "synchronous_commit = on" "autovacuum = off"
RAW="$CLUSTER/raw.tsv"	# round key clients events tps xacts failed wal_bytes stored
: >"$RAW"
broken=0

q() {
	psql -qAtX -v ON_ERROR_STOP=1 -c "$1"
}

q "\\i $SCRIPTS/setup.sql" >/dev/null
# The parent of the queue's event tables: counting and truncating it covers
# the rotating children.
PGQ_EVENTS="$(q "SELECT queue_data_pfx FROM pgq.queue WHERE queue_name = 'bench'")"

# Scenarios: key, pgbench script, events per transaction.  The bulk baseline
# is the same business-row-only script as the per-event baseline.
SCENARIOS=(
	"baseline baseline.sql 0"
	"control-1 control_1.sql 1"
	"hand-1 hand_1.sql 1"
	"notify-1 notify_1.sql 1"
	"pgq-1 pgq_1.sql 1"
	"emissions-1 emissions_1.sql 1"
	"control-10 control_10.sql 10"
	"hand-10 hand_10.sql 10"
	"notify-10 notify_10.sql 10"
	"pgq-10 pgq_10.sql 10"
	"emissions-10 emissions_10.sql 10"
	"bulk-hand-100 bulk_hand.sql 100"
	"bulk-pgq-100 bulk_pgq.sql 100"
	"bulk-emissions-100 bulk_emissions.sql 100"
	"bulk-build-100 bulk_build.sql 100"
	"inline-control-1 inline_control_1.sql 1"
	"inline-hand-1 inline_hand_1.sql 1"
	"inline-notify-1 inline_notify_1.sql 1"
	"inline-pgq-1 inline_pgq_1.sql 1"
	"inline-emissions-1 inline_emissions_1.sql 1"
	"inline-control-10 inline_control_10.sql 10"
	"inline-hand-10 inline_hand_10.sql 10"
	"inline-notify-10 inline_notify_10.sql 10"
	"inline-pgq-10 inline_pgq_10.sql 10"
	"inline-emissions-10 inline_emissions_10.sql 10"
)
CLIENTS=(1 8)

# shellcheck source=bench/producer/label.sh
source "$SCRIPTS/label.sh"

# Memory per event first, on an empty outbox (rolled back, nothing stays).
mem="$(psql -qAtX -F ' ' -v ON_ERROR_STOP=1 -v n="$MEM_EVENTS" \
	-f "$SCRIPTS/memory.sql" | tail -n 1)"
read -r mem_events mem_pending mem_memory mem_spilled mem_payload <<<"$mem"

# One pgbench run: run_one ROUND KEY SCRIPT EVENTS CLIENTS.
run_one() {
	local round="$1" key="$2" script="$3" events="$4" c="$5" j out status=0
	local lsn0 lsn1 wal tps xacts failed stored expected what
	j=$((c > 1 ? 2 : 1))
	q "TRUNCATE bench_orders, outbox_hand, emissions_outbox, $PGQ_EVENTS RESTART IDENTITY"
	q "CHECKPOINT"
	lsn0="$(q "SELECT pg_current_wal_lsn()")"
	out="$CLUSTER/pgbench-$round-$key-c$c.out"
	"$PGBENCH" -n -M prepared -c "$c" -j "$j" -T "$DURATION" \
		-f "$SCRIPTS/$script" >"$out" 2>&1 || status=$?
	lsn1="$(q "SELECT pg_current_wal_lsn()")"
	wal="$(q "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::bigint")"
	tps="$(sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$out")"
	xacts="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")"
	failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")"
	tps="${tps:-0}" xacts="${xacts:-0}" failed="${failed:-0}"
	if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$xacts" -eq 0 ] ||
		grep -qiE 'error|abort' "$out"; then
		echo "# pgbench $key -c $c: exit $status, $failed failed; its output:" >&2
		sed 's/^/#   /' "$out" >&2
		broken=1
		[ "$failed" -ne 0 ] || failed=1
	fi
	# Did the work happen?  Business rows, and the events of the outboxes.
	expected=$((xacts * events))
	case "$key" in
	*emissions*) stored="$(q "SELECT COALESCE(sum(events), 0) FROM emissions_outbox")" what=events ;;
	*hand*) stored="$(q "SELECT count(*) FROM outbox_hand")" what=rows ;;
	*pgq*) stored="$(q "SELECT count(*) FROM $PGQ_EVENTS")" what=events ;;
	*) stored=0 expected=0 what=- ;;
	esac
	if [ "$stored" -ne "$expected" ] ||
		[ "$(q "SELECT count(*) FROM bench_orders")" -ne "$xacts" ]; then
		echo "# $key -c $c: $xacts transactions but $stored $what stored (expected $expected)" >&2
		broken=1
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$key" "$c" "$events" \
		"$tps" "$xacts" "$failed" "$wal" "$stored" >>"$RAW"
	printf '# round %s/%s  %-19s c=%s  %9.1f tps  %8d xacts  %7.0f WAL B/tx  %s %s stored\n' \
		"$round" "$ROUNDS" "$key" "$c" "$tps" "$xacts" \
		"$(awk -v w="$wal" -v x="$xacts" 'BEGIN { print (x > 0 ? w / x : 0) }')" \
		"$stored" "$what" >&2
}

total=$((ROUNDS * ${#CLIENTS[@]} * ${#SCENARIOS[@]}))
echo "# $total runs of ${DURATION}s: $ROUNDS rounds x ${#CLIENTS[@]} client counts x ${#SCENARIOS[@]} scenarios" >&2
for round in $(seq 1 "$ROUNDS"); do
	for c in "${CLIENTS[@]}"; do
		for s in "${SCENARIOS[@]}"; do
			read -r key script events <<<"$s"
			run_one "$round" "$key" "$script" "$events" "$c"
		done
	done
done

# Median tps and median WAL bytes per transaction of KEY at CLIENTS.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
med_tps() {
	awk -F '\t' -v k="$1" -v c="$2" '$2 == k && $3 == c { print $5 }' "$RAW" | median
}
rounds_tps() {
	awk -F '\t' -v k="$1" -v c="$2" '$2 == k && $3 == c { printf "%s%.0f", sep, $5; sep = " / " }' "$RAW"
}
med_wal() {
	awk -F '\t' -v k="$1" -v c="$2" '$2 == k && $3 == c && $6 > 0 { print $8 / $6 }' "$RAW" | median
}
calc() {
	awk "BEGIN { printf \"$1\", $2 }"
}
verdict() {	# verdict MEASURED OP TARGET
	if awk -v m="$1" -v t="$3" "BEGIN { exit !(m $2 t) }"; then echo PASS; else echo MISS; fi
}

declare -A TPS WAL
for c in "${CLIENTS[@]}"; do
	for s in "${SCENARIOS[@]}"; do
		read -r key script events <<<"$s"
		TPS[$key,$c]="$(med_tps "$key" "$c")"
		WAL[$key,$c]="$(med_wal "$key" "$c")"
	done
done
ratio() {	# ratio KEY CLIENTS: median tps over the baseline's
	calc "%.2f" "${TPS[$1,$2]} / ${TPS[baseline,$2]}"
}
by_clients() {	# by_clients KEY OTHER: "R at 1 client(s), R at 8 client(s)", R = tps / tps
	local c
	for c in "${CLIENTS[@]}"; do
		echo "$(calc "%.2f" "${TPS[$1,$c]} / ${TPS[$2,$c]}") at $c client(s)"
	done | paste -sd ',' | sed 's/,/, /g'
}
wal_event() {	# wal_event KEY CLIENTS EVENTS
	awk -v s="${WAL[$1,$2]}" -v b="${WAL[baseline,$2]}" -v n="$3" \
		'BEGIN { x = (s - b) / n; if (x > -0.5 && x < 0.5) x = 0; printf "%.0f", x }'
}

mkdir -p "$top/bench/results"
report="$top/bench/results/producer-$(date +%Y%m%d-%H%M%S).md"
commit="$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$top" diff --quiet HEAD -- src sql 2>/dev/null || commit="$commit+uncommitted"
errors="$(awk -F '\t' '{ s += $7 } END { print s + 0 }' "$RAW")"
{
	echo "# emissions producer benchmark, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "$(q "SELECT version()" | cut -d, -f1); emissions $commit; $(nproc) CPUs;" \
		"pgbench -M prepared -T $DURATION, $ROUNDS rounds alternated, median shown;" \
		"fsync=$(q "SHOW fsync"), synchronous_commit=$(q "SHOW synchronous_commit")," \
		"full_page_writes=$(q "SHOW full_page_writes"), shared_buffers=$(q "SHOW shared_buffers")," \
		"autovacuum off; tables truncated and CHECKPOINT before each run;" \
		"~200-byte JSON payload per event; pgbench failed transactions: $errors."
	echo
	echo "| scenario | clients | events/tx | median tps | tps per round | vs baseline | WAL B/tx | WAL B/event |"
	echo "|---|---:|---:|---:|---|---:|---:|---:|"
	for c in "${CLIENTS[@]}"; do
		for s in "${SCENARIOS[@]}"; do
			read -r key script events <<<"$s"
			if [ "$events" -eq 0 ]; then we="-"; else we="$(wal_event "$key" "$c" "$events")"; fi
			echo "| $(label "$key") | $c | $events | $(calc "%.0f" "${TPS[$key,$c]}") | $(rounds_tps "$key" "$c") | $(ratio "$key" "$c") | $(calc "%.0f" "${WAL[$key,$c]}") | $we |"
		done
	done
	echo
	echo "One statement per event: emissions tps / control tps (same statements, nothing stored)"
	for c in "${CLIENTS[@]}"; do
		for n in 1 10; do
			echo "$(calc "%.2f" "${TPS[emissions-$n,$c]} / ${TPS[control-$n,$c]}") at $c client(s) and $n event(s)/tx"
		done
	done | paste -sd ',' | sed 's/,/, /g; s/$/./'
	echo
	echo "Events in the business statement (no added round trip): tps / baseline tps"
	for c in "${CLIENTS[@]}"; do
		for n in 1 10; do
			echo "$c client(s), $n event(s)/tx: emissions $(ratio inline-emissions-$n "$c"), hand-written $(ratio inline-hand-$n "$c"), PgQ $(ratio inline-pgq-$n "$c"), pg_notify $(ratio inline-notify-$n "$c"), control $(ratio inline-control-$n "$c")"
		done
	done
	echo
	echo "Bulk (100 events in one statement): emissions tps / hand-written outbox tps" \
		"$(by_clients bulk-emissions-100 bulk-hand-100);" \
		"emissions tps / PgQ tps $(by_clients bulk-emissions-100 bulk-pgq-100)"
	echo "(the control that only builds the 100 payloads bounds them: control / hand-written" \
		"$(by_clients bulk-build-100 bulk-hand-100); control / PgQ" \
		"$(by_clients bulk-build-100 bulk-pgq-100))."
	echo
	echo "PgQ, the established queue (pgq.insert_event per event, metadata in ev_extra1):"
	echo
	echo "| events | clients | events/tx | PgQ vs baseline | emissions vs baseline | emissions tps / PgQ tps | WAL B/event PgQ | emissions | hand-written |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for c in "${CLIENTS[@]}"; do
		for v in "a statement each:1:pgq-1:emissions-1:hand-1" \
			"a statement each:10:pgq-10:emissions-10:hand-10" \
			"one statement (bulk):100:bulk-pgq-100:bulk-emissions-100:bulk-hand-100" \
			"in the business statement:1:inline-pgq-1:inline-emissions-1:inline-hand-1" \
			"in the business statement:10:inline-pgq-10:inline-emissions-10:inline-hand-10"; do
			IFS=: read -r how n p e h <<<"$v"
			echo "| $how | $c | $n | $(ratio "$p" "$c") | $(ratio "$e" "$c") | $(calc "%.2f" "${TPS[$e,$c]} / ${TPS[$p,$c]}") | $(wal_event "$p" "$c" "$n") | $(wal_event "$e" "$c" "$n") | $(wal_event "$h" "$c" "$n") |"
		done
	done
	echo
	echo "Buffer memory with $mem_events events of ${mem_payload}-byte JSON payload pending" \
		"(emissions_buffer_status()): pending_bytes $mem_pending" \
		"($(calc "%.0f" "$mem_pending / $mem_events") B/event)," \
		"memory_bytes $mem_memory ($(calc "%.0f" "$mem_memory / $mem_events") B/event)," \
		"spilled_bytes $mem_spilled."
	echo
	echo "| target (from the issue) | measured | verdict |"
	echo "|---|---:|---|"
	r="$(ratio emissions-1 8)"
	echo "| 8 clients, 1 event/tx: emissions >= 0.90 x baseline tps | $r | $(verdict "$r" '>=' 0.9) |"
	r="$(ratio emissions-10 8)"
	echo "| 8 clients, 10 events/tx: emissions >= 0.60 x baseline tps | $r | $(verdict "$r" '>=' 0.6) |"
	r="$(ratio inline-emissions-1 8)"
	echo "| same, events in the business statement, 1 event/tx: >= 0.90 | $r | $(verdict "$r" '>=' 0.9) |"
	r="$(ratio inline-emissions-10 8)"
	echo "| same, events in the business statement, 10 events/tx: >= 0.60 | $r | $(verdict "$r" '>=' 0.6) |"
	for c in 8 1; do
		r="$(calc "%.2f" "${TPS[bulk-emissions-100,$c]} / ${TPS[bulk-hand-100,$c]}")"
		echo "| bulk, $c client(s): emissions >= 3 x hand-written outbox tps | $r | $(verdict "$r" '>=' 3) |"
	done
	for c in "${CLIENTS[@]}"; do
		for n in 1 10 100; do
			if [ "$n" -eq 100 ]; then e=bulk-emissions-100 h=bulk-hand-100; else e=emissions-$n h=hand-$n; fi
			we="$(wal_event "$e" "$c" "$n")" wh="$(wal_event "$h" "$c" "$n")"
			echo "| $c client(s), $n event(s)/tx: WAL per event below the hand-written outbox | $we vs $wh B | $(verdict "$we" '<' "$wh") |"
		done
	done
} | tee "$report"
echo
echo "# report written to ${report#"$top"/}"
[ -z "${BENCH_RAW:-}" ] || cp "$RAW" "$BENCH_RAW"

if [ "$broken" -ne 0 ] || [ "$errors" -ne 0 ]; then
	echo "# the benchmark itself had errors (see the messages above)" >&2
	exit 1
fi
