/*-------------------------------------------------------------------------
 *
 * workers.c
 *	  Prove that the launcher keeps one delivery worker per database with
 *	  the extension, and that the workers never stand in the way of DROP
 *	  DATABASE, DROP EXTENSION or CREATE DATABASE ... TEMPLATE.
 *
 * The Delivery section of the contract: one launcher; a database gets its
 * own worker (backend_type "emissions delivery" in pg_stat_activity) when
 * the extension is created in it, and only then; a terminated worker comes
 * back; DROP DATABASE of a database with a worker succeeds within seconds,
 * without FORCE, and leaves no worker behind; DROP EXTENSION lets the
 * worker go, CREATE EXTENSION brings one back, and events flow again; a
 * database copied from one with the extension gets its own worker.
 *
 * The connection comes from the environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE, a superuser); the server must preload the library and have
 * room for a few more background workers.  The program creates the
 * databases emissions_workers_a, _b, _c and _none for itself and drops
 * them.  It prints one "ok N - ..." or "not ok N - ..." line per check and
 * exits 1 if any failed.
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

#define DB_A "emissions_workers_a"
#define DB_B "emissions_workers_b"
#define DB_C "emissions_workers_c"
#define DB_NONE "emissions_workers_none"

#define WAIT_MS 10000

#define WORKERS_SQL \
	"SELECT count(*) FROM pg_stat_activity" \
	" WHERE backend_type = 'emissions delivery' AND datname = $1"

#define WORKER_PID_SQL \
	"SELECT coalesce(min(pid), 0) FROM pg_stat_activity" \
	" WHERE backend_type = 'emissions delivery' AND datname = $1"

/*
 * Emit an event of type in dbname and return the type and database its
 * envelope names, as "type@database", when a listener there gets it within
 * WAIT_MS; "nothing" otherwise.
 */
static const char *
round_trip(const char *dbname, const char *type)
{
	static char buf[512];
	PGconn	   *l = connect_to(dbname, show_notice);
	PGconn	   *p = connect_to(dbname, show_notice);
	PGnotify   *n;
	char		sql[256];

	run(l, "LISTEN emissions");
	snprintf(sql, sizeof(sql),
			 "SELECT emissions_start(), emissions_emit('%s')", type);
	run(p, sql);
	n = wait_notify(l, WAIT_MS);
	if (n == NULL)
		snprintf(buf, sizeof(buf), "nothing");
	else
	{
		const char *param = n->extra;
		PGresult   *res = PQexecParams(p, "SELECT ($1::jsonb->>'type') ||"
									   " '@' || ($1::jsonb->>'database')",
									   1, NULL, &param, NULL, NULL, 0);

		snprintf(buf, sizeof(buf), "%s",
				 PQresultStatus(res) == PGRES_TUPLES_OK ?
				 PQgetvalue(res, 0, 0) : "bad envelope");
		PQclear(res);
		PQfreemem(n);
	}
	PQfinish(l);
	PQfinish(p);
	return buf;
}

/*
 * Drop dbname without FORCE, timing it: "done in time" when it succeeds
 * within ten seconds, else what happened.
 */
static const char *
timed_drop(PGconn *admin, const char *dbname)
{
	static char buf[1100];
	char		sql[128];
	double		start = now_ms();
	const char *result;
	double		elapsed;

	snprintf(sql, sizeof(sql), "DROP DATABASE %s", dbname);
	result = command(admin, sql);
	elapsed = (now_ms() - start) / 1000.0;
	printf("# DROP DATABASE %s took %.1f s\n", dbname, elapsed);
	if (strcmp(result, "done") != 0)
		return result;
	if (elapsed >= 10.0)
	{
		snprintf(buf, sizeof(buf), "done after %.1f s", elapsed);
		return buf;
	}
	return "done in time";
}

/* Create dbname with the extension in it. */
static void
create_with_extension(PGconn *admin, const char *dbname)
{
	char		sql[128];
	PGconn	   *c;

	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
	run(admin, sql);
	c = connect_to(dbname, show_notice);
	run(c, "CREATE EXTENSION emissions");
	PQfinish(c);
}

