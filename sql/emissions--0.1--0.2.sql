/* emissions--0.1--0.2.sql: upgrade of the emissions extension from 0.1 */

\echo Use "ALTER EXTENSION emissions UPDATE TO '0.2'" to load this file. \quit

-- What 0.2 adds: subscriptions (a table, two views, four functions) and
-- their columns in emissions_stats.  Nothing that 0.1 created is dropped
-- or rewritten except the tables made with another access method than
-- heap; events pending in the outbox, delivered events in the log, adapters
-- and failed deliveries stay as they are, and the delivery worker goes on
-- delivering throughout (the library works with both versions of the
-- objects).

-- Every table that holds rows is a heap, as 0.2 creates them: those that
-- 0.1 created with another access method (default_table_access_method)
-- are rewritten as heaps.
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['emissions_outbox_0', 'emissions_outbox_1',
							 'emissions_outbox_2', 'emissions_log_0',
							 'emissions_log_1', 'emissions_log_2',
							 'emissions_state', 'emissions_adapters',
							 'emissions_failed_deliveries']
	LOOP
		IF (SELECT c.relam FROM pg_catalog.pg_class AS c
			 WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.format('%I.%I',
					   '@extschema@', t)::pg_catalog.regclass::pg_catalog.oid)
		   OPERATOR(pg_catalog.<>)
		   (SELECT a.oid FROM pg_catalog.pg_am AS a
			 WHERE a.amname OPERATOR(pg_catalog.=) 'heap')
		THEN
			EXECUTE pg_catalog.format('ALTER TABLE %I.%I SET ACCESS METHOD heap',
									  '@extschema@', t);
		END IF;
	END LOOP;
END
$$;

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

-- emissions_stats gains the subscriptions and the largest lag among them,
-- in events and in time, as columns at its end: CREATE OR REPLACE keeps the
-- view, its grant, and any view a user built on it.
CREATE OR REPLACE VIEW @extschema@.emissions_stats AS
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
