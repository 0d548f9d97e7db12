#!/usr/bin/env bash
# test/check_durable_delivery.sh: a delivery is visible only once it is
# durable, whatever synchronous_commit the server or the producer has (SPEC
# "Stable ids"; worker.c, commit_durably).
#
#   1. With synchronous_commit = off for the whole server (and the WAL
#      writer slowed down to a flush every 10 s, autovacuum off, so that
#      nothing else flushes), a producer at off commits an event; once
#      emissions_wait_delivered() says it is delivered, the WAL is flushed
#      past the producer's commit: the worker's commit waited for its flush
#      (at "local"), and that flush covered the producer's commit too.  Five
#      times: a worker at off leaves the flush behind nearly always.
#   2. With synchronous_commit = on and a synchronous standby that never
#      comes (synchronous_standby_names), set by a reload: a producer at
#      local commits at once, but the worker keeps the stronger setting: it
#      waits for the standby (wait event SyncRep) and the event is not in
#      emissions_events meanwhile.  Once the standby is no longer required
#      (reload), the wait ends and the event is delivered.
#   3. synchronous_commit = off again by a reload: the worker is back at
#      "local", as in 1.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "synchronous_commit = off" \
	"wal_writer_delay = '10s'" "autovacuum = off"
export PGDATABASE=postgres

q() {
	psql -X -q -At -v ON_ERROR_STOP=1 -c "$1" 2>&1
}

q 'CREATE EXTENSION emissions' >/dev/null
for _ in $(seq 1 100); do
	[ "$(q "SELECT worker_pid IS NOT NULL FROM emissions_stats")" = t ] &&
		break
	sleep 0.1
done

# Commit one event at synchronous_commit = off, wait for its delivery, and
# print whether the WAL was then flushed past the commit ("t").
flushed_after_delivery() {
	psql -X -q -At -v ON_ERROR_STOP=1 2>&1 <<'SQL' | tail -n 1
SET synchronous_commit = off;
BEGIN;
SELECT emissions_start(), emissions_emit('durable.check');
COMMIT;
SELECT pg_current_wal_insert_lsn() AS committed \gset
SELECT emissions_wait_delivered('30s');
SELECT pg_current_wal_flush_lsn() >= :'committed'::pg_lsn;
SQL
}

# Check five deliveries in a row: label $1.
check_flushed() {
	local results=""
	for _ in 1 2 3 4 5; do
		results+="$(flushed_after_delivery) "
	done
	check_eq "$1: each of 5 deliveries is flushed, with the producer's commit, once visible" \
		"t t t t t " "$results"
}

# Reload the configuration and wait until the worker has read it: set
# the ALTER SYSTEMs first.  A reload reaches the worker as SIGHUP.
reload() {
	q 'SELECT pg_reload_conf()' >/dev/null
	sleep 1
}

check_eq "the server's synchronous_commit is off" off \
	"$(q 'SHOW synchronous_commit')"
check_flushed "synchronous_commit = off"

q "ALTER SYSTEM SET synchronous_standby_names = 'nobody'" >/dev/null
q "ALTER SYSTEM SET synchronous_commit = on" >/dev/null
reload
before="$(q "SELECT count(*) FROM emissions_events(0, 1000)")"
check_eq "a producer at local commits without waiting for the standby" "" \
	"$(psql -X -q -At -v ON_ERROR_STOP=1 -c "SET synchronous_commit = local" \
		-c "BEGIN" -c "SELECT emissions_start(), emissions_emit('durable.standby')" \
		-c "COMMIT" 2>&1 | grep -v '^t|t$' || true)"
waiting=""
for _ in $(seq 1 100); do
	waiting="$(q "SELECT wait_event FROM pg_stat_activity
		WHERE backend_type = 'emissions delivery'")"
	[ "$waiting" = SyncRep ] && break
	sleep 0.1
done
check_eq "with synchronous_commit = on and a synchronous standby named, the worker waits for it" \
	SyncRep "$waiting"
check_eq "the event is not visible while the worker waits" "$before 0" \
	"$(q "SELECT count(*) || ' ' || count(*) FILTER (WHERE type = 'durable.standby')
		FROM emissions_events(0, 1000)")"

q "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
reload
check_eq "once no standby is required, the event is delivered" "t 1" \
	"$(psql -X -At -v ON_ERROR_STOP=1 -c "SELECT emissions_wait_delivered('30s')" \
		-c "SELECT count(*) FROM emissions_events(0, 1000)
			WHERE type = 'durable.standby'" 2>&1 | tr '\n' ' ' | sed 's/ $//')"

q "ALTER SYSTEM SET synchronous_commit = off" >/dev/null
reload
check_flushed "synchronous_commit = off again, by a reload"

done_testing
