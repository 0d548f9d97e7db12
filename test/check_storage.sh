#!/usr/bin/env bash
# test/check_storage.sh: delivered events are kept for emissions.retention,
# and the outbox and the log give their space back without vacuum.
#
# With autovacuum off and emissions.retention at 2 seconds: a delivered
# event is still readable a second after its delivery, is gone a few
# seconds later (its log partition truncated), and the next event's id is
# higher all the same, with last_event_id not going back.  A transaction of
# 50,000 events fills the current outbox partition past its rotation size
# (2 MB); once delivered, the outbox shrinks back by truncation.  An outbox
# partition that is not a heap table is refused with a clear error.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32" "autovacuum = off" \
	"emissions.retention = '2s'"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION emissions'

# Print the value of a query run after everything committed is delivered.
delivered_value() {
	psql -X -At -c "SELECT emissions_wait_delivered('60s')" -c "$1" |
		tail -n 1
}

psql -X -q -c "SELECT emissions_start(), emissions_emit('kept.first')" >/dev/null
first="$(delivered_value "SELECT id FROM emissions_events(0, 10)
	WHERE type = 'kept.first'")"
sleep 1
check_eq "a delivered event is readable a second later" kept.first \
	"$(psql -X -At -c "SELECT type FROM emissions_event(${first:-0})")"
# Gone: the query succeeds and returns no row (an error is not "gone").
gone=""
for _ in $(seq 1 200); do
	seen="$(psql -X -At -v ON_ERROR_STOP=1 -c "SELECT count(*)
		FROM emissions_event(${first:-0})" 2>&1)" || true
	[ "$seen" = 0 ] && gone=yes && break
	sleep 0.1
done
check_eq "and gone once the retention has passed" yes "$gone"
[ -n "$gone" ] || comment "the last answer: $seen"
check "last_event_id does not go back (${first:-?})" test "$(psql -X -At -c \
	"SELECT last_event_id FROM emissions_stats")" -ge "${first:-999999999}"
psql -X -q -c "SELECT emissions_start(), emissions_emit('kept.second')" >/dev/null
check "the next event gets a higher id" test "$(delivered_value "SELECT id
	FROM emissions_events(0, 10) WHERE type = 'kept.second'")" \
	-gt "${first:-999999999}"

outbox_bytes() {
	psql -X -At -c "SELECT sum(pg_relation_size(inhrelid))
		FROM pg_inherits WHERE inhparent = 'emissions_outbox'::regclass"
}
psql -X -q -v ON_ERROR_STOP=1 -c "SELECT count(emissions_emit('bulk.item',
	jsonb_build_object('n', g, 'note', md5(g::text) || md5((g + 1)::text))))
	FROM emissions_start() AS s, generate_series(1, 50000) AS g" >/dev/null
peak="$(outbox_bytes)"
check "a large transaction fills the outbox past its rotation size (${peak:-?} bytes)" \
	test "${peak:-0}" -gt 2097152
check_eq "its 50,000 events are delivered" 50000 \
	"$(delivered_value "SELECT count(*) FROM emissions_events(0, 100000)
		WHERE type = 'bulk.item'")"
small=""
for _ in $(seq 1 150); do
	size="$(outbox_bytes)"
	[ "${size:-99999999}" -lt 1000000 ] && small=yes && break
	sleep 0.1
done
check_eq "the outbox gives its space back without vacuum (${size:-?} bytes)" \
	yes "$small"

# The storage layer keeps heap row positions and sizes: a partition of
# another table access method is refused with a clear error when events
# are stored, never written.  Another access method here is one whose
# handler is not heap's (a second SQL function for heap's C function);
# another name for heap's own handler is heap, and accepted.
psql -X -q -v ON_ERROR_STOP=1 \
	-c "CREATE ACCESS METHOD heap_alias TYPE TABLE HANDLER heap_tableam_handler" \
	-c "ALTER TABLE emissions_outbox_0 SET ACCESS METHOD heap_alias" \
	-c "ALTER TABLE emissions_outbox_1 SET ACCESS METHOD heap_alias" \
	-c "ALTER TABLE emissions_outbox_2 SET ACCESS METHOD heap_alias"
psql -X -q -c "SELECT emissions_start(), emissions_emit('alias.one')" >/dev/null
check_eq "a partition whose access method is another name for heap is used" \
	1 "$(delivered_value "SELECT count(*) FROM emissions_events(0, 100000)
		WHERE type = 'alias.one'")"
psql -X -q -v ON_ERROR_STOP=1 \
	-c "CREATE FUNCTION other_handler(internal) RETURNS table_am_handler
		LANGUAGE internal AS 'heap_tableam_handler'" \
	-c "CREATE ACCESS METHOD heap_copy TYPE TABLE HANDLER other_handler" \
	-c "ALTER TABLE emissions_outbox_0 SET ACCESS METHOD heap_copy" \
	-c "ALTER TABLE emissions_outbox_1 SET ACCESS METHOD heap_copy" \
	-c "ALTER TABLE emissions_outbox_2 SET ACCESS METHOD heap_copy"
refused="$(psql -X -v VERBOSITY=verbose -c "SELECT emissions_start(),
	emissions_emit('refused.one')" 2>&1 || true)"
check "an outbox partition that is not heap is refused (0A000)" \
	grep -q "ERROR:  0A000: emissions table \"emissions_outbox_[0-2]\" does not use the heap access method" \
	<<<"$refused"
check "with a hint that says how to fix it" \
	grep -q "HINT:  Run ALTER TABLE public.emissions_outbox_[0-2] SET ACCESS METHOD heap." \
	<<<"$refused"
grep -q ERROR <<<"$refused" || comment "the answer: $refused"
check "and so are readers of the outbox" bash -c "psql -X -v VERBOSITY=verbose \
	-c 'SELECT count(*) FROM emissions_pending_events()' 2>&1 |
	grep -q 'ERROR:  0A000'"

cluster_stop "$CLUSTER"
done_testing
