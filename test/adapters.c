/*-------------------------------------------------------------------------
 *
 * adapters.c
 *	  Prove that table, notify and function adapters deliver each matching
 *	  event once, that failures are isolated and kept as dead letters, and
 *	  that adapters run with their owner's rights.
 *
 * The Delivery section of the contract (adapters, exactly once into
 * tables, failures, privileges) and its rules 6 and 9:
 *
 * - table adapter: one row per event, columns matched by name (in any
 *	 order, a subset of the envelope's fields), other columns keep their
 *	 defaults; a transaction's events appear in the table all at once;
 * - type globs: 'order.*' matches order.created and order.item.added, not
 *	 orders.x or order; a comma-separated list matches any of its globs;
 * - notify adapter: the envelope on the adapter's channel, matching types
 *	 only;
 * - function adapter: called once per event with the envelope; a handler's
 *	 emits are delivered too (cascade); a handler that emits its own type
 *	 stops after emissions.max_cascade_depth generations;
 * - failures: a handler that raises is retried emissions.max_attempts times
 *	 in all, its work rolled back each time, then kept in
 *	 emissions_dead_letters with its SQLSTATE and message, while another
 *	 adapter gets the same event and later events keep flowing;
 *	 emissions_replay() after a fix delivers it to that adapter only;
 * - privileges: a role without INSERT on a table (or EXECUTE on a
 *	 function) cannot make it an adapter's target (42501); a handler runs as
 *	 the adapter's owner, and a table adapter inserts as its owner; one
 *	 unprivileged role does not see, replay or drop another's.
 *
 * The connection comes from the environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE, a superuser); the server must preload the library.  The
 * program creates the database emissions_adapters and the roles
 * emissions_alice and emissions_bob for itself and drops them at the end;
 * it sets emissions.max_attempts and emissions.max_cascade_depth with ALTER
 * SYSTEM and resets them on exit.  It prints one "ok N - ..." or "not ok N
 * - ..." line per check and exits 1 if any failed.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "tap_libpq.h"

#define TEST_DB "emissions_adapters"
#define ALICE "emissions_alice"
#define BOB "emissions_bob"

#define MAX_ATTEMPTS "3"
#define MAX_CASCADE_DEPTH "3"

/* How long to wait for what must come, and for what must not. */
#define WAIT_MS 10000
#define QUIET_MS 300

/*
 * Check that sql returns on conn what expected_sql returns, and that this
 * is a real answer (not NULL, no row or an error), so that two empty
 * answers cannot pass for equal ones.
 */
static void
check_same(const char *desc, PGconn *conn, const char *expected_sql,
		   const char *sql)
{
	char		expected[8192];

	snprintf(expected, sizeof(expected), "%s",
			 value(conn, expected_sql, NULL));
	if (strcmp(expected, "NULL") == 0 || strcmp(expected, "no row") == 0 ||
		strncmp(expected, "error", 5) == 0)
	{
		char		wrong[8300];

		snprintf(wrong, sizeof(wrong), "(expected answer: %s)", expected);
		check(desc, "a non-empty answer", wrong);
		return;
	}
	check(desc, expected, value(conn, sql, NULL));
}

/*
 * Run one statement and return "ok", or the SQLSTATE of its error (the
 * message goes out as a TAP comment).
 */
static const char *
sqlstate(PGconn *conn, const char *sql)
{
	static char buf[16];
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
		PQresultStatus(res) == PGRES_TUPLES_OK)
		snprintf(buf, sizeof(buf), "ok");
	else
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		const char *msg = PQerrorMessage(conn);

		snprintf(buf, sizeof(buf), "%s", state ? state : "?????");
		printf("# %s:", sql);
		while (*msg)
		{
			size_t		len = strcspn(msg, "\n");

			printf(" %.*s\n", (int) len, msg);
			msg += len;
			if (*msg == '\n' && *++msg)
				printf("#  ");
		}
	}
	PQclear(res);
	return buf;
}

/*
 * Set (value non-NULL) or reset the settings this program changes,
 * cluster-wide, and wait until a new session sees the change, then give
 * the worker a moment to reload.
 */
