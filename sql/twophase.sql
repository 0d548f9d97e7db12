-- Rule 5: PREPARE TRANSACTION persists the buffer; COMMIT PREPARED
-- delivers it, ROLLBACK PREPARED discards it.  (The test cluster runs with
-- max_prepared_transactions > 0.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;
TRUNCATE emissions_outbox;

-- PREPARE commits the active buffer into the prepared transaction: the
-- session is free and has no buffer, and nothing is pending yet.
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('twophase.committed', '{"n": 1}');
SELECT emissions_flush();
SELECT emissions_emit('twophase.committed', '{"n": 2}');
PREPARE TRANSACTION 'emissions_2pc_commit';
SELECT emissions_active() AS active_after_prepare;
SELECT count(*) AS pending_before_commit_prepared FROM emissions_pending;

-- COMMIT PREPARED makes both batches committed events.
COMMIT PREPARED 'emissions_2pc_commit';
SELECT type, payload FROM emissions_pending;

-- ROLLBACK PREPARED discards them.
TRUNCATE emissions_outbox;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('twophase.rolled_back', '{"n": 3}');
PREPARE TRANSACTION 'emissions_2pc_rollback';
ROLLBACK PREPARED 'emissions_2pc_rollback';
SELECT count(*) AS pending_after_rollback_prepared FROM emissions_pending;

-- A spilled buffer prepares too: its temporary file is read back and
-- closed before the transaction is prepared.
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
SELECT count(*) AS events, min((payload->>'n')::int) AS first,
       max((payload->>'n')::int) AS last
  FROM emissions_pending WHERE type = 'twophase.spilled';
