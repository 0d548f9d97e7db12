/*-------------------------------------------------------------------------
 *
 * injection.c
 *	  Prove, with a real LISTEN connection, that channel names, database
 *	  names and payloads full of quotes and SQL are sent verbatim and never
 *	  executed.
 *
 * The Delivery section of the contract: "names are quoted, never spliced
 * into SQL".  sql/injection.sql covers table and function adapters and the
 * event log; what pg_regress cannot show (psql prints each notification
 * with its sender's pid) is covered here:
 *
 * - a notify adapter whose channel is chan"'; DROP TABLE
 *	 injection_sentinel; -- sends each matching event on exactly that
 *	 channel, which a client LISTENs to by its quoted name;
 * - the default channel and the adapter's channel carry the same
 *	 envelopes, whose payload and metadata are byte for byte the jsonb text
 *	 of what was emitted, and whose "database" is the database's odd name;
 * - the sentinel table is still there, with its one row.
 *
 * The connection comes from the environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE, a superuser); the server must preload the library.  The
 * program creates the database emissions_injection"'; -- for itself and
 * drops it.  It prints one "ok N - ..." or "not ok N - ..." line per check
 * and exits 1 if any failed.
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

/* The database's name, and as a quoted identifier. */
#define TEST_DB "emissions_injection\"'; --"
#define TEST_DB_SQL "\"emissions_injection\"\"'; --\""

/* The adapter's channel, and as a quoted identifier for LISTEN. */
#define CHANNEL "chan\"'; DROP TABLE injection_sentinel; --"
#define CHANNEL_SQL "\"chan\"\"'; DROP TABLE injection_sentinel; --\""

#define WAIT_MS 10000
#define QUIET_MS 300

/* What is emitted: type inj.N gets payloads[N] and metadata[N]. */
static const char *const payloads[] = {
	"{\"s\": \"'); DROP TABLE injection_sentinel; --\"}",
	"{\"s\": \"\\\"; DELETE FROM injection_sentinel; --\", \"t\\\"k'ey\": 1}",
	"{\"s\": \"$$; DROP TABLE injection_sentinel; $$ %s %I :'v' \\\\gexec\"}",
	"\"Robert'); INSERT INTO injection_sentinel VALUES (2); --\"",
	"{\"s\": \"a\\\\b\xc3\xa9\\n\\t\\\"\xe2\x98\xba end\"}",
	"[{\"x\": [\"'\", \"\\\"\", null, 1.50, true]}, \"LISTEN x; NOTIFY x\"]",
	"null",
};
static const char *const metadata[] = {
	"{}",
	"{\"'; DROP TABLE injection_sentinel; --\": \"x\\\"y\"}",
	"{\"source\": \"$1\"}",
	"{}",
	"{\"k\": \"\\\\x27\"}",
	"{\"a.b\": {\"\\\"c\\\".d\": \"e\"}}",
	"{}",
};

#define NEVENTS ((int) (sizeof(payloads) / sizeof(payloads[0])))

/*
 * Return the jsonb text of json (as the server prints it) in a static
 * buffer.
 */
static const char *
jsonb_text(PGconn *conn, const char *json)
{
	return value(conn, "SELECT $1::jsonb::text", json);
}

/*
 * Check one envelope received on a channel: its type names the event it
 * carries, whose payload and metadata appear in it byte for byte, and its
 * database is the test database.  Returns the event's number, or -1.
 */
static int
check_envelope(PGconn *s, const char *envelope)
{
	char		type[64];
	char		expected[1024];
	int			n;

	snprintf(type, sizeof(type), "%s", value(s, "SELECT $1::jsonb->>'type'",
											 envelope));
	if (sscanf(type, "inj.%d", &n) != 1 || n < 0 || n >= NEVENTS)
	{
		printf("# unexpected envelope: %s\n", envelope);
		return -1;
	}
	snprintf(expected, sizeof(expected), "\"payload\": %s",
			 jsonb_text(s, payloads[n]));
	if (strstr(envelope, expected) == NULL)
	{
		printf("# %s: payload not verbatim: %s\n", type, envelope);
		return -1;
	}
	snprintf(expected, sizeof(expected), "\"metadata\": %s",
			 jsonb_text(s, metadata[n]));
	if (strstr(envelope, expected) == NULL)
	{
		printf("# %s: metadata not verbatim: %s\n", type, envelope);
		return -1;
	}
	if (strcmp(value(s, "SELECT $1::jsonb->>'database'", envelope),
			   TEST_DB) != 0)
	{
		printf("# %s: database not verbatim: %s\n", type, envelope);
		return -1;
	}
	return n;
}

