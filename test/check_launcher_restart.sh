#!/usr/bin/env bash
# test/check_launcher_restart.sh: exactly one delivery worker per database,
# whatever is terminated (the Delivery section's "Delivery keeps flowing").
#
# Three databases have the extension, each with a table adapter whose rows
# get a serial number as they are inserted (the delivery order), and
# pgbench commits transactions in two of them that each insert three
# business rows and emit one event naming each.  Under that load the
# launcher is terminated (pg_terminate_backend) three times: the postmaster
# starts it again after 10 s, and it must find the workers still running
# instead of starting each database a second one.  Between two of those
# terminations a worker is also terminated while no launcher runs (the next
# launcher must start it again), and after the last one a worker the new
# launcher did not start is terminated (it must come back).  A sampler
# counts the delivery workers of each database in pg_stat_activity every
# 0.1 s the whole time.
#
# Checked: no sample ever saw two workers for one database; afterwards each
# database has exactly one; in each, no id was given twice, ids strictly
# increase in delivery order, and every committed business row's event was
# delivered exactly once (adapter table and event log); the id reservation
# in emissions_state is above every id handed out.  Last, DROP DATABASE of
# a database whose worker was started by a launcher since terminated
# succeeds within seconds (it must stop every worker of the database), and
# the server log shows no error (no worker found ids reserved by another,
# no "tuple concurrently deleted").
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

DBS=(postgres emissions_lr_a emissions_lr_b)
LOADED=(emissions_lr_a emissions_lr_b)
cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32"
export PGDATABASE=postgres
sampler=""
loads=()

# Stop what this script started in the background, then the cluster.
stop_all() {
	local pid
	for pid in "$sampler" ${loads[@]+"${loads[@]}"}; do
		kill "$pid" 2>/dev/null || true
	done
	cleanup_clusters
}
trap stop_all EXIT

# Run SQL in database $1, printing unaligned tuples only (and errors).
q() {
	psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1
}

# The delivery workers per database: "name=count ..." in name order.
workers_sql="SELECT coalesce(string_agg(datname || '=' || n, ' '
		ORDER BY datname), '')
	  FROM (SELECT datname, count(*) AS n FROM pg_stat_activity
			 WHERE backend_type = 'emissions delivery'
			 GROUP BY datname) AS w"

# Print the delivery workers per database.
workers() {
	q postgres "$workers_sql"
}

# The expected output of workers: one each.
one_each="emissions_lr_a=1 emissions_lr_b=1 postgres=1"

# Wait up to $1 seconds until each database has exactly one worker.
wait_one_each() {
	for _ in $(seq 1 $(($1 * 10))); do
		[ "$(workers)" = "$one_each" ] && return 0
		sleep 0.1
	done
	return 1
}

# Print the launcher's pid (empty while none runs).
launcher_pid() {
	q postgres "SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'emissions launcher'"
}

# Print the pid of database $1's worker (empty while none runs).
worker_pid() {
	q postgres "SELECT min(pid) FROM pg_stat_activity
		WHERE backend_type = 'emissions delivery' AND datname = '$1'"
}

