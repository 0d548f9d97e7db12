#!/usr/bin/env bash
# test/check_large_update.sh: rule 8 at scale, a million-row UPDATE under a
# row trigger that emits an event per row.
#
# With the default emissions.max_buffer_bytes (8MB) the million events
# (about 100 MB encoded) spill to a temporary file: the buffer's memory and
# the whole backend's stay bounded, every stored row stays under 8000
# bytes, and all million events are delivered once, in emit order, by one
# worker transaction (rule 6).
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/lib.sh"
become_root "$@"
prepare

cluster_start "shared_preload_libraries = 'emissions'" "max_worker_processes = 32"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION emissions;
CREATE TABLE accounts (id integer PRIMARY KEY, balance integer NOT NULL);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 1000000) AS g;
CREATE FUNCTION account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM emissions_emit('account.updated',
		jsonb_build_object('id', NEW.id, 'balance', NEW.balance));
	RETURN NEW;
END
$$;
CREATE TRIGGER account_changed BEFORE UPDATE ON accounts
	FOR EACH ROW EXECUTE FUNCTION account_changed();
SQL

# One transaction: the UPDATE, then the buffer's and the backend's memory
# while the million events are pending, then COMMIT.
out="$(psql -X -At -F ' ' -v ON_ERROR_STOP=1 <<'SQL' 2>&1
BEGIN;
SELECT emissions_start();
UPDATE accounts SET balance = balance + 1;
SELECT pending_events, memory_bytes, spilled_bytes FROM emissions_buffer_status();
SELECT sum(total_bytes) FROM pg_backend_memory_contexts;
COMMIT;
SQL
)" && status=0 || status=$?
comment "$out"
check_eq "the UPDATE and its COMMIT succeed" 0 "$status"
read -r pending memory spilled <<<"$(sed -n 4p <<<"$out")"
backend="$(sed -n 5p <<<"$out")"
check_eq "a million events pending before COMMIT" 1000000 "$pending"
check "the buffer spilled most of them (${spilled:-?} bytes)" \
	test "${spilled:-0}" -gt 50000000
check "the buffer's memory stays under 2 x 8MB (${memory:-?} bytes)" \
	test "${memory:-0}" -gt 0 -a "${memory:-0}" -lt 16777216
check "the backend's memory stays under 64MB (${backend:-?} bytes)" \
	test "${backend:-0}" -gt 0 -a "${backend:-0}" -lt 67108864

check_eq "the worker delivers them all" t "$(psql -X -At -c \
	"SELECT emissions_wait_delivered('300s')" 2>&1)"
out="$(psql -X -At -F ' ' -v ON_ERROR_STOP=1 -c "
	SELECT sum(last_id - first_id + 1), max(octet_length(data)),
	       count(DISTINCT delivered_at)
	  FROM emissions_log" 2>&1)"
read -r stored widest deliveries <<<"$out"
check_eq "a million events delivered" 1000000 "$stored"
check "no stored row over 8000 bytes of events (${widest:-?})" \
	test "${widest:-99999}" -le 8001
check_eq "in one worker transaction" 1 "$deliveries"
check_eq "each account once, in emit order" "1000000 1000000 t" \
	"$(psql -X -At -F ' ' -v ON_ERROR_STOP=1 -c "
	SELECT count(DISTINCT n), count(*),
	       bool_and(n = rn)
	  FROM (SELECT (payload->>'id')::int AS n,
	               row_number() OVER (ORDER BY id) AS rn
	          FROM emissions_events(0, 2000000)) AS e" 2>&1)"

cluster_stop "$CLUSTER"
done_testing
