#!/usr/bin/env bash
# test/check_upgrade.sh: a database created at 0.1 and upgraded with
# ALTER EXTENSION emissions UPDATE is the same as a fresh 0.2 install, in
# its schema and in what it does.
#
#   1. The library works on a database still at 0.1: the worker delivers,
#      and truncates the log after the retention (2 s here) though 0.1 has
#      no subscriptions table.
#   2. Database "up" at 0.1 holds events delivered and retained, adapters
#      (a table, and a failing function: dead letters), and, with the
#      server restarted without the library preloaded, events pending in
#      the outbox.  Its tables were made with another table access method
#      (default_table_access_method = heap2, a copy of heap), as in
#      database "fresh", created at 0.2 the same way with the same
#      adapters and pending events.
#   3. ALTER EXTENSION emissions UPDATE on "up"; then both have the same
#      extension objects (catalog descriptions of every member: columns,
#      access methods, defaults, storage, indexes, constraints, view and
#      function definitions, privileges and initial privileges) and the
#      same pg_dump --schema-only.
#   4. With the library preloaded again, the same checks on both: the
#      pending events are delivered; the adapters work (rows in the table,
#      dead letters of the failing handler, kept from before in "up");
#      ids go on growing; a subscription reads every event kept, from
#      before the upgrade too, acknowledges, follows new events; the
#      counters count it.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "emissions.retention = '2s'"
export PGDATABASE=postgres

# Run SQL in database DB, printing unaligned tuples only.
q() {
	psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# Restart the server, with the library preloaded or not ('' or 'emissions').
restart_with() {
	echo "shared_preload_libraries = '$1'" >>"$CLUSTER/data/postgresql.conf"
	as_pg pg_ctl -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w -t 60 \
		restart >/dev/null
}

# Wait up to 20 s until event ID is no longer kept in DB; true if it went.
wait_gone() {
	local i
	for i in $(seq 1 200); do
		[ "$(q "$1" "SELECT count(*) FROM emissions_event($2)")" = 0 ] &&
			return 0
		sleep 0.1
	done
	return 1
}

#
# 1. The 0.1 objects with this library: delivery and truncation.
#
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE DATABASE up;
\c up
CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
SET default_table_access_method = heap2;
CREATE EXTENSION emissions VERSION '0.1';
SQL
pid="$(q up "SELECT emissions_start(), emissions_emit('up.expired')" >/dev/null
	q up "SELECT emissions_wait_delivered('60s')" >/dev/null
	q up "SELECT worker_pid FROM emissions_stats")"
expired="$(q up "SELECT max(id) FROM emissions_events(0)")"
check "0.1: a delivered event is truncated after the retention" \
	wait_gone up "${expired:-0}"
check_eq "0.1: by the same delivery worker, which did not fail" \
	"$pid" "$(q up "SELECT worker_pid FROM emissions_stats")"
check_eq "0.1: no error in the server log" 0 \
	"$(grep -c 'ERROR' "$CLUSTER/server.log" || true)"
q postgres "ALTER SYSTEM SET emissions.retention = '1h'" >/dev/null
q postgres "SELECT pg_reload_conf()" >/dev/null

#
# 2. The same content in "up" (0.1) and "fresh" (0.2), made with heap2 as
# the default table access method.
#
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE DATABASE fresh;
\c fresh
CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
SET default_table_access_method = heap2;
CREATE EXTENSION emissions;
SQL
for db in up fresh; do
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
CREATE TABLE sink (id bigint, type text);
CREATE FUNCTION failing(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'this handler always fails';
END
$$;
SELECT emissions_add_adapter('to_sink', 'table', 'sink');
SELECT emissions_add_adapter('failing', 'function', 'failing', '*',
							 '{"max_attempts": 1}');
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit('old.delivered', jsonb_build_object('n', g)))
  FROM generate_series(1, 5) AS g;
