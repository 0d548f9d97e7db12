-- Rule 8: a buffer past emissions.max_buffer_bytes spills its events to a
-- backend-local temporary file, memory stays bounded, no outbox row grows
-- with the transaction, and rules 1, 3 and 4 still hold on spilled events.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;
TRUNCATE emissions_outbox;

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
SELECT count(*) FILTER (WHERE emissions_emit('spill.terminated', jsonb_build_object('n', g)))
  FROM generate_series(1, 5000) AS g;
SELECT emissions_terminate();
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('spill.tail', jsonb_build_object('n', g)))
  FROM generate_series(1, 3) AS g;
COMMIT;

-- All of the flushed events arrived, once each and in emit order; none of
-- the rolled-back or terminated ones did.
SELECT type, count(*) AS events,
       bool_and((payload->>'n')::int = rn) AS in_emit_order
  FROM (SELECT type, payload,
               row_number() OVER (PARTITION BY type ORDER BY txid, seq, ordinal) AS rn
          FROM emissions_pending_events()) AS e
 GROUP BY type ORDER BY type;

-- No outbox row grows with the transaction: rows hold whole events up to
-- 8000 bytes, and together they hold every event.
SELECT count(*) > 1000 AS many_rows,
       max(octet_length(data)) <= 8000 + 1 AS rows_bounded,
       sum(events) AS events
  FROM emissions_outbox;

-- Rule 1 on spilled events: a rolled-back transaction that spilled leaves
-- nothing behind.
TRUNCATE emissions_outbox;
BEGIN;
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('spill.rolled_back', jsonb_build_object('n', g)))
  FROM generate_series(1, 20000) AS g;
SELECT emissions_flush();
ROLLBACK;
SELECT count(*) AS rows_left FROM emissions_outbox;

-- An event larger than both the threshold and the row limit goes to the
-- file whole and gets an outbox row of its own; it comes back intact.
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('spill.before', '{"n": 1}');
SELECT emissions_emit('spill.huge', jsonb_build_object('blob', repeat('y', 400000)));
SELECT emissions_emit('spill.after', '{"n": 2}');
COMMIT;
SELECT type, octet_length(payload::text) AS payload_bytes,
       md5(payload::text) = md5(jsonb_build_object('blob', repeat('y', 400000))::text)
           AS intact
  FROM emissions_pending WHERE type = 'spill.huge';
SELECT events, octet_length(data) > 8000 AS oversized_row
  FROM emissions_outbox ORDER BY seq;

-- A spill that runs into temp_file_limit fails with PostgreSQL's own error
-- (53400); rolled back to a savepoint, the buffer is as it was before and
-- commits normally.
TRUNCATE emissions_outbox;
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
SELECT type, payload FROM emissions_pending;
RESET emissions.max_buffer_bytes;
