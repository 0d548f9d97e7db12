-- Rules 1, 2 and 3: events are persisted with the transaction's data, only
-- if it commits; an abort discards the buffer and every batch it handed
-- off; a flushed batch is not recalled by emissions_terminate().
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql

-- An aborted transaction's events must be absent from what is delivered;
-- a marker event committed after it, and delivered after it, shows that
-- the absence is not just a delivery still to come.

CREATE TABLE orders (id integer PRIMARY KEY, total numeric);

-- Rule 1: a committed transaction stores its rows and its events together.
BEGIN;
SELECT emissions_start();
INSERT INTO orders VALUES (1, 99.99);
SELECT emissions_emit('order.created', '{"id": 1, "total": 99.99}',
                      '{"source": "api"}');
COMMIT;
SELECT id, total FROM orders;
SELECT type, payload, metadata FROM pg_temp.delivered();

-- Rule 1: the transaction's own handed-off batch is in the outbox, where
-- the transaction itself sees its row, but it is not committed yet: it is
-- not among the pending events, even for the transaction itself, and it
-- is not delivered.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('order.unseen');
SELECT emissions_flush();
SELECT count(*) AS own_outbox_rows FROM emissions_outbox
 WHERE txid = pg_current_xact_id();
SELECT count(*) AS own_uncommitted_events FROM emissions_pending
 WHERE type = 'order.unseen';
SELECT count(*) AS delivered_before_commit FROM pg_temp.delivered();
ROLLBACK;

-- Rule 2: ROLLBACK discards the buffer, the batches it flushed, and the
-- data: nothing of the transaction remains.
BEGIN;
SELECT emissions_start();
INSERT INTO orders VALUES (2, 10);
SELECT emissions_emit('order.created', '{"id": 2}');
SELECT emissions_flush();
SELECT emissions_emit('order.created', '{"id": 2, "again": true}');
ROLLBACK;
SELECT emissions_active() AS active_after_rollback;
SELECT count(*) AS orders_2 FROM orders WHERE id = 2;
SELECT emissions_start(), emissions_emit('marker', '{"after": "rollback"}');
SELECT type, payload FROM pg_temp.delivered();

-- Rule 2: an error aborts the transaction and discards the buffer with it.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('order.created', '{"id": 3}');
SELECT emissions_flush();
INSERT INTO orders VALUES (1, 0);	-- duplicate key
COMMIT;
SELECT emissions_active() AS active_after_error;
SELECT emissions_start(), emissions_emit('marker', '{"after": "error"}');
SELECT type, payload FROM pg_temp.delivered();

-- Rule 2: COMMIT commits an active buffer implicitly.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
INSERT INTO orders VALUES (4, 4);
SELECT emissions_emit('order.created', '{"id": 4}');
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- Rule 3: emissions_terminate() does not recall a flushed batch; only the
-- events emitted after the flush are discarded.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('order.flushed', '{"id": 5}');
SELECT emissions_flush();
SELECT emissions_emit('order.terminated', '{"id": 5}');
SELECT emissions_terminate() AS discarded;
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- Dropped events: without a buffer, emit answers false and stores nothing;
-- emissions.log_dropped chooses the message (default: NOTICE).
CALL pg_temp.mark();
SELECT emissions_emit('order.dropped') AS stored;
SET emissions.log_dropped = warning;
SELECT emissions_emit('order.dropped') AS stored;
SET emissions.log_dropped = off;
SELECT emissions_emit('order.dropped') AS stored;
SET emissions.log_dropped = debug;
SELECT emissions_emit('order.dropped') AS stored;
SET client_min_messages = debug1;
SELECT emissions_emit('order.dropped') AS stored;
SET client_min_messages = log;
SET emissions.log_dropped = log;
SELECT emissions_emit('order.dropped') AS stored;
RESET client_min_messages;
RESET emissions.log_dropped;
SELECT emissions_start(), emissions_emit('marker', '{"after": "dropped"}');
SELECT type, payload FROM pg_temp.delivered();

-- emissions.auto_start: emit opens a buffer when none is active, and the
-- transaction then commits or discards it like any other.
CALL pg_temp.mark();
SET emissions.auto_start = on;
BEGIN;
SELECT emissions_active() AS active_before;
SELECT emissions_emit('order.auto', '{"id": 6}') AS stored;
SELECT emissions_active() AS active_after;
COMMIT;
BEGIN;
SELECT emissions_emit('order.auto', '{"id": 7}') AS stored;
ROLLBACK;
RESET emissions.auto_start;
SELECT emissions_start(), emissions_emit('marker', '{"after": "auto_start"}');
SELECT type, payload FROM pg_temp.delivered();

DROP TABLE orders;

-- Rule 2: the implicit commit of the buffer happens after deferred
-- triggers have fired, so events they emit at COMMIT are stored too.
CREATE TABLE shipments (id integer PRIMARY KEY);
CREATE FUNCTION emit_shipment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM emissions_emit('shipment.deferred', jsonb_build_object('id', NEW.id));
	RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER shipment_event AFTER INSERT ON shipments
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION emit_shipment();
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
INSERT INTO shipments VALUES (1), (2);
SELECT pending_events AS pending_before_commit FROM emissions_buffer_status();
COMMIT;
SELECT type, payload FROM pg_temp.delivered();
DROP TABLE shipments;
DROP FUNCTION emit_shipment();
