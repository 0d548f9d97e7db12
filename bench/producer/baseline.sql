-- baseline: the business row only, no event.
-- A pgbench script of bench/producer.sh (run with -M prepared); the payload
-- is ~195 bytes of JSON whose "note" (96 hex digits) differs per event.
\set customer random(1, 100000)
\set total random(100, 999999)
BEGIN;
INSERT INTO bench_orders(customer, total) VALUES (:customer, :total) RETURNING id AS order_id \gset
END;
