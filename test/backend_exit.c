/*-------------------------------------------------------------------------
 *
 * backend_exit.c
 *	  Prove that a backend's exit discards its transaction's events.
 *
 * Rules 1 and 2 of the contract, seen from outside the server: a batch that
 * was flushed but not committed is invisible to other sessions; when the
 * backend holding it is terminated (pg_terminate_backend), or its client
 * closes the connection without COMMIT, the transaction aborts and none of
 * its events ever appear; a committed transaction's event appears exactly
 * once, with its payload.
 *
 * The connection comes from the environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE).  The program creates the database emissions_backend_exit for
 * itself, with the extension in it, and drops it at the end.  It prints one
 * "ok N - ..." or "not ok N - ..." line per check and exits 1 if any failed.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "tap_libpq.h"

#define TEST_DB "emissions_backend_exit"

/*
 * Delivered events of a type; a statement of its own first waits until
 * everything committed is delivered (a statement sees the log as it was
 * when the statement began).
 */
#define WAIT_SQL "SELECT emissions_wait_delivered('60s')"
#define DELIVERED_SQL(what) \
	"SELECT " what " FROM emissions_events(0, 2147483647) WHERE type = $1"
#define COUNT_SQL DELIVERED_SQL("count(*)")

/*
 * Like value() for a query on delivered events, once the worker has
 * delivered everything committed so far.
 */
static const char *
delivered_value(PGconn *conn, const char *sql, const char *type)
{
	if (strcmp(value(conn, WAIT_SQL, NULL), "t") != 0)
		return "error: the worker did not deliver in time";
	return value(conn, sql, type);
}

/*
 * Wait up to ten seconds until backend pid is gone from pg_stat_activity, as
 * seen from observer; return "gone" or what was last seen.
 */
static const char *
wait_gone(PGconn *observer, int pid)
{
	char		pidtext[32];
	const char *seen = "";

	snprintf(pidtext, sizeof(pidtext), "%d", pid);
	for (int i = 0; i < 100; i++)
	{
		seen = value(observer, "SELECT count(*) FROM pg_stat_activity"
					 " WHERE pid = $1::int", pidtext);
		if (strcmp(seen, "0") == 0)
			return "gone";
		usleep(100 * 1000);
	}
	return seen;
}

int
main(void)
{
	PGconn	   *admin;
	PGconn	   *a;
	PGconn	   *b;
	PGconn	   *c;
	PGconn	   *d;
	char		sql[128];
	int			pid;

	/* A database of our own, so that counts start from zero. */
	admin = connect_to(NULL, show_notice);
	run(admin, "DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
	run(admin, "CREATE DATABASE " TEST_DB);
	b = connect_to(TEST_DB, show_notice);
	run(b, "CREATE EXTENSION emissions");

	/* A flushes a batch and keeps its transaction open: B sees nothing. */
	a = connect_to(TEST_DB, show_notice);
	run(a, "BEGIN");
	run(a, "SELECT emissions_start()");
	run(a, "SELECT emissions_emit('exit.flushed')");
	check("A flushes a batch of one event",
		  "1", value(a, "SELECT emissions_flush()", NULL));
	check("a flushed, uncommitted batch is invisible to others",
		  "0", delivered_value(b, COUNT_SQL, "exit.flushed"));

	/* B terminates A's backend: the transaction aborts with its batch. */
	pid = PQbackendPID(a);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
	check("B terminates A's backend", "t", value(b, sql, NULL));
	check("A's backend exits", "gone", wait_gone(b, pid));
	check("the terminated transaction's events are gone",
		  "0", delivered_value(b, COUNT_SQL, "exit.flushed"));
	usleep(500 * 1000);
	check("and stay gone",
		  "0", delivered_value(b, COUNT_SQL, "exit.flushed"));
	PQfinish(a);

	/* C emits, then its client closes the connection without COMMIT. */
	c = connect_to(TEST_DB, show_notice);
	run(c, "BEGIN");
	run(c, "SELECT emissions_start()");
	check("C emits into its buffer",
		  "t", value(c, "SELECT emissions_emit('exit.closed')", NULL));
	pid = PQbackendPID(c);
	PQfinish(c);
	check("C's backend exits after the client closes", "gone",
		  wait_gone(b, pid));
	check("the closed connection's events are gone",
		  "0", delivered_value(b, COUNT_SQL, "exit.closed"));

	/* D does the same but commits: its event is there, once. */
	d = connect_to(TEST_DB, show_notice);
	run(d, "BEGIN");
	run(d, "SELECT emissions_start()");
	run(d, "SELECT emissions_emit('exit.committed', '{\"n\": 42}')");
	run(d, "COMMIT");
	PQfinish(d);
	check("a committed transaction's event appears exactly once",
		  "1", delivered_value(b, COUNT_SQL, "exit.committed"));
	check("with its payload", "42",
		  delivered_value(b, DELIVERED_SQL("string_agg(payload->>'n', ',')"),
						  "exit.committed"));

	/* Clean up; the extension must not keep the database busy. */
	PQfinish(b);
	check("the test database is dropped", "done",
		  command(admin, "DROP DATABASE " TEST_DB));
	PQfinish(admin);

	printf("1..%d\n", nchecks);
	return nfailed > 0 ? 1 : 0;
}
