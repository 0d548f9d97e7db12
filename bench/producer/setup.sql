-- bench/producer/setup.sql: the tables of the producer benchmark (psql).
CREATE EXTENSION emissions;

-- The business row every transaction inserts.
CREATE TABLE bench_orders (
	id bigserial PRIMARY KEY,
	customer int,
	total numeric,
	created_at timestamptz DEFAULT now()
);

-- The hand-written outbox emissions is compared with.
CREATE TABLE outbox_hand (
	id bigserial PRIMARY KEY,
	type text,
	payload jsonb,
	metadata jsonb,
	created_at timestamptz DEFAULT now()
);

-- PgQ, the established queue: events of the queue "bench" go to
-- pgq.event_<queue id>_<n>, children of pgq.event_<queue id>
-- (pgq.queue.queue_data_pfx).  No ticker runs: ticks and table rotation
-- serve consumers, a producer only inserts.
CREATE EXTENSION pgq;
SELECT pgq.create_queue('bench');
