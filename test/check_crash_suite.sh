#!/usr/bin/env bash
# test/check_crash_suite.sh: exactly once into tables and stable ids for a
# consumer, across crashes and worker kills (the Delivery section's
# "Exactly once into tables", rules 1, 2, 5 and 6, and "Stable ids").
#
# Four pgbench clients commit transactions that each insert three business
# rows and emit one event naming each row (its id and a random key, which
# no later row can take again even if a crash lost the row).  Each
# transaction commits, at random, with synchronous_commit on or off
# (CRASH_PRODUCER_SYNC=on or off: all of them so); the row and its event
# say which.  A table adapter receives the
# events, and emissions_consume follows them from id 0 the whole time,
# writing JSON lines to a file.  Rounds, each under that load:
#
#   1. the server is stopped with -m immediate (no shutdown checkpoint:
#      recovery replays the WAL) after a random 1 to 2.5 s, and started
#      again.  Before the first one, a committed 5000-event transaction
#      that spilled to disk, two prepared transactions with events and an
#      open transaction that has flushed a batch are left for the crash;
#      after it, the prepared ones are still there and undelivered, the
#      open one's batch is gone, then COMMIT PREPARED gets one's events
#      delivered once and ROLLBACK PREPARED the other's never;
#   2. the delivery worker is killed at a random point of its work with
#      SIGKILL (the postmaster restarts everything: crash recovery) and
#      with SIGTERM (the worker exits, the launcher starts it again),
#      alternately, then with SIGTERMs in a row; each time a new worker
#      must start, after a SIGTERM (a request, not a failure) within 1 s
#      of the launcher noticing, however many came before it.
#
# After every round, once the load has stopped and the worker has drained
# the outbox (emissions_wait_delivered): every committed business row's
# event is in the adapter table exactly once and in the event log exactly
# once, nothing else is in either, each transaction's events have
# consecutive ids in emit order and its txid, the table and the log agree
# on ids, nothing is pending or failed; the consumer has printed ids in
# strictly increasing order, every committed business row exactly once
# (a second time would be a repeat under a new id), never one of a
# transaction whose commit a crash lost or that rolled back (a phantom),
# and never an id that the log gives to another event.  Repeats and
# phantoms are counted by the producers' synchronous_commit, reported, and
# fail the run.  At the end no server process but the killed workers died
# of a signal.
#
# The CI form is short (under a minute).  The long form, by hand (about
# 17 minutes on a busy 2-core machine):
#   CRASH_CYCLES=30 CRASH_KILLS=30 bash test/check_crash_suite.sh
# CRASH_CYCLES: immediate shutdowns (3); CRASH_KILLS: worker kills
# alternating SIGKILL and SIGTERM (2); CRASH_TERM_STREAK: SIGTERMs in a
# row after those (3); CRASH_SEED: seed of the random delays.  The last
# lines are a summary and a table row for docs/internals.md: shutdowns, SIGKILLs,
# SIGTERMs, transactions committed, events, lost, duplicated in the table,
# repeated to the consumer under new ids and phantom events (each as
# producers at synchronous_commit on / off).  EMISSIONS_CONSUME names
# another consumer build to run.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
	exec sudo env CRASH_CYCLES="${CRASH_CYCLES:-}" \
		CRASH_KILLS="${CRASH_KILLS:-}" \
		CRASH_PRODUCER_SYNC="${CRASH_PRODUCER_SYNC:-}" \
		CRASH_TERM_STREAK="${CRASH_TERM_STREAK:-}" \
		CRASH_SEED="${CRASH_SEED:-}" EMISSIONS_BUILT="${EMISSIONS_BUILT:-}" \
		${EMISSIONS_PGBIN:+EMISSIONS_PGBIN="$EMISSIONS_PGBIN"} \
		EMISSIONS_CONSUME="${EMISSIONS_CONSUME:-}" bash "$0" "$@"