COMMIT;
SELECT emissions_wait_delivered('60s');
SQL
done
dead_letters() {
	local i
	for i in $(seq 1 200); do
		[ "$(q "$1" "SELECT count(*) FROM emissions_dead_letters")" -ge "$2" ] &&
			break
		sleep 0.1
	done
	q "$1" "SELECT count(*) FROM emissions_dead_letters"
}
check_eq "up at 0.1 has dead letters" 5 "$(dead_letters up 5)"
old_last="$(q up "SELECT last_event_id FROM emissions_stats")"
restart_with ''
# Without the preload, every commit that emits warns that delivery is off.
export PGOPTIONS='-c client_min_messages=error'
for db in up fresh; do
	q "$db" "BEGIN; SELECT emissions_start();
		SELECT count(emissions_emit('old.pending', jsonb_build_object('n', g)))
		  FROM generate_series(1, 7) AS g; COMMIT;" >/dev/null
done
check_eq "up holds pending events" 7 \
	"$(q up "SELECT count(*) FROM emissions_pending")"
check_eq "up holds delivered events" 5 \
	"$(q up "SELECT count(*) FROM emissions_events(0) WHERE type = 'old.delivered'")"
check_eq "up has tables made with heap2" 9 \
	"$(q up "SELECT count(*) FROM pg_class WHERE relam = (SELECT oid FROM pg_am
		WHERE amname = 'heap2') AND relname LIKE 'emissions%'")"

#
# 3. The upgrade, and the schemas compared.
#
check_eq "ALTER EXTENSION emissions UPDATE" "ALTER EXTENSION" \
	"$(psql -X -q -v ON_ERROR_STOP=1 -d up -c 'ALTER EXTENSION emissions UPDATE' \
		-c "SELECT 'ALTER EXTENSION'" -At 2>&1)"
check_eq "up is at 0.2" 0.2 \
	"$(q up "SELECT extversion FROM pg_extension WHERE extname = 'emissions'")"

# Print a description of every object of the extension, one line each,
# sorted: what must be the same in both databases.
describe() {
	psql -X -At -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'emissions'),
members AS (
	SELECT d.classid, d.objid FROM pg_depend AS d, ext
	 WHERE d.refclassid = 'pg_extension'::regclass
	   AND d.refobjid = ext.oid AND d.deptype = 'e'),
rels AS (
	SELECT c.* FROM pg_class AS c JOIN members AS m
	  ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
UNION ALL
SELECT format('relation %s kind %s am %s acl %s options %s bound %s partkey %s',
			  r.relname, r.relkind, a.amname, r.relacl, r.reloptions,
			  pg_get_expr(r.relpartbound, r.oid),
			  CASE WHEN r.relkind = 'p' THEN pg_get_partkeydef(r.oid) END)
  FROM rels AS r LEFT JOIN pg_am AS a ON a.oid = r.relam
UNION ALL
SELECT format('column %s.%s %s notnull %s default %s storage %s compression %s',
			  r.relname, t.attname, format_type(t.atttypid, t.atttypmod),
			  t.attnotnull, pg_get_expr(d.adbin, d.adrelid), t.attstorage,
			  t.attcompression)
  FROM rels AS r JOIN pg_attribute AS t ON t.attrelid = r.oid
  LEFT JOIN pg_attrdef AS d ON d.adrelid = r.oid AND d.adnum = t.attnum
 WHERE t.attnum > 0 AND NOT t.attisdropped
UNION ALL
SELECT format('index %s on %s: %s', i.relname, r.relname,
			  regexp_replace(pg_get_indexdef(i.oid), '\S+\.', '', 'g'))
  FROM rels AS r JOIN pg_index AS x ON x.indrelid = r.oid
  JOIN pg_class AS i ON i.oid = x.indexrelid
UNION ALL
SELECT format('constraint %s on %s: %s', c.conname, r.relname,
			  pg_get_constraintdef(c.oid))
  FROM rels AS r JOIN pg_constraint AS c ON c.conrelid = r.oid
UNION ALL
SELECT format('view %s: %s', r.relname, pg_get_viewdef(r.oid))
  FROM rels AS r WHERE r.relkind = 'v'
UNION ALL
SELECT format('function %s(%s) returns %s lang %s src %s bin %s volatile %s strict %s secdef %s parallel %s config %s acl %s',
			  p.proname, pg_get_function_arguments(p.oid),
			  pg_get_function_result(p.oid), l.lanname, p.prosrc, p.probin,
			  p.provolatile, p.proisstrict, p.prosecdef, p.proparallel,
			  p.proconfig, p.proacl)
  FROM pg_proc AS p JOIN members AS m
    ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  JOIN pg_language AS l ON l.oid = p.prolang
UNION ALL
SELECT format('initial privileges %s: %s %s',
			  pg_describe_object(i.classoid, i.objoid, i.objsubid),
			  i.privtype, i.initprivs)
  FROM pg_init_privs AS i JOIN members AS m
    ON m.classid = i.classoid AND m.objid = i.objoid
UNION ALL
SELECT format('configuration tables %s', ARRAY(SELECT c::regclass::text
	FROM unnest(e.extconfig) AS c ORDER BY 1))
  FROM pg_extension AS e WHERE e.extname = 'emissions'
ORDER BY 1;
SQL
}
describe up >"$CLUSTER/up.schema"
describe fresh >"$CLUSTER/fresh.schema"
check "the description of the objects is not empty ($(wc -l <"$CLUSTER/fresh.schema") lines)" \
	test "$(wc -l <"$CLUSTER/fresh.schema")" -gt 100
