-- Privileges: any role may emit; the outbox and the pending events are the
-- extension owner's; the counters are public, resetting them is not.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;
TRUNCATE emissions_outbox;
DROP ROLE IF EXISTS emissions_producer;
CREATE ROLE emissions_producer LOGIN;
\set VERBOSITY sqlstate

-- A role with no privilege on the outbox emits, and its events are stored
-- at commit: the extension writes the outbox itself.
SET ROLE emissions_producer;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('priv.event', '{"secret": 1}');
COMMIT;

-- It cannot read, write or empty the outbox, read the pending events, or
-- reset the counters (42501); it can read the counters.
SELECT count(*) FROM emissions_outbox;
INSERT INTO emissions_outbox VALUES ('1', 1, 1, 1, now(), '\x01');
DELETE FROM emissions_outbox;
TRUNCATE emissions_outbox;
SELECT count(*) FROM emissions_pending;
SELECT count(*) FROM emissions_pending_events();
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
DROP ROLE emissions_producer;
