-- Names and values are never spliced into SQL: event payloads and metadata,
-- adapter names, targets, types and options full of quotes and SQL are
-- either refused or stored and delivered verbatim, and nothing they contain
-- is ever executed.  (A notify adapter's odd channel is checked with a real
-- listener in test/injection.c: psql prints a notification's sender pid.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql

-- The sentinel: every injection below tries to drop it or add a row.
CREATE TABLE injection_sentinel (n integer);
INSERT INTO injection_sentinel VALUES (1);

-- A schema and a table whose names need quoting, quotes, dots and SQL
-- included, with the envelope's columns and one of their own.
CREATE SCHEMA "sch'ema""; DROP TABLE injection_sentinel; --";
CREATE TABLE "sch'ema""; DROP TABLE injection_sentinel; --"."Odd ""name"".x" (
	type text,
	payload jsonb,
	metadata jsonb,
	"own"" column" text DEFAULT 'kept'
);
-- And a handler with such a name, which keeps the envelopes it is given.
CREATE TABLE injection_calls (envelope jsonb);
CREATE FUNCTION "sch'ema""; DROP TABLE injection_sentinel; --"."h""andler; --"(e jsonb)
RETURNS void LANGUAGE sql
AS $$ INSERT INTO public.injection_calls VALUES (e) $$;

--
-- 1. Adapters with such names, targets and channels are stored as given
-- (targets qualified and quoted).
--
SELECT emissions_add_adapter(
	'inj''); DROP TABLE injection_sentinel; --',
	'table',
	'"sch''ema""; DROP TABLE injection_sentinel; --"."Odd ""name"".x"',
	'inj.*,inj:*');
SELECT emissions_add_adapter(
	'inj"; DELETE FROM injection_sentinel; --',
	'function',
	'"sch''ema""; DROP TABLE injection_sentinel; --"."h""andler; --"',
	'inj.*,inj:*');
SELECT emissions_add_adapter(
	'inj $$ notify',
	'notify',
	'chan"''; DROP TABLE injection_sentinel; --',
	'inj.*,inj:*', '{"omit_payload": false}');
SELECT name, kind, target, types, options FROM emissions_adapters
 WHERE name LIKE 'inj%' ORDER BY name;

-- Targets with SQL after the name, types and options outside what they
-- allow, are refused; nothing is added.
\set VERBOSITY terse
SELECT emissions_add_adapter('inj_bad', 'table',
	'injection_sentinel; DROP TABLE injection_sentinel');
SELECT emissions_add_adapter('inj_bad', 'table',
	'public.injection_sentinel"; DROP TABLE injection_sentinel; --');
SELECT emissions_add_adapter('inj_bad', 'function',
	'public.injection_sentinel(jsonb); DROP TABLE injection_sentinel');
SELECT emissions_add_adapter('inj_bad', 'notify', 'c',
	'x''); DROP TABLE injection_sentinel; --');
SELECT emissions_add_adapter('inj_bad', 'notify', 'c', '*',
	'{"max_attempts": "1; DROP TABLE injection_sentinel"}');
SELECT emissions_add_adapter('inj_bad', 'notify', 'c', '*',
	'{"''; DROP TABLE injection_sentinel; --": 1}');
-- Event types are limited to [A-Za-z0-9_.:-] (22023).
SELECT emissions_emit('inj''); DROP TABLE injection_sentinel; --');
SELECT emissions_emit('inj.x"; DROP TABLE injection_sentinel');
\set VERBOSITY default
SELECT count(*) AS bad_adapters FROM emissions_adapters WHERE name = 'inj_bad';

--
-- 2. Events whose payloads and metadata hold quotes, SQL, dollar quotes,
-- format and psql escapes, backslashes and non-ASCII text.
--
CREATE TABLE injection_sent (n integer, type text, payload jsonb,
							 metadata jsonb);
INSERT INTO injection_sent VALUES
 (1, 'inj.quote', '{"s": "''); DROP TABLE injection_sentinel; --"}', '{}'),
 (2, 'inj.double', '{"s": "\"; DELETE FROM injection_sentinel; --", "t\"k''ey": 1}',
  '{"''; DROP TABLE injection_sentinel; --": "x\"y"}'),
 (3, 'inj:dollar-sign_3', '{"s": "$$; DROP TABLE injection_sentinel; $$ $q$ %s %I %L :''v'' \\gexec"}',
  '{"source": "$1"}'),
 (4, 'inj.string', '"Robert''); INSERT INTO injection_sentinel VALUES (2); --"', '{}'),
 (5, 'inj.backslash', '{"s": "a\\bé\n\t\"☺ end"}', '{"k": "\\x27"}'),
 (6, 'inj.nested', '[{"x": ["''", "\"", null, 1.50, true]}, "DROP TABLE injection_sentinel"]',
  '{"a.b": {"\"c\".d": "e"}}'),
 (7, 'inj.null', NULL, '{}');
SELECT n, type, payload, metadata FROM injection_sent ORDER BY n;
BEGIN;
SELECT emissions_start();
SELECT count(*) FILTER (WHERE emissions_emit(type, payload, metadata)) AS emitted
  FROM (SELECT * FROM injection_sent ORDER BY n) AS s;
COMMIT;
SELECT emissions_wait_delivered();

--
-- 3. Nothing was executed: the sentinel is there, unchanged.
--
SELECT n FROM injection_sentinel;

--
-- 4. Every event reached the odd table, the odd handler and the event log
-- verbatim: the same JSON, the same text, in emit order, and the table's
-- own column kept its default.  (A NULL payload is JSON null in the
-- envelope, rule 10, and NULL again in a table column.)
--
SELECT s.n,
	   t.payload::text IS NOT DISTINCT FROM s.payload::text AS table_text,
	   t.payload->>'s' IS NOT DISTINCT FROM s.payload->>'s' AS table_string,
	   t.metadata::text = s.metadata::text AS table_metadata,
	   t."own"" column" AS own_column
  FROM injection_sent AS s
  LEFT JOIN "sch'ema""; DROP TABLE injection_sentinel; --"."Odd ""name"".x" AS t
	USING (type)
 ORDER BY s.n;
SELECT s.n,
	   c.envelope->'payload' = COALESCE(s.payload, 'null') AS handler_payload,
	   (c.envelope->'payload')::text = COALESCE(s.payload, 'null')::text
		   AS handler_text,
	   c.envelope->'metadata' = s.metadata AS handler_metadata
  FROM injection_sent AS s
  LEFT JOIN injection_calls AS c ON c.envelope->>'type' = s.type
 ORDER BY s.n;
SELECT s.n,
	   e.payload::text = COALESCE(s.payload, 'null')::text AS log_text,
	   e.metadata::text = s.metadata::text AS log_metadata
  FROM injection_sent AS s
  LEFT JOIN pg_temp.delivered() AS e USING (type)
 ORDER BY s.n;
SELECT string_agg(e.type, ' ' ORDER BY e.i) AS delivered_in_order
  FROM pg_temp.delivered() WITH ORDINALITY AS e(type, payload, metadata, i);
SELECT count(*) AS table_rows
  FROM "sch'ema""; DROP TABLE injection_sentinel; --"."Odd ""name"".x";
SELECT count(*) AS handler_calls FROM injection_calls;
SELECT count(*) AS dead_letters FROM emissions_dead_letters
 WHERE adapter LIKE 'inj%';

--
-- 5. The adapters are dropped by their names, quotes and all.
--
SELECT emissions_drop_adapter('inj''); DROP TABLE injection_sentinel; --');
SELECT emissions_drop_adapter('inj"; DELETE FROM injection_sentinel; --');
SELECT emissions_drop_adapter('inj $$ notify');
SELECT count(*) AS adapters_left FROM emissions_adapters
 WHERE name LIKE 'inj%';
SELECT n FROM injection_sentinel;

DROP SCHEMA "sch'ema""; DROP TABLE injection_sentinel; --" CASCADE;
DROP TABLE injection_sent, injection_calls, injection_sentinel;
