-- Subscriptions (SPEC.md, "Subscriptions: durable consumers"): positions,
-- reads that do not move them, acknowledgements that never go back nor
-- past the last delivered event, owner-only access, the grant to create
-- one, the view and the counters.  What takes time (retention held, and
-- overrun after emissions.max_retention) is test/check_subscriptions.sh.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
DROP ROLE IF EXISTS emissions_sub_alice;
DROP ROLE IF EXISTS emissions_sub_bob;
DROP ROLE IF EXISTS emissions_sub_readers;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql

-- Ids vary from run to run: they are printed relative to the mark, the
-- last event delivered before this test.
SELECT last_id AS base FROM delivery_mark \gset
SELECT set_config('sub_test.base', :'base', false) IS NOT NULL AS set;
CREATE FUNCTION pg_temp.rel(id bigint) RETURNS bigint
LANGUAGE sql AS $$SELECT id - current_setting('sub_test.base')::bigint$$;

--
-- 1. A subscription starts at the last delivered event: it sees only what
-- is delivered after it; with after_id, it starts there.
--
SELECT pg_temp.rel(emissions_subscribe('sub_new')) AS position;
SELECT pg_temp.rel(emissions_subscribe('sub_from', :base)) AS position;
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('sub.one', '{"n": 1}');
SELECT emissions_emit('sub.two', '{"n": 2}');
SELECT emissions_emit('sub.three', '{"n": 3}');
COMMIT;
SELECT type, payload FROM pg_temp.delivered();
SELECT pg_temp.rel(id) AS id, type, payload
  FROM emissions_read('sub_new');
-- The same columns as emissions_events().
SELECT p.proallargtypes[3:] = q.proallargtypes[3:] AS same_types,
       p.proargnames[3:] = q.proargnames[3:] AS same_names,
       p.proargmodes[3:] = q.proargmodes[3:] AS same_modes
  FROM pg_proc AS p, pg_proc AS q
 WHERE p.proname = 'emissions_read' AND q.proname = 'emissions_events';
-- A duplicate name: 42710.
\set VERBOSITY sqlstate
SELECT emissions_subscribe('sub_new');
\set VERBOSITY terse
SELECT emissions_subscribe('sub_new');

--
-- 2. Reads do not move the position; max limits a page.
--
SELECT pg_temp.rel(id) AS id, type FROM emissions_read('sub_from', 2);
SELECT pg_temp.rel(id) AS id, type FROM emissions_read('sub_from', 2);
SELECT count(*) FROM emissions_read('sub_from', 0);
SELECT count(*) FROM emissions_read('sub_from');
SELECT emissions_read('sub_from', -1);

--
-- 3. Acknowledgements: the position moves to the id; an older id changes
-- nothing; an id past the last delivered event is refused (22023).
--
SELECT pg_temp.rel(emissions_ack('sub_from', :base + 2)) AS position;
SELECT pg_temp.rel(id) AS id, type FROM emissions_read('sub_from');
SELECT pg_temp.rel(emissions_ack('sub_from', :base + 1)) AS position;
SELECT pg_temp.rel(emissions_ack('sub_from', 0)) AS position;
SELECT pg_temp.rel(id) AS id, type FROM emissions_read('sub_from');
\set VERBOSITY sqlstate
SELECT emissions_ack('sub_from', :base + 4);
SELECT emissions_ack('sub_from', :base + 1000000);
\set VERBOSITY terse
SELECT pg_temp.rel(emissions_ack('sub_from', :base + 3)) AS position;
SELECT count(*) FROM emissions_read('sub_from');
-- Subscribing after an id not delivered yet is refused likewise.
\set VERBOSITY sqlstate
SELECT emissions_subscribe('sub_future', :base + 1000000);
SELECT emissions_subscribe('sub_negative', -1);
\set VERBOSITY terse

--
-- 4. Bad input: NULL and bad names, unknown subscriptions (42704).
--
SELECT emissions_subscribe(NULL);
SELECT emissions_subscribe('');
SELECT emissions_subscribe(repeat('x', 64));
SELECT count(*) AS strict_read FROM emissions_read(NULL);
SELECT emissions_ack('sub_from', NULL) IS NULL AS strict_ack;
\set VERBOSITY sqlstate
SELECT emissions_read('sub_missing');
SELECT emissions_ack('sub_missing', 1);
\set VERBOSITY terse
SELECT emissions_unsubscribe('sub_missing');

--
-- 5. The view and the counters: events behind, the oldest unacknowledged
-- one's age, the state; the number of subscriptions and the largest lag.
--
SELECT name, owner, pg_temp.rel(position) AS position, events_behind,
       oldest_unacked_age IS NOT NULL AS lagging, state
  FROM emissions_subscriptions ORDER BY name;
SELECT subscriptions, max_subscription_lag_events,
       max_subscription_lag > '0'::interval AS lagging
  FROM emissions_stats;
SELECT pg_temp.rel(emissions_ack('sub_new', :base + 3)) AS position;
SELECT name, events_behind, oldest_unacked_age, state
  FROM emissions_subscriptions ORDER BY name;
SELECT subscriptions, max_subscription_lag_events, max_subscription_lag
  FROM emissions_stats;

--
-- 6. An overrun subscription (one the worker found had not acknowledged
-- events that emissions.max_retention removed; here set by hand, the real
-- thing is test/check_subscriptions.sh) cannot be read (55000), with an
-- error that names the lost ids and how to go on.  Acknowledging the gap
-- ends it.
--
UPDATE emissions_subscription_positions SET lost_to = :base + 2
 WHERE name = 'sub_from';
