#!/usr/bin/env bash
# test/check_replication.sh: an adapter table fans out to other clusters
# through PostgreSQL's own logical replication, each event exactly once
# (docs/fan-out.md).
#
# A publisher (emissions preloaded, wal_level = logical) has a table
# adapter for order.* events and a publication of its table with
# publish = 'insert'; two plain clusters subscribe to it as a role that
# may only replicate and read that table.  A few transactions commit before
# the subscriptions exist (the initial copy carries them); then pgbench runs
# transactions that each insert three business rows and emit an order event
# naming each row plus an event the adapter does not want, mixed with
# transactions that emit and roll back.  Meanwhile subscriber B is stopped
# with -m immediate (its apply commits do not wait for their flush, so it
# can lose the last ones) and started again.  Once both subscribers have
# confirmed everything the publisher wrote, each must hold exactly the
# publisher's adapter rows: every committed business row's event once,
# nothing rolled back, nothing unwanted.  An observer on subscriber A checks
# that it never shows part of a transaction.  Subscriber A's table has the
# primary key, as docs/fan-out.md's; subscriber B's has none, so that a
# duplicate would show there as a second row rather than as an apply error.
# Last, the retention DELETE docs/fan-out.md suggests empties the
# publisher's table and leaves the subscribers' copies alone.
#
# REPLICATION_LOAD_SECONDS (default 6) sets how long pgbench runs.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

load_seconds="${REPLICATION_LOAD_SECONDS:-6}"
observer=""
pgbench=""
pub=""
sub_a=""
sub_b=""

# Run psql on the postgres database of the cluster in DIR: on DIR ARGS...
on() {
	local dir="$1"
	shift
	PGHOST="$dir" PGPORT="$(cat "$dir/port")" PGUSER=postgres \
		psql -X -At -v ON_ERROR_STOP=1 -d postgres "$@" 2>&1
}

# Print the result of one statement in the cluster in DIR: q DIR SQL.
q() {
	on "$1" -c "$2"
}

# Succeed once both subscriptions have confirmed LSN on the publisher (a
# slot's confirmed_flush_lsn is what its subscriber has applied and
# flushed); fail after 60 s.
caught_up() {
	local _
	for _ in $(seq 1 600); do
		[ "$(q "$pub" "SELECT count(*) = 2 AND bool_and(confirmed_flush_lsn
			>= '$1') FROM pg_replication_slots
			WHERE slot_name IN ('outbound_a', 'outbound_b')")" = t ] &&
			return 0
		sleep 0.1
	done
	return 1
}

# Wait until the publisher's worker has delivered everything committed and
# both subscribers have confirmed the WAL written until then.
settle() {
	check_eq "$1: the publisher delivered every committed event" t \
		"$(q "$pub" "SELECT emissions_wait_delivered('30s')")"
	check "$1: both subscribers caught up" \
		caught_up "$(q "$pub" 'SELECT pg_current_wal_lsn()')"
}

# EXIT trap: drop the subscriptions that still exist (their slots go with
# them; at most 20 s each, and a failure does not stop the clean-up), then
# stop the subscribers before the publisher, so that no walsender keeps the
# publisher's shutdown waiting.
finish() {
	local dir name pid
	for pid in ${observer:-} ${pgbench:-}; do
		kill "$pid" 2>/dev/null || true
	done
	for name in a b; do
		dir="$(eval echo "\${sub_$name}")"
		if [ -n "$dir" ] && [ -f "$dir/data/postmaster.pid" ]; then
			PGHOST="$dir" PGPORT="$(cat "$dir/port")" PGUSER=postgres \
				timeout 20 psql -X -q -d postgres \
				-c "DROP SUBSCRIPTION IF EXISTS outbound_$name" \
				>/dev/null 2>&1 || true
		fi
	done
	for dir in ${sub_b:+"$sub_b"} ${sub_a:+"$sub_a"}; do
		cluster_stop "$dir"
	done
	cleanup_clusters
}
trap finish EXIT

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "wal_level = logical" \
	"max_wal_senders = 10" "max_replication_slots = 10"
pub="$CLUSTER"
cluster_start "wal_retrieve_retry_interval = '500ms'"
sub_a="$CLUSTER"
cluster_start "wal_retrieve_retry_interval = '500ms'"
sub_b="$CLUSTER"

# The publisher: docs/fan-out.md's set-up, statement for statement.
on "$pub" -q >/dev/null <<'SQL'
CREATE EXTENSION emissions;
CREATE TABLE outbound_events (
    id         bigint PRIMARY KEY,
    type       text NOT NULL,
    payload    jsonb,
    metadata   jsonb,
    emitted_at timestamptz,
    txid       xid8,
    database   text
);
SELECT emissions_add_adapter('to_replicas', 'table', 'outbound_events', 'order.*');
CREATE PUBLICATION outbound FOR TABLE outbound_events WITH (publish = 'insert');
CREATE ROLE replicator LOGIN REPLICATION;
GRANT SELECT ON outbound_events TO replicator;

CREATE SEQUENCE business_ids;
CREATE SEQUENCE rollback_ids;
CREATE TABLE business (id bigint PRIMARY KEY, txid xid8 NOT NULL);
SQL

