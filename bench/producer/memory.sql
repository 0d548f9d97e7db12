-- bench/producer/memory.sql: the buffer's memory per event (psql, -v n=N).
-- Emits :n events shaped like the pgbench ones in one transaction and reads
-- emissions_buffer_status() before the end; rolled back, so nothing stays.
\set ON_ERROR_STOP on
BEGIN;
SELECT emissions_start();
SELECT count(emissions_emit('order.created',
		jsonb_build_object('order_id', g::bigint, 'customer', 54321, 'total', 123456,
						   'currency', 'EUR', 'line', 1,
						   'note', encode(sha384((g::text || '.1')::bytea), 'hex')),
		jsonb_build_object('source', 'bench', 'client', 0)))
  FROM generate_series(1, :n) AS g;
SELECT s.pending_events, s.pending_bytes, s.memory_bytes, s.spilled_bytes,
	   (SELECT avg(length(p::text))::int
		  FROM (SELECT jsonb_build_object('order_id', g::bigint, 'customer', 54321,
										  'total', 123456, 'currency', 'EUR', 'line', 1,
										  'note', encode(sha384((g::text || '.1')::bytea), 'hex')) AS p
				  FROM generate_series(1, :n) AS g) AS x) AS payload_text_bytes
  FROM emissions_buffer_status() AS s;
ROLLBACK;
