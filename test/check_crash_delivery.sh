#!/usr/bin/env bash
# test/check_crash_delivery.sh: exactly once into adapter tables, across
# crashes (the Delivery section's "Exactly once into tables", and rule 6).
#
# Four pgbench clients commit transactions that each insert three business
# rows and emit one event naming each row; a table adapter receives the
# events.  While they run, the server is stopped with -m immediate (no
# shutdown checkpoint: recovery replays the WAL) three times, each after a
# few seconds of load, and started again, so crashes hit producers and the
# delivery worker at random points.  After the last restart and
# emissions_wait_delivered(): every committed business row's event is in
# the adapter table exactly once, nothing else is there, and each
# transaction's three events have consecutive ids.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cycles=3
load_seconds=4

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION emissions;
CREATE SEQUENCE business_ids;
CREATE TABLE business (id bigint PRIMARY KEY, txid xid8 NOT NULL);
CREATE TABLE delivered (id bigint, type text, payload jsonb, txid xid8);
SELECT emissions_add_adapter('crash_sink', 'table', 'delivered', 'crash.*');
SQL

script="$CLUSTER/load.sql"
cat >"$script" <<'SQL'
BEGIN;
SELECT emissions_start();
WITH rows AS (
	INSERT INTO business
	SELECT nextval('business_ids'), pg_current_xact_id()
	  FROM generate_series(1, 3)
	RETURNING id
)
SELECT count(emissions_emit('crash.row', jsonb_build_object('id', id)))
  FROM (SELECT id FROM rows ORDER BY id) AS r;
COMMIT;
SQL
chmod a+r "$script"

q() {
	psql -X -At -v ON_ERROR_STOP=1 -c "$1" 2>&1
}

committed=0
for cycle in $(seq 1 "$cycles"); do
	pgbench -n -c 4 -j 2 -T 60 -f "$script" >"$CLUSTER/pgbench.$cycle" 2>&1 &
	load=$!
	sleep "$load_seconds"
	as_pg pg_ctl -D "$CLUSTER/data" -m immediate -w stop >/dev/null
	wait "$load" || true
	if cluster_launch "$CLUSTER"; then
		ok "the server recovers from crash $cycle"
	else
		not_ok "the server recovers from crash $cycle"
		exit 1
	fi
	before=$committed
	committed="$(q 'SELECT count(*) FROM business')"
	comment "cycle $cycle: $committed business rows committed so far, $(
		q 'SELECT count(*) FROM delivered') events delivered"
	check "the load committed rows before crash $cycle" \
		test "$committed" -gt "$before"
done

check_eq "every committed event is delivered after the last restart" t \
	"$(q "SELECT emissions_wait_delivered('30s')")"
rows="$(q 'SELECT count(*) FROM business')"
check_eq "no business row appeared after the last restart" "$committed" \
	"$rows"
check_eq "every business row's event is in the table exactly once" 0 \
	"$(q "SELECT count(*) FROM business AS b LEFT JOIN (SELECT
		(payload->>'id')::bigint AS id, count(*) AS n FROM delivered
		GROUP BY 1) AS d USING (id) WHERE d.n IS DISTINCT FROM 1")"
check_eq "no event in the table lacks its business row" 0 \
	"$(q "SELECT count(*) FROM delivered AS d LEFT JOIN business AS b
		ON b.id = (d.payload->>'id')::bigint WHERE b.id IS NULL")"
check_eq "no event id is in the table twice" 0 \
	"$(q 'SELECT count(*) - count(DISTINCT id) FROM delivered')"
check_eq "as many events as business rows" "$rows" \
	"$(q 'SELECT count(*) FROM delivered')"
check_eq "each event carries its row's transaction" 0 \
	"$(q "SELECT count(*) FROM delivered AS d JOIN business AS b
		ON b.id = (d.payload->>'id')::bigint WHERE d.txid <> b.txid")"
check_eq "each transaction's events have consecutive ids, in emit order" 0 \
	"$(q "SELECT count(*) FROM (SELECT txid, max(id) - min(id) AS span,
		count(*) AS n, bool_and(r = i) AS ordered
		FROM (SELECT txid, id,
			rank() OVER (PARTITION BY txid ORDER BY id) AS r,
			rank() OVER (PARTITION BY txid ORDER BY (payload->>'id')::bigint) AS i
			FROM delivered) AS e GROUP BY txid) AS t
		WHERE n <> 3 OR span <> 2 OR NOT ordered")"
check_eq "the outbox is empty" 0 \
	"$(q 'SELECT events_pending FROM emissions_stats')"
check_eq "no delivery failed" 0 \
	"$(q 'SELECT count(*) FROM emissions_dead_letters')"

cluster_stop "$CLUSTER"
[ "$failed" -eq 0 ]
