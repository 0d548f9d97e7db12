-- Privileges: any role may emit; the outbox and the pending events are the
-- extension owner's; the counters and the delivered events are public,
-- resetting the counters is not.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql
DROP ROLE IF EXISTS emissions_producer;
CREATE ROLE emissions_producer LOGIN;

-- Hold the delivery worker back while the pending events are looked at: a
-- prepared transaction keeps a SHARE lock on the event log, which the
-- worker must write to deliver anything.
BEGIN;
LOCK TABLE emissions_log IN SHARE MODE;
PREPARE TRANSACTION 'emissions_privileges_hold';
\set VERBOSITY sqlstate

-- A role with no privilege on the outbox emits, and its events are stored
-- at commit: the extension writes the outbox itself.
SET ROLE emissions_producer;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('priv.event', '{"secret": 1}');
COMMIT;

-- It cannot read, write or empty the outbox, read the pending events or
-- the event log's table, or reset the counters (42501); it can read the
-- counters.
SELECT count(*) FROM emissions_outbox;
INSERT INTO emissions_outbox VALUES ('1', 1, 1, 1, now(), 0, 0, '\x01');
DELETE FROM emissions_outbox;
TRUNCATE emissions_outbox;
SELECT count(*) FROM emissions_pending;
SELECT count(*) FROM emissions_pending_events();
SELECT count(*) FROM emissions_log;
SELECT emissions_stats_reset();
SELECT events_pending FROM emissions_stats;
RESET ROLE;

-- The event is there, once.
SELECT type, payload FROM emissions_pending;

-- A DBA can give a role read access to the pending events.
GRANT SELECT ON emissions_pending TO emissions_producer;
GRANT EXECUTE ON FUNCTION emissions_pending_events() TO emissions_producer;
SET ROLE emissions_producer;
SELECT type FROM emissions_pending;
RESET ROLE;
REVOKE SELECT ON emissions_pending FROM emissions_producer;
REVOKE EXECUTE ON FUNCTION emissions_pending_events() FROM emissions_producer;

-- Let the worker go: the event is delivered, once, and the role can read
-- it back by id like any consumer (anyone who can LISTEN sees it anyway).
COMMIT PREPARED 'emissions_privileges_hold';
SELECT type, payload FROM pg_temp.delivered();
SELECT last_id AS mark FROM delivery_mark \gset
SET ROLE emissions_producer;
SELECT type, payload FROM emissions_events(:mark);
RESET ROLE;
DROP ROLE emissions_producer;

-- No user code runs while a transaction commits its events: triggers,
-- rules and row security on the outbox and its partitions (where the rows
-- are written) are not applied to the extension's own writes (even ones a
-- superuser added).
\set VERBOSITY default
CALL pg_temp.mark();
CREATE FUNCTION refuse_outbox_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'a user trigger ran on the outbox';
END
$$;
CREATE TRIGGER refuse_row BEFORE INSERT ON emissions_outbox
	FOR EACH ROW EXECUTE FUNCTION refuse_outbox_write();
CREATE TRIGGER refuse_statement BEFORE INSERT ON emissions_outbox
	FOR EACH STATEMENT EXECUTE FUNCTION refuse_outbox_write();
CREATE RULE discard_outbox_write AS ON INSERT TO emissions_outbox DO INSTEAD NOTHING;
ALTER TABLE emissions_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE emissions_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY nothing ON emissions_outbox USING (false) WITH CHECK (false);
DO $$
DECLARE
	part regclass;
BEGIN
	FOR part IN SELECT inhrelid::regclass FROM pg_inherits
				 WHERE inhparent = 'emissions_outbox'::regclass
	LOOP
		EXECUTE format('CREATE TRIGGER refuse_statement BEFORE INSERT ON %s
						FOR EACH STATEMENT EXECUTE FUNCTION refuse_outbox_write()', part);
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
		EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', part);
		EXECUTE format('CREATE POLICY nothing ON %s USING (false) WITH CHECK (false)', part);
	END LOOP;
END
$$;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('priv.no_user_code');
SELECT emissions_flush();
SELECT emissions_emit('priv.no_user_code');
COMMIT;
-- The worker delivers them all the same.
SELECT type, count(*) FROM pg_temp.delivered() GROUP BY type;
DO $$
DECLARE
	part regclass;
BEGIN
	FOR part IN SELECT inhrelid::regclass FROM pg_inherits
				 WHERE inhparent = 'emissions_outbox'::regclass
	LOOP
		EXECUTE format('DROP POLICY nothing ON %s', part);
		EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', part);
		EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', part);
		EXECUTE format('DROP TRIGGER refuse_statement ON %s', part);
	END LOOP;
END
$$;
DROP POLICY nothing ON emissions_outbox;
ALTER TABLE emissions_outbox NO FORCE ROW LEVEL SECURITY;
ALTER TABLE emissions_outbox DISABLE ROW LEVEL SECURITY;
DROP RULE discard_outbox_write ON emissions_outbox;
DROP TRIGGER refuse_row ON emissions_outbox;
DROP TRIGGER refuse_statement ON emissions_outbox;
DROP FUNCTION refuse_outbox_write();