fi
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
prepare

cycles="${CRASH_CYCLES:-3}"
kills="${CRASH_KILLS:-2}"
streak="${CRASH_TERM_STREAK:-3}"
seed="${CRASH_SEED:-$$}"
producer_sync="${CRASH_PRODUCER_SYNC:-both}"
RANDOM="$seed"
comment "immediate shutdowns: $cycles; worker kills: $kills, then SIGTERMs in a row: $streak; producers' synchronous_commit: $producer_sync; seed $seed"

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "max_prepared_transactions = 10"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION emissions;
CREATE SEQUENCE business_ids;
-- key: no row after a crash can have the key of a row the crash lost (its
-- id or txid can be given again when the producer did not wait for its
-- flush); sync: the producer's synchronous_commit.
CREATE TABLE business (id bigint PRIMARY KEY, txid xid8 NOT NULL,
	key uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
	sync text NOT NULL DEFAULT current_setting('synchronous_commit'));
-- No key: a duplicate delivery must show, not fail.
CREATE TABLE delivered (id bigint, type text, payload jsonb, txid xid8);
SELECT emissions_add_adapter('crash_sink', 'table', 'delivered', 'crash.*');
-- The consumer's output, loaded after each round; seq keeps line order.
CREATE TABLE consumed (seq bigserial PRIMARY KEY, line jsonb NOT NULL);
-- The event log (emissions_events), copied after each round.
CREATE TABLE logged (id bigint, type text, payload jsonb, txid xid8);
SQL

# The emit of a row's event, in a query over rows (id, key, sync).
emit_rows="SELECT count(emissions_emit('crash.row',
		jsonb_build_object('id', id, 'key', key, 'sync', sync)))
  FROM (SELECT id, key, sync FROM rows ORDER BY id) AS r"

# The load: one script per producer synchronous_commit, pgbench picks one
# at random for each transaction.
load_scripts=()
for sync in on off; do
	case "$producer_sync" in both | "$sync") ;; *) continue ;; esac
	cat >"$CLUSTER/load_$sync.sql" <<SQL
BEGIN;
SET LOCAL synchronous_commit = $sync;
SELECT emissions_start();
WITH rows AS (
	INSERT INTO business (id, txid)
	SELECT nextval('business_ids'), pg_current_xact_id()
	  FROM generate_series(1, 3)
	RETURNING id, key, sync
)
$emit_rows;
COMMIT;
SQL
	chmod a+r "$CLUSTER/load_$sync.sql"
	load_scripts+=(-f "$CLUSTER/load_$sync.sql")
done
if [ "${#load_scripts[@]}" -eq 0 ]; then
	echo "CRASH_PRODUCER_SYNC must be on, off or both" >&2
	exit 2
fi

out="$CLUSTER/consumer.out"
err="$CLUSTER/consumer.err"
log="$CLUSTER/server.log"
consumer=""
load=""
open_client=""
killed_pids=()
term_delays=()
sigkills=0
sigterms=0
rounds=0

# Stop what this script started in the background, then the cluster.
stop_all() {
	local pid
	for pid in "$load" "$open_client" "$consumer"; do
		if [ -n "$pid" ]; then
			kill "$pid" 2>/dev/null || true
		fi
	done
	cleanup_clusters
}
trap stop_all EXIT

# Run SQL, printing unaligned tuples only (and errors, to fail a check).
q() {
	psql -X -At -v ON_ERROR_STOP=1 -c "$1" 2>&1
}

# Print the current time in milliseconds.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# Sleep a random time between $1 and $2 milliseconds.
random_sleep() {
	local ms=$(($1 + RANDOM % ($2 - $1 + 1)))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
}

# Print how many times the server has said it accepts connections.
ready_count() {
	grep -c 'database system is ready to accept connections' "$log" || true
}

