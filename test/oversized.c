/*-------------------------------------------------------------------------
 *
 * oversized.c
 *	  Prove that no event, however large, stops delivery in its database.
 *
 * The contract's "Delivery keeps flowing": an event too large to NOTIFY or
 * to hand to an adapter is sent without its payload or becomes a dead
 * letter, and later events keep flowing.  An ordinary role emits:
 *
 * - an event whose payload is small as jsonb (about 200 kB) but whose text
 *	 is over 2 GB: 16384 numbers 1e131071, each printed in 131072 digits.
 *	 NOTIFY carries its envelope without the payload; a table adapter gets
 *	 it whole;
 * - an event whose payload and metadata (140 MB each) fit jsonb one by
 *	 one but not together, in one envelope: NOTIFY carries its envelope
 *	 without either, and for a table adapter it is a dead letter at once,
 *	 kept with that envelope;
 * - after each, an ordinary event, which must be delivered everywhere.
 *
 * The connection comes from the environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE, a superuser); the server must preload the library.  The
 * program creates the database emissions_oversized and the role
 * emissions_mallory for itself and drops them at the end.  It prints one
 * "ok N - ..." or "not ok N - ..." line per check and exits 1 if any
 * failed.
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "libpq-fe.h"

#include "tap_libpq.h"

#define TEST_DB "emissions_oversized"
#define MALLORY "emissions_mallory"

/* How long to wait for what must come. */
#define WAIT_MS 60000

/*
 * Collect the notifications on listener for up to WAIT_MS until one of
 * type last comes; return "type:payload_omitted:metadata_omitted" of each,
 * comma-separated, in a static buffer.
 */
static const char *
notifications(PGconn *s, PGconn *listener, const char *last)
{
	static char got[4096];
	size_t		len = 0;
	double		deadline = now_ms() + WAIT_MS;
	PGnotify   *n;

	got[0] = '\0';
	while ((n = wait_notify(listener, (int) (deadline - now_ms()))) != NULL)
	{
		const char *param = n->extra;
		PGresult   *res = PQexecParams(s,
									   "SELECT $1::jsonb->>'type',"
									   " coalesce($1::jsonb->>'payload_omitted', 'no'),"
									   " coalesce($1::jsonb->>'metadata_omitted', 'no')",
									   1, NULL, &param, NULL, NULL, 0);
		bool		done = false;

		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			len += snprintf(got + len, sizeof(got) - len, "%s%s:%s:%s",
							len ? "," : "", PQgetvalue(res, 0, 0),
							PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
			done = strcmp(PQgetvalue(res, 0, 0), last) == 0;
		}
		else
			len += snprintf(got + len, sizeof(got) - len, "%sbad JSON",
							len ? "," : "");
		PQclear(res);
		PQfreemem(n);
		if (done || len > sizeof(got) - 128)
			break;
	}
	return got;
}

/*
 * The payload whose text is over 1 GB: NOTIFY without it, whole into a
 * table; then the next event.
 */
static void
test_long_text(PGconn *s, PGconn *mallory, PGconn *listener)
{
	run(mallory, "BEGIN");
	run(mallory, "SELECT emissions_start()");
	run(mallory, "SELECT emissions_emit('poison.numbers', (WITH RECURSIVE"
		" d(j, k) AS (SELECT jsonb_build_array(('1' || repeat('0', 131071))"
		"::numeric), 0 UNION ALL SELECT j || j, k + 1 FROM d WHERE k < 14)"
		" SELECT j FROM d WHERE k = 14))");
	run(mallory, "COMMIT");
	run(mallory, "SELECT emissions_start(), emissions_emit('after.numbers',"
		" '{\"n\": 1}')");

	check("NOTIFY carries the first without its payload, then the next",
		  "poison.numbers:true:no,after.numbers:no:no",
		  notifications(s, listener, "after.numbers"));
	check("the worker delivers both", "t",
		  value(s, "SELECT emissions_wait_delivered('60s')", NULL));
	check("a table adapter gets both, whole",
		  "poison.numbers 16384,after.numbers 1",
		  value(s, "SELECT string_agg(type || ' ' || CASE"
				" WHEN jsonb_typeof(payload) = 'array'"
				" THEN jsonb_array_length(payload) ELSE (payload->>'n')::int"
				" END, ',' ORDER BY id) FROM sink", NULL));
}

/*
 * The payload and metadata too large for one jsonb envelope: NOTIFY
 * without them, a dead letter for a table adapter; then the next.
 */
static void
test_too_large_for_jsonb(PGconn *s, PGconn *mallory, PGconn *listener)
{
	run(mallory, "BEGIN");
	run(mallory, "SELECT emissions_start()");
	run(mallory, "SELECT emissions_emit('poison.huge',"
		" jsonb_build_object('p', repeat('p', 140000000)),"
		" jsonb_build_object('m', repeat('m', 140000000)))");
	run(mallory, "COMMIT");
	run(mallory, "SELECT emissions_start(), emissions_emit('after.huge')");

	check("NOTIFY carries it without payload and metadata, then the next",
		  "poison.huge:true:true,after.huge:no:no",
		  notifications(s, listener, "after.huge"));
	check("the worker delivers both", "t",
		  value(s, "SELECT emissions_wait_delivered('60s')", NULL));
	check("the table adapter gets the next one", "after.huge",
		  value(s, "SELECT type FROM sink ORDER BY id DESC LIMIT 1", NULL));
	check("it is a dead letter there at once, without payload and metadata",
		  "54000 true true",
		  value(s, "SELECT concat_ws(' ', sqlstate,"
				" envelope->>'payload_omitted', envelope->>'metadata_omitted')"
				" FROM emissions_dead_letters WHERE type = 'poison.huge'",
				NULL));
	check("nothing is left to deliver or retry", "0 0",
		  value(s, "SELECT (SELECT count(*) FROM emissions_pending_events())"
				" || ' ' || (SELECT count(*) FROM emissions_failed_deliveries"
				" WHERE next_attempt_at IS NOT NULL)", NULL));
}

int
main(void)
{
	PGconn	   *admin;
	PGconn	   *s;
	PGconn	   *mallory;
	PGconn	   *listener;

	admin = connect_to(NULL, show_notice);
	run(admin, "DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
	run(admin, "DROP ROLE IF EXISTS " MALLORY);
	run(admin, "CREATE ROLE " MALLORY " LOGIN");
	run(admin, "CREATE DATABASE " TEST_DB);

	s = connect_to(TEST_DB, show_notice);
	run(s, "CREATE EXTENSION emissions");
	run(s, "CREATE TABLE sink (id bigint, type text, payload jsonb)");
	run(s, "SELECT emissions_add_adapter('sink', 'table', 'sink')");
	check("a delivery worker serves the new database", "1",
		  wait_for(s, "SELECT count(*) FROM pg_stat_activity"
				   " WHERE backend_type = 'emissions delivery'"
				   " AND datname = current_database()", NULL, "1", 10000));
	mallory = connect_as(TEST_DB, MALLORY, show_notice);
	listener = connect_to(TEST_DB, show_notice);
	run(listener, "LISTEN emissions");

	test_long_text(s, mallory, listener);
	test_too_large_for_jsonb(s, mallory, listener);

	PQfinish(mallory);
	PQfinish(listener);
	PQfinish(s);
	run(admin, "DROP DATABASE " TEST_DB " WITH (FORCE)");
	run(admin, "DROP ROLE " MALLORY);
	PQfinish(admin);
	printf("1..%d\n", nchecks);
	return nfailed > 0 ? 1 : 0;
}
