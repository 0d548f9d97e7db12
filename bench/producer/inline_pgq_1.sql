-- in-statement PgQ: one pgq.insert_event in the business statement
-- A pgbench script of bench/producer.sh (run with -M prepared); the events
-- ride in the business INSERT's own statement, so no round trip is added.
\set customer random(1, 100000)
\set total random(100, 999999)
BEGIN;
WITH o AS (INSERT INTO bench_orders(customer, total) VALUES (:customer, :total) RETURNING id) SELECT pgq.insert_event('bench', 'order.created', jsonb_build_object('order_id', o.id, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 1, 'note', encode(sha384((o.id::text || '.' || 1)::bytea), 'hex'))::text, jsonb_build_object('source', 'bench', 'client', :client_id::int)::text, NULL, NULL, NULL) FROM o;
END;
