#!/usr/bin/env bash
# test/check_adapter_batch.sh: one source transaction's envelopes, made once
# for all its table and function adapters, past work_mem.
#
# The delivery worker makes each event's envelope once and keeps those the
# table and function adapters want in a batch (adapters.c), in memory up to
# work_mem and then in a temporary file.  Here work_mem is 64kB and
# temp_file_limit 128kB, and one transaction emits 4000 events of about
# 450 bytes of envelope each: the batch spills, past temp_file_limit, and
# still every adapter gets every event it wants, once, with the envelope
# the event log shows, and the worker never fails.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" "max_worker_processes = 32" \
	"work_mem = '64kB'" "temp_file_limit = '128kB'" "log_temp_files = 0"
export PGDATABASE=postgres
# The limits are the worker's; this script's own queries have room.
export PGOPTIONS="-c work_mem=4MB -c temp_file_limit=-1"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION emissions;
CREATE TABLE sink (id bigint, type text, payload jsonb, metadata jsonb,
	emitted_at timestamptz, txid xid8, database text);
CREATE TABLE evens (id bigint, type text);
CREATE TABLE calls (envelope jsonb);
CREATE FUNCTION record_call(envelope jsonb) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO public.calls VALUES (envelope) $$;
SELECT emissions_add_adapter('sink', 'table', 'sink', 'batch.*');
SELECT emissions_add_adapter('evens', 'table', 'evens', 'batch.even');
SELECT emissions_add_adapter('calls', 'function', 'record_call(jsonb)',
	'batch.*');
SQL
worker="$(psql -X -At -c "SELECT worker_pid FROM emissions_stats")"

check_eq "one transaction emits 4000 events" 0 "$(psql -X -q -v ON_ERROR_STOP=1 -c "
	BEGIN;
	SELECT emissions_start();
	SELECT count(emissions_emit(CASE WHEN g % 2 = 0 THEN 'batch.even'
										 ELSE 'batch.odd' END,
								jsonb_build_object('n', g, 'pad', repeat('x', 300)),
								jsonb_build_object('m', g)))
	  FROM generate_series(1, 4000) AS g;
	COMMIT;" >/dev/null 2>&1; echo $?)"
check_eq "the worker delivers them" t \
	"$(psql -X -At -c "SELECT emissions_wait_delivered('120s')" 2>&1)"

check_eq "the table adapter has each event once, as the log has it" "4000 4000 4000" \
	"$(psql -X -At -F ' ' -c "
	SELECT count(*), count(DISTINCT s.id),
	       count(*) FILTER (WHERE s.type = e.type AND s.payload = e.payload
	                          AND s.metadata = e.metadata
	                          AND s.emitted_at = e.emitted_at
	                          AND s.txid = e.txid
	                          AND s.database = current_database())
	  FROM sink AS s JOIN emissions_events(0, 100000) AS e USING (id)" 2>&1)"
check_eq "the adapter on one type has its 2000, from the same batch" "2000 2000 t" \
	"$(psql -X -At -F ' ' -c "
	SELECT count(*), count(DISTINCT id), bool_and(type = 'batch.even')
	  FROM evens" 2>&1)"
check_eq "the function adapter is called once per event, with the same envelope" \
	"4000 4000" "$(psql -X -At -F ' ' -c "
	SELECT count(*), count(*) FILTER (WHERE c.envelope = jsonb_build_object(
	           'id', s.id, 'type', s.type, 'payload', s.payload,
	           'metadata', s.metadata, 'emitted_at', c.envelope->'emitted_at',
	           'txid', s.txid::text::numeric, 'database', s.database)
	         AND (c.envelope->>'emitted_at')::timestamptz = s.emitted_at)
	  FROM calls AS c JOIN sink AS s ON s.id = (c.envelope->>'id')::bigint" 2>&1)"
check_eq "no call failed" 0 \
	"$(psql -X -At -c "SELECT count(*) FROM emissions_failed_deliveries" 2>&1)"

log="$CLUSTER/server.log"
comment "$(grep -E "ERROR|temporary file" "$log" | head -5)"
check "the worker's batch went to a temporary file" \
	grep -q "\[$worker\] LOG:  temporary file" "$log"
check "temp_file_limit did not stop it" \
	test "$(grep -c "temp_file_limit" "$log")" -eq 0
check_eq "the worker never failed" "$worker" \
	"$(psql -X -At -c "SELECT worker_pid FROM emissions_stats" 2>&1)"

cluster_stop "$CLUSTER"
done_testing
