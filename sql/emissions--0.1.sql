/* emissions--0.1.sql: install script of the emissions extension */

\echo Use "CREATE EXTENSION emissions" to load this file. \quit

-- The outbox: handed-off batches of committed transactions wait here until
-- they are delivered.  Rows are written by the extension's C code directly
-- (no triggers, rules or policies apply) and are of bounded size: a large
-- batch is cut into rows of at most 8000 bytes at event boundaries.  Users
-- never write it.
CREATE TABLE @extschema@.emissions_outbox (
	txid xid8 NOT NULL,					-- emitting transaction
	seq integer NOT NULL,				-- row number within it: emit order
	batch integer NOT NULL,				-- hand-off (flush or commit) number
	events integer NOT NULL,			-- events in this row
	emitted_at timestamptz NOT NULL,	-- when the row's first event was emitted
	data bytea NOT NULL					-- the encoded events
);
REVOKE ALL ON @extschema@.emissions_outbox FROM PUBLIC;

-- A row holds at most 8000 bytes of events: compressed when above 2 kB, it
-- stays in the table's own pages (STORAGE MAIN) instead of spreading over
-- TOAST rows and their index.  lz4 costs far less CPU at commit than the
-- default pglz; servers built without lz4 keep pglz.
ALTER TABLE @extschema@.emissions_outbox ALTER COLUMN data SET STORAGE MAIN;
DO $$
BEGIN
	ALTER TABLE @extschema@.emissions_outbox
		ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	NULL;
END
$$;

-- The buffer API.  All of them are PARALLEL UNSAFE: the buffer belongs to
-- one backend and its transaction.
CREATE FUNCTION @extschema@.emissions_start()
RETURNS boolean
AS 'MODULE_PATHNAME', 'emissions_start'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_emit(type text,
										   payload jsonb DEFAULT '{}',
										   metadata jsonb DEFAULT '{}')
