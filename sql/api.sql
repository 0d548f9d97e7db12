-- The SQL API: what each function returns in each buffer state
-- (SPEC.md, "SQL API").
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql

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
-- What reached the outbox, as the transaction itself sees it: one row per
-- hand-off (the empty flush wrote none), nothing of the terminated buffer.
SELECT batch, seq, events FROM emissions_outbox
 WHERE txid = pg_current_xact_id() ORDER BY seq;
COMMIT;

-- What was delivered: the three handed-off events, in emit order, and
-- neither of the terminated ones.
SELECT type, payload FROM pg_temp.delivered();

-- The buffer never outlives its transaction.
SELECT emissions_active() AS active_in_next_transaction;

-- A statement outside an explicit transaction block is its own
-- transaction: the buffer it opens is committed when the statement ends.
CALL pg_temp.mark();
SELECT emissions_start() AS started, emissions_emit('api.autocommit');
SELECT emissions_active() AS active_afterwards;
SELECT type FROM pg_temp.delivered();

-- Defaults: payload and metadata default to empty objects; a NULL payload
-- is stored as JSON null; a NULL metadata as an empty object.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('api.defaults');
SELECT emissions_emit('api.null_payload', NULL);
SELECT emissions_emit('api.null_metadata', '[1, 2]', NULL);
SELECT emissions_emit('api.with_metadata', '"text"', '{"source": "api"}');
COMMIT;
SELECT type, payload, jsonb_typeof(payload) AS kind, metadata
  FROM pg_temp.delivered();

-- Event types: every allowed character, and the longest allowed (255 bytes).
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('Order.Created:v2-beta_1');
SELECT emissions_emit(repeat('t', 255));
COMMIT;
SELECT length(type) AS type_length, left(type, 30) AS type_start
  FROM pg_temp.delivered();

-- Hand-off writes one outbox row per batch, not one per event, and only a
-- hand-off touches the outbox: emitting only appends to memory (no lock on
-- the outbox or any of its partitions until the flush).  The transaction
-- reads its own outbox rows before it commits: the worker cannot deliver
-- (or delete) them yet.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('api.batched', jsonb_build_object('n', g)))
  FROM generate_series(1, 10) AS g;
SELECT count(*) > 0 AS outbox_locked_after_emit FROM pg_locks
 WHERE (relation = 'emissions_outbox'::regclass
        OR relation IN (SELECT inhrelid FROM pg_inherits
                         WHERE inhparent = 'emissions_outbox'::regclass))
   AND pid = pg_backend_pid();
SELECT emissions_flush();
SELECT count(*) > 0 AS outbox_locked_after_flush FROM pg_locks
 WHERE (relation = 'emissions_outbox'::regclass
        OR relation IN (SELECT inhrelid FROM pg_inherits
                         WHERE inhparent = 'emissions_outbox'::regclass))
   AND pid = pg_backend_pid();
SELECT emissions_emit('api.batched', '{"n": 11}');
SELECT batch, seq, events FROM emissions_outbox
 WHERE txid = pg_current_xact_id() ORDER BY seq;
SELECT emissions_emit('api.batched', '{"n": 12}');
SELECT emissions_commit();
SELECT batch, seq, events FROM emissions_outbox
 WHERE txid = pg_current_xact_id() ORDER BY seq;
COMMIT;
-- Delivered, all twelve arrive once each, in emit order.
SELECT type, count(*) AS events,
       bool_and((payload->>'n')::int = ord) AS in_emit_order
  FROM pg_temp.delivered() WITH ORDINALITY AS d(type, payload, metadata, ord)
 GROUP BY type;
