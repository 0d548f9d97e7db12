-- Rule 4: ROLLBACK TO SAVEPOINT, and a PL/pgSQL EXCEPTION block that
-- catches an error, return the buffer to exactly its state at the
-- savepoint; released savepoints keep their events.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql


-- Events emitted since the savepoint are gone; those before it stay.
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('sp.kept', '{"n": 1}');
SAVEPOINT a;
SELECT emissions_emit('sp.gone', '{"n": 2}');
ROLLBACK TO SAVEPOINT a;
SELECT pending_events FROM emissions_buffer_status();
SELECT emissions_emit('sp.kept', '{"n": 3}');
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- A buffer started since the savepoint is closed again.
CALL pg_temp.mark();
BEGIN;
SAVEPOINT a;
SELECT emissions_start();
SELECT emissions_emit('sp.gone');
ROLLBACK TO SAVEPOINT a;
SELECT emissions_active() AS active;
SELECT emissions_emit('sp.dropped') AS stored;
COMMIT;
-- Nothing of it is delivered, while a marker committed after it is.
SELECT emissions_start(), emissions_emit('marker', '{"after": "savepoint"}');
SELECT type, payload FROM pg_temp.delivered();

-- Events emitted before the savepoint but flushed after it are back in the
-- buffer, not lost, and are stored once when the buffer commits.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('sp.flushed', '{"n": 1}');
SELECT emissions_emit('sp.flushed', '{"n": 2}');
SAVEPOINT a;
SELECT emissions_flush();
SELECT emissions_emit('sp.gone');
ROLLBACK TO SAVEPOINT a;
SELECT pending_events FROM emissions_buffer_status();
SELECT emissions_emit('sp.after', '{"n": 3}');
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- A terminate or a commit inside a rolled-back savepoint is undone: the
-- buffer is active again with its events.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('sp.restored', '{"n": 1}');
SAVEPOINT a;
SELECT emissions_terminate();
ROLLBACK TO SAVEPOINT a;
SELECT emissions_active() AS active, pending_events
  FROM emissions_buffer_status();
SAVEPOINT b;
SELECT emissions_commit();
ROLLBACK TO SAVEPOINT b;
SELECT emissions_active() AS active, pending_events
  FROM emissions_buffer_status();
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- A flushed batch from before the savepoint survives the rollback: only
-- what happened after the savepoint is undone.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('sp.early', '{"n": 1}');
SELECT emissions_flush();
SAVEPOINT a;
SELECT emissions_emit('sp.gone');
SELECT emissions_flush();
ROLLBACK TO SAVEPOINT a;
SELECT emissions_emit('sp.late', '{"n": 2}');
-- The transaction's own outbox rows: the first batch only.
SELECT batch, seq, events FROM emissions_outbox
 WHERE txid = pg_current_xact_id() ORDER BY seq;
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- Released savepoints keep their events, flushed or not; nested savepoints
-- unwind level by level.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SAVEPOINT a;
SELECT emissions_emit('sp.a', '{"n": 1}');
SAVEPOINT b;
SELECT emissions_emit('sp.b', '{"n": 2}');
SELECT emissions_flush();
SAVEPOINT c;
SELECT emissions_emit('sp.c', '{"n": 3}');
RELEASE SAVEPOINT c;
RELEASE SAVEPOINT b;
SAVEPOINT d;
SELECT emissions_emit('sp.d', '{"n": 4}');
SAVEPOINT e;
SELECT emissions_emit('sp.e', '{"n": 5}');
RELEASE SAVEPOINT e;
ROLLBACK TO SAVEPOINT d;
RELEASE SAVEPOINT a;
-- One batch of two events was handed off; sp.c waits in the buffer.
SELECT batch, seq, events FROM emissions_outbox
 WHERE txid = pg_current_xact_id() ORDER BY seq;
SELECT pending_events FROM emissions_buffer_status();
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- Rolling back to an outer savepoint undoes released inner ones too.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('sp.outer', '{"n": 1}');
SAVEPOINT a;
SELECT emissions_emit('sp.gone', '{"n": 2}');
SAVEPOINT b;
SELECT emissions_flush();
SELECT emissions_emit('sp.gone', '{"n": 3}');
RELEASE SAVEPOINT b;
ROLLBACK TO SAVEPOINT a;
SELECT pending_events FROM emissions_buffer_status();
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- A PL/pgSQL EXCEPTION block that catches an error is a savepoint: what
-- the block emitted is gone, what came before stays.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('plpgsql.before', '{"n": 1}');
DO $$
BEGIN
	PERFORM emissions_emit('plpgsql.gone', '{"n": 2}');
	PERFORM emissions_flush();
	PERFORM 1 / 0;
EXCEPTION WHEN division_by_zero THEN
	PERFORM emissions_emit('plpgsql.handler', '{"n": 3}');
END
$$;
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- An error inside a function that loops with its own EXCEPTION blocks
-- keeps the events of the iterations that succeeded.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
DO $$
BEGIN
	FOR i IN 1..5 LOOP
		BEGIN
			PERFORM emissions_emit('plpgsql.item', jsonb_build_object('n', i));
			IF i % 2 = 0 THEN
				RAISE EXCEPTION 'item % fails', i;
			END IF;
		EXCEPTION WHEN raise_exception THEN
			NULL;
		END;
	END LOOP;
END
$$;
COMMIT;
SELECT type, payload FROM pg_temp.delivered();