RETURNS boolean
AS 'MODULE_PATHNAME', 'emissions_emit'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_flush()
RETURNS integer
AS 'MODULE_PATHNAME', 'emissions_flush'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_commit()
RETURNS integer
AS 'MODULE_PATHNAME', 'emissions_commit'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_terminate()
RETURNS integer
AS 'MODULE_PATHNAME', 'emissions_terminate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_active()
RETURNS boolean
AS 'MODULE_PATHNAME', 'emissions_active'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_buffer_status(
	OUT active boolean,
	OUT pending_events bigint,
	OUT pending_bytes bigint,
	OUT memory_bytes bigint,
	OUT spilled_bytes bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'emissions_buffer_status'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Committed events that are still in the outbox, one row each.  Payloads
-- may be private: only the extension's owner may read them until granted.
CREATE FUNCTION @extschema@.emissions_pending_events(
	OUT txid xid8,
	OUT batch integer,
	OUT seq integer,
	OUT ordinal integer,
	OUT type text,
	OUT payload jsonb,
	OUT metadata jsonb,
	OUT emitted_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'emissions_pending_events'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION @extschema@.emissions_pending_events() FROM PUBLIC;

CREATE VIEW @extschema@.emissions_pending AS
	SELECT txid, batch, type, payload, metadata, emitted_at
	  FROM @extschema@.emissions_pending_events()
	 ORDER BY txid, seq, ordinal;
REVOKE ALL ON @extschema@.emissions_pending FROM PUBLIC;

-- Counters, per database, kept in shared memory.
CREATE FUNCTION @extschema@.emissions_stats_counters(
	OUT buffers_started bigint,
	OUT buffers_committed bigint,
	OUT buffers_terminated bigint,
	OUT events_emitted bigint,
	OUT events_dropped bigint,
	OUT events_discarded bigint,
	OUT events_persisted bigint,
	OUT batches_persisted bigint,
	OUT buffers_spilled bigint,
	OUT bytes_spilled bigint,
	OUT stats_reset timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'emissions_stats_counters'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.emissions_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'emissions_stats_reset'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION @extschema@.emissions_stats_reset() FROM PUBLIC;

-- One row for the current database: the counters, and what waits in the
-- outbox (committed rows only; the reader's own uncommitted rows are left
-- out).
CREATE VIEW @extschema@.emissions_stats AS
	SELECT pg_catalog.current_database() AS datname,
		   c.buffers_started,
		   c.buffers_committed,
		   c.buffers_terminated,
		   c.events_emitted,
		   c.events_dropped,
		   c.events_discarded,
		   c.events_persisted,
		   c.batches_persisted,
		   c.buffers_spilled,
		   c.bytes_spilled,
		   p.events_pending,
		   p.oldest_pending_age,
		   c.stats_reset
	  FROM @extschema@.emissions_stats_counters() AS c,
		   (SELECT COALESCE(pg_catalog.sum(o.events), 0)::bigint
					   AS events_pending,
				   pg_catalog.clock_timestamp()
					   OPERATOR(pg_catalog.-) pg_catalog.min(o.emitted_at)
					   AS oldest_pending_age
			  FROM @extschema@.emissions_outbox AS o
			 WHERE o.txid IS DISTINCT FROM
				   pg_catalog.pg_current_xact_id_if_assigned()) AS p;
GRANT SELECT ON @extschema@.emissions_stats TO PUBLIC;

-- A trigger function for AFTER ROW triggers, and AFTER STATEMENT triggers
-- with transition tables, on INSERT, UPDATE and DELETE: one event per
-- changed row, typed "<prefix>.<operation>" (prefix: the first trigger
-- argument, or the table's name).
CREATE FUNCTION @extschema@.emissions_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'emissions_trigger'
LANGUAGE C PARALLEL UNSAFE;

-- Wire a table up in one call: at row level (the default) one trigger
-- named emissions_events, AFTER INSERT OR UPDATE OR DELETE; at statement
-- level three (emissions_events_insert, _update, _delete), since a trigger
-- with transition tables may serve only one operation.  The caller needs
-- the right to create triggers on the table.
CREATE FUNCTION @extschema@.emissions_watch(
	table_name regclass,
	prefix text DEFAULT NULL,
	columns text[] DEFAULT NULL,
	skip_unchanged boolean DEFAULT false,
	statement_level boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	args text := pg_catalog.quote_literal(COALESCE(prefix, ''));
	op record;
BEGIN
	IF columns IS NOT NULL THEN
		args := args || ', ' || pg_catalog.quote_literal('columns=' ||
			(SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ',')
			   FROM pg_catalog.unnest(columns) AS c));
	END IF;
	IF skip_unchanged THEN
		args := args || ', ''skip_unchanged''';
	END IF;

	IF NOT statement_level THEN
		EXECUTE pg_catalog.format(
			'CREATE TRIGGER emissions_events AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %I.emissions_trigger(%s)',
			table_name, '@extschema@', args);
		RETURN;
	END IF;
	FOR op IN SELECT * FROM (VALUES
			('insert', 'NEW TABLE AS emissions_new_rows'),
			('update', 'NEW TABLE AS emissions_new_rows OLD TABLE AS emissions_old_rows'),
			('delete', 'OLD TABLE AS emissions_old_rows')) AS o(name, tables)
	LOOP
		EXECUTE pg_catalog.format(
			'CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE FUNCTION %I.emissions_trigger(%s)',
			'emissions_events_' || op.name, pg_catalog.upper(op.name),
			table_name, op.tables, '@extschema@', args);
	END LOOP;
END
$$;

-- Remove what emissions_watch() created; false if the table had none.
CREATE FUNCTION @extschema@.emissions_unwatch(table_name regclass)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	trigger_name name;
	found_any boolean := false;
BEGIN
	FOR trigger_name IN
		SELECT tgname FROM pg_catalog.pg_trigger
		 WHERE tgrelid = table_name
		   AND tgname IN ('emissions_events', 'emissions_events_insert',
						  'emissions_events_update', 'emissions_events_delete')
	LOOP
		EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trigger_name,
								  table_name);
		found_any := true;
	END LOOP;
	RETURN found_any;
END
$$;
