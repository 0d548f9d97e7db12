-- Rule 8: a buffer past emissions.max_buffer_bytes spills its events to a
-- backend-local temporary file, memory stays bounded, no outbox row grows
-- with the transaction, and rules 1, 3 and 4 still hold on spilled events.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql


-- Below the threshold nothing spills.
BEGIN;
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('spill.small', jsonb_build_object('n', g)))
  FROM generate_series(1, 100) AS g;
SELECT pending_events, spilled_bytes FROM emissions_buffer_status();
ROLLBACK;

-- 100,000 events of about 150 bytes (15 MB) under a 64 kB threshold: the
-- buffer's memory stays near the threshold while the rest goes to disk.
SET emissions.max_buffer_bytes = '64kB';
BEGIN;
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('spill.bulk',
           jsonb_build_object('n', g, 'pad', repeat('x', 100))))
  FROM generate_series(1, 100000) AS g;
SELECT pending_events, spilled_bytes > 10000000 AS spilled_most,
       memory_bytes < 256 * 1024 AS memory_bounded
  FROM emissions_buffer_status();
SELECT total_bytes < 256 * 1024 AS context_bounded
  FROM pg_backend_memory_contexts WHERE name = 'emissions buffer';

-- Rule 4 on spilled events: what a savepoint adds, even when it spills
-- and is flushed, is undone; the spilled events from before are intact.
SAVEPOINT a;
SELECT count(*) FILTER (WHERE emissions_emit('spill.gone', jsonb_build_object('n', g)))
  FROM generate_series(1, 20000) AS g;
SELECT emissions_flush();
ROLLBACK TO SAVEPOINT a;
SELECT pending_events FROM emissions_buffer_status();

-- Rule 3 on spilled events: a flush persists them, a terminate after it
-- discards only what came later.
SELECT emissions_flush();

-- No outbox row grows with the transaction: rows hold whole events up to
-- 8000 bytes, and together they hold every flushed event (none of the
-- rolled-back savepoint's).  The transaction reads its own rows.
SELECT count(*) > 1000 AS many_rows,
       max(octet_length(data)) <= 8000 + 1 AS rows_bounded,
       sum(events) AS events
  FROM emissions_outbox WHERE txid = pg_current_xact_id();

SELECT count(*) FILTER (WHERE emissions_emit('spill.terminated', jsonb_build_object('n', g)))
  FROM generate_series(1, 5000) AS g;
SELECT emissions_terminate();
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('spill.tail', jsonb_build_object('n', g)))
  FROM generate_series(1, 3) AS g;
COMMIT;

-- All of the flushed events were delivered, once each and in emit order;
-- none of the rolled-back or terminated ones were.
SELECT type, count(*) AS events,
       bool_and((payload->>'n')::int = rn) AS in_emit_order
  FROM (SELECT type, payload,
               row_number() OVER (PARTITION BY type ORDER BY ord) AS rn
          FROM pg_temp.delivered()
               WITH ORDINALITY AS d(type, payload, metadata, ord)) AS e
 GROUP BY type ORDER BY type;

-- Rule 1 on spilled events: a rolled-back transaction that spilled and
-- flushed leaves nothing behind; a marker committed after it is delivered
-- alone.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('spill.rolled_back', jsonb_build_object('n', g)))
  FROM generate_series(1, 20000) AS g;
SELECT emissions_flush();
SELECT count(*) > 0 AS rows_written FROM emissions_outbox
 WHERE txid = pg_current_xact_id();
ROLLBACK;
SELECT emissions_start(), emissions_emit('marker', '{"after": "rollback"}');
SELECT type, payload FROM pg_temp.delivered();

-- An event larger than both the threshold and the row limit goes to the
-- file whole and gets an outbox row of its own; it is delivered intact,
-- between its neighbours.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('spill.before', '{"n": 1}');
SELECT emissions_emit('spill.huge', jsonb_build_object('blob', repeat('y', 400000)));
SELECT emissions_emit('spill.after', '{"n": 2}');
SELECT emissions_flush();
SELECT events, octet_length(data) > 8000 AS oversized_row
  FROM emissions_outbox WHERE txid = pg_current_xact_id() ORDER BY seq;
COMMIT;
SELECT type, octet_length(payload::text) AS payload_bytes,
       md5(payload::text) = md5(jsonb_build_object('blob', repeat('y', 400000))::text)
           AS is_the_blob
  FROM pg_temp.delivered();

-- A spill that runs into temp_file_limit fails with PostgreSQL's own error
-- (53400); rolled back to a savepoint, the buffer is as it was before and
-- commits normally.
CALL pg_temp.mark();
SET temp_file_limit = '1MB';
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('spill.kept', '{"n": 1}');
SAVEPOINT a;
\set VERBOSITY sqlstate
SELECT count(*) FILTER (WHERE emissions_emit('spill.too_much',
           jsonb_build_object('n', g, 'pad', repeat('x', 100))))
  FROM generate_series(1, 100000) AS g;
\set VERBOSITY default
ROLLBACK TO SAVEPOINT a;
SELECT pending_events FROM emissions_buffer_status();
SELECT emissions_emit('spill.kept', '{"n": 2}');
COMMIT;
RESET temp_file_limit;
SELECT type, payload FROM pg_temp.delivered();
RESET emissions.max_buffer_bytes;