static void
configure(PGconn *admin, bool set)
{
	const char *want = set ? MAX_ATTEMPTS : "5";

	if (set)
	{
		run(admin, "ALTER SYSTEM SET emissions.max_attempts = " MAX_ATTEMPTS);
		run(admin, "ALTER SYSTEM SET emissions.max_cascade_depth = "
			MAX_CASCADE_DEPTH);
	}
	else
	{
		run(admin, "ALTER SYSTEM RESET emissions.max_attempts");
		run(admin, "ALTER SYSTEM RESET emissions.max_cascade_depth");
	}
	reload_and_wait(admin, NULL, "emissions.max_attempts", want);
}

/* At exit, whatever happened: put the settings back. */
static void
reset_settings(void)
{
	static const char *const settings[] = {
		"emissions.max_attempts", "emissions.max_cascade_depth", NULL
	};

	reset_system(settings);
}

/*
 * Wait until sql's count stops changing: two answers 1.5 s apart, each
 * after emissions_wait_delivered(), are equal; give up after 20 s.  Return
 * the last answer.
 */
static const char *
wait_settled(PGconn *conn, const char *sql)
{
	static char last[1024];
	double		deadline = now_ms() + 20000;

	last[0] = '\0';
	while (now_ms() < deadline)
	{
		const char *seen;

		value(conn, "SELECT emissions_wait_delivered('10s')", NULL);
		seen = value(conn, sql, NULL);
		if (strcmp(seen, last) == 0)
			break;
		snprintf(last, sizeof(last), "%s", seen);
		usleep(1500 * 1000);
	}
	return last;
}

/*
 * Table adapters: one row per event, columns matched by name, other
 * columns keep their defaults; nothing twice.
 */