load="$pub/load.sql"
cat >"$load" <<'SQL'
BEGIN;
SELECT emissions_start();
WITH rows AS (
	INSERT INTO business
	SELECT nextval('business_ids'), pg_current_xact_id()
	  FROM generate_series(1, 3)
	RETURNING id
)
SELECT count(emissions_emit('order.created', jsonb_build_object('id', id),
							jsonb_build_object('client', :client_id)))
  FROM (SELECT id FROM rows ORDER BY id) AS r;
SELECT emissions_emit('audit.noted', '{"wanted": false}');
COMMIT;
SQL
rollback="$pub/rollback.sql"
cat >"$rollback" <<'SQL'
BEGIN;
SELECT emissions_start();
INSERT INTO business VALUES (-nextval('rollback_ids'), pg_current_xact_id());
SELECT emissions_emit('order.created',
					  jsonb_build_object('id', -currval('rollback_ids'),
										 'rolled_back', true));
ROLLBACK;
SQL

# Transactions committed before anyone subscribes.
PGHOST="$pub" PGPORT="$(cat "$pub/port")" PGUSER=postgres PGDATABASE=postgres \
	pgbench -n -c 1 -t 5 -f "$load" >"$pub/pgbench.before" 2>&1
q "$pub" "SELECT emissions_wait_delivered('30s')" >/dev/null
check_eq "5 transactions delivered before the subscriptions exist" 15 \
	"$(q "$pub" 'SELECT count(*) FROM outbound_events')"

# The subscribers: the same table (B's without its primary key, see the
# header) and a subscription each, connecting over the publisher's socket.
conninfo="host=$pub port=$(cat "$pub/port") dbname=postgres user=replicator"
for name in a b; do
	dir="$(eval echo "\${sub_$name}")"
	key="PRIMARY KEY"
	[ "$name" = b ] && key=""
	on "$dir" -q >/dev/null <<SQL
CREATE TABLE outbound_events (
    id         bigint $key,
    type       text NOT NULL,
    payload    jsonb,
    metadata   jsonb,
    emitted_at timestamptz,
    txid       xid8,
    database   text
);
CREATE SUBSCRIPTION outbound_$name
    CONNECTION '$conninfo'
    PUBLICATION outbound;
SQL
done
for name in a b; do
	dir="$(eval echo "\${sub_$name}")"
	synced=f
	for _ in $(seq 1 300); do
		synced="$(q "$dir" "SELECT count(*) = 1 AND bool_and(srsubstate = 'r')
			FROM pg_subscription_rel")"
		[ "$synced" = t ] && break
		sleep 0.1
	done
	check_eq "subscriber $name copied the table and is streaming" t "$synced"
	check_eq "subscriber $name has the 15 events committed before" 15 \
		"$(q "$dir" 'SELECT count(*) FROM outbound_events')"
done

# An observer on subscriber A: how many times it looked, how many row
# counts it saw, and how many times a transaction was there in part.
observe() {
	local looks=0 partial=0 counts=() n
	while [ -d "$pub" ] && [ ! -e "$pub/load.done" ]; do
		n="$(q "$sub_a" "SELECT count(*), count(*) FILTER (WHERE n <> 3)
			FROM (SELECT count(*) AS n FROM outbound_events GROUP BY txid) AS t")"
		counts+=("${n%|*}")
		[ "${n#*|}" = 0 ] || partial=$((partial + 1))
		looks=$((looks + 1))
		sleep 0.05
	done
	echo "$looks $(printf '%s\n' "${counts[@]}" | sort -u | wc -l) $partial"
}
observe >"$pub/observer" &
observer=$!

PGHOST="$pub" PGPORT="$(cat "$pub/port")" PGUSER=postgres PGDATABASE=postgres \
	pgbench -n -c 4 -j 2 -T "$load_seconds" -f "$load@9" -f "$rollback@1" \
	>"$pub/pgbench.load" 2>&1 &
pgbench=$!
sleep "$(awk -v s="$load_seconds" 'BEGIN { print s / 4 }')"
comment "subscriber B stopped (-m immediate) with $(q "$sub_b" \
	'SELECT count(*) FROM outbound_events') rows"
as_pg pg_ctl -D "$sub_b/data" -m immediate -w stop >/dev/null
down_from="$(q "$pub" 'SELECT count(*) FROM outbound_events')"
sleep "$(awk -v s="$load_seconds" 'BEGIN { print s / 4 }')"
down_to="$(q "$pub" 'SELECT count(*) FROM outbound_events')"
check "subscriber B starts again after its crash" cluster_launch "$sub_b"
check "events were delivered while subscriber B was down ($down_from to $down_to)" \
	test "$down_to" -gt "$down_from"
status=0
wait "$pgbench" || status=$?
check_eq "pgbench ran without errors" 0 "$status"
grep -E '^(number of transactions actually processed|tps)' \
	"$pub/pgbench.load" | sed 's/^/# /' || true