int
main(void)
{
	PGconn	   *admin;
	PGconn	   *s;
	PGconn	   *listener;
	PGnotify   *note;
	int			on_channel[NEVENTS] = {0};
	int			on_default[NEVENTS] = {0};
	int			other = 0;
	int			bad = 0;
	bool		all_once = true;
	int			verbatim;
	double		deadline;
	int			i;

	admin = connect_to(NULL, show_notice);
	run(admin, "DROP DATABASE IF EXISTS " TEST_DB_SQL " WITH (FORCE)");
	run(admin, "CREATE DATABASE " TEST_DB_SQL);

	s = connect_to(TEST_DB, show_notice);
	run(s, "CREATE EXTENSION emissions");
	check("a delivery worker serves the database with the odd name", "1",
		  wait_for(s, "SELECT count(*) FROM pg_stat_activity"
				   " WHERE backend_type = 'emissions delivery'"
				   " AND datname = current_database()", NULL, "1", WAIT_MS));
	run(s, "CREATE TABLE injection_sentinel (n integer)");
	run(s, "INSERT INTO injection_sentinel VALUES (1)");
	check("a notify adapter on the odd channel is added", "",
		  value(s, "SELECT emissions_add_adapter('inj_notify', 'notify', $1,"
				" 'inj.*')", CHANNEL));
	check("it keeps the channel as given", CHANNEL,
		  value(s, "SELECT target FROM emissions_adapters"
				" WHERE name = 'inj_notify'", NULL));

	listener = connect_to(TEST_DB, show_notice);
	run(listener, "LISTEN " CHANNEL_SQL);
	run(listener, "LISTEN emissions");

	/* All events in one transaction, values passed as parameters. */
	run(s, "BEGIN");
	run(s, "SELECT emissions_start()");
	for (i = 0; i < NEVENTS; i++)
	{
		char		type[32];
		const char *params[3];
		PGresult   *res;

		snprintf(type, sizeof(type), "inj.%d", i);
		params[0] = type;
		params[1] = payloads[i];
		params[2] = metadata[i];
		res = PQexecParams(s,
						   "SELECT emissions_emit($1, $2::jsonb, $3::jsonb)",
						   3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK ||
			strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			bail("emit %s: %s", type, PQerrorMessage(s));
		PQclear(res);
	}
	run(s, "COMMIT");

	/* Collect until both channels have every event, then a quiet spell. */
	deadline = now_ms() + WAIT_MS;
	for (;;)
	{
		int			have = 0;
		int			n;

		for (i = 0; i < NEVENTS; i++)
			have += (on_channel[i] > 0) + (on_default[i] > 0);
		note = wait_notify(listener, have < 2 * NEVENTS ?
						   (int) (deadline - now_ms()) : QUIET_MS);
		if (note == NULL)
			break;
		n = check_envelope(s, note->extra);
		if (n < 0)
			bad++;
		else if (strcmp(note->relname, CHANNEL) == 0)
			on_channel[n]++;
		else if (strcmp(note->relname, "emissions") == 0)
			on_default[n]++;
		else
		{
			printf("# notification on channel %s\n", note->relname);
			other++;
		}
		PQfreemem(note);
	}
	for (i = 0; i < NEVENTS; i++)
	{
		if (on_channel[i] != 1 || on_default[i] != 1)
		{
			printf("# inj.%d: %d on the odd channel, %d on the default\n",
				   i, on_channel[i], on_default[i]);
			all_once = false;
		}
	}
	check("each event came once on the odd channel and once on the default",
		  "true", all_once ? "true" : "false");
	check("every envelope carried its payload, metadata and database"
		  " verbatim", "0", bad == 0 ? "0" : "some did not");
	check("nothing came on any other channel", "0", other == 0 ? "0" : "some");

	check("nothing was executed: the sentinel has its one row", "1",
		  value(s, "SELECT string_agg(n::text, ',') FROM injection_sentinel",
				NULL));
	verbatim = 0;
	for (i = 0; i < NEVENTS; i++)
	{
		char		sql[256];

		snprintf(sql, sizeof(sql),
				 "SELECT count(*) FROM emissions_events(0)"
				 " WHERE type = 'inj.%d' AND payload::text = $1::jsonb::text",
				 i);
		verbatim += strcmp(value(s, sql, payloads[i]), "1") == 0;
	}
	check("the event log has each event once, verbatim", "all",
		  verbatim == NEVENTS ? "all" : "not all");

	PQfinish(listener);
	PQfinish(s);
	check("the test database is dropped", "done",
		  command(admin, "DROP DATABASE " TEST_DB_SQL));
	PQfinish(admin);
	printf("1..%d\n", nchecks);
	return nfailed > 0 ? 1 : 0;
}
