/*-------------------------------------------------------------------------
 *
 * emissions_consume.c
 *	  A command-line consumer of emissions events, on libpq (in the spirit
 *	  of pg_recvlogical): it prints every delivered event once, in id
 *	  order, as one JSON envelope per line on stdout.
 *
 * It LISTENs on the channel first, then catches up from an id with
 * emissions_events() in pages, then follows the notifications.  An
 * envelope whose id is not above the last one printed is skipped; one
 * that jumps past the next id makes it read the gap with emissions_events()
 * first; one sent without its payload (NOTIFY's 8000-byte limit) is
 * completed with emissions_event().  A lost connection is reopened with a
 * backoff (0.1 s doubling up to 5 s), and the catch-up starts again from
 * the last id printed: no id still kept is missed, and none is printed
 * twice.
 *
 * Every line is flushed at once, so it works in a pipeline (... | jq).
 * SIGINT and SIGTERM make it exit with status 0; messages go to stderr.
 *
 * Catch-up reads every event, so the channel followed should carry every
 * event too (the default channel does).
 *
 * With --subscription NAME it reads through a subscription instead
 * (emissions_read(), created first if there is none, after --after or from
 * the newest event), and notifications only wake it up.  After each page
 * it has printed and flushed (and synced, when stdout is a file), it
 * acknowledges the last id with emissions_ack(): a restart, even after a
 * crash or days away, continues after the last acknowledgement.  Events
 * printed but not yet acknowledged when it dies are printed again by the
 * next run: at least once, in id order, with the same ids.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define PROGNAME "emissions_consume"

/* Reconnection backoff, in milliseconds. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/*
 * The envelope of an emissions_events() or emissions_event() row, built
 * server-side in the same form (and key order) as the worker's NOTIFY
 * envelope, so both kinds of line look alike.
 */
#define ENVELOPE_SQL \
	"SELECT id, pg_catalog.format('{\"id\": %s, \"type\": %s, " \
	"\"payload\": %s, \"metadata\": %s, \"emitted_at\": %s, " \
	"\"txid\": %s, \"database\": %s}', id, pg_catalog.to_json(type), " \
	"COALESCE(payload::text, 'null'), COALESCE(metadata::text, 'null'), " \
	"pg_catalog.to_json(emitted_at), txid, " \
	"pg_catalog.to_json(pg_catalog.current_database()))"

/* How a step against the server ended. */
typedef enum StepResult
{
	STEP_OK,					/* done */
	STEP_LOST,					/* the connection is lost: reconnect */
	STEP_STOP					/* stop (signal, --count reached) */
} StepResult;

/* Set by the SIGINT/SIGTERM handler; every loop checks it. */
static volatile sig_atomic_t stop_requested = 0;

/* Options. */
static const char *opt_dbname = NULL;
static const char *opt_host = NULL;
static const char *opt_port = NULL;
static const char *opt_user = NULL;
static const char *opt_channel = "emissions";
static long long opt_after = -1;	/* -1: the current last_event_id */
static int	opt_max = 1000;
static long long opt_count = 0; /* 0: no limit */
static const char *opt_subscription = NULL;

/* --subscription: whether it exists (checked once), the last id acked. */
static bool subscription_ready = false;
static long long acked_id = -1;

/* Progress: the last id printed (or started after), lines printed. */
static long long last_id = -1;
static long long printed = 0;

