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
