-- in-statement control: the payload built from the INSERT's RETURNING, not stored
-- A pgbench script of bench/producer.sh (run with -M prepared); the events
-- ride in the business INSERT's own statement, so no round trip is added.
\set customer random(1, 100000)
\set total random(100, 999999)
BEGIN;
WITH o AS (INSERT INTO bench_orders(customer, total) VALUES (:customer, :total) RETURNING id) SELECT jsonb_build_object('order_id', o.id, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 1, 'note', encode(sha384((o.id::text || '.' || 1)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int) FROM o;
END;