/* Print a message, prefixed with the program's name, to stderr. */
static void msg(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static void
msg(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Ask the main loop to stop (SIGINT, SIGTERM). */
static void
handle_stop_signal(int signo)
{
	(void) signo;
	stop_requested = 1;
}

/* Print the usage text to stdout. */
static void
usage(void)
{
	printf("%s prints the events delivered by the emissions extension, one\n"
		   "JSON envelope per line, catching up by id and then following\n"
		   "the channel; each id once, in increasing order.  After a lost\n"
		   "connection it reconnects and goes on after the last id printed,\n"
		   "missing none of the events still kept.\n\n", PROGNAME);
	printf("Usage:\n  %s [OPTION]... [DBNAME]\n\n", PROGNAME);
	printf("Options:\n"
		   "  -d, --dbname=CONNINFO  database name or connection string\n"
		   "  -h, --host=HOST        database server host or socket directory\n"
		   "  -p, --port=PORT        database server port\n"
		   "  -U, --username=USER    database user name\n"
		   "  -c, --channel=NAME     channel to LISTEN on (default: emissions)\n"
		   "  -a, --after=ID         print the events after this id (default:\n"
		   "                         the current last_event_id, new events only)\n"
		   "  -m, --max=N            page size of the catch-up (default: 1000)\n"
		   "  -n, --count=N          exit after printing N events\n"
		   "  -s, --subscription=NAME  read through this subscription and\n"
		   "                         acknowledge what was printed; created\n"
		   "                         (after --after, or new events only) if missing\n"
		   "      --help             show this help, then exit\n\n"
		   "Without options the usual PG* environment variables apply.\n"
		   "SIGINT or SIGTERM ends it with exit status 0.\n");
}

/* Parse a non-negative integer option value, or exit with status 1. */
static long long
parse_count(const char *name, const char *value, long long max)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < 0 || v > max)
	{
		msg("invalid value for --%s: \"%s\"", name, value);
		exit(1);
	}
	return v;
}

/*
 * Write one envelope line to stdout and flush it; count it, and report
 * STEP_STOP once --count lines are out.  A closed stdout (the reader of
 * the pipe is gone) ends the program quietly.
 */
static StepResult
emit_line(long long id, const char *line)
{
	if (fputs(line, stdout) == EOF || fputc('\n', stdout) == EOF ||
		fflush(stdout) == EOF)
	{
		if (errno == EPIPE)
			exit(0);
		msg("could not write to stdout: %s", strerror(errno));
		exit(1);
	}
	last_id = id;
	printed++;
	if (opt_count > 0 && printed >= opt_count)
		return STEP_STOP;
	return STEP_OK;
}

/*
 * Classify a failed query: a broken connection (or the server ending it)
 * is STEP_LOST; any other error is fatal, reported and exits with 1.
 */
static StepResult
query_failed(PGconn *conn, PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *text = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);

	if (PQstatus(conn) == CONNECTION_BAD || state == NULL ||
		strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0)
	{
		msg("connection lost during %s: %s", what, text);
		PQclear(res);
		return STEP_LOST;
	}
	msg("%s failed: %s", what, text);
	PQclear(res);
	PQfinish(conn);
	exit(1);
}

/*
 * Open a connection (fallback_application_name=emissions_consume) and
 * LISTEN on the channel; NULL, with a message, when either fails.
 */