static void
test_table(PGconn *s)
{
	run(s, "CREATE TABLE sink (id bigint, type text, payload jsonb,"
		" metadata jsonb, emitted_at timestamptz, txid xid8, database text)");
	check("a table adapter on every type is added", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('sink', 'table', 'sink')"));
	run(s, "CREATE TABLE sink_extra (type text, note text DEFAULT 'kept',"
		" id bigint, seen_at timestamptz DEFAULT clock_timestamp(),"
		" serial_no serial)");
	check("a table adapter on a table with fewer and extra columns is added",
		  "ok", sqlstate(s, "SELECT emissions_add_adapter('sink_extra',"
						 " 'table', 'sink_extra', 'table.*')"));

	run(s, "BEGIN");
	run(s, "SELECT emissions_start()");
	run(s, "SELECT emissions_emit('table.one', '{\"n\": 1}',"
		" '{\"m\": \"one\"}')");
	run(s, "SELECT emissions_emit('table.two', '{\"n\": 2}')");
	run(s, "COMMIT");
	run(s, "SELECT emissions_start(), emissions_emit('other.three')");
	delivered(s);

	check_same("each event lands in the table once, with its id", s,
			   "SELECT string_agg(id || ':' || type, ',' ORDER BY id)"
			   " FROM emissions_events(0, 100000) WHERE type IN"
			   " ('table.one', 'table.two', 'other.three')",
			   "SELECT string_agg(id || ':' || type, ',' ORDER BY id)"
			   " FROM sink");
	check("the row carries the envelope's fields", "t",
		  value(s, "SELECT bool_and(s.payload = e.payload"
				" AND s.metadata = e.metadata AND s.emitted_at = e.emitted_at"
				" AND s.txid = e.txid AND s.database = current_database())"
				" FROM sink AS s JOIN emissions_events(0, 100000) AS e USING (id)",
				NULL));
	check("with the payload and metadata emitted", "2 one",
		  value(s, "SELECT (SELECT payload->>'n' FROM sink"
				" WHERE type = 'table.two') || ' ' ||"
				" (SELECT metadata->>'m' FROM sink WHERE type = 'table.one')",
				NULL));
	check_same("the other table gets only its types, columns matched by name",
			   s, "SELECT string_agg(id || ':' || type, ',' ORDER BY id)"
			   " FROM sink WHERE type LIKE 'table.%'",
			   "SELECT string_agg(id || ':' || type, ',' ORDER BY id)"
			   " FROM sink_extra");
	check("and its other columns keep their defaults", "kept kept 1,2 true",
		  value(s, "SELECT string_agg(note, ' ' ORDER BY id) || ' ' ||"
				" string_agg(serial_no::text, ',' ORDER BY id) || ' ' ||"
				" bool_and(seen_at IS NOT NULL) FROM sink_extra", NULL));
	usleep(1500 * 1000);
	delivered(s);
	check("nothing lands twice", "3 2",
		  value(s, "SELECT (SELECT count(*) FROM sink) || ' ' ||"
				" (SELECT count(*) FROM sink_extra)", NULL));
}

/*
 * Rule 6: a table adapter never shows part of a transaction.  Two
 * transactions of 1500 events each, more than emissions.batch_size, into
 * a table whose inserts take a millisecond each: an observer polling the
 * table only ever sees 0, 1500 or 3000 rows, and must have seen 1500 (the
 * first transaction without the second), or the check proves nothing.
 */
static void
test_whole_transactions(PGconn *s, PGconn *observer)
{
	char		partial[1024] = "";
	size_t		len = 0;
	const char *seen = "";
	double		deadline;
	int			polls = 0;
	int			between = 0;

	/* A table slow to insert into: the observer gets to look often. */
	run(s, "CREATE TABLE bulk_sink (id bigint, type text, payload jsonb)");
	run(s, "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql"
		" AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$");
	run(s, "CREATE TRIGGER slow BEFORE INSERT ON bulk_sink"
		" FOR EACH ROW EXECUTE FUNCTION slow_insert()");
	check("a table adapter on a slow table is added", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('bulk', 'table',"
				   " 'bulk_sink', 'bulk.*')"));
	for (int t = 0; t < 2; t++)
	{
		run(s, "BEGIN");
		run(s, "SELECT emissions_start()");
		run(s, "SELECT count(emissions_emit('bulk.item',"
			" jsonb_build_object('n', g))) FROM generate_series(1, 1500) AS g");
		run(s, "COMMIT");
	}
	deadline = now_ms() + 20000;
	while (now_ms() < deadline)
	{
		seen = value(observer, "SELECT count(*) FROM bulk_sink", NULL);
		polls++;
		if (strcmp(seen, "1500") == 0)
			between++;
		if (strcmp(seen, "0") != 0 && strcmp(seen, "1500") != 0 &&
			strcmp(seen, "3000") != 0 && len < sizeof(partial) - 32)
			len += snprintf(partial + len, sizeof(partial) - len, " %s", seen);
		if (strcmp(seen, "3000") == 0)
			break;
		usleep(2 * 1000);
	}
	printf("# %d polls of the adapter table, %d of them between the"
		   " transactions\n", polls, between);
	check("both transactions of 1500 events are delivered", "3000", seen);
	report(between > 0, "the observer saw the first transaction alone"
		   " (1500 rows)");
	check("an observer never sees part of a transaction", "", partial);
	check("in emit order, each transaction's rows consecutive", "t",
		  value(s, "SELECT bool_and(ok) FROM (SELECT"
				" (payload->>'n')::int = lag((payload->>'n')::int, 1, 0)"
				" OVER (ORDER BY id) % 1500 + 1 AS ok"
				" FROM bulk_sink) AS t", NULL));
}

/*
 * Type globs: '*' matches any sequence, the rest literally, the whole type.
 */
static void
test_globs(PGconn *s)
{
	run(s, "CREATE TABLE glob_sink (type text, id bigint)");
	run(s, "CREATE TABLE list_sink (type text, id bigint)");
	check("a table adapter for 'order.*' is added", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('glob', 'table',"
				   " 'glob_sink', 'order.*')"));
	check("a table adapter for 'pay.done,ship.*' is added", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('list', 'table',"
				   " 'list_sink', 'pay.done,ship.*')"));
	run(s, "BEGIN");
	run(s, "SELECT emissions_start()");
	run(s, "SELECT emissions_emit(t) FROM unnest(ARRAY['order.created',"
		" 'orders.x', 'order', 'order.item.added', 'xorder.created',"
		" 'pay.done', 'pay.doney', 'xpay.done', 'ship.out', 'shipping.out'])"
		" AS t");
	run(s, "COMMIT");
	delivered(s);
	check("'order.*' matches order.created and order.item.added only",
		  "order.created,order.item.added",
		  value(s, "SELECT string_agg(type, ',' ORDER BY id) FROM glob_sink",
				NULL));
	check("'pay.done,ship.*' matches pay.done and ship.out only",
		  "pay.done,ship.out",
		  value(s, "SELECT string_agg(type, ',' ORDER BY id) FROM list_sink",
				NULL));
	check("a bad kind is refused with 22023", "22023",
		  sqlstate(s, "SELECT emissions_add_adapter('bad', 'carrier-pigeon',"
				   " 'x')"));
	check("a duplicate name is refused with 42710", "42710",
		  sqlstate(s, "SELECT emissions_add_adapter('glob', 'table',"
				   " 'glob_sink', 'order.*')"));
}

/*
 * A notify adapter: the envelope on its channel, for its types only.
 */
static void
test_notify(PGconn *s, PGconn *listener)
{
	PGnotify   *n;
	char		got[1024] = "";
	size_t		len = 0;
	double		deadline;

	check("a notify adapter on another channel is added", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('alt', 'notify',"
				   " 'emissions_adapters_alt', 'alt.*')"));
	run(listener, "LISTEN emissions_adapters_alt");
	run(s, "SELECT emissions_start(), emissions_emit('other.before')");
	run(s, "SELECT emissions_start(), emissions_emit('alt.one', '{\"k\": 7}')");
	run(s, "SELECT emissions_start(), emissions_emit('other.after')");

	deadline = now_ms() + WAIT_MS;
	while ((n = wait_notify(listener, len == 0 ?
							(int) (deadline - now_ms()) : QUIET_MS)) != NULL)
	{
		const char *param = n->extra;
		PGresult   *res = PQexecParams(s,
									   "SELECT $1::jsonb->>'type',"
									   " $1::jsonb->'payload'->>'k',"
									   " $1::jsonb->'id' IS NOT NULL",
									   1, NULL, &param, NULL, NULL, 0);

		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			len += snprintf(got + len, sizeof(got) - len, "%s%s:%s %s %s",
							len ? "," : "", n->relname, PQgetvalue(res, 0, 0),
							PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
		else
			len += snprintf(got + len, sizeof(got) - len, "%sbad JSON",
							len ? "," : "");
		PQclear(res);
		PQfreemem(n);
		if (len > sizeof(got) - 128)
			break;
	}
	check("the channel gets the envelope of the matching event only",
		  "emissions_adapters_alt:alt.one 7 t", got);
}

/*
 * One envelope: what a function adapter gets as jsonb is the text NOTIFY
 * carries, parsed (the same value, of the same size), and that text keeps
 * its fields in the documented order.
 */
static void
test_one_envelope(PGconn *s, PGconn *listener)
{
	PGnotify   *n;
	const char *text;

	run(s, "CREATE TABLE same_calls (envelope jsonb)");
	run(s, "CREATE FUNCTION record_same(e jsonb) RETURNS void"
		" LANGUAGE sql AS $$ INSERT INTO public.same_calls VALUES (e) $$");
	check("a function and a notify adapter on the same type are added",
		  "ok ok",
		  value(s, "SELECT (SELECT 'ok' FROM emissions_add_adapter('same_fn',"
				" 'function', 'record_same', 'same.*')) || ' ' ||"
				" (SELECT 'ok' FROM emissions_add_adapter('same_notify',"
				" 'notify', 'emissions_adapters_same', 'same.*'))", NULL));
	run(listener, "LISTEN emissions_adapters_same");
	run(s, "SELECT emissions_start(), emissions_emit('same.one',"
		" '{\"s\": \"caf\\u00e9 \\\" \\\\ \\t\", \"n\": [1.50, -0, 1e-7],"
		" \"nested\": {\"b\": null, \"a\": true}}', '{\"m\": \"x\"}')");
	while ((n = wait_notify(listener, WAIT_MS)) != NULL &&
		   strcmp(n->relname, "emissions_adapters_same") != 0)
		PQfreemem(n);
	delivered(s);
	text = n != NULL ? n->extra : "";
	check("the NOTIFY text keeps the fields in their documented order",
		  "id,type,payload,metadata,emitted_at,txid,database",
		  value(s, "SELECT string_agg(k, ',') FROM json_object_keys($1::json) AS k",
				text));
	check("the function adapter's jsonb is that text parsed, of the same size",
		  "1 true true",
		  value(s, "SELECT count(*) || ' ' || bool_and(envelope = $1::jsonb)"
				" || ' ' || bool_and(pg_column_size(envelope) ="
				" pg_column_size($1::jsonb)) FROM same_calls", text));
	if (n != NULL)
		PQfreemem(n);
	run(s, "SELECT emissions_drop_adapter('same_fn'),"
		" emissions_drop_adapter('same_notify')");
}

/*
 * Function adapters: once per event with the envelope; cascades; the
 * cascade limit.
 */
static void
test_function(PGconn *s)
{
	const char *seen;

	run(s, "CREATE TABLE fn_calls (event_id bigint, type text,"
		" envelope jsonb, called_by text)");
	run(s, "CREATE FUNCTION record_call(e jsonb) RETURNS void"
		" LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.fn_calls"
		" VALUES ((e->>'id')::bigint, e->>'type', e, current_user); END $$");
	check("a function adapter is added by name", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('fn', 'function',"
				   " 'record_call', 'fn.*')"));
	run(s, "BEGIN");
	run(s, "SELECT emissions_start()");
	run(s, "SELECT emissions_emit('fn.a', '{\"x\": 1}')");
	run(s, "SELECT emissions_emit('fn.b', '{\"x\": 2}')");
	run(s, "COMMIT");
	run(s, "SELECT emissions_start(), emissions_emit('fn.c', '{\"x\": 3}')");
	run(s, "SELECT emissions_start(), emissions_emit('nofn.d')");
	delivered(s);
	check_same("the handler is called once per matching event", s,
			   "SELECT string_agg(id || ':' || type, ',' ORDER BY id)"
			   " FROM emissions_events(0, 100000) WHERE type LIKE 'fn.%'",
			   "SELECT string_agg(event_id || ':' || type, ','"
			   " ORDER BY event_id) FROM fn_calls");
	check("with the envelope", "1,2,3 true",
		  value(s, "SELECT string_agg(envelope->'payload'->>'x', ','"
				" ORDER BY event_id) || ' ' || bool_and(envelope->>'database'"
				" = current_database() AND envelope ? 'txid'"
				" AND envelope ? 'emitted_at' AND envelope ? 'metadata')"
				" FROM fn_calls", NULL));

	/* A handler that emits: its event is delivered too. */
	run(s, "CREATE FUNCTION cascade_handler(e jsonb) RETURNS void"
		" LANGUAGE plpgsql AS $$ BEGIN PERFORM public.emissions_emit("
		"'cascade.child', jsonb_build_object('parent', (e->>'id')::bigint));"
		" END $$");
	check("a function adapter is added by signature", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('cascade', 'function',"
				   " 'public.cascade_handler(jsonb)', 'cascade.parent')"));
	run(s, "SELECT emissions_start(), emissions_emit('cascade.parent')");
	seen = wait_for(s, "SELECT count(*) FROM sink WHERE type = 'cascade.child'",
					NULL, "1", WAIT_MS);
	check("the handler's event is delivered", "1", seen);
	check("it names its parent, and comes after it", "true true",
		  value(s, "SELECT ((c.payload->>'parent')::bigint = p.id) || ' ' ||"
				" (c.id > p.id) FROM sink AS p, sink AS c"
				" WHERE p.type = 'cascade.parent'"
				" AND c.type = 'cascade.child'", NULL));

	/* A handler that emits its own type: stops at the cascade limit. */
	run(s, "CREATE TABLE loop_calls (event_id bigint, gen int)");
	run(s, "CREATE FUNCTION loop_handler(e jsonb) RETURNS void"
		" LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.loop_calls"
		" VALUES ((e->>'id')::bigint, (e->'payload'->>'gen')::int);"
		" PERFORM public.emissions_emit('loop.tick', jsonb_build_object("
		"'gen', (e->'payload'->>'gen')::int + 1)); END $$");
	check("a self-feeding function adapter is added", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('loop', 'function',"
				   " 'loop_handler', 'loop.tick')"));
	run(s, "SELECT emissions_start(),"
		" emissions_emit('loop.tick', '{\"gen\": 0}')");
	seen = wait_settled(s, "SELECT count(*) FROM emissions_events(0, 100000)"
						" WHERE type = 'loop.tick'");
	check("the cascade stops after max_cascade_depth (" MAX_CASCADE_DEPTH
		  ") generations", "4", seen);
	check("generations 0 to " MAX_CASCADE_DEPTH ", each delivered once",
		  "0,1,2,3",
		  value(s, "SELECT string_agg(payload->>'gen', ',' ORDER BY id)"
				" FROM emissions_events(0, 100000) WHERE type = 'loop.tick'",
				NULL));
	check("the handler ran once for each", "0,1,2,3",
		  value(s, "SELECT string_agg(gen::text, ',' ORDER BY event_id)"
				" FROM loop_calls", NULL));
	check("the cut-off is not a failure", "0",
		  value(s, "SELECT count(*) FROM emissions_dead_letters"
				" WHERE adapter = 'loop'", NULL));
}

/*
 * Failures: retries, dead letter with SQLSTATE and message, isolation, and
 * replay after a fix.
 */
static void
test_failures(PGconn *s)
{
	char		event_id[32];
	char		dead_id[32];
	const char *seen;
	double		quiet_ms;

	run(s, "CREATE SEQUENCE flaky_calls");
	run(s, "CREATE TABLE flaky_done (event_id bigint, type text)");
	run(s, "CREATE TABLE fail_sink (id bigint, type text)");
	run(s, "CREATE FUNCTION flaky(e jsonb) RETURNS void LANGUAGE plpgsql"
		" AS $$ BEGIN PERFORM nextval('public.flaky_calls');"
		" INSERT INTO public.flaky_done"
		" VALUES ((e->>'id')::bigint, e->>'type');"
		" PERFORM 1 / 0; END $$");
	check("a failing function adapter is added", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('flaky', 'function',"
				   " 'flaky', 'fail.*')"));
	check("and a table adapter for the same types", "ok",
		  sqlstate(s, "SELECT emissions_add_adapter('fail_sink', 'table',"
				   " 'fail_sink', 'fail.*')"));

	run(s, "SELECT emissions_start(), emissions_emit('fail.one')");
	run(s, "SELECT emissions_start(), emissions_emit('after.one')");
	seen = wait_for(s, "SELECT count(*) FROM sink WHERE type = 'after.one'",
					NULL, "1", WAIT_MS);
	check("a later event is delivered", "1", seen);
	check("while the failing one is still being retried", "0",
		  value(s, "SELECT count(*) FROM emissions_dead_letters", NULL));
	check("the other adapter got the failing event", "1",
		  value(s, "SELECT count(*) FROM fail_sink WHERE type = 'fail.one'",
				NULL));

	check("after max_attempts tries it becomes a dead letter", "1",
		  wait_for(s, "SELECT count(*) FROM emissions_dead_letters"
				   " WHERE adapter = 'flaky'", NULL, "1", 20000));
	snprintf(event_id, sizeof(event_id), "%s",
			 value(s, "SELECT id FROM emissions_events(0, 100000)"
				   " WHERE type = 'fail.one'", NULL));
	snprintf(dead_id, sizeof(dead_id), "%s",
			 value(s, "SELECT id FROM emissions_dead_letters"
				   " WHERE adapter = 'flaky'", NULL));
	check("the dead letter names the event, with its envelope", "true true",
		  value(s, "SELECT (event_id = $1::bigint) || ' ' ||"
				" (type = 'fail.one' AND envelope->>'type' = 'fail.one'"
				" AND (envelope->>'id')::bigint = event_id)"
				" FROM emissions_dead_letters WHERE adapter = 'flaky'",
				event_id));
	check("with attempts, SQLSTATE and message",
		  MAX_ATTEMPTS " 22012 division by zero",
		  value(s, "SELECT concat_ws(' ', attempts, sqlstate, message)"
				" FROM emissions_dead_letters WHERE adapter = 'flaky'",
				NULL));
	check("the handler was called max_attempts times", MAX_ATTEMPTS,
		  value(s, "SELECT last_value FROM flaky_calls", NULL));
	check("each failed call was rolled back alone", "0",
		  value(s, "SELECT count(*) FROM flaky_done", NULL));

	/*
	 * A further try would come 2^(attempts - 1) seconds after the last
	 * failure (the backoff of retries.c): watch until 1.5 s past that.
	 */
	quiet_ms = atof(value(s, "SELECT 1000 * extract(epoch FROM failed_at"
						  " + make_interval(secs => 2 ^ (attempts - 1))"
						  " + interval '1.5 s' - clock_timestamp())"
						  " FROM emissions_dead_letters WHERE adapter = 'flaky'",
						  NULL));
	printf("# watching %.1f s for another try\n", quiet_ms / 1000);
	if (quiet_ms > 0)
		usleep((useconds_t) (quiet_ms * 1000));
	check("and no more tries follow, past when the next would come",
		  MAX_ATTEMPTS,
		  value(s, "SELECT last_value FROM flaky_calls", NULL));

	/* Fixed, and replayed: delivered to that adapter only. */
	run(s, "CREATE OR REPLACE FUNCTION flaky(e jsonb) RETURNS void"
		" LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('public.flaky_calls');"
		" INSERT INTO public.flaky_done"
		" VALUES ((e->>'id')::bigint, e->>'type'); END $$");
	check("emissions_replay() of the dead letter returns true", "t",
		  value(s, "SELECT emissions_replay($1::bigint)", dead_id));
	check("the fixed handler gets the event", event_id,
		  wait_for(s, "SELECT string_agg(event_id::text, ',') FROM flaky_done"
				   " WHERE type = 'fail.one'", NULL, event_id, WAIT_MS));
	check("the dead letter is gone", "0",
		  wait_for(s, "SELECT count(*) FROM emissions_dead_letters"
				   " WHERE adapter = 'flaky'", NULL, "0", WAIT_MS));
	delivered(s);
	check("the other adapter did not get it again", "1",
		  value(s, "SELECT count(*) FROM fail_sink WHERE type = 'fail.one'",
				NULL));
}

/*
 * Privileges: creating needs the target's rights, deliveries run as the
 * owner, one role's dead letters are its own.
 */
static void
test_privileges(PGconn *s)
{
	PGconn	   *alice = connect_as(TEST_DB, ALICE, show_notice);
	PGconn	   *bob = connect_as(TEST_DB, BOB, show_notice);
	char		dead_id[32];
	const char *seen;

	run(s, "CREATE TABLE private_t (id bigint, type text)");
	run(s, "CREATE FUNCTION secret_fn(e jsonb) RETURNS void"
		" LANGUAGE plpgsql AS $$ BEGIN END $$");
	run(s, "REVOKE EXECUTE ON FUNCTION secret_fn(jsonb) FROM PUBLIC");

	check("a role without INSERT cannot add a table adapter (42501)",
		  "42501", sqlstate(alice, "SELECT emissions_add_adapter("
							"'alice_table', 'table', 'private_t', 'priv.table')"));
	run(s, "GRANT SELECT ON private_t TO " ALICE);
	check("SELECT is not enough (42501)", "42501",
		  sqlstate(alice, "SELECT emissions_add_adapter('alice_table',"
				   " 'table', 'private_t', 'priv.table')"));
	check("a role without EXECUTE cannot add a function adapter (42501)",
		  "42501", sqlstate(alice, "SELECT emissions_add_adapter("
							"'alice_secret', 'function', 'secret_fn')"));
	run(s, "GRANT INSERT ON private_t TO " ALICE);
	check("with INSERT it can", "ok",
		  sqlstate(alice, "SELECT emissions_add_adapter('alice_table',"
				   " 'table', 'private_t', 'priv.table')"));
	check("the adapter's owner is that role", ALICE,
		  value(s, "SELECT owner::text FROM emissions_adapters"
				" WHERE name = 'alice_table'", NULL));
	run(s, "SELECT emissions_start(), emissions_emit('priv.table')");
	delivered(s);
	check("its table gets the event", "1",
		  value(s, "SELECT count(*) FROM private_t", NULL));

	/* A handler of alice's runs as alice. */
	run(alice, "CREATE TABLE alice_seen (who text, event_id bigint)");
	run(alice, "CREATE FUNCTION alice_handler(e jsonb) RETURNS void"
		" LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.alice_seen"
		" VALUES (current_user, (e->>'id')::bigint); END $$");
	check("a role adds a function adapter of its own", "ok",
		  sqlstate(alice, "SELECT emissions_add_adapter('alice_fn',"
				   " 'function', 'alice_handler', 'priv.who')"));
	run(alice, "CREATE FUNCTION alice_fail(e jsonb) RETURNS void"
		" LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'alice says no';"
		" END $$");
	check("and a failing one", "ok",
		  sqlstate(alice, "SELECT emissions_add_adapter('alice_fail',"
				   " 'function', 'alice_fail', 'priv.fail')"));

	/* Without INSERT any more, alice's table adapter fails as alice. */
	run(s, "REVOKE INSERT ON private_t FROM " ALICE);
	run(s, "SELECT emissions_start(), emissions_emit('priv.who'),"
		" emissions_emit('priv.fail'), emissions_emit('priv.table')");
	delivered(s);
	check("the handler runs as the adapter's owner", ALICE,
		  wait_for(s, "SELECT string_agg(who, ',') FROM alice_seen",
				   NULL, ALICE, WAIT_MS));
	seen = wait_for(s, "SELECT count(*) FROM emissions_dead_letters"
					" WHERE adapter IN ('alice_fail', 'alice_table')",
					NULL, "2", 20000);
	check("both of the role's failing adapters leave dead letters", "2",
		  seen);
	check("the table adapter inserted as its owner: 42501 once revoked",
		  "42501",
		  value(s, "SELECT sqlstate FROM emissions_dead_letters"
				" WHERE adapter = 'alice_table'", NULL));
	check("the raised error is kept", "P0001 alice says no",
		  value(s, "SELECT sqlstate || ' ' || message"
				" FROM emissions_dead_letters WHERE adapter = 'alice_fail'",
				NULL));
	snprintf(dead_id, sizeof(dead_id), "%s",
			 value(s, "SELECT id FROM emissions_dead_letters"
				   " WHERE adapter = 'alice_fail'", NULL));

	check("the owner sees its dead letters", "alice_fail,alice_table",
		  value(alice, "SELECT string_agg(adapter, ',' ORDER BY adapter)"
				" FROM emissions_dead_letters", NULL));
	check("another unprivileged role sees none", "0",
		  value(bob, "SELECT count(*) FROM emissions_dead_letters", NULL));
	check("nor replays them: emissions_replay() returns false", "f",
		  value(bob, "SELECT emissions_replay($1::bigint)", dead_id));
	check("nor drops the role's adapters (42501)", "42501",
		  sqlstate(bob, "SELECT emissions_drop_adapter('alice_fn')"));
	check("the dead letter is still there", "1",
		  value(s, "SELECT count(*) FROM emissions_dead_letters"
				" WHERE id = $1::bigint", dead_id));

	PQfinish(alice);
	PQfinish(bob);
}

int
main(void)
{
	PGconn	   *admin;
	PGconn	   *s;
	PGconn	   *observer;
	PGconn	   *listener;

	admin = connect_to(NULL, show_notice);
	run(admin, "DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
	run(admin, "DROP ROLE IF EXISTS " ALICE);
	run(admin, "DROP ROLE IF EXISTS " BOB);
	run(admin, "CREATE ROLE " ALICE " LOGIN");
	run(admin, "CREATE ROLE " BOB " LOGIN");
	run(admin, "CREATE DATABASE " TEST_DB);
	atexit(reset_settings);
	configure(admin, true);

	s = connect_to(TEST_DB, show_notice);
	run(s, "CREATE EXTENSION emissions");
	run(s, "GRANT CREATE ON SCHEMA public TO " ALICE ", " BOB);
	check("a delivery worker serves the new database", "1",
		  wait_for(s, "SELECT count(*) FROM pg_stat_activity"
				   " WHERE backend_type = 'emissions delivery'"
				   " AND datname = current_database()", NULL, "1", WAIT_MS));
	observer = connect_to(TEST_DB, show_notice);
	listener = connect_to(TEST_DB, show_notice);

	test_table(s);
	test_whole_transactions(s, observer);
	test_globs(s);
	test_notify(s, listener);
	test_one_envelope(s, listener);
	test_function(s);
	test_failures(s);
	test_privileges(s);

	PQfinish(s);
	PQfinish(observer);
	PQfinish(listener);
	configure(admin, false);
	check("the test database is dropped", "ok",
		  sqlstate(admin, "DROP DATABASE " TEST_DB));
	run(admin, "DROP ROLE " ALICE);
	run(admin, "DROP ROLE " BOB);
	PQfinish(admin);
	printf("1..%d\n", nchecks);
	return nfailed > 0 ? 1 : 0;
}