# Wait up to 60 s until the server has come up more than $1 times and
# answers; false if it does not.
wait_ready() {
	for _ in $(seq 1 600); do
		if [ "$(ready_count)" -gt "$1" ] &&
			psql -X -At -c 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Print the delivery worker's pid, empty while there is none.
worker_pid() {
	psql -X -At -c 'SELECT worker_pid FROM emissions_stats' 2>/dev/null || true
}

# Wait up to $1 seconds for a delivery worker other than pid $2; print its
# pid, or nothing if none came.
wait_worker() {
	local pid
	for _ in $(seq 1 $(($1 * 20))); do
		pid="$(worker_pid)"
		if [ -n "$pid" ] && [ "$pid" != "$2" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.05
	done
}

# Start the pgbench load in the background.
start_load() {
	pgbench -n -c 4 -j 2 -T 3600 "${load_scripts[@]}" \
		>>"$CLUSTER/pgbench.log" 2>&1 &
	load=$!
}

# End the load (if the server has not ended it already).
stop_load() {
	# (SIGTERM: a background job of a script ignores SIGINT.)
	kill -TERM "$load" 2>/dev/null || true
	wait "$load" || true
	load=""
	# A commit the server was processing when the client left must land
	# before the drain notes what to wait for (a server that is down has
	# no such backend).
	local n
	for _ in $(seq 1 200); do
		n="$(psql -X -At -c "SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'pgbench'" 2>/dev/null || true)"
		[ "${n:-0}" = 0 ] && break
		sleep 0.05
	done
}

# Print the id on the consumer's last complete line (0 if none).
consumer_last_id() {
	local id
	id="$(tail -n 1 "$out" | sed -n 's/^{"id": \([0-9]*\),.*/\1/p')"
	echo "${id:-0}"
}

# Wait up to 30 s for the consumer to print id $1; false if it does not.
wait_consumer() {
	for _ in $(seq 1 300); do
		[ "$(consumer_last_id)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# Load the consumer's complete lines into the table consumed.
load_consumed() {
	local n
	n="$(wc -l <"$out")"
	q 'TRUNCATE consumed' >/dev/null
	head -n "$n" "$out" | psql -X -q -v ON_ERROR_STOP=1 -c \
		"\\copy consumed (line) FROM pstdin WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
}

# The committed business rows' events: per business row (by its key), how
# many times in the table (t), in the log (l) and printed by the consumer
# (c: the consumer prints increasing ids, so a second time is a new id).
counts_sql="
	SELECT b.id, b.txid, b.sync, COALESCE(t.n, 0) AS t,
		   COALESCE(l.n, 0) AS l, COALESCE(c.n, 0) AS c
	  FROM business AS b
	  LEFT JOIN (SELECT payload->>'key' AS key, count(*) AS n
				   FROM delivered GROUP BY 1) AS t ON t.key = b.key::text
	  LEFT JOIN (SELECT payload->>'key' AS key, count(*) AS n
				   FROM logged WHERE type = 'crash.row' GROUP BY 1) AS l
			 ON l.key = b.key::text
	  LEFT JOIN (SELECT line->'payload'->>'key' AS key, count(*) AS n
				   FROM consumed WHERE line->>'type' = 'crash.row'
				  GROUP BY 1) AS c ON c.key = b.key::text"

# The consumer's phantom events: lines of rows no transaction committed
# (a crash lost its commit, or it rolled back), with the producer's
# synchronous_commit as the event says.
phantoms_sql="
	SELECT c.line->'payload'->>'sync' AS sync FROM consumed AS c
	 WHERE NOT EXISTS (SELECT FROM business AS b
					    WHERE b.key::text = c.line->'payload'->>'key')"

# Checks queued by want, run by run_wanted in one psql session.
want_desc=()
want_value=()
want_sql=()

# Queue a check: want DESC EXPECTED SQL (the SQL prints one line).
want() {
	want_desc+=("$1")
	want_value+=("$2")
	want_sql+=("$3")
}

# Run the queued checks, each a check_eq of its SQL's line, and clear them.
run_wanted() {
	local args=() results=() i
	for i in "${!want_sql[@]}"; do
		args+=(-c "${want_sql[$i]}")
	done
	mapfile -t results < <(psql -X -At -v ON_ERROR_STOP=1 "${args[@]}" 2>&1)
	for i in "${!want_sql[@]}"; do
		check_eq "${want_desc[$i]}" "${want_value[$i]}" \
			"${results[$i]:-(no result)}"
	done
	want_desc=()
	want_value=()
	want_sql=()
}

# Drain, then check everything after round $1 (a label).
verify() {
	local label="$1" target rows
	rounds=$((rounds + 1))
	check_eq "$label: the worker delivers everything committed" t \
		"$(q "SELECT emissions_wait_delivered('60s')")"
	q "TRUNCATE logged; INSERT INTO logged
		SELECT id, type, payload, txid FROM emissions_events(0, 2147483647)" \
		>/dev/null
	target="$(q 'SELECT last_event_id FROM emissions_stats')"
	check "$label: the consumer reaches the last id, $target" \
		wait_consumer "$target"
	check "$label: the consumer is still running" kill -0 "$consumer"
	load_consumed >/dev/null ||
		not_ok "$label: the consumer's output loads as JSON lines"

	rows="$(q 'SELECT count(*) FROM business')"
	check "$label: the load committed rows ($rows in all)" \
		test "$rows" -gt "${last_rows:-0}"
	last_rows="$rows"
	want "$label: every committed row's event is in the table once (lost, doubled)" \
		"0 0" "SELECT count(*) FILTER (WHERE t = 0) || ' ' ||
				   count(*) FILTER (WHERE t > 1) FROM ($counts_sql) AS x"
	want "$label: the table holds no event of an uncommitted row" 0 \
		"SELECT count(*) FROM delivered AS d LEFT JOIN business AS b
			ON b.key::text = d.payload->>'key' WHERE b.id IS NULL"
	want "$label: each event in the table carries its row's id and transaction" 0 \
		"SELECT count(*) FROM delivered AS d JOIN business AS b
			ON b.key::text = d.payload->>'key'
		 WHERE d.txid <> b.txid OR (d.payload->>'id')::bigint <> b.id"
	want "$label: no event id is in the table twice" 0 \
		'SELECT count(*) - count(DISTINCT id) FROM delivered'
	want "$label: each transaction's events are all there, with consecutive ids, in emit order" 0 \
		"SELECT count(*) FROM (SELECT txid, count(*) AS n,
				max(id) - min(id) AS span, bool_and(r = i) AS ordered
			  FROM (SELECT txid, id,
					  rank() OVER (PARTITION BY txid ORDER BY id) AS r,
					  rank() OVER (PARTITION BY txid
								   ORDER BY (payload->>'id')::bigint) AS i
					  FROM delivered) AS e GROUP BY txid) AS t
			  FULL JOIN (SELECT txid, count(*) AS rows FROM business
						 GROUP BY txid) AS b USING (txid)
			 WHERE t.n IS DISTINCT FROM b.rows OR span <> n - 1
				OR NOT ordered"
	want "$label: the event log holds each committed row's event once, and nothing else" \
		"0 0" "SELECT (SELECT count(*) FROM ($counts_sql) AS x
						   WHERE l <> 1) || ' ' ||
					   (SELECT count(*) FROM logged AS e
						 WHERE NOT EXISTS (SELECT FROM business AS b
							WHERE b.key::text = e.payload->>'key'))"
	want "$label: the table and the log agree on every event's id" 0 \
		"SELECT count(*) FROM delivered AS d LEFT JOIN logged AS e
				ON e.id = d.id AND e.payload = d.payload AND e.txid = d.txid
			 WHERE e.id IS NULL"
	want "$label: the outbox is empty and no delivery failed" "0|0|0" \
		'SELECT events_pending, dead_letters, retries_pending
		   FROM emissions_stats'
	want "$label: the consumer printed ids in strictly increasing order" 0 \
		"SELECT count(*) FROM (SELECT (line->>'id')::bigint AS id,
				lag((line->>'id')::bigint) OVER (ORDER BY seq) AS prev
				FROM consumed) AS s WHERE id <= prev"
	want "$label: the consumer printed every committed row's event" 0 \
		"SELECT count(*) FROM ($counts_sql) AS x WHERE c = 0"
	want "$label: no repeat under a new id: the consumer printed no event twice" 0 \
		"SELECT count(*) FROM ($counts_sql) AS x WHERE c > 1"
	want "$label: no phantom: the consumer printed nothing of a transaction that did not commit" 0 \
		"SELECT count(*) FROM ($phantoms_sql) AS p"
	want "$label: no id the consumer printed names another event in the log" 0 \
		"SELECT count(*) FROM consumed AS c JOIN logged AS e
				ON e.id = (c.line->>'id')::bigint
			 WHERE e.payload <> c.line->'payload'
				OR e.txid::text <> c.line->>'txid'"
	run_wanted
	comment "$label: $(q "SELECT count(DISTINCT txid) || ' transactions, ' ||
		count(*) || ' events committed; so far repeats under new ids: ' ||
		COALESCE(sum(c - 1) FILTER (WHERE c > 1), 0) || ', phantoms: ' ||
		(SELECT count(*) FROM ($phantoms_sql) AS p) FROM ($counts_sql) AS x")"
}

# Leave a spilled committed transaction, two prepared transactions and an
# open transaction with a flushed batch for the next crash.  Business ids
# -1 to -3 are to be committed prepared, -4 to -6 rolled back, -7 to -9
# belong to the open transaction.
setup_durability() {
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET emissions.max_buffer_bytes = '8kB';
BEGIN;
SELECT emissions_start();
WITH rows AS (
	INSERT INTO business (id, txid)
	SELECT nextval('business_ids'), pg_current_xact_id()
	  FROM generate_series(1, 5000)
	RETURNING id, key, sync
)
$emit_rows;
COMMIT;
BEGIN;
SELECT emissions_start();
WITH rows AS (
	INSERT INTO business (id, txid)
	SELECT g, pg_current_xact_id() FROM generate_series(-3, -1) AS g
	RETURNING id, key, sync
)
$emit_rows;
PREPARE TRANSACTION 'crash_commit';
BEGIN;
SELECT emissions_start();
WITH rows AS (
	INSERT INTO business (id, txid)
	SELECT g, pg_current_xact_id() FROM generate_series(-6, -4) AS g
	RETURNING id, key, sync
)
$emit_rows;
PREPARE TRANSACTION 'crash_rollback';
SQL
	check_eq "the 5000-event transaction spilled to disk" 1 \
		"$(q 'SELECT buffers_spilled FROM emissions_stats')"
	psql -X -At -c "BEGIN" -c "SELECT emissions_start()" \
		-c "WITH rows AS (INSERT INTO business (id, txid)
			SELECT g, pg_current_xact_id() FROM generate_series(-9, -7) AS g
			RETURNING id, key, sync) $emit_rows" \
		-c "SELECT emissions_flush()" -c "SELECT pg_sleep(600)" \
		>"$CLUSTER/open.out" 2>&1 &
	open_client=$!
	for _ in $(seq 1 200); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity
			WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()")" = 1 ] &&
			break
		sleep 0.05
	done
	check_eq "an open transaction has flushed a batch of 3 events" \
		"BEGIN t 3 3" "$(tr '\n' ' ' <"$CLUSTER/open.out" | sed 's/ $//')"
}

