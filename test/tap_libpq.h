/*-------------------------------------------------------------------------
 *
 * tap_libpq.h
 *	  What the libpq test programs share: the TAP check counters, bailing
 *	  out, checks, showing notices, connecting, running statements and
 *	  queries, waiting for answers, notifications and delivery, changing
 *	  settings cluster-wide, and for the random tests a reproducible
 *	  pseudo-random generator and numbers from the environment.
 *
 * Header-only (static functions), so each program in test/ still builds
 * from its one .c file.  The helpers not every program uses are marked
 * TAP_UNUSED, so that a program that does not call one still compiles
 * without an unused-function warning.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_TAP_LIBPQ_H
#define EMISSIONS_TAP_LIBPQ_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

/* For a helper some programs do not call: no warning about it. */
#define TAP_UNUSED __attribute__((unused))

/* Checks printed so far; each "ok N" or "not ok N" line takes a number. */
static int	nchecks = 0;

/* Checks failed so far; a program exits 1 if any did. */
static int	nfailed = 0;

/*
 * Report a failed step as a failing check and stop: what follows would not
 * prove anything.
 */
static void
bail(const char *fmt,...)
{
	va_list		ap;

	nchecks++;
	printf("not ok %d - ", nchecks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\nBail out!\n");
	exit(1);
}

/*
 * Connect to dbname (NULL: the environment's database), with notices going
 * to show_notice, or bail.
 */
static PGconn *
connect_to(const char *dbname, PQnoticeProcessor show_notice)
{
	const char *keywords[] = {"dbname", NULL};
	const char *values[] = {dbname, NULL};
	PGconn	   *conn;

	if (dbname == NULL)
		conn = PQconnectdb("");
	else
		conn = PQconnectdbParams(keywords, values, 0);
	if (PQstatus(conn) != CONNECTION_OK)
		bail("connect to %s: %s", dbname ? dbname : "default database",
			 PQerrorMessage(conn));
	PQsetNoticeProcessor(conn, show_notice, NULL);
	return conn;
}

/*
 * Connect to dbname as role user, with notices going to show_notice, or
 * bail.
 */
static TAP_UNUSED PGconn *
connect_as(const char *dbname, const char *user,
		   PQnoticeProcessor show_notice)
{
	const char *keywords[] = {"dbname", "user", NULL};
	const char *values[] = {dbname, user, NULL};
	PGconn	   *conn = PQconnectdbParams(keywords, values, 0);

	if (PQstatus(conn) != CONNECTION_OK)
		bail("connect to %s as %s: %s", dbname, user, PQerrorMessage(conn));
	PQsetNoticeProcessor(conn, show_notice, NULL);
	return conn;
}

/*
 * Run one statement that must succeed, or bail.
 */
static void
run(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
		bail("%s: %s", sql, PQerrorMessage(conn));
	PQclear(res);
}

/*
 * Print one result line for desc; on failure also print what was expected
 * and what was seen.
 */
static TAP_UNUSED void
check(const char *desc, const char *expected, const char *actual)
{
	nchecks++;
	if (strcmp(expected, actual) == 0)
		printf("ok %d - %s\n", nchecks, desc);
	else
	{
		nfailed++;
		printf("not ok %d - %s\n", nchecks, desc);
		printf("#   expected: %s\n#   got: %s\n", expected, actual);
	}
	fflush(stdout);
}

/*
 * Show server notices as TAP comments, so they cannot pass for results.
 */
static TAP_UNUSED void
show_notice(void *arg, const char *message)
{
	while (*message)
	{
		size_t		len = strcspn(message, "\n");

		printf("# %.*s\n", (int) len, message);
		message += len;
		if (*message == '\n')
			message++;
	}
}

/*
 * Return the first value of the first row of sql, run with at most one text
 * parameter, in a static buffer; an error comes back as "error: message", so
 * that a check comparing it fails and shows why.
 */
static TAP_UNUSED const char *
value(PGconn *conn, const char *sql, const char *param)
{
	static char buf[8192];
	PGresult   *res;

	res = PQexecParams(conn, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		snprintf(buf, sizeof(buf), "error: %s", PQerrorMessage(conn));
	else if (PQntuples(res) < 1 || PQnfields(res) < 1)
		snprintf(buf, sizeof(buf), "no row");
	else if (PQgetisnull(res, 0, 0))
		snprintf(buf, sizeof(buf), "NULL");
	else
		snprintf(buf, sizeof(buf), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/*
 * Run one statement and return "done", or "error: message" when it fails.
 */
static TAP_UNUSED const char *
command(PGconn *conn, const char *sql)
{
	static char buf[1024];
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
		PQresultStatus(res) == PGRES_TUPLES_OK)
		snprintf(buf, sizeof(buf), "done");
	else
		snprintf(buf, sizeof(buf), "error: %s", PQerrorMessage(conn));
	PQclear(res);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* Milliseconds on a monotonic clock. */
static TAP_UNUSED double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1000000.0;
}

/*
 * Run sql (one parameter at most) every 50 ms until it returns expected or
 * timeout_ms passes; return what it returned last.
 */
static TAP_UNUSED const char *
wait_for(PGconn *conn, const char *sql, const char *param,
		 const char *expected, int timeout_ms)
{
	double		deadline = now_ms() + timeout_ms;
	const char *seen;

	for (;;)
	{
		seen = value(conn, sql, param);
		if (strcmp(seen, expected) == 0 || now_ms() > deadline)
			return seen;
		usleep(50 * 1000);
	}
}

/*
 * Wait up to timeout_ms for a notification on conn; NULL when none came.
 */
static TAP_UNUSED PGnotify *
wait_notify(PGconn *conn, int timeout_ms)
{
	double		deadline = now_ms() + timeout_ms;

	for (;;)
	{
		PGnotify   *n;
		double		left;
		fd_set		rfds;
		struct timeval tv;
		int			sock = PQsocket(conn);

		if (!PQconsumeInput(conn))
			bail("listening connection lost: %s", PQerrorMessage(conn));
		if ((n = PQnotifies(conn)) != NULL)
			return n;
		left = deadline - now_ms();
		if (left <= 0)
			return NULL;
		FD_ZERO(&rfds);
		FD_SET(sock, &rfds);
		tv.tv_sec = (long) left / 1000;
		tv.tv_usec = ((long) left % 1000) * 1000;
		if (select(sock + 1, &rfds, NULL, NULL, &tv) < 0 && errno != EINTR)
			bail("select: %s", strerror(errno));
	}
}

/* Wait until the worker has delivered everything committed so far. */
static TAP_UNUSED void
delivered(PGconn *conn)
{
	check("emissions_wait_delivered() returns true", "t",
		  value(conn, "SELECT emissions_wait_delivered('20s')", NULL));
}

/*
 * Reload the server's configuration and wait until a new session on dbname
 * (NULL: the environment's database) shows want for setting, then give the
 * workers a moment to reload it too.  Bails out if the setting has not
 * taken effect after 10 s: what follows would test the old value.
 */
static TAP_UNUSED void
reload_and_wait(PGconn *admin, const char *dbname, const char *setting,
				const char *want)
{
	char		sql[256];
	char		seen[1024] = "";

	snprintf(sql, sizeof(sql), "SHOW %s", setting);
	run(admin, "SELECT pg_reload_conf()");
	for (int i = 0; i < 100 && strcmp(seen, want) != 0; i++)
	{
		PGconn	   *c = connect_to(dbname, show_notice);

		snprintf(seen, sizeof(seen), "%s", value(c, sql, NULL));
		PQfinish(c);
		if (strcmp(seen, want) != 0)
			usleep(100 * 1000);
	}
	if (strcmp(seen, want) != 0)
		bail("%s took effect after a reload: expected %s, got %s", setting,
			 want, seen);
	usleep(500 * 1000);
}

/*
 * Reset each of the settings (a NULL-terminated list) with ALTER SYSTEM and
 * reload, ignoring errors: for an exit handler, whatever happened.
 */
static TAP_UNUSED void
reset_system(const char *const *settings)
{
	PGconn	   *c = PQconnectdb("");

	if (PQstatus(c) == CONNECTION_OK)
	{
		for (int i = 0; settings[i] != NULL; i++)
		{
			char		sql[256];

			snprintf(sql, sizeof(sql), "ALTER SYSTEM RESET %s", settings[i]);
			PQclear(PQexec(c, sql));
		}
		PQclear(PQexec(c, "SELECT pg_reload_conf()"));
	}
	PQfinish(c);
}

/*
 * Print one result line for desc; ok is whether the check passed.
 */
static TAP_UNUSED void
report(bool ok, const char *fmt,...)
{
	va_list		ap;

	nchecks++;
	if (!ok)
		nfailed++;
	printf("%sok %d - ", ok ? "" : "not ", nchecks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* State of the random tests' generator; set it to the seed first. */
static TAP_UNUSED uint64_t rng_state;

/*
 * The next pseudo-random number (splitmix64): the same on every platform,
 * so a seed reproduces a run anywhere.
 */
static TAP_UNUSED uint64_t
next_random(void)
{
	uint64_t	z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* A random integer in [0, n). */
static TAP_UNUSED int
rnd(int n)
{
	return (int) (next_random() % (uint64_t) n);
}

/*
 * Pick an index of weights with probability proportional to its weight;
 * at least one weight must be positive.
 */
static TAP_UNUSED int
choose(const int *weights, int n)
{
	int			total = 0;
	int			r;

	for (int i = 0; i < n; i++)
		total += weights[i];
	r = rnd(total);
	for (int i = 0; i < n; i++)
	{
		if (r < weights[i])
			return i;
		r -= weights[i];
	}
	return n - 1;
}

/* A number from environment variable name, or dflt when it is not set. */
static TAP_UNUSED unsigned long long
env_number(const char *name, unsigned long long dflt)
{
	const char *text = getenv(name);
	char	   *end;
	unsigned long long n;

	if (text == NULL || *text == '\0')
		return dflt;
	n = strtoull(text, &end, 10);
	if (*end != '\0')
		bail("%s is not a number: %s", name, text);
	return n;
}

#endif							/* EMISSIONS_TAP_LIBPQ_H */
