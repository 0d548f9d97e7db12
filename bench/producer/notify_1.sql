-- LISTEN/NOTIFY: one pg_notify per event (the payload as text), 1 event(s) per transaction.
-- A pgbench script of bench/producer.sh (run with -M prepared); the payload
-- is ~195 bytes of JSON whose "note" (96 hex digits) differs per event.
\set customer random(1, 100000)
\set total random(100, 999999)
BEGIN;
INSERT INTO bench_orders(customer, total) VALUES (:customer, :total) RETURNING id AS order_id \gset
SELECT pg_notify('bench', jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 1, 'note', encode(sha384((:order_id::text || '.' || 1)::bytea), 'hex'))::text);
END;
