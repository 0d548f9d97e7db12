-- control: one SELECT per event that builds the payload and stores nothing, 10 event(s) per transaction; no outbox doing a statement per event can beat this.
-- A pgbench script of bench/producer.sh (run with -M prepared); the payload
-- is ~195 bytes of JSON whose "note" (96 hex digits) differs per event.
\set customer random(1, 100000)
\set total random(100, 999999)
BEGIN;
INSERT INTO bench_orders(customer, total) VALUES (:customer, :total) RETURNING id AS order_id \gset
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 1, 'note', encode(sha384((:order_id::text || '.' || 1)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 2, 'note', encode(sha384((:order_id::text || '.' || 2)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 3, 'note', encode(sha384((:order_id::text || '.' || 3)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 4, 'note', encode(sha384((:order_id::text || '.' || 4)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 5, 'note', encode(sha384((:order_id::text || '.' || 5)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 6, 'note', encode(sha384((:order_id::text || '.' || 6)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 7, 'note', encode(sha384((:order_id::text || '.' || 7)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 8, 'note', encode(sha384((:order_id::text || '.' || 8)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 9, 'note', encode(sha384((:order_id::text || '.' || 9)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
SELECT jsonb_build_object('order_id', :order_id::bigint, 'customer', :customer::int, 'total', :total::int, 'currency', 'EUR', 'line', 10, 'note', encode(sha384((:order_id::text || '.' || 10)::bytea), 'hex')), jsonb_build_object('source', 'bench', 'client', :client_id::int);
END;
