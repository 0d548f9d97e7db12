-- bench/delivery/setup.sql: the tables of bench/drain.sh and bench/fanout.sh
-- (psql).  Their pgbench scripts are the producer benchmark's
-- (bench/producer/baseline.sql, emissions_1.sql, notify_1.sql): a business
-- row in bench_orders, then nothing, one emissions_emit or one pg_notify.
CREATE EXTENSION emissions;

-- The business row every transaction inserts.
CREATE TABLE bench_orders (
	id bigserial PRIMARY KEY,
	customer int,
	total numeric,
	created_at timestamptz DEFAULT now()
);

-- The table adapter's target (bench/drain.sh): one row per event, columns
-- matched by name to the envelope's fields.
CREATE TABLE bench_sink (
	id bigint,
	type text,
	payload jsonb,
	metadata jsonb,
	emitted_at timestamptz,
	txid xid8,
	database text
);
