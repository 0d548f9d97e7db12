-- emissions_trigger(): one event per changed row (SPEC.md, "Triggers on
-- table changes").
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql

CREATE TABLE items (id integer PRIMARY KEY, name text, price numeric);

-- AFTER ROW on INSERT, UPDATE and DELETE: the type is "<table>.<op>", the
-- payload holds the new row (INSERT), both rows (UPDATE) or the old row
-- (DELETE), the metadata the schema, table and operation.  The trigger
-- opens a buffer when none is active.
CREATE TRIGGER items_events AFTER INSERT OR UPDATE OR DELETE ON items
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger();
BEGIN;
SELECT emissions_active() AS active_before;
INSERT INTO items VALUES (1, 'pen', 1.50), (2, 'ink', 4.00);
SELECT emissions_active() AS active_after;
UPDATE items SET price = 2.00 WHERE id = 1;
DELETE FROM items WHERE id = 2;
COMMIT;
SELECT type, payload, metadata FROM pg_temp.delivered();

-- A rolled-back change emits nothing, and neither does a statement that
-- changes no row: only a marker committed afterwards is delivered.
CALL pg_temp.mark();
BEGIN;
INSERT INTO items VALUES (3, 'cap', 0.50);
ROLLBACK;
UPDATE items SET price = 0 WHERE id = 99;
SELECT emissions_start(), emissions_emit('marker', '{"after": "no_change"}');
SELECT type, payload FROM pg_temp.delivered();

-- Triggered events join the transaction's own buffer, in order with the
-- events the application emits; emissions_terminate() discards them.
CALL pg_temp.mark();
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('app.before');
INSERT INTO items VALUES (4, 'pad', 3.00);
SELECT emissions_emit('app.after');
COMMIT;
BEGIN;
INSERT INTO items VALUES (5, 'tape', 1.00);
SELECT emissions_terminate() AS discarded;
COMMIT;
SELECT emissions_start(), emissions_emit('marker', '{"after": "terminate"}');
SELECT type, payload->'new'->>'id' AS id FROM pg_temp.delivered();

-- The first trigger argument is the type prefix.
DROP TRIGGER items_events ON items;
CALL pg_temp.mark();
CREATE TRIGGER items_catalog AFTER UPDATE ON items
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger('catalog.item');
UPDATE items SET name = 'fountain pen' WHERE id = 1;
SELECT type, payload->'old'->>'name' AS old_name,
       payload->'new'->>'name' AS new_name
  FROM pg_temp.delivered();
DROP TRIGGER items_catalog ON items;

-- AFTER STATEMENT with transition tables: one event per row of the
-- statement, in the same shape as the row-level form; UPDATE pairs each
-- old row with its new row.
CALL pg_temp.mark();
CREATE TRIGGER items_ins AFTER INSERT ON items
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger();
CREATE TRIGGER items_upd AFTER UPDATE ON items
	REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger();
CREATE TRIGGER items_del AFTER DELETE ON items
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger();
INSERT INTO items SELECT g, 'bulk', g FROM generate_series(10, 12) AS g;
UPDATE items SET price = price * 10 WHERE name = 'bulk';
DELETE FROM items WHERE id = 12;
SELECT type, payload, metadata->>'operation' AS operation
  FROM pg_temp.delivered();

-- Another trigger reading the same transition table still sees every row.
CALL pg_temp.mark();
CREATE TRIGGER items_ins_again AFTER INSERT ON items
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger('again');
INSERT INTO items SELECT g, 'twice', g FROM generate_series(20, 22) AS g;
SELECT type, count(*) FROM pg_temp.delivered() GROUP BY type ORDER BY type;
DROP TRIGGER items_ins_again ON items;

-- A large statement-level change: the buffer spills and keeps its memory
-- near the threshold, and every row is there once.
CALL pg_temp.mark();
SET emissions.max_buffer_bytes = '64kB';
BEGIN;
UPDATE items SET price = 0;
INSERT INTO items SELECT g, 'many', g FROM generate_series(1000, 50999) AS g;
SELECT pending_events, spilled_bytes > 0 AS spilled,
       memory_bytes < 256 * 1024 AS memory_bounded
  FROM emissions_buffer_status();
COMMIT;
RESET emissions.max_buffer_bytes;
SELECT type, count(*), count(DISTINCT payload->'new'->>'id') AS distinct_rows
  FROM pg_temp.delivered() GROUP BY type ORDER BY type;
DROP TRIGGER items_ins ON items;
DROP TRIGGER items_upd ON items;
DROP TRIGGER items_del ON items;

-- Misuse gets a clear error: called directly, fired BEFORE, at statement
-- level without transition tables, with a prefix that makes an invalid
-- type, with an unknown option or column, or on TRUNCATE.
SELECT emissions_trigger();
CREATE TRIGGER items_before BEFORE INSERT ON items
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger();
INSERT INTO items VALUES (100, 'x', 1);
DROP TRIGGER items_before ON items;
CREATE TRIGGER items_no_table AFTER INSERT ON items
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger();
INSERT INTO items VALUES (100, 'x', 1);
DROP TRIGGER items_no_table ON items;
CREATE TRIGGER items_bad_prefix AFTER INSERT ON items
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger('bad prefix');
INSERT INTO items VALUES (100, 'x', 1);
DROP TRIGGER items_bad_prefix ON items;
CREATE TRIGGER items_bad_option AFTER INSERT ON items
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger('a', 'loud');
INSERT INTO items VALUES (100, 'x', 1);
DROP TRIGGER items_bad_option ON items;
CREATE TRIGGER items_bad_column AFTER INSERT ON items
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger('', 'columns=id,colour');
INSERT INTO items VALUES (100, 'x', 1);
DROP TRIGGER items_bad_column ON items;
CREATE TRIGGER items_truncate AFTER TRUNCATE ON items
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger();
TRUNCATE items;
DROP TRIGGER items_truncate ON items;

-- Options after the prefix (an empty prefix means the table name):
-- columns=... keeps only those columns, skip_unchanged drops UPDATEs that
-- change none of them.
CALL pg_temp.mark();
TRUNCATE items;
INSERT INTO items VALUES (1, 'pen', 1.50), (2, 'ink', 4.00);
CREATE TRIGGER items_prices AFTER UPDATE ON items
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger('', 'columns=id,price', 'skip_unchanged');
UPDATE items SET name = 'blue ink' WHERE id = 2;	-- price unchanged: nothing
UPDATE items SET price = 5.00 WHERE id = 2;
UPDATE items SET price = price;					-- nothing changed: nothing
SELECT type, payload FROM pg_temp.delivered();
DROP TRIGGER items_prices ON items;

-- emissions_watch() wires a table up in one call, emissions_unwatch()
-- removes it: one row-level trigger named emissions_events, or three
-- statement-level ones.
CALL pg_temp.mark();
SELECT emissions_watch('items');
INSERT INTO items VALUES (3, 'cap', 0.50);
SELECT emissions_unwatch('items') AS removed, emissions_unwatch('items') AS again;
INSERT INTO items VALUES (4, 'pad', 2.00);
SELECT emissions_watch('items', prefix => 'shop.item', columns => ARRAY['id'],
                       skip_unchanged => true, statement_level => true);
SELECT tgname, pg_get_triggerdef(oid) LIKE '%FOR EACH STATEMENT%' AS statement_level
  FROM pg_trigger WHERE tgrelid = 'items'::regclass ORDER BY tgname;
UPDATE items SET price = price + 1 WHERE id IN (1, 2);	-- id unchanged: nothing
DELETE FROM items WHERE id = 1;
\set VERBOSITY terse
SELECT emissions_watch('items', statement_level => true);	-- already watched
\set VERBOSITY default
SELECT emissions_unwatch('items');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'items'::regclass;
SELECT type, payload FROM pg_temp.delivered();

DROP TABLE items;

-- Every column type comes out exactly as to_jsonb() renders it, at row and
-- at statement level: numbers (NaN and infinities as strings), booleans,
-- dates and timestamps, json and jsonb, text, arrays, composites, enums,
-- domains and types printed by their output function.
CALL pg_temp.mark();
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE typed (
	i2 int2, i4 int4, i8 int8, n numeric, n2 numeric(10, 2), f4 float4,
	f8 float8, b bool, d date, ts timestamp, tstz timestamptz, jb jsonb,
	j json, tx text, vc varchar(10), ch char(5), u uuid, by bytea, arr int[],
	p pair, m mood, dom posint, ip inet, iv interval, nm name, x xid8);
CREATE TRIGGER typed_row AFTER INSERT ON typed
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger('typed_row');
CREATE TRIGGER typed_statement AFTER INSERT ON typed
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger('typed_statement');
INSERT INTO typed VALUES
	(1, -2, 9223372036854775807, 12.3400, 5.5, 1.5, 0.1, true, '2024-02-29',
	 '2024-01-01 12:00:00.123', '2024-01-01 12:00:00+02', '{"a": [1, 2]}',
	 '{"z": 1, "a": 2}', 'h "q"', 'abc', 'ab',
	 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff', '{1,2,NULL}',
	 ROW(1, 'x'), 'ok', 5, '10.0.0.1/8', '1 day 2 hours', 'nm', '7'),
	(NULL, 0, -1, 'NaN', NULL, 'Infinity', 'NaN', false, 'infinity',
	 '-infinity', 'infinity', '"str"', '[1, "x"]', '', NULL, NULL, NULL,
	 NULL, '{}', NULL, 'sad', NULL, NULL, NULL, NULL, NULL),
	(NULL, 3, NULL, 'Infinity', -0.01, -0.0, 0.30000000000000004, NULL, NULL,
	 NULL, NULL, '123.4500', 'null', NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT d.type, count(*) AS events,
	   count(*) FILTER (WHERE (d.payload->'new')::text = to_jsonb(t)::text)
		   AS same_as_to_jsonb
  FROM pg_temp.delivered() AS d
  JOIN typed AS t ON (d.payload->'new'->>'i4')::int = t.i4
 GROUP BY d.type ORDER BY d.type;
-- The payload is written in jsonb's binary form directly: it must be the
-- very jsonb to_jsonb() builds (same size, equal), and every key must be
-- found by lookup, also in a row of more than 32 columns (where jsonb
-- stores offsets rather than lengths).
CALL pg_temp.mark();
SELECT format('CREATE TABLE wide (%s)',
			  string_agg(format('c%s %s', g,
								CASE g % 3 WHEN 0 THEN 'int' WHEN 1 THEN 'text'
									ELSE 'numeric' END), ', '))
  FROM generate_series(1, 40) AS g \gexec
CREATE TRIGGER wide_row AFTER INSERT OR UPDATE ON wide
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger('wide_row');
CREATE TRIGGER wide_statement AFTER UPDATE ON wide
	REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger('wide_statement');
INSERT INTO wide (c1, c2, c3, c31, c32, c33, c34, c40)
	VALUES ('one', 2.5, 3, 'thirty-one', NULL, 33, 'x', 'last'),
		   (repeat('long ', 100), -1, NULL, '', 0, NULL, NULL, NULL);
UPDATE wide SET c3 = coalesce(c3, 0) + 1;
SELECT 'typed' AS tab, d.type,
	   count(*) FILTER (WHERE d.payload->'new' = to_jsonb(t)
						  AND pg_column_size(d.payload->'new') =
							  pg_column_size(to_jsonb(t))) AS same_jsonb,
	   count(*) FILTER (WHERE NOT EXISTS (
			SELECT FROM jsonb_each(to_jsonb(t)) AS e
			 WHERE d.payload->'new'->e.key IS DISTINCT FROM e.value))
		   AS keys_found
  FROM emissions_events(0, 1000000) AS d
  JOIN typed AS t ON (d.payload->'new'->>'i4')::int = t.i4
 GROUP BY d.type
UNION ALL
SELECT 'wide', d.type,
	   count(*) FILTER (WHERE d.payload->'new' = to_jsonb(w)
						  AND pg_column_size(d.payload->'new') =
							  pg_column_size(to_jsonb(w))
						  AND pg_column_size(d.payload) =
							  pg_column_size(jsonb_build_object(
								'new', d.payload->'new', 'old', d.payload->'old'))),
	   count(*) FILTER (WHERE NOT EXISTS (
			SELECT FROM jsonb_each(to_jsonb(w)) AS e
			 WHERE d.payload->'new'->e.key IS DISTINCT FROM e.value))
  FROM pg_temp.delivered() AS d
  JOIN wide AS w ON d.payload->'new'->>'c1' = w.c1
 WHERE d.type LIKE '%.update'
 GROUP BY d.type
 ORDER BY 1, 2;
DROP TABLE wide;
DROP TABLE typed;
DROP TYPE pair;
DROP DOMAIN posint;
DROP TYPE mood;
