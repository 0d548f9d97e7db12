-- Rule 5: PREPARE TRANSACTION persists the buffer; COMMIT PREPARED
-- delivers it, ROLLBACK PREPARED discards it.  (The test cluster runs with
-- max_prepared_transactions > 0.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql


-- PREPARE commits the active buffer into the prepared transaction: the
-- session is free and has no buffer, and nothing is pending or delivered
-- yet.
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('twophase.committed', '{"n": 1}');
SELECT emissions_flush();
SELECT emissions_emit('twophase.committed', '{"n": 2}');
PREPARE TRANSACTION 'emissions_2pc_commit';
SELECT emissions_active() AS active_after_prepare;
SELECT count(*) AS pending_before_commit_prepared FROM emissions_pending;
SELECT count(*) AS delivered_before_commit_prepared FROM pg_temp.delivered();

-- COMMIT PREPARED makes both batches committed events, and they are
-- delivered.
COMMIT PREPARED 'emissions_2pc_commit';
SELECT type, payload FROM pg_temp.delivered();

-- ROLLBACK PREPARED discards them: a marker committed afterwards is
-- delivered, they are not.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('twophase.rolled_back', '{"n": 3}');
PREPARE TRANSACTION 'emissions_2pc_rollback';
ROLLBACK PREPARED 'emissions_2pc_rollback';
SELECT emissions_start(), emissions_emit('marker', '{"after": "rollback_prepared"}');
SELECT type, payload FROM pg_temp.delivered();

-- A spilled buffer prepares too: its temporary file is read back and
-- closed before the transaction is prepared.
CALL pg_temp.mark();
SET emissions.max_buffer_bytes = '8kB';
BEGIN;
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('twophase.spilled',
                                             jsonb_build_object('n', g)))
  FROM generate_series(1, 2000) AS g;
SELECT spilled_bytes > 0 AS spilled FROM emissions_buffer_status();
PREPARE TRANSACTION 'emissions_2pc_spilled';
COMMIT PREPARED 'emissions_2pc_spilled';
RESET emissions.max_buffer_bytes;
SELECT type, count(*) AS events, min((payload->>'n')::int) AS first,
       max((payload->>'n')::int) AS last,
       bool_and((payload->>'n')::int = ord) AS in_emit_order
  FROM pg_temp.delivered() WITH ORDINALITY AS d(type, payload, metadata, ord)
 GROUP BY type;
