-- Roles and grants: what a role with no privilege of its own can and cannot
-- do with the extension's objects, adapters and settings; that an adapter's
-- code runs as its owner and cannot reach the delivery worker's superuser
-- session; and that the statements docs/security.md gives to
-- restrict producers, consumers and adapters do so.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
DROP ROLE IF EXISTS emissions_priv_alice;
DROP ROLE IF EXISTS emissions_priv_bob;
DROP ROLE IF EXISTS emissions_priv_carol;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql

-- Two roles with no privilege on anything of the extension's; they may
-- create objects in public (PostgreSQL 15 no longer lets everyone).
CREATE ROLE emissions_priv_alice;
CREATE ROLE emissions_priv_bob;
GRANT CREATE ON SCHEMA public TO emissions_priv_alice, emissions_priv_bob;
\set VERBOSITY terse

--
-- 1. What every role holds.  On the extension's relations: SELECT on the
-- adapters, the dead letters (a view that shows each role its own) and the
-- counters, nothing else.  Its functions: all but three are executable by
-- everyone (PostgreSQL's default for functions); those three are the
-- extension owner's.
--
SELECT c.relname, c.relkind,
       array_to_string(ARRAY(
           SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE',
                                      'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p
            WHERE has_table_privilege('emissions_priv_bob', c.oid, p)), ',')
           AS privileges
  FROM pg_depend AS d JOIN pg_class AS c ON c.oid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'emissions')
 ORDER BY c.relname;
SELECT p.oid::regprocedure AS function,
       has_function_privilege('emissions_priv_bob', p.oid, 'EXECUTE')
           AS executable
  FROM pg_depend AS d JOIN pg_proc AS p ON p.oid = d.objid
 WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'emissions')
 ORDER BY p.proname;

--
-- 2. The extension's tables cannot be read or written directly (42501):
-- not the outbox, the event log, the worker's state, the failed
-- deliveries, nor (except to read) the adapters; not their partitions or
-- the failed deliveries' sequence either.  The privilege check comes
-- before any row is looked at, so these statements change nothing.
--
SET ROLE emissions_priv_bob;
SELECT count(*) FROM emissions_outbox;
INSERT INTO emissions_outbox DEFAULT VALUES;
UPDATE emissions_outbox SET events = events;
DELETE FROM emissions_outbox;
TRUNCATE emissions_outbox;
INSERT INTO emissions_outbox_0 DEFAULT VALUES;
TRUNCATE emissions_outbox_1;
SELECT count(*) FROM emissions_log;
INSERT INTO emissions_log DEFAULT VALUES;
UPDATE emissions_log SET last_id = last_id;
DELETE FROM emissions_log;
TRUNCATE emissions_log;
TRUNCATE emissions_log_2;
SELECT count(*) FROM emissions_state;
INSERT INTO emissions_state DEFAULT VALUES;
UPDATE emissions_state SET reserved_id = 0;
DELETE FROM emissions_state;
TRUNCATE emissions_state;
SELECT count(*) FROM emissions_failed_deliveries;
INSERT INTO emissions_failed_deliveries DEFAULT VALUES;
UPDATE emissions_failed_deliveries SET next_attempt_at = now();
DELETE FROM emissions_failed_deliveries;
TRUNCATE emissions_failed_deliveries;
SELECT nextval('emissions_failed_deliveries_id_seq');
INSERT INTO emissions_adapters DEFAULT VALUES;
UPDATE emissions_adapters SET owner = 'emissions_priv_bob';
DELETE FROM emissions_adapters;
TRUNCATE emissions_adapters;
-- Reading the adapters is allowed.
SELECT count(*) >= 0 AS adapters_readable FROM emissions_adapters;
RESET ROLE;