settle "after the load"
# Where B resumed: the position it asked for (its replication origin, what
# it had committed) against what its slot had confirmed before the crash.
pid="$(awk '/starting logical decoding for slot "outbound_b"/ { p = $4 }
	END { print p }' "$pub/server.log")"
comment "subscriber B resumed at $(grep -F "$pid" "$pub/server.log" |
	grep -m 1 -o 'START_REPLICATION SLOT "outbound_b" LOGICAL [0-9A-F/]*' |
	awk '{ print $NF }'), its slot had confirmed $(grep -F "$pid" \
	"$pub/server.log" | grep -m 1 -o 'committing after [0-9A-F/]*' |
	awk '{ print $NF }')"
touch "$pub/load.done"
wait "$observer"
read -r looks counts partial <"$pub/observer"
comment "subscriber A looked at $looks times, $counts different row counts seen"
check "the observer saw the table grow" test "${counts:-0}" -gt 1
check_eq "subscriber A never showed part of a transaction" 0 "$partial"

# The publisher's own table: every committed business row's event once.
business="$(q "$pub" 'SELECT count(*) FROM business')"
comment "$business business rows committed, $(q "$pub" \
	"SELECT last_value FROM rollback_ids") transactions rolled back"
check "transactions rolled back during the load" \
	test "$(q "$pub" 'SELECT last_value FROM rollback_ids')" -gt 1
check_eq "publisher: every business row's event is in its table once" 0 \
	"$(q "$pub" "SELECT count(*) FROM business AS b FULL JOIN (SELECT
		(payload->>'id')::bigint AS id, count(*) AS n FROM outbound_events
		GROUP BY 1) AS e USING (id) WHERE e.n IS DISTINCT FROM 1
		OR b.id IS NULL")"
check_eq "publisher: no dead letters" 0 \
	"$(q "$pub" 'SELECT count(*) FROM emissions_dead_letters')"

rows_digest="SELECT count(*) || ' ' || md5(coalesce(string_agg(concat_ws(' ',
	id, type, payload, metadata, emitted_at, txid, database), E'\n'
	ORDER BY id, payload::text), '')) FROM outbound_events"
ids_digest="SELECT md5(string_agg(payload->>'id', ','
	ORDER BY (payload->>'id')::bigint)) FROM outbound_events"
expected_rows="$(q "$pub" "$rows_digest")"
expected_ids="$(q "$pub" "SELECT md5(string_agg(id::text, ',' ORDER BY id))
	FROM business")"
for name in a b; do
	dir="$(eval echo "\${sub_$name}")"
	check_eq "subscriber $name: as many events as the publisher's table" \
		"$business" "$(q "$dir" 'SELECT count(*) FROM outbound_events')"
	check_eq "subscriber $name: no event id twice" 0 \
		"$(q "$dir" 'SELECT count(*) - count(DISTINCT id) FROM outbound_events')"
	check_eq "subscriber $name: every committed business row's event, once" \
		"$expected_ids" "$(q "$dir" "$ids_digest")"
	check_eq "subscriber $name: the same rows as the publisher's table" \
		"$expected_rows" "$(q "$dir" "$rows_digest")"
	check_eq "subscriber $name: nothing rolled back, nothing unwanted" 0 \
		"$(q "$dir" "SELECT count(*) FROM outbound_events
			WHERE payload ? 'rolled_back' OR type <> 'order.created'")"
	check_eq "subscriber $name: each transaction's 3 events, consecutive ids" 0 \
		"$(q "$dir" "SELECT count(*) FROM (SELECT txid FROM outbound_events
			GROUP BY txid HAVING count(*) <> 3 OR max(id) - min(id) <> 2) AS t")"
	check_eq "subscriber $name: no apply error" 0 \
		"$(q "$dir" "SELECT apply_error_count + sync_error_count
			FROM pg_stat_subscription_stats")"
done

# Retention: docs/fan-out.md's DELETE (with no delay) empties the
# publisher's table; with publish = 'insert' the subscribers keep their rows.
q "$pub" "DELETE FROM outbound_events
	WHERE emitted_at < now() - interval '0 days'" >/dev/null
q "$pub" "SELECT emissions_start(),
	emissions_emit('order.created', '{\"id\": 0, \"marker\": true}')" >/dev/null
settle "after the retention DELETE"
check_eq "publisher: the DELETE left only the event committed after it" 1 \
	"$(q "$pub" 'SELECT count(*) FROM outbound_events')"
for name in a b; do
	dir="$(eval echo "\${sub_$name}")"
	check_eq "subscriber $name: kept every row, and got the new event" \
		"$((business + 1)) 1" "$(on "$dir" -F ' ' -c "SELECT count(*),
			count(*) FILTER (WHERE payload ? 'marker') FROM outbound_events")"
done

for name in a b; do
	dir="$(eval echo "\${sub_$name}")"
	check_eq "subscriber $name: DROP SUBSCRIPTION succeeds" "DROP SUBSCRIPTION" \
		"$(on "$dir" -c "DROP SUBSCRIPTION outbound_$name" | tail -n 1)"
done
check_eq "no replication slot is left on the publisher" 0 \
	"$(q "$pub" 'SELECT count(*) FROM pg_replication_slots')"
finish
done_testing
