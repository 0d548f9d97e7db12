-- jsonb_writer.c writes jsonb in its binary form itself: a trigger's
-- payload and metadata, and the envelope table and function adapters get.
-- It is kept (rather than pushJsonbValue()) because it makes triggers
-- about three times cheaper, and only on this condition: what it writes is
-- the very jsonb PostgreSQL builds.  Here it is compared with to_jsonb() and
-- jsonb_build_object(): equal, of the same size (the same binary layout),
-- the same text, and every key found by lookup.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

\i sql/include/delivered.psql

-- A row type with a column of each kind of value the writer handles:
-- integers at their limits, numerics and floats at their edges, booleans,
-- dates and times (infinities and BC too), strings of every sort (Unicode,
-- control characters, quotes), json and jsonb, arrays (of NULLs, of two
-- dimensions, empty), a composite nesting another, an enum, domains, and
-- types printed by their output function.  Two column names sort in jsonb
-- by their bytes, not as letters: "é" (two bytes) after "zz".
CREATE TYPE jw_mood AS ENUM ('sad', 'ok', 'très bien');
CREATE TYPE jw_inner AS (n numeric, tags text[]);
CREATE TYPE jw_outer AS (label text, inner_value jw_inner, at timestamptz);
CREATE DOMAIN jw_posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN jw_pair AS jw_inner;
CREATE TABLE jw (
	k int PRIMARY KEY, i2 int2, i4 int4, i8 int8,
	n numeric, n2 numeric(10, 2), f4 float4, f8 float8, b bool,
	d date, ts timestamp, tstz timestamptz, tm time, iv interval,
	tx text, vc varchar(10), ch char(5), nm name, c "char", "é" text,
	zz int, jb jsonb, j json, ia int[], ta text[], m2 int[], na numeric[],
	o jw_outer, mood jw_mood, dom jw_posint, dp jw_pair, u uuid, by bytea,
	ip inet, x xid8, r int4range, bt bit(4), pt point, rc regclass);
CREATE TRIGGER jw_row AFTER INSERT OR UPDATE ON jw
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger('jw_row');
CREATE TRIGGER jw_insert AFTER INSERT ON jw
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger('jw_statement');
CREATE TRIGGER jw_update AFTER UPDATE ON jw
	REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger('jw_statement');

