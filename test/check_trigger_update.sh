#!/usr/bin/env bash
# test/check_trigger_update.sh: a 100,000-row UPDATE under
# emissions_trigger(), at row level and at statement level.
#
# Each form, in its own transaction: the buffer and the whole backend stay
# within bounded memory while the 100,000 events are pending (they spill
# past emissions.max_buffer_bytes), and once committed all 100,000 are
# delivered, one per account, each with the new and the old row.  The same
# UPDATE rolled back delivers nothing, as a marker committed after it
# shows.
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" \
	"max_worker_processes = 32"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION emissions;
CREATE TABLE accounts (id integer PRIMARY KEY, balance integer NOT NULL,
					   name text NOT NULL, updated_at timestamptz NOT NULL);
INSERT INTO accounts SELECT g, 0, 'account ' || g, now()
  FROM generate_series(1, 100000) AS g;
SQL

for form in row statement; do
	level=false
	[ "$form" = statement ] && level=true
	psql -X -q -v ON_ERROR_STOP=1 -c "SELECT emissions_unwatch('accounts')" \
		-c "SELECT emissions_watch('accounts', prefix => '$form',
			statement_level => $level)" >/dev/null
	mark="$(psql -X -At -c "SELECT emissions_wait_delivered()" \
		-c "SELECT last_event_id FROM emissions_stats" | tail -n 1)"

	out="$(psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 <<'SQL' 2>&1
BEGIN;
UPDATE accounts SET balance = balance + 1;
SELECT pending_events, memory_bytes FROM emissions_buffer_status();
SELECT sum(total_bytes) FROM pg_backend_memory_contexts;
COMMIT;
SQL
)" && status=0 || status=$?
	check_eq "$form level: the UPDATE and its COMMIT succeed" 0 "$status"
	read -r pending memory <<<"$(sed -n 1p <<<"$out")"
	backend="$(sed -n 2p <<<"$out")"
	check_eq "$form level: 100,000 events pending before COMMIT" 100000 \
		"$pending"
	check "$form level: the buffer's memory stays under 16MB (${memory:-?})" \
		test "${memory:-0}" -gt 0 -a "${memory:-0}" -lt 16777216
	check "$form level: the backend's memory stays under 64MB (${backend:-?})" \
		test "${backend:-0}" -gt 0 -a "${backend:-0}" -lt 67108864

	psql -X -q -c "BEGIN" -c "UPDATE accounts SET balance = balance + 1" \
		-c "ROLLBACK" >/dev/null
	psql -X -q -c "SELECT emissions_start(), emissions_emit('$form.marker')" \
		>/dev/null
	check_eq "$form level: each account's change delivered once, nothing of the rollback" \
		"100000 100000 t 1" \
		"$(psql -X -At -F ' ' -c "SELECT emissions_wait_delivered('120s')" \
			-c "SELECT count(*) FILTER (WHERE type = '$form.update'),
			           count(DISTINCT payload->'new'->>'id')
			             FILTER (WHERE type = '$form.update'),
			           bool_and((payload->'new'->>'balance')::int =
			                    (payload->'old'->>'balance')::int + 1)
			             FILTER (WHERE type = '$form.update'),
			           count(*) FILTER (WHERE type = '$form.marker')
			      FROM emissions_events($mark, 1000000)" 2>&1 | tail -n 1)"
done

cluster_stop "$CLUSTER"
done_testing