--
-- 3. Adding an adapter needs the rights its target needs: INSERT on the
-- table, EXECUTE on the function, USAGE on their schema (42501).
--
CREATE TABLE priv_private (id bigint, type text);
CREATE FUNCTION priv_secret(e jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
REVOKE EXECUTE ON FUNCTION priv_secret(jsonb) FROM PUBLIC;
CREATE SCHEMA priv_hidden;
CREATE TABLE priv_hidden.t (id bigint, type text);
GRANT INSERT ON priv_hidden.t TO emissions_priv_bob;
CREATE FUNCTION priv_hidden.h(e jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
SET ROLE emissions_priv_bob;
SELECT emissions_add_adapter('priv_bob', 'table', 'priv_private');
SELECT emissions_add_adapter('priv_bob', 'function', 'priv_secret');
SELECT emissions_add_adapter('priv_bob', 'table', 'priv_hidden.t');
SELECT emissions_add_adapter('priv_bob', 'function', 'priv_hidden.h');
-- Nor can the extension's own tables be made a target.
SELECT emissions_add_adapter('priv_bob', 'table', 'emissions_outbox');
SELECT emissions_add_adapter('priv_bob', 'table', 'emissions_log');
SELECT emissions_add_adapter('priv_bob', 'table', 'emissions_state');
SELECT emissions_add_adapter('priv_bob', 'table', 'emissions_adapters');
SELECT emissions_add_adapter('priv_bob', 'table', 'emissions_failed_deliveries');
RESET ROLE;
-- SELECT on the table is not enough either.
GRANT SELECT ON priv_private TO emissions_priv_bob;
SET ROLE emissions_priv_bob;
SELECT emissions_add_adapter('priv_bob', 'table', 'priv_private');
RESET ROLE;
-- None was added; with INSERT, the same call works.
SELECT count(*) AS bob_adapters FROM emissions_adapters
 WHERE owner = 'emissions_priv_bob'::regrole;
GRANT INSERT ON priv_private TO emissions_priv_bob;
SET ROLE emissions_priv_bob;
SELECT emissions_add_adapter('priv_bob', 'table', 'priv_private');
SELECT emissions_drop_adapter('priv_bob');
RESET ROLE;

--
-- 4. The rights are checked again at every delivery, as the owner: once
-- INSERT, EXECUTE or the schema's USAGE is revoked, the delivery fails and
-- is kept as a dead letter; nothing is written.
--
CREATE SCHEMA priv_space;
CREATE TABLE priv_space.sink (type text);
CREATE TABLE priv_space.calls (type text);
CREATE FUNCTION priv_space.handler(e jsonb) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO priv_space.calls VALUES (e->>'type') $$;
REVOKE EXECUTE ON FUNCTION priv_space.handler(jsonb) FROM PUBLIC;
GRANT USAGE ON SCHEMA priv_space TO emissions_priv_alice;
GRANT INSERT ON priv_space.sink, priv_space.calls TO emissions_priv_alice;
GRANT EXECUTE ON FUNCTION priv_space.handler(jsonb) TO emissions_priv_alice;
SET ROLE emissions_priv_alice;
SELECT emissions_add_adapter('priv_table', 'table', 'priv_space.sink',
                             'revoke.*', '{"max_attempts": 1}');
SELECT emissions_add_adapter('priv_function', 'function', 'priv_space.handler',
                             'revoke.*', '{"max_attempts": 1}');
RESET ROLE;
SELECT emissions_start(), emissions_emit('revoke.granted');
SELECT emissions_wait_delivered();
REVOKE INSERT ON priv_space.sink FROM emissions_priv_alice;
REVOKE EXECUTE ON FUNCTION priv_space.handler(jsonb) FROM emissions_priv_alice;
SELECT emissions_start(), emissions_emit('revoke.right');
SELECT emissions_wait_delivered();
GRANT INSERT ON priv_space.sink TO emissions_priv_alice;
GRANT EXECUTE ON FUNCTION priv_space.handler(jsonb) TO emissions_priv_alice;
REVOKE USAGE ON SCHEMA priv_space FROM emissions_priv_alice;
SELECT emissions_start(), emissions_emit('revoke.schema');
SELECT emissions_wait_delivered();
GRANT USAGE ON SCHEMA priv_space TO emissions_priv_alice;
SELECT emissions_start(), emissions_emit('revoke.regranted');
SELECT emissions_wait_delivered();
-- Only the events emitted while alice had her rights were written.
SELECT type FROM priv_space.sink ORDER BY type;
SELECT type FROM priv_space.calls ORDER BY type;
SELECT adapter, type, attempts, sqlstate, message FROM emissions_dead_letters
 ORDER BY type, adapter;

-- A role that is dropped leaves its adapters behind (DROP ROLE does not
-- know them), but they no longer run, even into a table anyone may write:
-- the delivery fails (42704) and is kept.
CREATE ROLE emissions_priv_carol;
CREATE TABLE priv_open (type text);
GRANT INSERT ON priv_open TO PUBLIC;
SET ROLE emissions_priv_carol;
SELECT emissions_add_adapter('priv_orphan', 'table', 'priv_open', 'orphan.*',
                             '{"max_attempts": 1}');
RESET ROLE;
SELECT emissions_start(), emissions_emit('orphan.before');
SELECT emissions_wait_delivered();
DROP ROLE emissions_priv_carol;
SELECT emissions_start(), emissions_emit('orphan.after');
SELECT emissions_wait_delivered();
SELECT type FROM priv_open;
SELECT adapter, type, sqlstate, message FROM emissions_dead_letters
 WHERE adapter = 'priv_orphan';
-- Only a superuser can drop such an adapter.
SET ROLE emissions_priv_bob;
SELECT emissions_drop_adapter('priv_orphan');
RESET ROLE;
SELECT emissions_drop_adapter('priv_orphan');

--
-- 5. Another role's adapters and dead letters are out of reach: bob sees
-- none of alice's dead letters, cannot replay one (false, and it stays as
-- it was) and cannot drop her adapters (42501).
--
SELECT id AS dead_id FROM emissions_dead_letters
 WHERE adapter = 'priv_table' AND type = 'revoke.right' \gset
SET ROLE emissions_priv_alice;
SELECT adapter, type FROM emissions_dead_letters ORDER BY type, adapter;
SET ROLE emissions_priv_bob;
SELECT count(*) AS dead_letters_bob_sees FROM emissions_dead_letters;
SELECT emissions_replay(:dead_id) AS bob_replayed;
SELECT emissions_drop_adapter('priv_table');
SELECT emissions_drop_adapter('priv_function');
RESET ROLE;
SELECT attempts, next_attempt_at IS NULL AS still_dead
  FROM emissions_failed_deliveries WHERE id = :dead_id;
SELECT name FROM emissions_adapters WHERE name LIKE 'priv\_%' ORDER BY name;
-- Its owner can replay it: with INSERT granted again it is written now
-- (a replay is a retry, which emissions_wait_delivered() does not wait for:
-- wait until the dead letter is gone).
CREATE FUNCTION pg_temp.retried(dead bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..400 LOOP
		IF NOT EXISTS (SELECT FROM emissions_failed_deliveries WHERE id = dead)
		THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN false;
END
$$;
SET ROLE emissions_priv_alice;
SELECT emissions_replay(:dead_id) AS alice_replayed;
RESET ROLE;
SELECT pg_temp.retried(:dead_id);
SELECT type FROM priv_space.sink ORDER BY type;

--
-- 6. A handler runs as its owner: current_user is alice, session_user the
-- worker's (the bootstrap superuser), as in a SECURITY DEFINER function.
-- Unless the owner is a superuser its code runs as a security-restricted
-- operation, like PostgreSQL's maintenance commands running a table
-- owner's code: it cannot take the session's identity back, change the
-- worker's settings, or leave anything behind in the worker's session
-- (temporary tables and types, prepared statements, listeners).
--
SET ROLE emissions_priv_alice;
CREATE TABLE priv_probe_log (type text, who name, session_is_worker boolean);
CREATE FUNCTION priv_probe(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE e->'payload'->>'sql';
	INSERT INTO public.priv_probe_log
		VALUES (e->>'type', current_user,
				session_user = (SELECT rolname FROM pg_roles WHERE oid = 10));
END
$$;
SELECT emissions_add_adapter('priv_probe', 'function', 'priv_probe', 'probe.*',
                             '{"max_attempts": 1}');
RESET ROLE;
-- One transaction per probe: each is a call of its own.
SELECT emissions_start(), emissions_emit('probe.identity', '{"sql": "SELECT 1"}');
SELECT emissions_start(), emissions_emit('probe.reset_role', '{"sql": "RESET ROLE"}');
SELECT emissions_start(), emissions_emit('probe.session',
    '{"sql": "SET SESSION AUTHORIZATION DEFAULT"}');
SELECT emissions_start(), emissions_emit('probe.set_config',
    '{"sql": "SELECT set_config(''role'', ''none'', false)"}');
SELECT emissions_start(), emissions_emit('probe.superuser',
    '{"sql": "ALTER ROLE emissions_priv_alice SUPERUSER"}');
SELECT emissions_start(), emissions_emit('probe.setting',
    '{"sql": "SET emissions.max_attempts = 100"}');
SELECT emissions_start(), emissions_emit('probe.terminate',
    '{"sql": "SELECT pg_terminate_backend(pg_backend_pid())"}');
SELECT emissions_start(), emissions_emit('probe.temp_table',
    '{"sql": "CREATE TEMP TABLE priv_planted (type text)"}');
SELECT emissions_start(), emissions_emit('probe.temp_type',
    '{"sql": "CREATE DOMAIN pg_temp.priv_planted AS text"}');
SELECT emissions_start(), emissions_emit('probe.prepare',
    '{"sql": "PREPARE priv_planted AS SELECT 1"}');
SELECT emissions_start(), emissions_emit('probe.listen',
    '{"sql": "LISTEN priv_planted"}');
SELECT emissions_wait_delivered();
SELECT type, who, session_is_worker FROM priv_probe_log ORDER BY type;
SELECT type, sqlstate, message FROM emissions_dead_letters
 WHERE adapter = 'priv_probe' ORDER BY type;

-- Why it matters: the worker's one session serves every owner, and a
-- function with "SET search_path = public" (as the example handler of
-- docs/adapters.md) looks up tables in pg_temp first.  A temporary table alice planted there,
-- with a trigger of hers, would run her trigger as the next handler's
-- owner: here a superuser.  Likewise a deferred trigger of hers would fire
-- at the worker's commit, as the worker's superuser.  Both attempts fail;
-- alice stays what she was.
CREATE TABLE priv_audit (type text);
CREATE FUNCTION priv_audit(e jsonb) RETURNS void LANGUAGE plpgsql
SET search_path = public AS $$
BEGIN
	INSERT INTO priv_audit VALUES (e->>'type');
END
$$;
SELECT emissions_add_adapter('priv_audit', 'function', 'priv_audit', 'audit.*');
SET ROLE emissions_priv_alice;
CREATE FUNCTION priv_escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	ALTER ROLE emissions_priv_alice SUPERUSER;
	RETURN NULL;
END
$$;
CREATE FUNCTION priv_plant(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	CREATE TEMP TABLE priv_audit (type text);
	CREATE TRIGGER priv_escalate BEFORE INSERT ON pg_temp.priv_audit
		FOR EACH ROW EXECUTE FUNCTION public.priv_escalate();
END
$$;
SELECT emissions_add_adapter('priv_plant', 'function', 'priv_plant', 'plant.*',
                             '{"max_attempts": 1}');
CREATE TABLE priv_deferred (type text);
CREATE CONSTRAINT TRIGGER priv_escalate AFTER INSERT ON priv_deferred
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION priv_escalate();
SELECT emissions_add_adapter('priv_deferred', 'table', 'priv_deferred',
                             'deferred.*', '{"max_attempts": 1}');
RESET ROLE;
SELECT emissions_start(), emissions_emit('plant.table');
SELECT emissions_wait_delivered();
SELECT emissions_start(), emissions_emit('audit.after_plant');
SELECT emissions_start(), emissions_emit('deferred.trigger');
SELECT emissions_wait_delivered();
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'emissions_priv_alice';
SELECT type FROM public.priv_audit;
SELECT count(*) AS temporary_priv_audit FROM pg_class
 WHERE relname = 'priv_audit' AND relpersistence = 't';
SELECT count(*) AS deferred_rows FROM priv_deferred;
SELECT adapter, type, sqlstate, message FROM emissions_dead_letters
 WHERE adapter IN ('priv_plant', 'priv_deferred') ORDER BY adapter;

--
-- 7. Settings.  The worker's (emissions.notify_channel, poll_interval,
-- batch_size, max_attempts, max_cascade_depth, retention) are read from the
-- server's configuration only: SET and ALTER ROLE ... SET are refused for
-- everyone (55P02), ALTER SYSTEM and ALTER DATABASE for a role without the
-- right (42501).  The producer's own (log_dropped, auto_start,
-- max_buffer_bytes) any role may set for its session or itself.
--
SET ROLE emissions_priv_bob;
SET emissions.notify_channel = 'elsewhere';
SET emissions.poll_interval = '1min';
SET emissions.batch_size = 1;
SET emissions.max_attempts = 100;
SET emissions.max_cascade_depth = 100;
SET emissions.retention = '1s';
SELECT set_config('emissions.retention', '1s', false);
ALTER ROLE emissions_priv_bob SET emissions.max_attempts = 100;
ALTER SYSTEM SET emissions.max_attempts = 100;
ALTER SYSTEM SET emissions.notify_channel = '';
ALTER DATABASE :"DBNAME" SET emissions.auto_start = on;
SET emissions.log_dropped = warning;
SET emissions.auto_start = on;
SET emissions.max_buffer_bytes = '64kB';
ALTER ROLE emissions_priv_bob SET emissions.auto_start = on;
SELECT current_setting('emissions.log_dropped') AS log_dropped,
       current_setting('emissions.auto_start') AS auto_start,
       current_setting('emissions.max_buffer_bytes') AS max_buffer_bytes,
       current_setting('emissions.max_attempts') AS max_attempts;
RESET emissions.log_dropped;
RESET emissions.auto_start;
RESET emissions.max_buffer_bytes;
ALTER ROLE emissions_priv_bob RESET emissions.auto_start;
RESET ROLE;
-- Even a superuser sets them for the server only.
SET emissions.max_attempts = 100;
ALTER ROLE emissions_priv_bob SET emissions.max_attempts = 100;

--
-- 8. Restricting producers, consumers and adapters: the statements of
-- docs/security.md, with alice as the role granted each right and
-- bob as everyone else.
--
-- Revoking emissions_events() and emissions_event() alone is not enough
-- to keep payloads private: any role may still add an adapter for every
-- type and be sent each event.
CREATE TABLE priv_bob_copy (type text, payload jsonb);
ALTER TABLE priv_bob_copy OWNER TO emissions_priv_bob;
REVOKE EXECUTE ON FUNCTION emissions_events(bigint, integer),
    emissions_event(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION emissions_events(bigint, integer),
    emissions_event(bigint) TO emissions_priv_alice;
SET ROLE emissions_priv_bob;
SELECT count(*) FROM emissions_events(0);
SELECT count(*) FROM emissions_event(1);
SELECT emissions_add_adapter('priv_spy', 'table', 'priv_bob_copy');
RESET ROLE;
SELECT emissions_start(), emissions_emit('private.event', '{"card": "4111"}');
SELECT emissions_wait_delivered();
SET ROLE emissions_priv_bob;
SELECT type, payload FROM priv_bob_copy;
SELECT emissions_drop_adapter('priv_spy');
RESET ROLE;
-- So adding adapters is restricted too.
REVOKE EXECUTE ON FUNCTION emissions_add_adapter(text, text, text, text, jsonb)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION emissions_add_adapter(text, text, text, text, jsonb)
    TO emissions_priv_alice;
SET ROLE emissions_priv_bob;
SELECT emissions_add_adapter('priv_spy', 'table', 'priv_bob_copy');
SELECT emissions_add_adapter('priv_spy', 'notify', 'priv_spy');
SET ROLE emissions_priv_alice;
SELECT emissions_add_adapter('priv_granted', 'notify', 'priv_granted', 'none');
SELECT emissions_drop_adapter('priv_granted');
RESET ROLE;
-- Producers: emitting, directly or through a trigger created from now on
-- (a trigger created before keeps firing: PostgreSQL checks EXECUTE on a
-- trigger function when the trigger is created).
SET ROLE emissions_priv_bob;
CREATE TABLE priv_bob_watched (n integer);
SELECT emissions_watch('priv_bob_watched');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION emissions_emit(text, jsonb, jsonb),
    emissions_trigger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION emissions_emit(text, jsonb, jsonb),
    emissions_trigger() TO emissions_priv_alice;
CALL pg_temp.mark();
SELECT last_id AS mark FROM delivery_mark \gset
SET ROLE emissions_priv_bob;
SELECT emissions_start();
SELECT emissions_emit('restricted.bob');
CREATE TRIGGER priv_emit AFTER INSERT ON priv_bob_copy
    FOR EACH ROW EXECUTE FUNCTION emissions_trigger();
SELECT emissions_watch('priv_bob_copy');
INSERT INTO priv_bob_watched VALUES (1);
SET ROLE emissions_priv_alice;
SELECT emissions_start(), emissions_emit('restricted.alice');
SELECT emissions_wait_delivered();
-- The granted consumer reads what the granted producer emitted, and what
-- bob's older trigger did.
SELECT type FROM emissions_events(:mark);
RESET ROLE;
-- The default channel, which anyone may LISTEN to, is emptied in the
-- server's configuration (test/delivery.c checks that nothing is announced
-- then; not reloaded here: the other tests use it).  emissions checks the
-- value there too: a name longer than NOTIFY's 63 bytes is refused.
\set VERBOSITY default
ALTER SYSTEM SET emissions.notify_channel =
    'a_channel_name_of_sixty_four_bytes_is_one_too_long_for_NOTIFY_xx';
\set VERBOSITY terse
ALTER SYSTEM SET emissions.notify_channel = '';
ALTER SYSTEM RESET emissions.notify_channel;
-- Everything back to the defaults.
GRANT EXECUTE ON FUNCTION emissions_emit(text, jsonb, jsonb),
    emissions_trigger(), emissions_events(bigint, integer),
    emissions_event(bigint),
    emissions_add_adapter(text, text, text, text, jsonb) TO PUBLIC;
REVOKE EXECUTE ON FUNCTION emissions_emit(text, jsonb, jsonb),
    emissions_trigger(), emissions_events(bigint, integer),
    emissions_event(bigint),
    emissions_add_adapter(text, text, text, text, jsonb)
    FROM emissions_priv_alice;
SET ROLE emissions_priv_bob;
SELECT emissions_start(), emissions_emit('restricted.bob_again');
RESET ROLE;
SELECT type FROM pg_temp.delivered();

-- Nobody was made a superuser along the way.
SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'emissions\_priv\_%'
 ORDER BY rolname;

-- Clean up: the adapters (with their dead letters), the objects, the roles.
\set VERBOSITY default
SELECT emissions_drop_adapter(name) FROM emissions_adapters
 WHERE name LIKE 'priv\_%' ORDER BY name;
DROP TABLE priv_private, priv_open, priv_audit, priv_bob_copy, priv_bob_watched;
DROP FUNCTION priv_secret(jsonb), priv_audit(jsonb);
DROP SCHEMA priv_hidden, priv_space CASCADE;
SET client_min_messages = warning;
DROP OWNED BY emissions_priv_alice, emissions_priv_bob;
RESET client_min_messages;
DROP ROLE emissions_priv_alice;
DROP ROLE emissions_priv_bob;
