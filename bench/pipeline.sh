#!/usr/bin/env bash
# bench/pipeline.sh: producers and delivery together, each system with the
# delivery a user would run, side by side in one run.
#
# Starts a throwaway cluster (test/lib.sh: postgres OS user, unix socket in a
# mktemp directory, stopped by data directory from an EXIT trap) with
# shared_preload_libraries = 'emissions', fsync and synchronous_commit on,
# timezone UTC, otherwise initdb's defaults (autovacuum on).  Scenarios, each
# pgbench -M prepared with bench/producer/'s scripts (a business row, then 1
# or 10 ~195-byte events, one statement each):
#   baseline   the business row only; nothing delivers
#   emissions  emissions_emit; the delivery worker NOTIFYs every envelope on
#              "emissions", where a LISTEN consumer (bench/pipeline.c listen)
#              takes them
#   outbox     INSERT INTO outbox_hand; a relay (bench/pipeline.c relay) wakes
#              on a NOTIFY on outbox_wake or every RELAY_POLL_MS, takes up to
#              RELAY_BATCH rows ORDER BY id FOR UPDATE SKIP LOCKED, NOTIFYs
#              each on "outbox", deletes them and commits; a LISTEN consumer
#              takes them
#   pgq        pgq.insert_event; pgqd ticks every PGQ_TICK seconds (queue
#              ticker_max_lag the same), a consumer (bench/pipeline.c pgq)
#              runs next_batch / get_batch_events / finish_batch, polling
#              every RELAY_POLL_MS when no batch is ready
# at 1 and 8 clients (-j 1 and 2) and 1 and 10 events per transaction;
# every scenario once per round, ROUNDS rounds, the three systems' order
# rotated every round.  A run: the delivering processes are started, then
# pgbench runs DURATION seconds, then the script waits (WAIT seconds at
# most) until the consumer has received every event, and stops them.
#
# Per run: producer tps and its ratio to the same round's baseline, events
# delivered per second while the producers ran, delivery lag (the consumer's
# clock at receipt minus the event's stamp: emissions' emitted_at, the
# outbox's created_at default now(), PgQ's ev_time; p50 and p99 over every
# event of the run), the CPU time of the delivering processes (from
# /proc/PID/stat; emissions: the worker; outbox: the relay and its backend;
# PgQ: pgqd, its backends, the consumer and its backend) per event, and WAL
# per event (pg_current_wal_lsn() from the start of the run to the end of
# the delivery, less the baseline's WAL per transaction).  The report gives
# the median over the rounds and the goals as PASS/MISS (a MISS does not
# fail the run).  Exits non-zero only when the benchmark broke: pgbench
# errors, an event not delivered or delivered twice (the consumer's count
# must equal the events produced), business rows missing, a delivering
# process dying.
#
# Installs postgresql-PG_MAJOR-pgq3 and pgqd with apt-get when missing.
#
# Usage: bash bench/pipeline.sh        (as root, from anywhere; ~10 minutes)
# Environment: PG_MAJOR (15; see test/lib.sh), ROUNDS (3), DURATION (seconds
# of producers per run, 8: the knob for longer rounds), WAIT (120),
# RELAY_BATCH (1000), RELAY_POLL_MS (100), PGQ_TICK (0.1); to run a part
# only (the goals need all of it): CLIENTS ("1 8"), EVENTS ("1 10"),
# SYSTEMS ("emissions outbox pgq").
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../test/lib.sh"
become_root "$@"
cd "$top"
# shellcheck source=bench/delivery/common.sh
source "$top/bench/delivery/common.sh"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8}"
WAIT="${WAIT:-120}"
RELAY_BATCH="${RELAY_BATCH:-1000}"
RELAY_POLL_MS="${RELAY_POLL_MS:-100}"
PGQ_TICK="${PGQ_TICK:-0.1}"
SCRIPTS="$top/bench/producer"
read -r -a CLIENTS <<<"${CLIENTS:-1 8}"
read -r -a EVENTS <<<"${EVENTS:-1 10}"
read -r -a SYSTEMS <<<"${SYSTEMS:-emissions outbox pgq}"

prepare
PGBENCH="$PGBIN/pgbench"