int
main(void)
{
	PGconn	   *admin;
	PGconn	   *a;
	char		pid_before[32];
	char		oid_b[32];
	char		sql[128];
	const char *dbs[] = {DB_A, DB_B, DB_C, DB_NONE};
	const char *copied;

	admin = connect_to(NULL, show_notice);
	for (int i = 0; i < 4; i++)
	{
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
				 dbs[i]);
		run(admin, sql);
	}

	check("one launcher runs", "1",
		  value(admin, "SELECT count(*) FROM pg_stat_activity"
				" WHERE backend_type = 'emissions launcher'", NULL));

	/* Two databases with the extension, one without. */
	create_with_extension(admin, DB_A);
	create_with_extension(admin, DB_B);
	run(admin, "CREATE DATABASE " DB_NONE);
	check("the first database gets a worker", "1",
		  wait_for(admin, WORKERS_SQL, DB_A, "1", WAIT_MS));
	check("the second database gets its own worker", "1",
		  wait_for(admin, WORKERS_SQL, DB_B, "1", WAIT_MS));
	usleep(1500 * 1000);
	check("still one worker each a moment later", "1 1",
		  value(admin, "SELECT count(*) FILTER (WHERE datname = '" DB_A "')"
				" || ' ' || count(*) FILTER (WHERE datname = '" DB_B "')"
				" FROM pg_stat_activity"
				" WHERE backend_type = 'emissions delivery'", NULL));
	check("a database without the extension gets none", "0",
		  value(admin, WORKERS_SQL, DB_NONE));
	check("still one launcher", "1",
		  value(admin, "SELECT count(*) FROM pg_stat_activity"
				" WHERE backend_type = 'emissions launcher'", NULL));
	check("the second database's worker delivers its events",
		  "workers.b@" DB_B, round_trip(DB_B, "workers.b"));

	/* A terminated worker comes back, and delivers. */
	snprintf(pid_before, sizeof(pid_before), "%s",
			 value(admin, WORKER_PID_SQL, DB_A));
	check("the first database's worker is terminated", "t",
		  value(admin, "SELECT pg_terminate_backend($1::int)", pid_before));
	check("a new worker takes its place", "1 new",
		  wait_for(admin, "SELECT count(*) || ' ' || CASE WHEN min(pid) <>"
				   " $1::int THEN 'new' ELSE 'old' END"
				   " FROM pg_stat_activity"
				   " WHERE backend_type = 'emissions delivery'"
				   " AND datname = '" DB_A "'", pid_before, "1 new",
				   WAIT_MS));
	check("and delivers", "workers.restarted@" DB_A,
		  round_trip(DB_A, "workers.restarted"));

	/* DROP DATABASE without FORCE: the worker must get out of the way. */
	snprintf(oid_b, sizeof(oid_b), "%s",
			 value(admin, "SELECT oid FROM pg_database WHERE datname = $1",
				   DB_B));
	check("DROP DATABASE of a database with a worker succeeds promptly",
		  "done in time", timed_drop(admin, DB_B));
	check("its worker is gone", "0",
		  wait_for(admin, "SELECT count(*) FROM pg_stat_activity"
				   " WHERE datid = $1::oid", oid_b, "0", WAIT_MS));
	usleep(1500 * 1000);
	check("and does not come back", "0",
		  value(admin, "SELECT count(*) FROM pg_stat_activity"
				" WHERE datid = $1::oid", oid_b));

	/* DROP EXTENSION lets the worker go; CREATE EXTENSION brings one. */
	a = connect_to(DB_A, show_notice);
	check("DROP EXTENSION succeeds", "done",
		  command(a, "DROP EXTENSION emissions"));
	check("the worker leaves the database", "0",
		  wait_for(admin, WORKERS_SQL, DB_A, "0", WAIT_MS));
	check("CREATE EXTENSION again succeeds", "done",
		  command(a, "CREATE EXTENSION emissions"));
	PQfinish(a);
	check("a worker is back", "1",
		  wait_for(admin, WORKERS_SQL, DB_A, "1", WAIT_MS));
	check("and delivers", "workers.recreated@" DB_A,
		  round_trip(DB_A, "workers.recreated"));

	/* A copy of a database with the extension gets a worker of its own. */
	copied = command(admin, "CREATE DATABASE " DB_C " TEMPLATE " DB_A);
	check("CREATE DATABASE from a template with a worker succeeds", "done",
		  copied);
	if (strcmp(copied, "done") == 0)
	{
		check("the copy gets a worker", "1",
			  wait_for(admin, WORKERS_SQL, DB_C, "1", WAIT_MS));
		check("the copy delivers its events", "workers.copy@" DB_C,
			  round_trip(DB_C, "workers.copy"));
		check("the copy is dropped promptly too", "done in time",
			  timed_drop(admin, DB_C));
	}
	check("the template keeps its worker", "1",
		  wait_for(admin, WORKERS_SQL, DB_A, "1", WAIT_MS));
	check("the template is dropped promptly too", "done in time",
		  timed_drop(admin, DB_A));
	check("no delivery worker is left for them", "0",
		  wait_for(admin, "SELECT count(*) FROM pg_stat_activity"
				   " WHERE backend_type = 'emissions delivery'"
				   " AND datname LIKE 'emissions_workers_%'", NULL, "0",
				   WAIT_MS));
	check("the database without the extension is dropped", "done",
		  command(admin, "DROP DATABASE " DB_NONE));
	PQfinish(admin);
	printf("1..%d\n", nchecks);
	return nfailed > 0 ? 1 : 0;
}
