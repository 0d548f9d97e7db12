-- bulk, PgQ: 100 pgq.insert_event calls in one statement.
-- A pgbench script of bench/producer.sh (run with -M prepared); the payload
-- is ~195 bytes of JSON whose "note" (96 hex digits) differs per event.
\set customer random(1, 100000)
\set total random(100, 999999)
BEGIN;
INSERT INTO bench_orders(customer, total) VALUES (:customer, :total) RETURNING id AS order_id \gset
SELECT count(pgq.insert_event('bench', 'order.created', jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', g, 'note', encode(sha384((:order_id::text || '.' || g)::bytea), 'hex'))::text, '{}', NULL, NULL, NULL)) FROM generate_series(1, 100) AS g;
END;
