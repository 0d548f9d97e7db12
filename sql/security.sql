-- Security: no function of the extension runs anything a caller can define
-- (an operator or a function found through the caller's search_path) with
-- rights the caller does not have, and no adapter runs the code of its
-- target's owner with rights that owner does not have.
--
-- mallory, an ordinary role, owns a schema.  She puts in it an operator for
-- every comparison (and ->>, +, ||) on the types the extension's SQL uses,
-- and functions named like the ones it calls, and puts the schema first in
-- her search_path, before pg_catalog.  Each of them, when it runs as
-- anyone but mallory, records who it ran as and tries to make her a
-- superuser.  Then she calls every function of the extension.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
DROP SCHEMA IF EXISTS sec_mal CASCADE;
DROP TABLE IF EXISTS sec_ran;
DROP ROLE IF EXISTS emissions_sec_mallory;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql

CREATE ROLE emissions_sec_mallory;
-- She may create subscriptions (PUBLIC may not).
GRANT EXECUTE ON FUNCTION emissions_subscribe(text, bigint)
	TO emissions_sec_mallory;
CREATE SCHEMA sec_mal AUTHORIZATION emissions_sec_mallory;
-- Who ran her code as someone else: anyone may write here.
CREATE TABLE sec_ran (who name, what text);
GRANT INSERT ON sec_ran TO PUBLIC;

SET ROLE emissions_sec_mallory;
-- The trap every shadowing object springs: harmless as mallory.
CREATE FUNCTION sec_mal.sprung(what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF current_user OPERATOR(pg_catalog.<>) 'emissions_sec_mallory' THEN
		INSERT INTO public.sec_ran VALUES (current_user, what);
		ALTER ROLE emissions_sec_mallory SUPERUSER;
	END IF;
END
$$;
-- Operators: each behaves like pg_catalog's, after springing the trap.
DO $$
DECLARE
	t text;
	op record;
	n integer := 0;
BEGIN
	FOREACH t IN ARRAY ARRAY['text', 'bigint', 'integer', 'smallint', 'oid',
							 'name', 'regrole', 'jsonb', 'boolean',
							 'timestamptz', 'xid8', 'bytea']
	LOOP
		FOR op IN SELECT * FROM (VALUES ('='), ('<>'), ('<'), ('>'), ('<='),
										('>=')) AS o(name)
		LOOP
			n := n + 1;
			EXECUTE format(
				'CREATE FUNCTION sec_mal.op%s(a %s, b %s) RETURNS boolean
				 LANGUAGE plpgsql SET search_path = pg_catalog AS $f$
				 BEGIN
					PERFORM sec_mal.sprung(%L);
					RETURN a OPERATOR(pg_catalog.%s) b;
				 END $f$', n, t, t, op.name || ' ' || t, op.name);
			EXECUTE format(
				'CREATE OPERATOR sec_mal.%s (LEFTARG = %s, RIGHTARG = %s,
											 FUNCTION = sec_mal.op%s)',
				op.name, t, t, n);
		END LOOP;
	END LOOP;
END
$$;
CREATE FUNCTION sec_mal.arrow(a jsonb, b text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM sec_mal.sprung('->>');
	RETURN a OPERATOR(pg_catalog.->>) b;
END
$$;
CREATE OPERATOR sec_mal.->> (LEFTARG = jsonb, RIGHTARG = text,
							 FUNCTION = sec_mal.arrow);
CREATE FUNCTION sec_mal.plus(a integer, b integer) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM sec_mal.sprung('+');
	RETURN a OPERATOR(pg_catalog.+) b;
END
$$;
CREATE OPERATOR sec_mal.+ (LEFTARG = integer, RIGHTARG = integer,
						   FUNCTION = sec_mal.plus);
CREATE FUNCTION sec_mal.concat(a text, b text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM sec_mal.sprung('||');
	RETURN a OPERATOR(pg_catalog.||) b;
END
$$;
CREATE OPERATOR sec_mal.|| (LEFTARG = text, RIGHTARG = text,
							FUNCTION = sec_mal.concat);
-- Functions named like those the extension calls.
CREATE FUNCTION sec_mal.now() RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM sec_mal.sprung('now()');
	RETURN pg_catalog.now();
END
$$;
CREATE FUNCTION sec_mal.pg_has_role(r oid, p text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM sec_mal.sprung('pg_has_role()');
	RETURN pg_catalog.pg_has_role(r, p);
END
$$;
CREATE FUNCTION sec_mal.format(f text, VARIADIC a text[]) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM sec_mal.sprung('format()');
	RETURN pg_catalog.format(f, VARIADIC a);
END
$$;
CREATE FUNCTION sec_mal.quote_literal(t text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM sec_mal.sprung('quote_literal()');
	RETURN pg_catalog.quote_literal(t);
END
$$;
CREATE FUNCTION sec_mal.upper(t text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM sec_mal.sprung('upper()');
	RETURN pg_catalog.upper(t);
END
$$;
CREATE FUNCTION sec_mal.jsonb_populate_record(r anyelement, j jsonb)
RETURNS anyelement
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM sec_mal.sprung('jsonb_populate_record()');
	RETURN pg_catalog.jsonb_populate_record(r, j);
END
$$;
-- Her own objects, for her adapters: a table, a handler, a failing handler.
CREATE TABLE sec_mal.sink (id bigint, type text);
CREATE FUNCTION sec_mal.handler(e jsonb) RETURNS void
LANGUAGE sql AS 'SELECT';
CREATE FUNCTION sec_mal.failing(e jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'mallory''s handler fails';
END
$$;
CREATE TABLE sec_mal.watched (id integer, label text);

-- The attack: her schema first, then every function of the extension.
SET search_path = sec_mal, pg_catalog, public;
\set VERBOSITY terse
SELECT emissions_add_adapter('sec_notify', 'notify', 'sec_channel', 'sec.*');
SELECT emissions_add_adapter('sec_notify', 'notify', 'sec_channel');
SELECT emissions_add_adapter('sec_table', 'table', 'sec_mal.sink', 'sec.*');
SELECT emissions_add_adapter('sec_function', 'function', 'sec_mal.handler',
							 'sec.*');
SELECT emissions_add_adapter('sec_failing', 'function', 'sec_mal.failing',
							 'sec.*', '{"max_attempts": 1}');
BEGIN;
SELECT emissions_start();
SELECT emissions_active();
SELECT emissions_emit('sec.one', '{"n": 1}', '{"m": 1}');
SELECT emissions_flush();
SELECT emissions_emit('sec.two', '{"n": 2}');
SELECT active, pending_events FROM emissions_buffer_status();
SELECT emissions_commit();
COMMIT;
SELECT emissions_start(), emissions_emit('sec.discarded'), emissions_terminate();
SELECT emissions_watch('sec_mal.watched');
INSERT INTO sec_mal.watched VALUES (1, 'a');
UPDATE sec_mal.watched SET label = 'b';
DELETE FROM sec_mal.watched;
SELECT emissions_unwatch('sec_mal.watched');
SELECT emissions_watch('sec_mal.watched', 'w', ARRAY['id'], true, true);
INSERT INTO sec_mal.watched VALUES (2, 'c');
SELECT emissions_unwatch('sec_mal.watched');
SELECT emissions_wait_delivered('30s');
SELECT type FROM sec_mal.sink ORDER BY type;
SELECT count(*) > 0 AS some_events FROM emissions_events(0, 10);
SELECT count(*) <= 1 AS at_most_one FROM emissions_event(1);
SELECT count(*) FROM emissions_event(0);
SELECT count(*) FROM emissions_events(9223372036854775807);
SELECT events_emitted > 0 AS counted FROM emissions_stats_counters();
SELECT last_event_id > 0 AS delivered FROM emissions_stats;
SELECT count(*) FROM emissions_adapters WHERE name = 'sec_notify';
-- Her failing handler's event becomes a dead letter, which she replays.
CREATE FUNCTION pg_temp.dead_letter() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	dead bigint;
BEGIN
	FOR i IN 1..400 LOOP
		SELECT d.id INTO dead FROM public.emissions_dead_letters AS d
		 WHERE d.adapter OPERATOR(pg_catalog.=) 'sec_failing'
		 ORDER BY d.id LIMIT 1;
		IF dead IS NOT NULL THEN
			RETURN dead;
		END IF;
		PERFORM pg_catalog.pg_sleep(0.05);
	END LOOP;
	RETURN NULL;
END
$$;
SELECT pg_temp.dead_letter() AS dead_id \gset
SELECT emissions_replay(:dead_id);
SELECT emissions_replay(-1);
SELECT emissions_drop_adapter('sec_notify');
SELECT emissions_drop_adapter('sec_notify');
SELECT emissions_drop_adapter('sec_table');
SELECT emissions_drop_adapter('sec_function');
SELECT emissions_drop_adapter('sec_failing');
-- Her subscription: created one event back, read, acknowledged, dropped.
SELECT emissions_subscribe('sec_sub',
	(SELECT last_event_id FROM emissions_stats) - 1) IS NOT NULL AS subscribed;
SELECT count(*) FROM emissions_read('sec_sub');
SELECT emissions_ack('sec_sub', (SELECT last_event_id FROM emissions_stats))
	IS NOT NULL AS acknowledged;
SELECT count(*) FROM emissions_read('sec_sub');
SELECT name, events_behind, state FROM emissions_subscriptions;
SELECT subscriptions FROM emissions_stats;
SELECT emissions_unsubscribe('sec_sub');
SELECT emissions_unsubscribe('sec_sub');
-- Those three are the extension owner's: refused (42501), nothing runs.
SELECT count(*) FROM emissions_pending_events();
SELECT emissions_stats_reset();
SELECT emissions_launcher_wakeup();
RESET search_path;
RESET ROLE;
SELECT emissions_wait_delivered('30s');

-- None of her code ran as anyone else; she is still no superuser.
SELECT who, what FROM sec_ran ORDER BY what;
SELECT rolsuper FROM pg_roles WHERE rolname = 'emissions_sec_mallory';
-- Her code did run, as herself, where she called it: the trap was set.
SET ROLE emissions_sec_mallory;
SET search_path = sec_mal, pg_catalog, public;
SELECT 'a'::text = 'a'::text AS shadowed;
RESET search_path;
RESET ROLE;

--
-- An adapter never runs its target owner's code with rights that owner
-- does not have: a superuser cannot make mallory's function or table (whose
-- body, triggers and defaults she may change at any time) a target
-- (42501), and an adapter whose target changes hands to such a role fails
-- at delivery, kept as a dead letter, without running it.
--
\set VERBOSITY sqlstate
SELECT emissions_add_adapter('sec_su_function', 'function', 'sec_mal.handler');
SELECT emissions_add_adapter('sec_su_table', 'table', 'sec_mal.sink');
\set VERBOSITY terse
SELECT count(*) FROM emissions_adapters WHERE name LIKE 'sec\_su\_%';
-- What the error says (the superuser's name varies: replaced).
DO $$
DECLARE
	msg text;
	detail text;
	hint text;
BEGIN
	PERFORM emissions_add_adapter('sec_su_function', 'function',
								  'sec_mal.handler');
EXCEPTION WHEN insufficient_privilege THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
		hint = PG_EXCEPTION_HINT;
	RAISE NOTICE E'%\nDETAIL: %\nHINT: %',
		replace(msg, current_user, 'SUPERUSER'), detail,
		replace(hint, current_user, 'SUPERUSER');
END
$$;
-- The other way round is fine: mallory's adapter may run a superuser's
-- function (she needs EXECUTE, which PUBLIC has).
CREATE FUNCTION sec_su_handler(e jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM sec_mal.sprung('sec_su_handler');
END
$$;
CREATE TABLE sec_su_sink (id bigint, type text);
SELECT emissions_add_adapter('sec_su_function', 'function', 'sec_su_handler',
							 'handover.*', '{"max_attempts": 1}');
SELECT emissions_add_adapter('sec_su_table', 'table', 'sec_su_sink',
							 'handover.*', '{"max_attempts": 1}');
SET ROLE emissions_sec_mallory;
SELECT emissions_add_adapter('sec_mal_su', 'function', 'public.sec_su_handler',
							 'none');
SELECT emissions_drop_adapter('sec_mal_su');
RESET ROLE;
-- Now the targets are given to mallory: she could change them at will.
ALTER FUNCTION sec_su_handler(jsonb) OWNER TO emissions_sec_mallory;
ALTER TABLE sec_su_sink OWNER TO emissions_sec_mallory;
SELECT emissions_start(), emissions_emit('handover.event');
SELECT emissions_wait_delivered('30s');
CREATE FUNCTION pg_temp.dead_letters(prefix text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..400 LOOP
		IF (SELECT count(*) FROM emissions_dead_letters
			 WHERE type LIKE prefix || '%') >= 2 THEN
			EXIT;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN (SELECT count(*) FROM emissions_dead_letters
			 WHERE type LIKE prefix || '%');
END
$$;
SELECT pg_temp.dead_letters('handover.');
SELECT adapter, type, sqlstate,
       replace(message, current_user, 'SUPERUSER') AS message
  FROM emissions_dead_letters
 WHERE type = 'handover.event' ORDER BY adapter;
SELECT count(*) AS rows_written FROM sec_su_sink;
SELECT who, what FROM sec_ran ORDER BY what;
SELECT rolsuper FROM pg_roles WHERE rolname = 'emissions_sec_mallory';

-- Clean up.
SELECT emissions_drop_adapter('sec_su_function');
SELECT emissions_drop_adapter('sec_su_table');
DROP TABLE sec_ran;
DROP SCHEMA sec_mal CASCADE;
DROP OWNED BY emissions_sec_mallory;
DROP ROLE emissions_sec_mallory;