static PGconn *
connect_and_listen(void)
{
	const char *keywords[7];
	const char *values[7];
	int			n = 0;
	PGconn	   *conn;
	PGresult   *res;
	char	   *channel;
	char	   *sql;

	keywords[n] = "fallback_application_name";
	values[n++] = PROGNAME;
	keywords[n] = "host";
	values[n++] = opt_host;
	keywords[n] = "port";
	values[n++] = opt_port;
	keywords[n] = "user";
	values[n++] = opt_user;
	/* Last, so that a connection string given as the name wins. */
	keywords[n] = "dbname";
	values[n++] = opt_dbname;
	keywords[n] = NULL;
	values[n] = NULL;

	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		msg("could not connect: %s",
			conn ? PQerrorMessage(conn) : "out of memory");
		PQfinish(conn);
		return NULL;
	}

	channel = PQescapeIdentifier(conn, opt_channel, strlen(opt_channel));
	if (channel == NULL)
	{
		msg("invalid channel name: %s", PQerrorMessage(conn));
		PQfinish(conn);
		exit(1);
	}
	sql = malloc(strlen(channel) + 16);
	if (sql == NULL)
	{
		msg("out of memory");
		exit(1);
	}
	sprintf(sql, "LISTEN %s", channel);
	PQfreemem(channel);
	res = PQexec(conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		msg("LISTEN failed: %s", PQerrorMessage(conn));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

/*
 * Set last_id to the current last_event_id of emissions_stats, so that
 * only events delivered from now on are printed (the default of --after).
 */
static StepResult
start_at_current(PGconn *conn)
{
	PGresult   *res;

	res = PQexec(conn, "SELECT COALESCE(last_event_id, 0) FROM emissions_stats");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return query_failed(conn, res, "reading emissions_stats.last_event_id");
	last_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return STEP_OK;
}

/* Whether res is the error of a subscription that does not exist. */
static bool
subscription_missing(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return state != NULL && strcmp(state, "42704") == 0;
}

/*
 * --subscription: make sure the subscription exists, creating it after
 * --after (or from the newest event) if it does not, and start after its
 * position or the last id printed, whichever is further.
 */
static StepResult
open_subscription(PGconn *conn)
{
	char		after[32];
	const char *params[2] = {opt_subscription, after};
	PGresult   *res;
	long long	position;

	/* An acknowledgement of id 0 changes nothing and returns the position. */
	res = PQexecParams(conn, "SELECT emissions_ack($1, 0)",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
		!subscription_missing(res))
		return query_failed(conn, res, "reading the subscription");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		PQclear(res);
		snprintf(after, sizeof(after), "%lld", opt_after);
		params[1] = opt_after >= 0 ? after : NULL;
		res = PQexecParams(conn, "SELECT emissions_subscribe($1, $2)",
						   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			return query_failed(conn, res, "creating the subscription");
		msg("created subscription \"%s\"", opt_subscription);
	}
	position = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (position > last_id)
		last_id = position;
	if (acked_id < position)
		acked_id = position;
	subscription_ready = true;
	return STEP_OK;
}

/*
 * --subscription: acknowledge the events printed so far, once they are on
 * their way: stdout flushed (emit_line does it), and synced when it is a
 * file.
 */
static StepResult
acknowledge(PGconn *conn)
{
	char		id[32];
	const char *params[2] = {opt_subscription, id};
	struct stat st;
	PGresult   *res;

	if (opt_subscription == NULL || last_id <= acked_id)
		return STEP_OK;
	if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
		fsync(STDOUT_FILENO) != 0)
	{
		msg("could not sync stdout: %s", strerror(errno));
		exit(1);
	}
	snprintf(id, sizeof(id), "%lld", last_id);
	res = PQexecParams(conn, "SELECT emissions_ack($1, $2)",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return query_failed(conn, res, "acknowledging");
	PQclear(res);
	acked_id = last_id;
	return STEP_OK;
}

/*
 * Print the events after last_id with emissions_events() (or through the
 * subscription, acknowledging each page), page after page, until a page
 * comes back with fewer rows than asked.
 */
static StepResult
catch_up(PGconn *conn)
{
	for (;;)
	{
		char		after[32];
		char		max[16];
		const char *params[2] = {after, max};
		PGresult   *res;
		int			rows;
		StepResult	r = STEP_OK;

		if (stop_requested)
			return STEP_STOP;
		snprintf(after, sizeof(after), "%lld", last_id);
		snprintf(max, sizeof(max), "%d", opt_max);
		if (opt_subscription != NULL)
		{
			params[0] = opt_subscription;
			res = PQexecParams(conn,
							   ENVELOPE_SQL " FROM emissions_read($1, $2)"
							   " ORDER BY id",
							   2, NULL, params, NULL, NULL, 0);
		}
		else
			res = PQexecParams(conn,
							   ENVELOPE_SQL " FROM emissions_events($1, $2)"
							   " ORDER BY id",
							   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			return query_failed(conn, res, "catch-up");
		rows = PQntuples(res);
		for (int i = 0; i < rows && r == STEP_OK; i++)
		{
			long long	id = strtoll(PQgetvalue(res, i, 0), NULL, 10);

			if (id <= last_id)
				continue;
			r = emit_line(id, PQgetvalue(res, i, 1));
		}
		PQclear(res);
		if (acknowledge(conn) == STEP_LOST)
			return STEP_LOST;
		if (r != STEP_OK || rows < opt_max)
			return r;
	}
}

/*
 * Read the id of a NOTIFY envelope ({"id": 42, ...}) into *id; false when
 * the text does not look like an envelope.
 */
static bool
envelope_id(const char *text, long long *id)
{
	const char *p = text;
	char	   *end;

	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p++ != '{')
		return false;
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (strncmp(p, "\"id\"", 4) != 0)
		return false;
	p += 4;
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p++ != ':')
		return false;
	errno = 0;
	*id = strtoll(p, &end, 10);
	return errno == 0 && end != p && *id > 0;
}

