-- Rule 5: PREPARE TRANSACTION persists the buffer; COMMIT PREPARED
-- delivers it, ROLLBACK PREPARED discards it.  (The test cluster runs with
-- max_prepared_transactions > 0.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- The delivery worker drains the outbox as soon as a transaction commits,
-- so committed events are read back once delivered.  pg_temp.mark() waits
-- until everything committed so far is delivered and remembers the last
-- event id; pg_temp.delivered() waits likewise and returns the events
-- delivered since that mark, in id order.  Ids, txids and times vary from
-- run to run and are never printed.
CREATE TEMP TABLE delivery_mark (last_id bigint NOT NULL);
INSERT INTO delivery_mark VALUES (0);
CREATE PROCEDURE pg_temp.mark() LANGUAGE plpgsql AS $$
BEGIN
	IF NOT emissions_wait_delivered() THEN
		RAISE EXCEPTION 'committed events were not delivered in time';
	END IF;
	UPDATE delivery_mark
	   SET last_id = (SELECT last_event_id FROM emissions_stats);
END
$$;
CREATE FUNCTION pg_temp.delivered()
RETURNS TABLE(type text, payload jsonb, metadata jsonb) LANGUAGE plpgsql AS $$
BEGIN
	IF NOT emissions_wait_delivered() THEN
		RAISE EXCEPTION 'committed events were not delivered in time';
	END IF;
	RETURN QUERY
		SELECT e.type, e.payload, e.metadata
		  FROM delivery_mark AS m, emissions_events(m.last_id, 1000000) AS e
		 ORDER BY e.id;
END
$$;
CALL pg_temp.mark();


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
