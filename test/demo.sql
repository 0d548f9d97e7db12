-- test/demo.sql: a first look at emissions, run by test/demo.sh.
--
-- emissions gives a transaction an event buffer: events emitted while the
-- transaction works are kept if, and only if, it commits.

-- An ordinary table for the application's own data.
CREATE TABLE orders (
	id serial PRIMARY KEY,
	customer text NOT NULL,
	total numeric(10, 2) NOT NULL
);

-- Every change to it emits an event too (orders.insert, .update, .delete).
SELECT emissions_watch('orders');

-- 1. A transaction that commits: the order and its event are kept together.
BEGIN;
-- Open this transaction's event buffer.
SELECT emissions_start();
INSERT INTO orders (customer, total) VALUES ('alice', 42.50);
-- Emit an event: a type, a JSON payload and JSON metadata.
SELECT emissions_emit('order.created',
					  jsonb_build_object('customer', 'alice', 'total', 42.50),
					  '{"source": "demo"}');
-- COMMIT hands the buffered events to the outbox, atomically with the order.
COMMIT;

-- 2. A transaction that rolls back: the order and its event both vanish.
BEGIN;
SELECT emissions_start();
INSERT INTO orders (customer, total) VALUES ('bob', 7.00);
SELECT emissions_emit('order.created',
					  jsonb_build_object('customer', 'bob', 'total', 7.00),
					  '{"source": "demo"}');
ROLLBACK;

-- Only alice's order exists ...
SELECT * FROM orders;

-- ... and only its events are delivered (the trigger's orders.insert and
-- the application's order.created): the delivery worker NOTIFYs them on
-- the channel "emissions" (the consumer started by demo.sh prints them)
-- and keeps them readable by id, for consumers that catch up after a
-- disconnect.  Events rolled back never show up.
SELECT emissions_wait_delivered();
SELECT id, type, payload, metadata FROM emissions_events(0);

-- Counters of this database: buffers started, events emitted, discarded
-- and delivered, and what is still waiting for delivery.
\x on
SELECT * FROM emissions_stats;
\x off
