#!/usr/bin/env bash
# test/check_scan_window.sh: the delivery worker scans each outbox partition
# only from where rows it has not seen can be (src/delivery_window.c), and
# still never skips a transaction that commits late (SPEC rule 7).
#
# A transaction emits and is prepared: its outbox row sits in the first
# blocks of the partition, invisible (in progress) to every pass.  Then
# 3,000 single-event transactions are committed and delivered, filling
# dozens of blocks after it, so that the passes' scans start well past
# it.  COMMIT PREPARED then makes the row visible: it must be delivered,
# once, after the others.  The same with a transaction that stays open
# while the others commit and whose rows are written at its commit.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "max_prepared_transactions = 4"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION emissions;
-- N single-event transactions of type KIND.
CREATE PROCEDURE emit_many(kind text, n int)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..n LOOP
		PERFORM emissions_start();
		PERFORM emissions_emit(kind, jsonb_build_object('n', i));
		COMMIT;
	END LOOP;
END $$;
SQL

# Events of TYPE delivered, once everything committed is.
delivered() {
	psql -X -At -v ON_ERROR_STOP=1 \
		-c "SELECT emissions_wait_delivered('60s')" \
		-c "SELECT count(*) FROM emissions_events(0, 100000) WHERE type = '$1'" |
		tail -n 1
}

psql -X -q -v ON_ERROR_STOP=1 -c "BEGIN" \
	-c "SELECT emissions_start(), emissions_emit('late.prepared', '{}')" \
	-c "PREPARE TRANSACTION 'late'"
psql -X -q -v ON_ERROR_STOP=1 -c "CALL emit_many('fill.one', 3000)"
check_eq "3000 events committed after the prepared one delivered" 3000 "$(delivered fill.one)"
last_block="$(psql -X -At -c "SELECT max(pg_relation_size(inhrelid)) / 8192
	FROM pg_inherits WHERE inhparent = 'emissions_outbox'::regclass")"
check "the filling transactions took dozens of blocks after the prepared row's (${last_block:-?} > 10)" \
	test "${last_block:-0}" -gt 10
check_eq "the prepared transaction's event is not delivered before its commit" 0 "$(delivered late.prepared)"
psql -X -q -v ON_ERROR_STOP=1 -c "COMMIT PREPARED 'late'"
check_eq "COMMIT PREPARED: the late event is delivered, once" 1 "$(delivered late.prepared)"
check_eq "it comes after the 3000 committed before it" 1 "$(psql -X -At -c "
	SELECT count(*) FROM emissions_events(0, 100000) AS e
	 WHERE type = 'late.prepared'
	   AND id > (SELECT max(id) FROM emissions_events(0, 100000) WHERE type = 'fill.one')")"

# An open transaction commits while others do: its row is written at its
# commit, wherever the table has room.
psql -X -q -v ON_ERROR_STOP=1 -c "BEGIN" \
	-c "SELECT emissions_start(), emissions_emit('late.open', '{}')" \
	-c "SELECT pg_sleep(2)" -c "COMMIT" &
open_pid=$!
psql -X -q -v ON_ERROR_STOP=1 -c "CALL emit_many('fill.two', 2000)"
wait "$open_pid"
check_eq "a transaction left open meanwhile: its event is delivered, once" 1 "$(delivered late.open)"
check_eq "and the 2000 around it" 2000 "$(delivered fill.two)"

check_eq "no event delivered twice" 0 "$(psql -X -At -c "
	SELECT count(*) FROM (SELECT type, payload FROM emissions_events(0, 100000)
	 GROUP BY 1, 2 HAVING count(*) > 1) AS d")"

cluster_stop "$CLUSTER"
done_testing
