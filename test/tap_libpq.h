/*-------------------------------------------------------------------------
 *
 * tap_libpq.h
 *	  What the libpq test programs share: the TAP check counter, bailing
 *	  out, connecting, and running a statement that must succeed.
 *
 * Header-only (static functions), so each program in test/ still builds
 * from its one .c file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_TAP_LIBPQ_H
#define EMISSIONS_TAP_LIBPQ_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "libpq-fe.h"

/* Checks printed so far; each "ok N" or "not ok N" line takes a number. */
static int	nchecks = 0;

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

#endif							/* EMISSIONS_TAP_LIBPQ_H */