if diff -u "$CLUSTER/fresh.schema" "$CLUSTER/up.schema" >"$CLUSTER/schema.diff"; then
	ok "the upgraded database has the objects of a fresh 0.2 install"
else
	not_ok "the upgraded database has the objects of a fresh 0.2 install"
	comment "$(head -n 60 "$CLUSTER/schema.diff")"
fi
check_eq "every table of the extension is a heap" "" \
	"$(q up "SELECT string_agg(relname, ' ') FROM pg_class
		WHERE relname LIKE 'emissions%' AND relkind = 'r'
		  AND relam <> (SELECT oid FROM pg_am WHERE amname = 'heap')")"
# pg_dump's view: the same statements but for the databases' own tables.
for db in up fresh; do
	pg_dump --schema-only --no-owner -d "$db" |
		grep -v -E '^(--|SET |SELECT pg_catalog.set_config|\\(un)?restrict )' |
		sed '/^$/d' >"$CLUSTER/$db.dump"
done
if diff -u "$CLUSTER/fresh.dump" "$CLUSTER/up.dump" >"$CLUSTER/dump.diff"; then
	ok "pg_dump --schema-only of both is the same"
else
	not_ok "pg_dump --schema-only of both is the same"
	comment "$(head -n 40 "$CLUSTER/dump.diff")"
fi

#
# 4. The same behaviour.
#
restart_with emissions
unset PGOPTIONS
for db in up fresh; do
	check_eq "$db: the pending events are delivered" 7 \
		"$(q "$db" "SELECT emissions_wait_delivered('60s')" >/dev/null
			q "$db" "SELECT count(*) FROM emissions_events(0)
				WHERE type = 'old.pending'")"
	check_eq "$db: the table adapter got every event" 12 \
		"$(q "$db" "SELECT count(*) FROM sink")"
	check_eq "$db: the failing handler's events are dead letters" 12 \
		"$(dead_letters "$db" 12)"
	q "$db" "SELECT emissions_subscribe('after_upgrade',
		(SELECT min(id) - 1 FROM emissions_events(0)))" >/dev/null
	check_eq "$db: a subscription reads every event kept" 12 \
		"$(q "$db" "SELECT count(*) FROM emissions_read('after_upgrade')")"
	last="$(q "$db" "SELECT last_event_id FROM emissions_stats")"
	check_eq "$db: and acknowledges them" "$last 0" \
		"$(q "$db" "SELECT emissions_ack('after_upgrade', $last)") $(
			q "$db" "SELECT count(*) FROM emissions_read('after_upgrade')")"
	q "$db" "SELECT emissions_start(), emissions_emit('new.event')" >/dev/null
	q "$db" "SELECT emissions_wait_delivered('60s')" >/dev/null
	check_eq "$db: it follows a new event, with a higher id" "new.event t" \
		"$(q "$db" "SELECT type, id > $last FROM emissions_read('after_upgrade')" |
			tr '|' ' ')"
	check_eq "$db: the counters count it" "1 1" \
		"$(q "$db" "SELECT subscriptions, max_subscription_lag_events
			FROM emissions_stats" | tr '|' ' ')"
	check_eq "$db: a dead letter can be replayed" t \
		"$(q "$db" "SELECT emissions_replay(min(id)) FROM emissions_dead_letters")"
done
check "up: ids go on above those given before the upgrade" \
	test "$(q up "SELECT last_event_id FROM emissions_stats")" -gt "${old_last:-0}"

cluster_stop "$CLUSTER"
done_testing
