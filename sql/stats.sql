-- emissions_stats: the buffer-side counters of this database, what is
-- waiting in the outbox, and what the delivery worker did (SPEC.md,
-- "Observability").  Counters are published when a transaction ends.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql

-- The delivery worker would empty the outbox as soon as anything commits.
-- To see events wait there, hold it back: a prepared transaction keeps a
-- SHARE lock on the event log, which the worker must write to deliver
-- anything.  Everything committed before is delivered (the mark above).
BEGIN;
LOCK TABLE emissions_log IN SHARE MODE;
PREPARE TRANSACTION 'emissions_stats_hold';

SELECT emissions_stats_reset();
SELECT buffers_started, events_emitted, events_pending, oldest_pending_age
  FROM emissions_stats;

-- A committed buffer: 1 started and committed, 3 emitted, 2 batches and
-- 3 events persisted.
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('stats.a');
SELECT emissions_flush();
SELECT emissions_emit('stats.b');
SELECT emissions_emit('stats.c');
COMMIT;

-- A terminated buffer (2 discarded), then a dropped event (no buffer).
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('stats.d');
SELECT emissions_emit('stats.e');
SELECT emissions_terminate();
SET LOCAL emissions.log_dropped = off;
SELECT emissions_emit('stats.dropped');
COMMIT;

-- A rolled-back transaction: its active buffer counts as terminated and
-- all 3 of its events as discarded, the flushed one included.
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('stats.f');
SELECT emissions_flush();
SELECT emissions_emit('stats.g');
SELECT emissions_emit('stats.h');
ROLLBACK;

-- A rolled-back savepoint discards the events emitted inside it.
BEGIN;
SELECT emissions_start();
SAVEPOINT a;
SELECT emissions_emit('stats.i');
ROLLBACK TO SAVEPOINT a;
SELECT emissions_emit('stats.j');
COMMIT;

SELECT buffers_started, buffers_committed, buffers_terminated,
       events_emitted, events_dropped, events_discarded,
       events_persisted, batches_persisted, buffers_spilled
  FROM emissions_stats;

-- events_pending counts the committed events in the outbox, and
-- oldest_pending_age is the age of the oldest one.
SELECT events_pending,
       oldest_pending_age >= interval '0' AS has_age
  FROM emissions_stats;
SELECT events_pending = (SELECT count(*) FROM emissions_pending) AS consistent
  FROM emissions_stats;
SELECT type FROM emissions_pending;

-- The transaction's own uncommitted batches are not pending.
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('stats.own');
SELECT emissions_flush();
SELECT events_pending FROM emissions_stats;
ROLLBACK;

-- A spilled buffer is counted with the bytes it wrote to disk.
SET emissions.max_buffer_bytes = '8kB';
BEGIN;
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit('stats.spill', jsonb_build_object('n', g)))
  FROM generate_series(1, 1000) AS g;
COMMIT;
RESET emissions.max_buffer_bytes;
SELECT buffers_spilled, bytes_spilled > 8192 AS bytes_spilled
  FROM emissions_stats;

-- Reset clears the counters (the outbox is not touched).
SELECT emissions_stats_reset();
SELECT buffers_started, events_emitted, events_persisted, buffers_spilled,
       events_delivered, events_pending,
       stats_reset > now() - interval '1 minute' AS just_reset
  FROM emissions_stats;

-- Let the worker go: it delivers the 1004 pending events, after which
-- none is pending, events_delivered has counted them (it is published
-- just after the worker's transaction commits, so wait for it too), and
-- the worker's pid and last delivery time are shown.
COMMIT PREPARED 'emissions_stats_hold';
CREATE FUNCTION pg_temp.counted(n bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..3000 LOOP
		IF (SELECT events_delivered FROM emissions_stats) >= n THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN false;
END
$$;
SELECT count(*) AS delivered_events FROM pg_temp.delivered();
SELECT pg_temp.counted(1004) AS counted;
SELECT events_delivered, deliveries_failed, events_pending, oldest_pending_age,
       worker_pid = (SELECT pid FROM pg_stat_activity
                      WHERE backend_type = 'emissions delivery'
                        AND datname = current_database()) AS worker_pid_shown,
       last_delivery_at > now() - interval '1 minute' AS recent_delivery
  FROM emissions_stats;