# After the crash: the prepared transactions are there, undelivered; then
# one is committed, the other rolled back.
resolve_durability() {
	check_eq "both prepared transactions survived the crash" \
		"crash_commit crash_rollback" \
		"$(q "SELECT string_agg(gid, ' ' ORDER BY gid) FROM pg_prepared_xacts")"
	check_eq "the prepared and open transactions' events are nowhere" "0 0 0" \
		"$(q "SELECT (SELECT count(*) FROM delivered
					   WHERE (payload->>'id')::bigint < 0) || ' ' ||
				   (SELECT count(*) FROM emissions_events(0, 2147483647)
					   WHERE (payload->>'id')::bigint < 0) || ' ' ||
				   (SELECT count(*) FROM consumed
					   WHERE (line->'payload'->>'id')::bigint < 0)")"
	check_eq "the spilled transaction's 5000 events are in the table once" \
		"5000 5000" "$(q "SELECT count(*) || ' ' || count(DISTINCT d.id)
			FROM delivered AS d JOIN business AS b
			  ON b.id = (d.payload->>'id')::bigint
			 WHERE b.txid = (SELECT txid FROM business GROUP BY txid
							  HAVING count(*) = 5000)")"
	q "COMMIT PREPARED 'crash_commit'" >/dev/null
	q "ROLLBACK PREPARED 'crash_rollback'" >/dev/null
	check_eq "then COMMIT PREPARED gets its 3 events delivered once, ROLLBACK PREPARED none" \
		"t -3,-2,-1 -3,-2,-1" "$(psql -X -At -v ON_ERROR_STOP=1 \
			-c "SELECT emissions_wait_delivered('60s')" \
			-c "SELECT (SELECT string_agg(payload->>'id', ','
									ORDER BY id) FROM delivered
						 WHERE (payload->>'id')::bigint < 0) || ' ' ||
					   (SELECT string_agg(payload->>'id', ',' ORDER BY id)
						  FROM emissions_events(0, 2147483647)
						 WHERE (payload->>'id')::bigint < 0)" 2>&1 |
			tr '\n' ' ' | sed 's/ $//')"
}