/*
 * Print the event with the given id, fetched whole with emissions_event()
 * (its envelope came without the payload or the metadata); the notified
 * text is printed instead, with a warning, if the event is gone.
 */
static StepResult
print_fetched(PGconn *conn, long long id, const char *notified)
{
	char		idtext[32];
	const char *params[1] = {idtext};
	PGresult   *res;
	StepResult	r;

	snprintf(idtext, sizeof(idtext), "%lld", id);
	res = PQexecParams(conn, ENVELOPE_SQL " FROM emissions_event($1)",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return query_failed(conn, res, "fetching an event");
	if (PQntuples(res) == 0)
	{
		msg("event %lld is no longer readable; printing it as notified", id);
		r = emit_line(id, notified);
	}
	else
		r = emit_line(id, PQgetvalue(res, 0, 1));
	PQclear(res);
	return r;
}

/*
 * Handle one notification: skip it if already printed, read the gap first
 * if it jumps past the next id, complete it if it came without its payload.
 */
static StepResult
handle_notification(PGconn *conn, const char *text)
{
	long long	id;
	StepResult	r;

	if (!envelope_id(text, &id))
	{
		msg("ignoring a notification that is not an envelope: %.80s", text);
		return STEP_OK;
	}
	if (id <= last_id)
		return STEP_OK;
	if (opt_subscription != NULL)
		return catch_up(conn);	/* a wake-up: read through it */
	if (id > last_id + 1)
	{
		/* Events it missed (or ids never used): read them by id. */
		r = catch_up(conn);
		if (r != STEP_OK || id <= last_id)
			return r;
	}
	if (strstr(text, "\"payload_omitted\": true") != NULL ||
		strstr(text, "\"metadata_omitted\": true") != NULL)
		return print_fetched(conn, id, text);
	return emit_line(id, text);
}

/*
 * Wait for notifications on the connection and print them, until the
 * connection is lost or a stop is requested.
 */
static StepResult
follow(PGconn *conn)
{
	while (!stop_requested)
	{
		int			sock = PQsocket(conn);
		fd_set		rfds;
		struct timeval tv;
		PGnotify   *notify;
		StepResult	r = STEP_OK;

		if (sock < 0 || PQstatus(conn) != CONNECTION_OK)
			return STEP_LOST;
		FD_ZERO(&rfds);
		FD_SET(sock, &rfds);
		/* The timeout only bounds a signal arriving just before select(). */
		tv.tv_sec = 1;
		tv.tv_usec = 0;
		if (select(sock + 1, &rfds, NULL, NULL, &tv) < 0)
		{
			if (errno == EINTR)
				continue;
			msg("select() failed: %s", strerror(errno));
			exit(1);
		}
		if (!PQconsumeInput(conn))
		{
			msg("connection lost: %s", PQerrorMessage(conn));
			return STEP_LOST;
		}
		while ((notify = PQnotifies(conn)) != NULL)
		{
			if (r == STEP_OK)
				r = handle_notification(conn, notify->extra);
			PQfreemem(notify);
		}
		if (r != STEP_OK)
			return r;
	}
	return STEP_STOP;
}

/*
 * Sleep for ms milliseconds, or less when a stop is requested.
 */
static void
sleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long) (ms % 1000) * 1000000L;
	while (!stop_requested && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Parse the options, then connect, catch up and follow, reconnecting after
 * a lost connection, until a signal or --count ends it.
 */
int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"username", required_argument, NULL, 'U'},
		{"channel", required_argument, NULL, 'c'},
		{"after", required_argument, NULL, 'a'},
		{"max", required_argument, NULL, 'm'},
		{"count", required_argument, NULL, 'n'},
		{"subscription", required_argument, NULL, 's'},
		{"help", no_argument, NULL, '?' + 256},
		{NULL, 0, NULL, 0}
	};
	struct sigaction sa;
	PGconn	   *conn = NULL;
	bool		connected_once = false;
	int			backoff = BACKOFF_MIN_MS;
	int			c;

	while ((c = getopt_long(argc, argv, "d:h:p:U:c:a:m:n:s:", long_options,
							NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				opt_dbname = optarg;
				break;
			case 'h':
				opt_host = optarg;
				break;
			case 'p':
				opt_port = optarg;
				break;
			case 'U':
				opt_user = optarg;
				break;
			case 'c':
				if (*optarg == '\0')
				{
					msg("the channel name must not be empty");
					return 1;
				}
				opt_channel = optarg;
				break;
			case 'a':
				opt_after = parse_count("after", optarg, LLONG_MAX);
				break;
			case 'm':
				opt_max = (int) parse_count("max", optarg, INT_MAX);
				if (opt_max == 0)
				{
					msg("--max must be at least 1");
					return 1;
				}
				break;
			case 'n':
				opt_count = parse_count("count", optarg, LLONG_MAX);
				break;
			case 's':
				if (*optarg == '\0')
				{
					msg("the subscription name must not be empty");
					return 1;
				}
				opt_subscription = optarg;
				break;
			case '?' + 256:
				usage();
				return 0;
			default:
				fprintf(stderr, "Try \"%s --help\" for more information.\n",
						PROGNAME);
				return 1;
		}
	}
	if (optind < argc && opt_dbname == NULL)
		opt_dbname = argv[optind++];
	if (optind < argc)
	{
		msg("too many command-line arguments (first is \"%s\")", argv[optind]);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed stdout shows up as EPIPE in emit_line(). */
	signal(SIGPIPE, SIG_IGN);

	if (opt_after >= 0 && opt_subscription == NULL)
		last_id = opt_after;

	while (!stop_requested)
	{
		StepResult	r;

		if (conn == NULL)
		{
			if (connected_once)
			{
				/* Back off: 0.1 s, doubling up to 5 s, until it follows. */
				sleep_ms(backoff);
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
					backoff * 2;
				if (stop_requested)
					break;
			}
			conn = connect_and_listen();
			if (conn == NULL)
			{
				/* A first connection that fails is a usage error. */
				if (!connected_once)
					return 1;
				continue;
			}
			if (connected_once)
				msg("reconnected; catching up after id %lld", last_id);
			connected_once = true;
		}

		if (opt_subscription != NULL)
			r = subscription_ready && last_id >= 0 ? STEP_OK :
				open_subscription(conn);
		else
			r = last_id < 0 ? start_at_current(conn) : STEP_OK;
		if (r == STEP_OK)
			r = catch_up(conn);
		if (r == STEP_OK)
		{
			backoff = BACKOFF_MIN_MS;
			r = follow(conn);
		}
		if (r == STEP_STOP)
			break;
		/* STEP_LOST: reconnect. */
		PQfinish(conn);
		conn = NULL;
	}
	PQfinish(conn);
	return 0;
}