UPDATE emissions_subscription_positions SET position = :base
 WHERE name = 'sub_from';
SELECT name, state FROM emissions_subscriptions ORDER BY name;
\set VERBOSITY sqlstate
SELECT emissions_read('sub_from');
\set VERBOSITY default
DO $$
DECLARE
	msg text;
	detail text;
	hint text;
	base bigint := (SELECT last_id FROM delivery_mark);
BEGIN
	PERFORM emissions_read('sub_from');
EXCEPTION WHEN object_not_in_prerequisite_state THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
		hint = PG_EXCEPTION_HINT;
	RAISE NOTICE E'%\nDETAIL: %\nHINT: %',
		replace(replace(msg, (base + 1)::text, 'BASE+1'),
				(base + 2)::text, 'BASE+2'),
		detail, replace(hint, (base + 2)::text, 'BASE+2');
END
$$;
\set VERBOSITY terse
-- Part of the gap acknowledged: still overrun.
SELECT pg_temp.rel(emissions_ack('sub_from', :base + 1)) AS position;
\set VERBOSITY sqlstate
SELECT count(*) FROM emissions_read('sub_from');
\set VERBOSITY terse
SELECT pg_temp.rel(emissions_ack('sub_from', :base + 2)) AS position;
SELECT name, state FROM emissions_subscriptions ORDER BY name;
SELECT pg_temp.rel(id) AS id, type FROM emissions_read('sub_from');
SELECT lost_to FROM emissions_subscription_positions WHERE name = 'sub_from';

--
-- 7. Owners: creating needs EXECUTE on emissions_subscribe(), which PUBLIC
-- does not have; the creator owns the subscription, and only a member of
-- the owning role (or a superuser) reads, acknowledges or drops it (42501).
-- The view shows each role the subscriptions it may use.
--
CREATE ROLE emissions_sub_alice;
CREATE ROLE emissions_sub_bob;
CREATE ROLE emissions_sub_readers;
SELECT has_function_privilege('emissions_sub_alice',
	'emissions_subscribe(text, bigint)', 'EXECUTE') AS alice_may_subscribe;
SELECT p.proname, has_function_privilege('emissions_sub_alice', p.oid, 'EXECUTE')
  FROM pg_proc AS p
 WHERE p.proname IN ('emissions_read', 'emissions_ack', 'emissions_unsubscribe')
 ORDER BY p.proname;
SET ROLE emissions_sub_alice;
\set VERBOSITY sqlstate
SELECT emissions_subscribe('sub_alice');
\set VERBOSITY terse
SELECT emissions_subscribe('sub_alice');
RESET ROLE;
GRANT EXECUTE ON FUNCTION emissions_subscribe(text, bigint)
	TO emissions_sub_readers;
GRANT emissions_sub_readers TO emissions_sub_alice;
SET ROLE emissions_sub_alice;
SELECT pg_temp.rel(emissions_subscribe('sub_alice', :base)) AS position;
SELECT count(*) FROM emissions_read('sub_alice');
SELECT pg_temp.rel(emissions_ack('sub_alice', :base + 1)) AS position;
SELECT name, owner, pg_temp.rel(position) AS position
  FROM emissions_subscriptions ORDER BY name;
-- Not hers: the superuser's.
\set VERBOSITY sqlstate
SELECT emissions_read('sub_new');
SELECT emissions_ack('sub_new', 1);
SELECT emissions_unsubscribe('sub_new');
\set VERBOSITY terse
SELECT emissions_read('sub_new');
-- The table itself is not hers to read or write.
SELECT count(*) FROM emissions_subscription_positions;
UPDATE emissions_subscription_positions SET position = 0;
SELECT count(*) FROM emissions_subscription_lag;
RESET ROLE;
SET ROLE emissions_sub_bob;
\set VERBOSITY sqlstate
SELECT emissions_read('sub_alice');
SELECT emissions_ack('sub_alice', 1);
SELECT emissions_unsubscribe('sub_alice');
\set VERBOSITY terse
SELECT count(*) AS bob_sees FROM emissions_subscriptions;
SELECT subscriptions FROM emissions_stats;
RESET ROLE;
-- Bob, made a member of alice's role, may.
GRANT emissions_sub_alice TO emissions_sub_bob;
SET ROLE emissions_sub_bob;
SELECT count(*) FROM emissions_read('sub_alice');
SELECT pg_temp.rel(emissions_ack('sub_alice', :base + 2)) AS position;
SELECT name FROM emissions_subscriptions ORDER BY name;
SELECT emissions_unsubscribe('sub_alice');
RESET ROLE;
-- The superuser sees and may use every subscription.
SELECT name, owner FROM emissions_subscriptions ORDER BY name;

--
-- 8. Dropping: false when there was none.
--
SELECT emissions_unsubscribe('sub_new');
SELECT emissions_unsubscribe('sub_new');
SELECT emissions_unsubscribe('sub_from');
SELECT subscriptions, max_subscription_lag_events, max_subscription_lag
  FROM emissions_stats;

-- Clean up.
REVOKE EXECUTE ON FUNCTION emissions_subscribe(text, bigint)
	FROM emissions_sub_readers;
DROP ROLE emissions_sub_alice;
DROP ROLE emissions_sub_bob;
DROP ROLE emissions_sub_readers;