"${EMISSIONS_CONSUME:-emissions_consume}" --after 0 >"$out" 2>"$err" &
consumer=$!
started="$(now_ms)"

# 1. Immediate shutdowns.
for cycle in $(seq 1 "$cycles"); do
	if [ "$cycle" -eq 1 ]; then
		setup_durability
	fi
	start_load
	random_sleep 1000 2500
	as_pg pg_ctl -D "$CLUSTER/data" -m immediate -w stop >/dev/null
	stop_load
	if [ -n "$open_client" ]; then
		wait "$open_client" || true
		open_client=""
	fi
	if as_pg pg_ctl -D "$CLUSTER/data" -l "$log" -w -t 60 start >/dev/null; then
		ok "shutdown $cycle: the server recovers"
	else
		not_ok "shutdown $cycle: the server recovers"
		sed 's/^/#   /' "$log" | tail -n 20
		exit 1
	fi
	verify "shutdown $cycle"
	if [ "$cycle" -eq 1 ]; then
		resolve_durability
	fi
done

# 2. The worker killed: SIGKILL and SIGTERM alternately, then SIGTERMs in
# a row.
# The launcher restarts a worker that failed after 1 s, doubling with each
# failure in a row up to 60 s, but one stopped by SIGTERM after 1 s always.
total_kills=$((kills + streak))
for k in $(seq 1 "$total_kills"); do
	signal=TERM
	if [ "$k" -le "$kills" ] && [ $((k % 2)) -eq 1 ]; then
		signal=KILL
	fi
	pid="$(wait_worker 90 "")"
	if [ -z "$pid" ]; then
		not_ok "kill $k: there is a delivery worker to kill"
		break
	fi
	start_load
	random_sleep 300 2000
	ready="$(ready_count)"
	t0="$(now_ms)"
	kill -"$signal" "$pid"
	killed_pids+=("$pid")
	# (so that cluster_stop's scan of the log does not count it as a crash)
	echo "$pid" >>"$CLUSTER/expected_crashes"
	if [ "$signal" = KILL ]; then
		sigkills=$((sigkills + 1))
		check "kill $k (SIGKILL): the server recovers" wait_ready "$ready"
	else
		sigterms=$((sigterms + 1))
	fi
	new="$(wait_worker 90 "$pid")"
	t1="$(now_ms)"
	check "kill $k (SIG$signal): a new delivery worker starts" test -n "$new"
	if [ "$signal" = TERM ]; then
		term_delays+=("$(((t1 - t0) / 100))")
		check "kill $k (SIGTERM): the new worker came after $(((t1 - t0) / 1000)).$((((t1 - t0) % 1000) / 100)) s, within 1 s (+ 2.5 s), without backoff" \
			test $((t1 - t0)) -le 3500
	fi
	# Let the new worker deliver under load for a moment.
	random_sleep 300 1000
	stop_load
	verify "kill $k (SIG$signal)"
