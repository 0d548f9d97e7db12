#!/usr/bin/env bash
# test/check_crash_durability.sh: committed events survive a crash (rules 1,
# 2 and 5 across an immediate shutdown).
#
# Before the crash: a committed transaction with spilled events, two
# prepared transactions with events, and a transaction still in progress
# that has flushed a batch.  The server is stopped with -m immediate (no
# shutdown checkpoint: recovery replays the WAL) and started again.  Once
# the worker has delivered what is committed, the committed events are all
# delivered, once each, the in-progress transaction's batch never is, and
# the prepared transactions survive undelivered: COMMIT PREPARED gets one's
# events delivered, ROLLBACK PREPARED discards the other's.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "max_prepared_transactions = 10"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION emissions;
SET emissions.max_buffer_bytes = '8kB';
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit('crash.committed', jsonb_build_object('n', g)))
  FROM generate_series(1, 5000) AS g;
COMMIT;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('crash.prepared_commit', '{"n": 1}');
PREPARE TRANSACTION 'crash_commit';
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('crash.prepared_rollback', '{"n": 1}');
PREPARE TRANSACTION 'crash_rollback';
SQL

# A transaction that has flushed a batch and is still open at the crash.
psql -X -q -c "BEGIN" -c "SELECT emissions_start()" \
	-c "SELECT emissions_emit('crash.in_progress')" \
	-c "SELECT emissions_flush()" -c "SELECT pg_sleep(600)" \
	>/dev/null 2>&1 &
open_client=$!
for _ in $(seq 1 50); do
	[ "$(psql -X -At -c "SELECT count(*) FROM pg_stat_activity
		WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()")" = 1 ] &&
		break
	sleep 0.1
done

as_pg pg_ctl -D "$CLUSTER/data" -m immediate -w stop >/dev/null
wait "$open_client" || true
cluster_launch "$CLUSTER"

count() {
	delivered_count "$1"
}
check_eq "the server recovered" 0 \
	"$(psql -X -At -c 'SELECT 1' >/dev/null 2>&1; echo $?)"
check_eq "every committed event is delivered once after the crash" 5000 \
	"$(count crash.committed)"
check_eq "the in-progress transaction's flushed batch is gone" 0 \
	"$(count crash.in_progress)"
check_eq "both prepared transactions survived" "crash_commit crash_rollback" \
	"$(psql -X -At -c "SELECT string_agg(gid, ' ' ORDER BY gid)
		FROM pg_prepared_xacts")"
check_eq "their events are not delivered yet" "0 0" \
	"$(count crash.prepared_commit) $(count crash.prepared_rollback)"
psql -X -q -v ON_ERROR_STOP=1 -c "COMMIT PREPARED 'crash_commit'" \
	-c "ROLLBACK PREPARED 'crash_rollback'"
check_eq "COMMIT PREPARED after the crash gets its event delivered" 1 \
	"$(count crash.prepared_commit)"
check_eq "ROLLBACK PREPARED after the crash discards its event" 0 \
	"$(count crash.prepared_rollback)"

cluster_stop "$CLUSTER"
[ "$failed" -eq 0 ]
