-- PgQ: one pgq.insert_event per event (payload and metadata as text; the metadata in ev_extra1), 1 event(s) per transaction.
-- A pgbench script of bench/producer.sh (run with -M prepared); the payload
-- is ~195 bytes of JSON whose "note" (96 hex digits) differs per event.
\set customer random(1, 100000)
\set total random(100, 999999)
BEGIN;
INSERT INTO bench_orders(customer, total) VALUES (:customer, :total) RETURNING id AS order_id \gset
SELECT pgq.insert_event('bench', 'order.created', jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 1, 'note', encode(sha384((:order_id::text || '.' || 1)::bytea), 'hex'))::text, jsonb_build_object('source', 'bench', 'client', :client_id::int)::text, NULL, NULL, NULL);
END;