# PgQ and its ticker daemon.  Where apt may start services, the package
# starts a pgqd for the default cluster, which cannot reach this one (unix
# socket in a mktemp directory, no TCP).
missing=()
for p in "postgresql-$PG_MAJOR-pgq3" pgqd; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "# installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PGQD="$(command -v pgqd)"

cluster_start "shared_preload_libraries = 'emissions'" "max_worker_processes = 32" \
	"fsync = on" "synchronous_commit = on" "timezone = 'UTC'"
q "\\i $SCRIPTS/setup.sql" >/dev/null
q "SELECT pgq.set_queue_config('bench', 'ticker_max_lag', '$PGQ_TICK seconds')" >/dev/null
q "SELECT pgq.register_consumer('bench', 'bench_consumer')" >/dev/null
require_delivery
build_bench_c pipeline
CHANNEL="$(q "SHOW emissions.notify_channel")"
RAW="$CLUSTER/raw.tsv"
: >"$RAW"
broken=0
PIDS=()	# the helpers of the current run, stopped after it (and by the trap)

stop_helpers() {
	local pid
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap 'stop_helpers; cleanup_clusters' EXIT

# CPU time (user + system, clock ticks) of the processes PIDS, summed; a
# process that is gone counts 0.
cpu_ticks() {
	local pid sum=0 t
	for pid in "$@"; do
		t="$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)"
		sum=$((sum + t))
	done
	echo "$sum"
}

# Start bench/pipeline.c MODE with its output in DIR, wait until it is ready.
start_helper() {
	local dir="$1"
	shift
	mkdir -p "$dir"
	"$CLUSTER/pipeline" "$@" -o "$dir" 2>>"$CLUSTER/helpers.log" &
	PIDS+=($!)
	wait_for "test -e $dir/ready" || {
		echo "# bench/pipeline.c $1 did not start (see below)" >&2
		sed 's/^/#   /' "$CLUSTER/helpers.log" >&2
		exit 1
	}
}

# Wait up to 10 s until COMMAND succeeds.
wait_for() {
	local _
	for _ in $(seq 1 100); do
		eval "$1" && return 0
		sleep 0.1
	done
	return 1
}

# Start pgqd on the benchmark's database; prints its PID and its backends'.
start_pgqd() {
	local dir="$1"
	mkdir -p "$dir"
	cat >"$dir/pgqd.ini" <<-EOF
		[pgqd]
		logfile = $dir/pgqd.log
		pidfile = $dir/pgqd.pid
		base_connstr = host=$PGHOST port=$PGPORT user=postgres application_name=pgqd
		initial_database = postgres
		database_list = postgres
		ticker_period = $PGQ_TICK
	EOF
	"$PGQD" "$dir/pgqd.ini" >>"$dir/pgqd.out" 2>&1 &
	PIDS+=($!)
	wait_for "[ \"\$(q \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgqd' AND datname = current_database()\")\" -gt 0 ]" || {
		echo "# pgqd did not connect; its log:" >&2
		sed 's/^/#   /' "$dir/pgqd.log" "$dir/pgqd.out" >&2 || true
		exit 1
	}
}

# The count a helper in DIR has received so far.
helper_count() {
	cat "$1/count" 2>/dev/null || echo 0
}

# Lag p50 and p99 (ms) of DIR/samples, and how many were received by T_US
# (microseconds since the epoch).
lag_figures() {
	local n
	n="$(awk -v t="$2" '$1 <= t { n++ } END { print n + 0 }' "$1/samples")"
	cut -f2 "$1/samples" | sort -n | awk -v by="$n" '{ v[NR] = $1 } END {
		if (NR == 0) { print "0 0 " by; exit }
		i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
		i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
		printf "%.2f %.2f %d\n", v[i50] / 1000, v[i99] / 1000, by }'
}

epoch_us() {
	date +%s%6N
}

