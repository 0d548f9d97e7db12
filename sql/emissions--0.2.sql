/* emissions--0.2.sql: install script of the emissions extension */

\echo Use "CREATE EXTENSION emissions" to load this file. \quit

-- Every table that holds rows is a heap (USING heap, whatever
-- default_table_access_method says): the C code writes and scans them with
-- the heap's own functions.  Partitioned tables (before PostgreSQL 17)
-- take no access method.

-- The outbox: handed-off batches of committed transactions wait here until
-- the delivery worker has delivered them.  Rows are written by the
-- extension's C code directly (no triggers, rules or policies apply) and are
-- of bounded size: a large batch is cut into rows of at most 8000 bytes at
-- event boundaries.  Users never write it.
--
-- Three list partitions: producers write to the one the worker names in
-- shared memory; the worker deletes what it delivered and truncates a
-- partition once nothing is left in it, so the outbox's size does not
-- depend on vacuum keeping up.
CREATE TABLE @extschema@.emissions_outbox (
	txid xid8 NOT NULL,					-- emitting transaction
	seq integer NOT NULL,				-- row number within it: emit order
	batch integer NOT NULL,				-- hand-off (flush or commit) number
	events integer NOT NULL,			-- events in this row
	emitted_at timestamptz NOT NULL,	-- when the row's first event was emitted
	depth smallint NOT NULL,			-- cascade generation (0: not a handler's)
	part smallint NOT NULL,				-- partition
	data bytea NOT NULL					-- the encoded events
) PARTITION BY LIST (part);
CREATE TABLE @extschema@.emissions_outbox_0
	PARTITION OF @extschema@.emissions_outbox FOR VALUES IN (0)
	USING heap;
CREATE TABLE @extschema@.emissions_outbox_1
	PARTITION OF @extschema@.emissions_outbox FOR VALUES IN (1)
	USING heap;
CREATE TABLE @extschema@.emissions_outbox_2
	PARTITION OF @extschema@.emissions_outbox FOR VALUES IN (2)
	USING heap;
REVOKE ALL ON @extschema@.emissions_outbox, @extschema@.emissions_outbox_0,
	@extschema@.emissions_outbox_1, @extschema@.emissions_outbox_2
	FROM PUBLIC;

-- Delivered events, kept for emissions.retention so that consumers can
-- catch up by id: one row per delivered outbox row, holding its events
-- unchanged; their ids are first_id .. last_id in order.  Partitioned like
-- the outbox: the worker writes to one partition at a time and truncates a
-- partition whose newest row is older than the retention.
CREATE TABLE @extschema@.emissions_log (
	first_id bigint NOT NULL,
	last_id bigint NOT NULL,
	txid xid8 NOT NULL,
	delivered_at timestamptz NOT NULL,
	part smallint NOT NULL,
	data bytea NOT NULL
) PARTITION BY LIST (part);
CREATE INDEX ON @extschema@.emissions_log (last_id);
CREATE TABLE @extschema@.emissions_log_0
	PARTITION OF @extschema@.emissions_log FOR VALUES IN (0)
	USING heap;
CREATE TABLE @extschema@.emissions_log_1
	PARTITION OF @extschema@.emissions_log FOR VALUES IN (1)
	USING heap;
CREATE TABLE @extschema@.emissions_log_2
	PARTITION OF @extschema@.emissions_log FOR VALUES IN (2)
	USING heap;
REVOKE ALL ON @extschema@.emissions_log, @extschema@.emissions_log_0,
	@extschema@.emissions_log_1, @extschema@.emissions_log_2 FROM PUBLIC;

-- A row holds at most 8000 bytes of events: compressed when above 2 kB, it
-- stays in the table's own pages (STORAGE MAIN) instead of spreading over
-- TOAST rows and their index.  lz4 costs far less CPU at commit than the
-- default pglz; servers built without lz4 keep pglz.
ALTER TABLE @extschema@.emissions_outbox ALTER COLUMN data SET STORAGE MAIN;
ALTER TABLE @extschema@.emissions_log ALTER COLUMN data SET STORAGE MAIN;
-- SET COMPRESSION does not reach existing partitions: set it on each.
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['emissions_outbox', 'emissions_outbox_0',
							 'emissions_outbox_1', 'emissions_outbox_2',
							 'emissions_log', 'emissions_log_0',
							 'emissions_log_1', 'emissions_log_2']
	LOOP
		EXECUTE pg_catalog.format('ALTER TABLE %I.%I ALTER COLUMN data SET COMPRESSION lz4',
								  '@extschema@', t);
	END LOOP;
EXCEPTION WHEN feature_not_supported THEN
	NULL;
END
$$;

-- The worker's durable state, one row: the highest event id it may have
-- given out (ids are reserved in blocks, durably, before they are used, so
-- a restarted worker continues above them), the highest id the log held
-- when a partition was last truncated (the last delivered id, when the log
-- is empty), and which log partition is current since when.
CREATE TABLE @extschema@.emissions_state (
	reserved_id bigint NOT NULL,
	truncated_id bigint NOT NULL,
	log_part smallint NOT NULL,
	log_part_since timestamptz NOT NULL,
	log_closed_at timestamptz[] NOT NULL
) USING heap;
INSERT INTO @extschema@.emissions_state
	VALUES (0, 0, 0, pg_catalog.now(), '{NULL,NULL,NULL}');
REVOKE ALL ON @extschema@.emissions_state FROM PUBLIC;

-- Delivery targets besides the default channel.  Written only through
-- emissions_add_adapter() and emissions_drop_adapter(), which check the
-- caller's rights; deliveries run as the adapter's owner.
CREATE TABLE @extschema@.emissions_adapters (
	name text PRIMARY KEY,
	kind text NOT NULL CHECK (kind IN ('notify', 'table', 'function')),
	target text NOT NULL,				-- channel, or qualified table or
										-- function signature, quoted
	types text NOT NULL,				-- comma-separated globs
	options jsonb NOT NULL,
	owner regrole NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
) USING heap;
REVOKE ALL ON @extschema@.emissions_adapters FROM PUBLIC;
GRANT SELECT ON @extschema@.emissions_adapters TO PUBLIC;
-- Adapters are configuration: pg_dump keeps them.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.emissions_adapters', '');

-- Failed adapter deliveries, one row per event and adapter: retried with
-- backoff while next_attempt_at is set, dead letters once it is NULL.
CREATE TABLE @extschema@.emissions_failed_deliveries (
	id bigserial PRIMARY KEY,
	adapter text NOT NULL,
	adapter_owner oid NOT NULL,
	event_id bigint NOT NULL,
	txid xid8 NOT NULL,
	type text NOT NULL,
	depth integer NOT NULL,				-- cascade generation of the event
	envelope jsonb NOT NULL,
	attempts integer NOT NULL,
	next_attempt_at timestamptz,
	sqlstate text NOT NULL,
	message text NOT NULL,
	first_failed_at timestamptz NOT NULL,
	failed_at timestamptz NOT NULL
) USING heap;
REVOKE ALL ON @extschema@.emissions_failed_deliveries FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.emissions_failed_deliveries_id_seq
	FROM PUBLIC;

-- Dead letters: each role sees those of the adapters of roles it is a
-- member of (a superuser sees all).
CREATE VIEW @extschema@.emissions_dead_letters WITH (security_barrier) AS
	SELECT f.id, f.adapter, f.event_id, f.type, f.txid, f.envelope,
		   f.attempts, f.sqlstate, f.message, f.first_failed_at, f.failed_at
	  FROM @extschema@.emissions_failed_deliveries AS f
	 WHERE f.next_attempt_at IS NULL
	   AND pg_catalog.pg_has_role(f.adapter_owner, 'MEMBER');
GRANT SELECT ON @extschema@.emissions_dead_letters TO PUBLIC;

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

-- Delivered events, for consumers that catch up by id: those with an id
-- above after_id, in id order, at most max of them; and one by its id.
-- Anyone who can LISTEN sees the events on the default channel, so these
-- are granted to PUBLIC as well; revoke them (and empty
-- emissions.notify_channel) where payloads are private.
CREATE FUNCTION @extschema@.emissions_events(
	after_id bigint,
	max integer DEFAULT 1000,
	OUT id bigint,
	OUT type text,
	OUT payload jsonb,
	OUT metadata jsonb,
	OUT emitted_at timestamptz,
	OUT txid xid8,
	OUT delivered_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'emissions_events'
LANGUAGE C STRICT STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.emissions_event(
	event_id bigint,
	OUT id bigint,
	OUT type text,
	OUT payload jsonb,
	OUT metadata jsonb,
	OUT emitted_at timestamptz,
	OUT txid xid8,
	OUT delivered_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'emissions_event'
LANGUAGE C STRICT STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Wait until every event committed before the call has been delivered;
-- false when the timeout passes first.
CREATE FUNCTION @extschema@.emissions_wait_delivered(
	timeout interval DEFAULT '30s')
RETURNS boolean
AS 'MODULE_PATHNAME', 'emissions_wait_delivered'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Adapters.  These check the caller's rights on the target themselves and
-- record the caller as the adapter's owner, as whom it will run.
CREATE FUNCTION @extschema@.emissions_add_adapter(
	name text,
	kind text,
	target text,
	types text DEFAULT '*',
	options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'emissions_add_adapter'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_drop_adapter(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'emissions_drop_adapter'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_replay(id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'emissions_replay'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Subscriptions: named, durable positions in the delivered stream, each
-- owned by the role that created it.  Written only through
-- emissions_subscribe(), emissions_ack() and emissions_unsubscribe(), which
-- check the caller's rights, and by the delivery worker, which sets
-- lost_to (the highest id lost) when emissions.max_retention forces out
-- events a subscription had not acknowledged: the subscription is overrun
-- while its position is below lost_to.  Not dumped by pg_dump: positions
-- name event ids, which belong to this database's event log.
CREATE TABLE @extschema@.emissions_subscription_positions (
	name text PRIMARY KEY,
	owner regrole NOT NULL,
	position bigint NOT NULL,			-- last acknowledged event id
	lost_to bigint,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	acked_at timestamptz
) USING heap;
REVOKE ALL ON @extschema@.emissions_subscription_positions FROM PUBLIC;

-- Every subscription's lag: the events after its position that the log
-- still holds (the ids of a log row are contiguous), and how long ago the
-- first of them was delivered.  Not granted: emissions_subscriptions shows
-- each role its own, emissions_stats the largest.
CREATE VIEW @extschema@.emissions_subscription_lag AS
	SELECT s.name, s.owner, s.position,
		   (SELECT COALESCE(pg_catalog.sum(g.last_id OPERATOR(pg_catalog.-)
					   GREATEST(g.first_id, s.position OPERATOR(pg_catalog.+) 1)
					   OPERATOR(pg_catalog.+) 1), 0)::bigint
			  FROM @extschema@.emissions_log AS g
			 WHERE g.last_id OPERATOR(pg_catalog.>) s.position) AS events_behind,
		   pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)
		   (SELECT g.delivered_at
			  FROM @extschema@.emissions_log AS g
			 WHERE g.last_id OPERATOR(pg_catalog.>) s.position
			 ORDER BY g.last_id LIMIT 1) AS oldest_unacked_age,
		   CASE WHEN s.position OPERATOR(pg_catalog.<) s.lost_to
				THEN 'overrun' ELSE 'active' END AS state
	  FROM @extschema@.emissions_subscription_positions AS s;
REVOKE ALL ON @extschema@.emissions_subscription_lag FROM PUBLIC;

-- Subscriptions: each role sees those of the roles it has the privileges
-- of (a superuser sees all).
CREATE VIEW @extschema@.emissions_subscriptions WITH (security_barrier) AS
	SELECT l.name, l.owner, l.position, l.events_behind,
		   l.oldest_unacked_age, l.state
	  FROM @extschema@.emissions_subscription_lag AS l
	 WHERE pg_catalog.pg_has_role(l.owner::pg_catalog.oid, 'USAGE');
GRANT SELECT ON @extschema@.emissions_subscriptions TO PUBLIC;

-- The subscription functions run as the caller: only a member of a
-- subscription's owning role (or a superuser) reads, acknowledges or drops
-- it.  A subscription holds storage (up to emissions.max_retention), so
-- creating one needs EXECUTE on emissions_subscribe(), not granted to
-- PUBLIC.  emissions_read() returns the columns of emissions_events().
CREATE FUNCTION @extschema@.emissions_subscribe(name text,
												after_id bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'emissions_subscribe'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION @extschema@.emissions_subscribe(text, bigint)
	FROM PUBLIC;

CREATE FUNCTION @extschema@.emissions_unsubscribe(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'emissions_unsubscribe'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_read(
	name text,
	max integer DEFAULT 1000,
	OUT id bigint,
	OUT type text,
	OUT payload jsonb,
	OUT metadata jsonb,
	OUT emitted_at timestamptz,
	OUT txid xid8,
	OUT delivered_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'emissions_read'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.emissions_ack(name text, id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'emissions_ack'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

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
	OUT events_delivered bigint,
	OUT deliveries_failed bigint,
	OUT worker_pid integer,
	OUT last_delivery_at timestamptz,
	OUT delivery_lag interval,
	OUT stats_reset timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'emissions_stats_counters'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.emissions_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'emissions_stats_reset'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION @extschema@.emissions_stats_reset() FROM PUBLIC;

-- One row for the current database: the counters, what waits in the
-- outbox (committed rows only; the reader's own uncommitted rows are left
-- out), the failed deliveries, the last id delivered, and the
-- subscriptions with the largest lag among them, in events and in time.
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
		   c.events_delivered,
		   c.deliveries_failed,
		   f.dead_letters,
		   f.retries_pending,
		   p.events_pending,
		   p.oldest_pending_age,
		   l.last_event_id,
		   c.worker_pid,
		   c.last_delivery_at,
		   c.delivery_lag,
		   c.stats_reset,
		   u.subscriptions,
		   u.max_subscription_lag_events,
		   u.max_subscription_lag
	  FROM @extschema@.emissions_stats_counters() AS c,
		   (SELECT COALESCE(pg_catalog.sum(o.events), 0)::bigint
					   AS events_pending,
				   pg_catalog.clock_timestamp()
					   OPERATOR(pg_catalog.-) pg_catalog.min(o.emitted_at)
					   AS oldest_pending_age
			  FROM @extschema@.emissions_outbox AS o
			 WHERE o.txid IS DISTINCT FROM
				   pg_catalog.pg_current_xact_id_if_assigned()) AS p,
		   (SELECT pg_catalog.count(*) FILTER (WHERE d.next_attempt_at IS NULL)
					   AS dead_letters,
				   pg_catalog.count(*) FILTER (WHERE d.next_attempt_at IS NOT NULL)
					   AS retries_pending
			  FROM @extschema@.emissions_failed_deliveries AS d) AS f,
		   (SELECT COALESCE((SELECT pg_catalog.max(g.last_id)
							   FROM @extschema@.emissions_log AS g),
							 s.truncated_id) AS last_event_id
			  FROM @extschema@.emissions_state AS s) AS l,
		   (SELECT pg_catalog.count(*) AS subscriptions,
				   COALESCE(pg_catalog.max(b.events_behind), 0)
					   AS max_subscription_lag_events,
				   pg_catalog.max(b.oldest_unacked_age) AS max_subscription_lag
			  FROM @extschema@.emissions_subscription_lag AS b) AS u;
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

-- Tell the launcher, once this transaction commits, that this database now
-- has the extension and wants a delivery worker.
CREATE FUNCTION @extschema@.emissions_launcher_wakeup()
RETURNS void
AS 'MODULE_PATHNAME', 'emissions_launcher_wakeup'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION @extschema@.emissions_launcher_wakeup() FROM PUBLIC;
SELECT @extschema@.emissions_launcher_wakeup();