done

check_eq "the consumer reconnected once after each crash" \
	$((cycles + sigkills)) \
	"$(grep -c 'reconnected; catching up after id' "$err" || true)"

# No server process died of a signal but the workers this script killed.
others="$(grep 'terminated by signal' "$log" |
	grep -v -E "\\(PID ($(
		IFS='|'
		echo "${killed_pids[*]:-0}"
	))\\)" || true)"
check_eq "no server process crashed but the killed workers" "" "$others"
check_eq "no PANIC or failed assertion in the server log" 0 \
	"$(grep -c -E 'PANIC|TRAP:' "$log" || true)"

kill -TERM "$consumer"
for _ in $(seq 1 50); do
	kill -0 "$consumer" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$consumer" 2>/dev/null; then
	not_ok "the consumer ends on SIGTERM"
	kill -KILL "$consumer"
else
	ok "the consumer ends on SIGTERM"
fi
wait "$consumer" || true
consumer=""

# The summary, from the last round's data.
# Repeats and phantoms are given as producers at synchronous_commit on /
# off (the setup's transactions commit at on).
read -r txns events lost doubled repeats_on repeats_off <<<"$(q "SELECT
	count(DISTINCT txid), count(*),
	count(*) FILTER (WHERE t = 0 OR l = 0 OR c = 0),
	count(*) FILTER (WHERE t > 1 OR l > 1),
	COALESCE(sum(c - 1) FILTER (WHERE c > 1 AND sync <> 'off'), 0),
	COALESCE(sum(c - 1) FILTER (WHERE c > 1 AND sync = 'off'), 0)
	FROM ($counts_sql) AS x" | tr '|' ' ')"
read -r phantoms_on phantoms_off <<<"$(q "SELECT
	count(*) FILTER (WHERE sync IS DISTINCT FROM 'off'),
	count(*) FILTER (WHERE sync = 'off') FROM ($phantoms_sql) AS p" |
	tr '|' ' ')"
delays=""
for d in ${term_delays[@]+"${term_delays[@]}"}; do
	delays+="$((d / 10)).$((d % 10)) "
done
elapsed=$((($(now_ms) - started) / 1000))
comment "SIGTERM to new worker, seconds: ${delays:-none}"
comment "summary: $cycles immediate shutdowns, $((sigkills + sigterms)) worker kills ($sigkills SIGKILL, $sigterms SIGTERM), $rounds rounds in $elapsed s; $txns transactions committed, $events events; lost $lost, duplicated in the table $doubled; producers at synchronous_commit on / off: repeated to the consumer under new ids $repeats_on / $repeats_off, phantom events $phantoms_on / $phantoms_off (seed $seed)"
comment "| $cycles | $sigkills | $sigterms | $txns | $events | $lost | $doubled | $repeats_on / $repeats_off | $phantoms_on / $phantoms_off |"

cluster_stop "$CLUSTER"
done_testing