# Wait up to $1 seconds for a launcher other than pid $2; print its pid.
wait_launcher() {
	local pid
	for _ in $(seq 1 $(($1 * 10))); do
		pid="$(launcher_pid)"
		if [ -n "$pid" ] && [ "$pid" != "$2" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
	done
}

# Wait up to $1 seconds for database $2 to get a worker other than pid $3.
wait_new_worker() {
	local pid
	for _ in $(seq 1 $(($1 * 10))); do
		pid="$(worker_pid "$2")"
		[ -n "$pid" ] && [ "$pid" != "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

for db in "${DBS[@]}"; do
	[ "$db" = postgres ] || q postgres "CREATE DATABASE $db" >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
CREATE EXTENSION emissions;
CREATE SEQUENCE business_ids;
CREATE TABLE business (id bigint PRIMARY KEY);
-- seq numbers the rows in the order the worker inserted them; no key on
-- id, so that a duplicate delivery shows instead of failing.
CREATE TABLE delivered (seq bigserial, id bigint, type text, payload jsonb);
SELECT emissions_add_adapter('lr_sink', 'table', 'delivered', 'lr.*');
SQL
done
check "each database gets one worker" wait_one_each 20

script="$CLUSTER/load.sql"
cat >"$script" <<'SQL'
BEGIN;
SELECT emissions_start();
WITH rows AS (
	INSERT INTO business SELECT nextval('business_ids') FROM generate_series(1, 3)
	RETURNING id
)
SELECT count(emissions_emit('lr.row', jsonb_build_object('id', id)))
  FROM (SELECT id FROM rows ORDER BY id) AS r;
COMMIT;
SQL
chmod a+r "$script"
for db in "${LOADED[@]}"; do
	pgbench -n -c 2 -j 1 -R 100 -T 3600 -f "$script" "$db" \
		>>"$CLUSTER/pgbench.log" 2>&1 &
	loads+=($!)
done

# Sample the workers every 0.05 s, from one session: a row per sample.
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE samples (at timestamptz, workers text);
CREATE PROCEDURE sample_workers() LANGUAGE plpgsql AS \$\$
BEGIN
	LOOP
		INSERT INTO samples SELECT clock_timestamp(), w FROM ($workers_sql) AS s(w);
		COMMIT;
		PERFORM pg_sleep(0.05);
	END LOOP;
END \$\$;
SQL
PGAPPNAME=lr_sampler psql -X -q -c 'CALL sample_workers()' >/dev/null 2>&1 &
sampler=$!

for round in 1 2 3; do
	old="$(launcher_pid)"
	q postgres "SELECT pg_terminate_backend($old)" >/dev/null || true
	if [ "$round" -eq 2 ]; then
		# No launcher runs now: the next one must start this worker again.
		sleep 0.5
		q postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE backend_type = 'emissions delivery'
			  AND datname = 'emissions_lr_a'" >/dev/null || true
	fi
	new="$(wait_launcher 20 "$old")"
	check "round $round: a new launcher starts" test -n "$new"
	# Time to start a second worker, if it were to.
	sleep 3
	check_eq "round $round: one worker per database" "$one_each" "$(workers)"
	if [ "$round" -eq 2 ]; then
		# A database whose worker a launcher since terminated started.
		q postgres "CREATE DATABASE emissions_lr_c" >/dev/null
		q emissions_lr_c "CREATE EXTENSION emissions" >/dev/null
		one_each="emissions_lr_a=1 emissions_lr_b=1 emissions_lr_c=1 postgres=1"
		check "a new database gets one worker" wait_one_each 10
	fi
done
# A worker the current launcher did not start comes back when terminated.
pid="$(worker_pid emissions_lr_b)"
q postgres "SELECT pg_terminate_backend(${pid:-0})" >/dev/null || true
check "a worker started by a terminated launcher comes back when terminated" \
	wait_new_worker 10 emissions_lr_b "$pid"

start="$(date +%s%N)"
out="$(q postgres "DROP DATABASE emissions_lr_c" || true)"
ms=$((($(date +%s%N) - start) / 1000000))
check_eq "DROP DATABASE after the launcher restarts" "DROP DATABASE" "$out"
check "... takes under 8 s (${ms} ms)" test "$ms" -lt 8000
one_each="emissions_lr_a=1 emissions_lr_b=1 postgres=1"

for pid in "${loads[@]}"; do
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
loads=()
sleep 1
q postgres "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	WHERE application_name = 'lr_sampler'" >/dev/null
wait "$sampler" 2>/dev/null || true
sampler=""

samples="$(q postgres "SELECT count(*) FROM samples")"
bad="$(q postgres "SELECT at || ' ' || workers FROM samples
	WHERE workers ~ '=[2-9]' ORDER BY at LIMIT 5")"
check "the sampler ran ($samples samples)" test "$samples" -gt 200
check_eq "no sample saw two workers for one database" "" "$bad"
check "afterwards, one worker per database" wait_one_each 10

for db in "${LOADED[@]}"; do
	psql -X -At -d "$db" -c "SELECT emissions_wait_delivered('60s')" \
		>/dev/null 2>&1 || true
	check_eq "$db: events were produced" "t" \
		"$(q "$db" "SELECT count(*) > 100 FROM business")"
	check_eq "$db: no id given twice in the log" "0" "$(q "$db" "
		SELECT count(*) - count(DISTINCT id)
		  FROM emissions_events(0, 2147483647)")"
	check_eq "$db: ids strictly increase in delivery order" "0" "$(q "$db" "
		SELECT count(*) FROM (SELECT id <= lag(id) OVER (ORDER BY seq) AS back
								FROM delivered) AS d WHERE back")"
	check_eq "$db: every committed row's event delivered exactly once" \
		"0|0" "$(q "$db" "
		SELECT count(*) FILTER (WHERE t IS DISTINCT FROM 1),
			   count(*) FILTER (WHERE l IS DISTINCT FROM 1)
		  FROM business AS b
		  LEFT JOIN (SELECT (payload->>'id')::bigint AS id, count(*) AS t
					   FROM delivered GROUP BY 1) AS t USING (id)
		  LEFT JOIN (SELECT (payload->>'id')::bigint AS id, count(*) AS l
					   FROM emissions_events(0, 2147483647)
					  WHERE type = 'lr.row' GROUP BY 1) AS l USING (id)")"
	check_eq "$db: nothing delivered that was not committed" "0" "$(q "$db" "
		SELECT count(*) FROM delivered
		 WHERE (payload->>'id')::bigint NOT IN (SELECT id FROM business)")"
	check_eq "$db: the reservation is above every id" "t" "$(q "$db" "
		SELECT reserved_id >= (SELECT max(id) FROM emissions_events(0, 2147483647))
		  FROM emissions_state")"
done
check_eq "no error in the server log (but the sampler's cancel)" \
	"" "$(grep -E '(ERROR|PANIC):' "$CLUSTER/server.log" |
		grep -v 'canceling statement due to user request' | head -n 5)"

done_testing
