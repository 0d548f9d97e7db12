#!/usr/bin/env bash
# test/check_limits.sh: emissions.max_workers and emissions.max_stats_databases
# are read at server start and hold at their limit.
#
# The cluster starts with both limits at 2.  Both settings show in
# pg_settings with context postmaster and cannot be changed in a session.
# Databases a and b get delivery workers; a third, c, gets none while they
# run (the launcher logs a WARNING with SQLSTATE 53400), its events wait in
# the outbox, and it gets a worker once a is dropped, which delivers them.
# The counters: a and b (counted first, by their workers) are counted; c's
# backends say with a WARNING (53400) that c is not counted, and its
# emissions_stats row has no counters, while its events are delivered.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 16" \
	"emissions.max_workers = 2" "emissions.max_stats_databases = 2" \
	"log_line_prefix = '%m [%p] %e '"
log="$CLUSTER/server.log"
export PGDATABASE=postgres

check_eq "both limits show in pg_settings, set at server start" \
	"emissions.max_stats_databases|postmaster|2|1|100000
emissions.max_workers|postmaster|2|1|10000" \
	"$(psql -X -At -c "SELECT name, context, setting, min_val, max_val
		FROM pg_settings WHERE name IN ('emissions.max_workers',
			'emissions.max_stats_databases') ORDER BY name")"

out="$(psql -X -At -v VERBOSITY=verbose -c "SET emissions.max_workers = 3" 2>&1 || true)"
check "a session cannot change emissions.max_workers (55P02)" \
	grep -q "55P02" <<<"$out"

# The pids of the delivery workers of database DB (none: empty).
worker_of() {
	psql -X -At -c "SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'emissions delivery' AND datname = '$1'"
}

# Wait up to 30 s for database DB to have a delivery worker.
wait_worker() {
	local _
	for _ in $(seq 1 300); do
		[ -n "$(worker_of "$1")" ] && return 0
		sleep 0.1
	done
	return 1
}

for db in a b; do
	psql -X -q -c "CREATE DATABASE $db"
	psql -X -q -d "$db" -c "SET client_min_messages = warning" \
		-c "CREATE EXTENSION emissions"
done
check "database a gets a delivery worker" wait_worker a
check "database b gets a delivery worker" wait_worker b

psql -X -q -c "CREATE DATABASE c"
psql -X -q -d c -c "SET client_min_messages = warning" \
	-c "CREATE EXTENSION emissions"
for _ in $(seq 1 150); do
	grep -q "53400 WARNING:  emissions cannot deliver events of more than 2 databases" \
		"$log" && break
	sleep 0.1
done
check "the launcher says emissions.max_workers is reached, with SQLSTATE 53400" \
	grep -q "53400 WARNING:  emissions cannot deliver events of more than 2 databases" \
	"$log"
check "its hint names the setting" \
	grep -q "HINT:  Raise emissions.max_workers and restart the server." "$log"

# Past the launcher's retry delay (5 s): c still has no worker.
sleep 6
check_eq "database c gets no worker while a and b have theirs" \
	"||1|1" "$(worker_of c)||$(worker_of a | wc -l)|$(worker_of b | wc -l)"

# The first use of the extension in c: its counters are full already.
out="$(psql -X -At -d c -v VERBOSITY=verbose \
	-c "SELECT emissions_start(), emissions_emit('limits.c')" 2>&1)"
check "a backend of database c says c is not counted, with SQLSTATE 53400" \
	grep -q "WARNING:  53400: emissions cannot count events of this database" \
	<<<"$out"
check_eq "database c's events wait in the outbox, undelivered" \
	"f|1" "$(psql -X -At -d c -c "SELECT emissions_wait_delivered('1s')" \
		-c "SELECT events_pending FROM emissions_stats" 2>/dev/null |
		paste -sd '|')"
check_eq "emissions_stats shows no counters for database c" \
	"t|t" "$(psql -X -q -At -d c -c "SET client_min_messages = error" \
		-c "SELECT events_emitted IS NULL, events_delivered IS NULL
			  FROM emissions_stats" | paste -sd '|' | tr -d '\n')"

psql -X -q -d a -c "SELECT emissions_start(), emissions_emit('limits.a')" \
	>/dev/null
check_eq "database a, counted, counts its events" \
	"t|1" "$(psql -X -At -d a -c "SELECT emissions_wait_delivered('30s')" \
		-c "SELECT events_emitted FROM emissions_stats" | paste -sd '|')"

psql -X -q -c "DROP DATABASE a"
check "database c gets a worker once a is dropped" wait_worker c
check_eq "c's worker delivers the events that waited" \
	"t|1" "$(psql -X -q -At -d c -c "SET client_min_messages = error" \
		-c "SELECT emissions_wait_delivered('30s')" \
		-c "SELECT count(*) FROM emissions_events(0, 1000)
			 WHERE type = 'limits.c'" | paste -sd '|')"
check "database b keeps its worker" wait_worker b

done_testing