CALL pg_temp.mark();
INSERT INTO jw VALUES
	-- ordinary values, Unicode in strings, keys and enum labels
	(1, 1, -2, 3, 12.3400, 5.5, 1.5, 0.1, true, '2024-02-29',
	 '2024-01-01 12:00:00.123', '2024-01-01 12:00:00+02', '13:14:15.5',
	 '1 day 2 hours', 'naïve café — 日本語 🎉', 'ünï', 'ab', 'nm', 'x',
	 'ça', 7, '{"é": "\u00e9", "emoji": "😀", "nested": {"a": [1, {"b": null}]}}',
	 '{"z": 1, "a": 2, "a": 3}', '{1,2,NULL}', '{"a","b c",NULL,"ü"}',
	 '{{1,2},{3,4}}', '{1.50,NaN,-0.001}',
	 ROW('l', ROW(2.50, '{x,y}'), '2024-05-05 05:05:05+00'), 'très bien', 5,
	 ROW(1, '{}'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff',
	 '10.0.0.1/8', '7', '[1,10)', '1010', '(1.5,-2)', 'jw'),
	-- integers at their limits, numbers at their edges, infinities
	(2, -32768, 2147483647, -9223372036854775808, 'NaN', -99999999.99,
	 'Infinity', '-0', false, 'infinity', '-infinity', 'infinity',
	 '00:00:00', '-178000000 years', '', NULL, '', '', '', '', 0,
	 '123.4500', 'null', '{}', '{}', '{}', '{}', NULL, 'sad', 2147483647,
	 NULL, NULL, '', '::1', '18446744073709551615', 'empty', '0000',
	 '(0,0)', 'pg_class'),
	(3, 32767, -2147483648, 9223372036854775807, '-Infinity', 0.00,
	 '1.17549435e-38', '4.9e-324', NULL, '0044-03-15 BC',
	 '0001-01-01 00:00:00 BC', '294276-12-31 23:59:59.999999+00',
	 '24:00:00', '0', E'tab\there\nnew line \\ back "quote" \u0001 \u001f',
	 '"quoted"', 'é', E'\\', '"', E'\u007f', -1,
	 '[1e-1000, 1e1000, -0.0, 100000000000000000000000000000.000000000000001]',
	 '[1e-1000, 1E+5, -0.0]', '{-2147483648}', '{"", "\""}', NULL,
	 '{123456789012345678901234567890.123456789012345678901234567890}',
	 ROW(NULL, NULL, NULL), 'ok', 1, ROW(NULL, NULL), NULL, NULL, NULL,
	 '0', NULL, NULL, NULL, NULL),
	(4, 0, 0, 0, 0.000000000000000000000000000001, NULL, '3.4028235e38',
	 '1.7976931348623157e308', NULL, NULL, NULL, NULL, NULL, NULL,
	 repeat('long ', 300), NULL, NULL, NULL, NULL, NULL, NULL,
	 '"just a string"', '"just a string"', NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	-- nothing but the key
	(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL);

-- Each inserted row's payload, at row and at statement level, is
-- to_jsonb(row), byte for byte: equal, the same size, the same text, and
-- every key and value found by lookup.
SELECT d.type, count(*) AS events,
	   count(*) FILTER (WHERE d.payload->'new' = to_jsonb(t)) AS equal,
	   count(*) FILTER (WHERE pg_column_size(d.payload->'new') =
							  pg_column_size(to_jsonb(t))) AS same_size,
	   count(*) FILTER (WHERE (d.payload->'new')::text = to_jsonb(t)::text)
		   AS same_text,
	   count(*) FILTER (WHERE NOT EXISTS (
			SELECT FROM jsonb_each(to_jsonb(t)) AS e
			 WHERE d.payload->'new'->e.key IS DISTINCT FROM e.value))
		   AS keys_found
  FROM pg_temp.delivered() AS d
  JOIN jw AS t ON (d.payload->'new'->>'k')::int = t.k
 GROUP BY d.type ORDER BY d.type;

-- An UPDATE's payload is {"new": row, "old": row}, and its metadata names
-- the schema, the table and the operation: both the jsonb
-- jsonb_build_object() builds.  (Read back from the log, a value this small
-- comes with a short header: the metadata's size is compared below, inside
-- an envelope.)
CREATE TEMP TABLE jw_before AS SELECT * FROM jw;
CALL pg_temp.mark();
UPDATE jw SET i4 = coalesce(i4, 0) / 2 + 1, tx = tx || 'ü';
SELECT d.type, count(*) AS events,
	   count(*) FILTER (WHERE d.payload = p.built
						  AND pg_column_size(d.payload) = pg_column_size(p.built)
						  AND d.payload::text = p.built::text) AS payload_same,
	   count(*) FILTER (WHERE d.metadata = m.built
						  AND d.metadata::text = m.built::text) AS metadata_same
  FROM pg_temp.delivered() AS d
  JOIN jw AS t ON (d.payload->'new'->>'k')::int = t.k
  JOIN pg_temp.jw_before AS old_row ON old_row.k = t.k,
	   LATERAL (SELECT jsonb_build_object('new', to_jsonb(t), 'old', to_jsonb(old_row))
				   AS built) AS p,
	   LATERAL (SELECT jsonb_build_object('schema', 'public', 'table', 'jw',
										  'operation', 'update') AS built) AS m
 GROUP BY d.type ORDER BY d.type;

-- The envelope a function adapter gets is written by the same writer, with
-- the stored payload and metadata copied in as they are: the very jsonb
-- jsonb_build_object() builds from the event's fields (the payload as the
-- log gives it back, the metadata built anew).
CREATE TABLE jw_envelopes (envelope jsonb);
-- Kept in line and uncompressed, so that pg_column_size() is theirs.
ALTER TABLE jw_envelopes ALTER envelope SET STORAGE PLAIN;
CREATE FUNCTION jw_record(envelope jsonb) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO public.jw_envelopes VALUES (envelope) $$;
SELECT emissions_add_adapter('jw_record', 'function', 'jw_record(jsonb)',
							 'jw_*');
CALL pg_temp.mark();
UPDATE jw SET b = NOT b;
SELECT emissions_wait_delivered() AS delivered;
SELECT count(*) AS events,
	   count(*) FILTER (WHERE r.envelope = x.built
						  AND pg_column_size(r.envelope) = pg_column_size(x.built)
						  AND r.envelope::text = x.built::text) AS envelope_same,
	   count(*) FILTER (WHERE (r.envelope->>'emitted_at')::timestamptz =
							  e.emitted_at) AS emitted_at_same
  FROM jw_envelopes AS r
  JOIN emissions_events(0, 1000000) AS e ON e.id = (r.envelope->>'id')::bigint,
	   LATERAL (SELECT jsonb_build_object(
				   'id', e.id, 'type', e.type, 'payload', e.payload,
				   'metadata', jsonb_build_object('schema', 'public', 'table', 'jw',
												  'operation', 'update'),
				   'emitted_at', r.envelope->'emitted_at',
				   'txid', e.txid::text::numeric,
				   'database', current_database()) AS built) AS x;

SELECT emissions_drop_adapter('jw_record');
DROP FUNCTION jw_record(jsonb);
DROP TABLE jw_envelopes;
DROP TABLE jw, jw_before;
DROP DOMAIN jw_pair;
DROP DOMAIN jw_posint;
DROP TYPE jw_outer;
DROP TYPE jw_inner;
DROP TYPE jw_mood;
