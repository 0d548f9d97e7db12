/*-------------------------------------------------------------------------
 *
 * adapter_timeout.c
 *	  Prove that an adapter call that hangs is cancelled after
 *	  emissions.adapter_timeout and fails like any other failure, while
 *	  delivery goes on.
 *
 * The contract's "Delivery keeps flowing" and the emissions.adapter_timeout
 * setting.  An ordinary role adds, for every event type:
 *
 * - a function adapter whose handler runs pg_sleep(20);
 * - a table adapter into a table that another session holds locked;
 *
 * and the database has a plain table adapter too.  With the timeout at 1 s
 * and emissions.max_attempts at 2, emissions_wait_delivered('8s') returns
 * true after each event, the plain table gets every event, both hanging
 * calls are cancelled and recorded with SQLSTATE 57014, retried, then kept
 * as dead letters; the lock released, nothing is left waiting.
 *
 * The connection comes from the environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE, a superuser); the server must preload the library.  The
 * program creates the database emissions_timeout and the role
 * emissions_slow for itself and drops them at the end; it sets
 * emissions.adapter_timeout and emissions.max_attempts with ALTER SYSTEM
 * and resets them on exit.  It prints one "ok N - ..." or "not ok N - ..."
 * line per check and exits 1 if any failed.
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libpq-fe.h"

#include "tap_libpq.h"

#define TEST_DB "emissions_timeout"
#define SLOW "emissions_slow"

/* How long to wait for what must come. */
#define WAIT_MS 20000

/* At exit, whatever happened: put the settings back. */
static void
reset_settings(void)
{
	static const char *const settings[] = {
		"emissions.adapter_timeout", "emissions.max_attempts", NULL
	};

	reset_system(settings);
}

int
main(void)
{
	PGconn	   *admin;
	PGconn	   *s;
	PGconn	   *slow;
	PGconn	   *locker;
	const char *failures = "sleeper 57014 t,stuck 57014 t";
	double		started;
	char		took[64];

	admin = connect_to(NULL, show_notice);
	run(admin, "DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
	run(admin, "DROP ROLE IF EXISTS " SLOW);
	run(admin, "CREATE ROLE " SLOW " LOGIN");
	run(admin, "CREATE DATABASE " TEST_DB);
	atexit(reset_settings);
	check("emissions.adapter_timeout can be set", "done",
		  command(admin, "ALTER SYSTEM SET emissions.adapter_timeout = '1s'"));
	run(admin, "ALTER SYSTEM SET emissions.max_attempts = 2");
	reload_and_wait(admin, NULL, "emissions.max_attempts", "2");

	s = connect_to(TEST_DB, show_notice);
	run(s, "CREATE EXTENSION emissions");
	run(s, "GRANT CREATE ON SCHEMA public TO " SLOW);
	run(s, "CREATE TABLE sink (id bigint, type text)");
	run(s, "SELECT emissions_add_adapter('sink', 'table', 'sink')");

	slow = connect_as(TEST_DB, SLOW, show_notice);
	run(slow, "CREATE FUNCTION sleeper(e jsonb) RETURNS void"
		" LANGUAGE sql AS 'SELECT pg_sleep(20)'");
	run(slow, "CREATE TABLE stuck_sink (id bigint, type text)");
	run(slow, "SELECT emissions_add_adapter('sleeper', 'function',"
		" 'sleeper(jsonb)')");
	run(slow, "SELECT emissions_add_adapter('stuck', 'table', 'stuck_sink')");
	check("a delivery worker serves the new database", "1",
		  wait_for(s, "SELECT count(*) FROM pg_stat_activity"
				   " WHERE backend_type = 'emissions delivery'"
				   " AND datname = current_database()", NULL, "1", 10000));

	locker = connect_to(TEST_DB, show_notice);
	run(locker, "BEGIN");
	run(locker, "LOCK TABLE stuck_sink IN ACCESS EXCLUSIVE MODE");

	run(slow, "SELECT emissions_start(), emissions_emit('ev.one')");
	started = now_ms();
	check("emissions_wait_delivered('8s') returns true", "t",
		  value(s, "SELECT emissions_wait_delivered('8s')", NULL));
	snprintf(took, sizeof(took), "%s",
			 now_ms() - started < 8000 ? "under 8 s" : "8 s or more");
	check("delivery did not wait for the hanging calls", "under 8 s", took);
	check("the plain table adapter got the event", "ev.one",
		  value(s, "SELECT string_agg(type, ',') FROM sink", NULL));
	check("both hanging calls failed with 57014, naming the setting",
		  failures,
		  value(s, "SELECT string_agg(concat_ws(' ', adapter, sqlstate,"
				" message LIKE '%emissions.adapter_timeout%'), ','"
				" ORDER BY adapter) FROM emissions_failed_deliveries", NULL));

	run(slow, "SELECT emissions_start(), emissions_emit('ev.two')");
	check("a later event is delivered too", "t",
		  value(s, "SELECT emissions_wait_delivered('8s')", NULL));
	check("the plain table adapter got it", "ev.one,ev.two",
		  value(s, "SELECT string_agg(type, ',' ORDER BY id) FROM sink", NULL));

	check("after max_attempts tries each is a dead letter with 57014",
		  "sleeper 2 57014 ev.one,sleeper 2 57014 ev.two,"
		  "stuck 2 57014 ev.one,stuck 2 57014 ev.two",
		  wait_for(s, "SELECT string_agg(concat_ws(' ', adapter, attempts,"
				   " sqlstate, type), ',' ORDER BY adapter, type)"
				   " FROM emissions_dead_letters", NULL,
				   "sleeper 2 57014 ev.one,sleeper 2 57014 ev.two,"
				   "stuck 2 57014 ev.one,stuck 2 57014 ev.two", WAIT_MS));
	check("nothing was inserted into the locked table meanwhile", "0",
		  value(locker, "SELECT count(*) FROM stuck_sink", NULL));
	run(locker, "COMMIT");
	check("the worker holds no lock and waits for none", "0",
		  value(s, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a"
				" USING (pid) WHERE a.backend_type = 'emissions delivery'"
				" AND (NOT l.granted OR l.relation = 'stuck_sink'::regclass)",
				NULL));

	PQfinish(locker);
	PQfinish(slow);
	PQfinish(s);
	run(admin, "DROP DATABASE " TEST_DB " WITH (FORCE)");
	run(admin, "DROP ROLE " SLOW);
	PQfinish(admin);
	printf("1..%d\n", nchecks);
	return nfailed > 0 ? 1 : 0;
}