# One run: run_one ROUND SYSTEM CLIENTS EVENTS.  Appends to $RAW:
# round system clients events tps xacts wal_bytes delivered_during
# lag_p50_ms lag_p99_ms cpu_ticks drain_secs
run_one() {
	local round="$1" sys="$2" c="$3" e="$4" j script dir out status=0
	local consumer cpu_pids=() lsn0 lsn1 cpu0 cpu1 t1 t2 pid xacts tps expected
	local got p50=0 p99=0 during=0 extra
	j=$((c > 1 ? 2 : 1))
	dir="$CLUSTER/run-$round-$sys-c$c-e$e"
	out="$dir/pgbench.out"
	mkdir -p "$dir"
	case "$sys" in
	baseline) script=baseline.sql ;;
	emissions) script="emissions_$e.sql" ;;
	outbox) script="hand_$e.sql" ;;
	pgq) script="pgq_$e.sql" ;;
	esac
	q "TRUNCATE bench_orders"
	case "$sys" in
	emissions)
		consumer="$dir/listen"
		start_helper "$consumer" listen -c "$CHANNEL" -k emitted_at
		cpu_pids=("$(stats_col worker_pid)")
		;;
	outbox)
		consumer="$dir/listen"
		start_helper "$consumer" listen -c outbox -k created_at
		start_helper "$dir/relay" relay -c outbox -b "$RELAY_BATCH" -p "$RELAY_POLL_MS"
		cpu_pids=("${PIDS[-1]}" "$(cat "$dir/relay/backend_pid")")
		;;
	pgq)
		start_pgqd "$dir/pgqd"
		cpu_pids=("${PIDS[-1]}")
		start_helper "$dir/pgq" pgq -p "$RELAY_POLL_MS"
		consumer="$dir/pgq"
		cpu_pids+=("${PIDS[-1]}" "$(cat "$consumer/backend_pid")")
		# shellcheck disable=SC2207
		cpu_pids+=($(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgqd'"))
		;;
	esac
	q "CHECKPOINT"
	lsn0="$(q "SELECT pg_current_wal_lsn()")"
	cpu0="$(cpu_ticks ${cpu_pids[@]+"${cpu_pids[@]}"})"
	"$PGBENCH" -n -M prepared -c "$c" -j "$j" -T "$DURATION" \
		-f "$SCRIPTS/$script" >"$out" 2>&1 || status=$?
	t1="$(epoch_us)"
	pgbench_ok "$out" "$status" || broken=1
	xacts="$(pgbench_xacts "$out")" tps="$(pgbench_tps "$out")"
	xacts="${xacts:-0}" tps="${tps:-0}"
	expected=0
	[ "$sys" = baseline ] || expected=$((xacts * e))
	if [ "$sys" != baseline ]; then
		# Wait for the consumer to hold every event.
		while [ "$(helper_count "$consumer")" -lt "$expected" ] &&
			[ $(($(epoch_us) - t1)) -lt $((WAIT * 1000000)) ]; do
			sleep 0.05
		done
	fi
	t2="$(epoch_us)"
	cpu1="$(cpu_ticks ${cpu_pids[@]+"${cpu_pids[@]}"})"
	lsn1="$(q "SELECT pg_current_wal_lsn()")"
	# Anything left running (a helper that died) is caught here.
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "# $sys c=$c e=$e: a delivering process (PID $pid) died; see $CLUSTER/helpers.log" >&2
			broken=1
		fi
	done
	sleep 0.2	# a duplicate would arrive now
	stop_helpers
	if [ "$sys" != baseline ]; then
		got="$(helper_count "$consumer")"
		read -r p50 p99 during < <(lag_figures "$consumer" "$t1")
		if [ "$got" -ne "$expected" ]; then
			echo "# BROKEN: $sys c=$c e=$e: $expected events produced, the consumer received $got" >&2
			broken=1
		fi
	fi
	if [ "$(q "SELECT count(*) FROM bench_orders")" -ne "$xacts" ]; then
		echo "# BROKEN: $sys c=$c e=$e: $xacts transactions but not as many business rows" >&2
		broken=1
	fi
	if [ "$sys" = outbox ] && [ "$(q "SELECT count(*) FROM outbox_hand")" -ne 0 ]; then
		echo "# BROKEN: outbox c=$c e=$e: rows left in outbox_hand after the relay" >&2
		broken=1
	fi
	extra="$(q "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::bigint")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$sys" "$c" "$e" \
		"$tps" "$xacts" "$extra" "$during" "$p50" "$p99" "$((cpu1 - cpu0))" \
		"$(calc "%.2f" "($t2 - $t1) / 1e6")" >>"$RAW"
	printf '# round %s/%s %-9s c=%s e=%-2s %8.1f tps  %7d events, %7d by the stop; lag p50 %s ms p99 %s ms; drained %s s later\n' \
		"$round" "$ROUNDS" "$sys" "$c" "$e" "$tps" "$expected" "$during" "$p50" "$p99" \
		"$(calc "%.1f" "($t2 - $t1) / 1e6")" >&2
}

runs=$((ROUNDS * ${#CLIENTS[@]} * (1 + ${#EVENTS[@]} * ${#SYSTEMS[@]})))
echo "# $runs runs of ${DURATION}s: $ROUNDS rounds x ${#CLIENTS[@]} client counts x (baseline + ${#EVENTS[@]} event counts x ${#SYSTEMS[@]} systems)" >&2
for round in $(seq 1 "$ROUNDS"); do
	for c in "${CLIENTS[@]}"; do
		run_one "$round" baseline "$c" 0
		for e in "${EVENTS[@]}"; do
			for k in "${!SYSTEMS[@]}"; do
				run_one "$round" "${SYSTEMS[$(((round + k) % ${#SYSTEMS[@]}))]}" "$c" "$e"
			done
		done
	done
done

# Figures: the median over the rounds of field F (awk) of SYSTEM at C, E.
field() {	# field SYSTEM C E AWK-EXPR
	awk -F '\t' -v s="$1" -v c="$2" -v e="$3" "\$2 == s && \$3 == c && \$4 == e { print $4 }" "$RAW" | median
}
# Producer tps over the same round's baseline, median over the rounds.
ratio() {	# ratio SYSTEM C E
	awk -F '\t' -v s="$1" -v c="$2" -v e="$3" '
		$2 == "baseline" && $3 == c { base[$1] = $5 }
		$2 == s && $3 == c && $4 == e { tps[$1] = $5 }
		END { for (r in tps) if (base[r] > 0) print tps[r] / base[r] }' "$RAW" | median
}
# WAL per event: the run's WAL less the same round's baseline WAL per
# transaction times its transactions, over its events.
wal_event() {	# wal_event SYSTEM C E
	awk -F '\t' -v s="$1" -v c="$2" -v e="$3" '
		$2 == "baseline" && $3 == c && $6 > 0 { base[$1] = $7 / $6 }
		$2 == s && $3 == c && $4 == e && $6 > 0 { wal[$1] = $7; x[$1] = $6 }
		END { for (r in wal) print (wal[r] - base[r] * x[r]) / (x[r] * e) }' "$RAW" | median
}
hz="$(getconf CLK_TCK)"
CLIENTS_AHEAD=("${CLIENTS[@]}")	# the cells "ahead of both" is judged in

report="$(report_file pipeline)"
{
	echo "# emissions pipeline benchmark: producers and delivery together, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "$(environment_line)."
	echo "pgbench -M prepared -T $DURATION, 1 client (-j 1) and 8 (-j 2), bench/producer/'s" \
		"scripts (a business row, then 1 or 10 ~195-byte events, one statement each);" \
		"$ROUNDS rounds, the systems' order rotated every round, median over the rounds." \
		"emissions: its delivery worker NOTIFYs, a LISTEN consumer receives." \
		"Hand-written outbox: a relay polling every $RELAY_POLL_MS ms (or woken by NOTIFY outbox_wake)," \
		"up to $RELAY_BATCH rows ORDER BY id FOR UPDATE SKIP LOCKED, a pg_notify each, DELETE, COMMIT;" \
		"a LISTEN consumer receives. PgQ: pgqd ticking every $PGQ_TICK s (ticker_max_lag $PGQ_TICK s)," \
		"a consumer polling next_batch every $RELAY_POLL_MS ms, get_batch_events, finish_batch."
	echo
	echo "Producer ratio: tps over the same round's no-event baseline. Delivered/s: events the" \
		"consumer received while the producers ran, per second. Lag: receipt minus the event's" \
		"stamp (emitted_at, created_at, ev_time), over every event. CPU/event: the delivering" \
		"processes (emissions: the worker; outbox: the relay and its backend; PgQ: pgqd and its" \
		"backends, the consumer and its backend) from /proc/PID/stat, until everything was" \
		"received. WAL/event: WAL from the start of the run to the end of the delivery, less" \
		"the baseline's WAL per transaction."
	echo
	echo "| clients | events/tx | system | producer tps | vs baseline | delivered/s | lag p50 ms | lag p99 ms | drain after stop s | CPU/event us | WAL/event B |"
	echo "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for c in "${CLIENTS[@]}"; do
		echo "| $c | 0 | baseline | $(calc "%.0f" "$(field baseline "$c" 0 '$5')") | 1.00 | - | - | - | - | - | - |"
		for e in "${EVENTS[@]}"; do
			for s in "${SYSTEMS[@]}"; do
				case "$s" in
				emissions) name=emissions ;;
				outbox) name="hand-written outbox + relay" ;;
				pgq) name="PgQ + pgqd + consumer" ;;
				esac
				echo "| $c | $e | $name | $(calc "%.0f" "$(field "$s" "$c" "$e" '$5')") |" \
					"$(calc "%.2f" "$(ratio "$s" "$c" "$e")") |" \
					"$(calc "%.0f" "$(field "$s" "$c" "$e" "\$8 / $DURATION")") |" \
					"$(field "$s" "$c" "$e" '$9') | $(field "$s" "$c" "$e" '$10') |" \
					"$(field "$s" "$c" "$e" '$12') |" \
					"$(calc "%.1f" "$(field "$s" "$c" "$e" "(\$6 > 0 ? 1e6 * \$11 / $hz / (\$6 * \$4) : 0)")") |" \
					"$(calc "%.0f" "$(wal_event "$s" "$c" "$e")") |"
			done
		done
	done
	echo
	echo "| goal (from issue 15) | measured | verdict |"
	echo "|---|---|---|"
	[ "${#SYSTEMS[@]}" -eq 3 ] || CLIENTS_AHEAD=()
	for c in ${CLIENTS_AHEAD[@]+"${CLIENTS_AHEAD[@]}"}; do
		for e in "${EVENTS[@]}"; do
			re="$(calc "%.2f" "$(ratio emissions "$c" "$e")")"
			ro="$(calc "%.2f" "$(ratio outbox "$c" "$e")")"
			rp="$(calc "%.2f" "$(ratio pgq "$c" "$e")")"
			if [ "$(verdict "$re" '>' "$ro")" = PASS ] && [ "$(verdict "$re" '>' "$rp")" = PASS ]; then
				v=PASS
			else
				v=MISS
			fi
			echo "| $c client(s), $e event(s)/tx: emissions ahead of both (producer ratio) | emissions $re, outbox $ro, PgQ $rp | $v |"
		done
	done
	if awk -F '\t' '$2 == "emissions" && $3 == 8 && $4 == 1 { found = 1 } END { exit !found }' "$RAW"; then
		r="$(calc "%.2f" "$(ratio emissions 8 1)")"
		echo "| 8 clients, 1 event/tx: emissions >= 0.70 x baseline with delivery running | $r | $(verdict "$r" '>=' 0.7) |"
		u="$(calc "%.1f" "$(field emissions 8 1 "(\$6 > 0 ? 1e6 * \$11 / $hz / \$6 : 0)")")"
		echo "| 8 clients, 1 event/tx: worker CPU <= 15 us per event | $u us | $(verdict "$u" '<=' 15) |"
	fi
	echo
	echo "Producer tps per round (baseline, emissions, outbox, PgQ):"
	echo
	echo '```'
	for c in "${CLIENTS[@]}"; do
		for e in "${EVENTS[@]}"; do
			printf 'c=%s e=%-2s' "$c" "$e"
			for s in baseline "${SYSTEMS[@]}"; do
				ee="$e"
				[ "$s" = baseline ] && ee=0
				printf '  %s %s' "$s" "$(awk -F '\t' -v s="$s" -v c="$c" -v e="$ee" \
					'$2 == s && $3 == c && $4 == e { printf "%s%.0f", sep, $5; sep = "/" }' "$RAW")"
			done
			echo
		done
	done
	echo '```'
} | tee "$report"
echo
echo "# report written to ${report#"$top"/}"

if [ "$broken" -ne 0 ]; then
	echo "# BROKEN: the benchmark itself had errors (see the messages above)" >&2
	exit 1
fi
