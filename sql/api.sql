-- The SQL API: what each function returns in each buffer state
-- (SPEC.md, "SQL API").
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;
TRUNCATE emissions_outbox;

-- No buffer is active outside a transaction that started one: flush and
-- commit answer NULL, terminate answers 0, and none of them is an error.
SELECT emissions_active() AS active,
       emissions_flush() AS flushed,
       emissions_commit() AS committed,
       emissions_terminate() AS terminated;

-- emissions_start() opens a buffer; a second call answers false ("already
-- started") and leaves the active buffer and its events as they are.
BEGIN;
SELECT emissions_start() AS first_start;
SELECT emissions_emit('api.one', '{"n": 1}');
SELECT emissions_start() AS second_start;
SELECT emissions_active() AS active, pending_events
  FROM emissions_buffer_status();
-- flush hands off the batch (its size) and keeps the buffer open;
-- a flush with nothing pending hands off an empty batch: 0.
SELECT emissions_flush() AS flushed;
SELECT emissions_flush() AS flushed_again;
SELECT emissions_active() AS still_active;
-- commit hands off what is pending and closes the buffer.
SELECT emissions_emit('api.two', '{"n": 2}');
SELECT emissions_emit('api.three', '{"n": 3}');
SELECT emissions_commit() AS committed;
SELECT emissions_active() AS active_after_commit;
-- A closed buffer answers like no buffer at all.
SELECT emissions_commit() AS commit_again, emissions_flush() AS flush_again,
       emissions_terminate() AS terminate_again;
-- A new buffer can be started in the same transaction; terminate discards
-- what it holds and answers how many events it discarded.
SELECT emissions_start() AS restarted;
SELECT emissions_emit('api.discarded');
SELECT emissions_emit('api.discarded');
SELECT emissions_terminate() AS discarded;
SELECT emissions_active() AS active_after_terminate;
COMMIT;

-- What reached the outbox: the three handed-off events, in emit order, and
-- neither of the terminated ones.
SELECT type, payload, batch FROM emissions_pending;

-- The buffer never outlives its transaction.
SELECT emissions_active() AS active_in_next_transaction;

-- A statement outside an explicit transaction block is its own
-- transaction: the buffer it opens is committed when the statement ends.
TRUNCATE emissions_outbox;
SELECT emissions_start() AS started, emissions_emit('api.autocommit');
SELECT emissions_active() AS active_afterwards;
SELECT type FROM emissions_pending;

-- Defaults: payload and metadata default to empty objects; a NULL payload
-- is stored as JSON null; a NULL metadata as an empty object.
TRUNCATE emissions_outbox;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('api.defaults');
SELECT emissions_emit('api.null_payload', NULL);
SELECT emissions_emit('api.null_metadata', '[1, 2]', NULL);
SELECT emissions_emit('api.with_metadata', '"text"', '{"source": "api"}');
COMMIT;
SELECT type, payload, jsonb_typeof(payload) AS kind, metadata
  FROM emissions_pending;

-- Event types: every allowed character, and the longest allowed (255 bytes).
TRUNCATE emissions_outbox;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('Order.Created:v2-beta_1');
SELECT emissions_emit(repeat('t', 255));
COMMIT;
SELECT length(type) AS type_length, left(type, 30) AS type_start
  FROM emissions_pending;

-- Hand-off writes one outbox row per batch, not one per event, and only a
-- hand-off touches the outbox: emitting only appends to memory (no lock on
-- the outbox until the flush).
TRUNCATE emissions_outbox;
BEGIN;
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('api.batched', jsonb_build_object('n', g)))
  FROM generate_series(1, 10) AS g;
SELECT count(*) AS outbox_locks_after_emit FROM pg_locks
 WHERE relation = 'emissions_outbox'::regclass AND pid = pg_backend_pid();
SELECT emissions_flush();
SELECT count(*) AS outbox_locks_after_flush FROM pg_locks
 WHERE relation = 'emissions_outbox'::regclass AND pid = pg_backend_pid();
SELECT emissions_emit('api.batched', '{"n": 11}');
SELECT emissions_emit('api.batched', '{"n": 12}');
COMMIT;
SELECT batch, seq, events FROM emissions_outbox ORDER BY seq;
