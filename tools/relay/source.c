/*-------------------------------------------------------------------------
 *
 * source.c
 *	  The PostgreSQL side of emissions_relay: the subscription it follows.
 *
 * A connection LISTENs on the wake-up channel (the default adapter's
 * channel, which carries every event): a notification only says "there is
 * more", the events themselves are read by id.  Reading uses the
 * subscription: emissions_read(name, max) returns the events after its
 * position; while events past the position are still unconfirmed by the
 * target (published, not yet acknowledged), the next pages come from
 * emissions_events(after_id, max), the same delivered stream, which the
 * subscription keeps from being removed.  emissions_ack(name, id) moves
 * the position once the target confirmed everything up to id.
 *
 * Queries are prepared once per connection.  The session's TimeZone is
 * UTC, so that emitted_at reads the same wherever the relay runs.  A read
 * can be sent (source_read_start) and its result taken later
 * (source_read_finish), so that the JetStream target publishes one page
 * while the server reads the next; an acknowledgement can be sent and
 * taken the same way (source_ack_start, source_ack_finish; source_busy
 * says whether its answer has come).  One query is in flight at a time.
 *
 * A lost connection (or a server shutting down) is SOURCE_LOST, and the
 * caller reconnects with source_reconnect(); any other error (no such
 * subscription, not its owner, an overrun subscription, an extension too
 * old) is permanent: it is logged with the server's message and the relay
 * exits with status 1.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "relay.h"

struct Source
{
	PGconn	   *conn;
	char	   *database;
	long long	read_after;		/* of the read in progress */
	bool		read_at_position;
};

/*
 * The columns of a page: those of RelayEvent, in its order, in their text
 * forms (emitted_at is made JSON's form here, in source_read_finish(); a
 * NULL payload or metadata is JSON null).  The trace context is looked up
 * in the metadata only for CloudEvents, which carry it apart.  Both
 * functions return their rows in id order.
 */
#define EVENT_COLUMNS "id, type, payload, metadata, emitted_at, txid, "
#define TRACE_COLUMNS \
	"metadata OPERATOR(pg_catalog.->>) 'traceparent', " \
	"metadata OPERATOR(pg_catalog.->>) 'tracestate'"
#define NO_TRACE_COLUMNS "NULL, NULL"

static const struct
{
	const char *name;
	const char *sql;
	int			nparams;
	int			format;			/* -1: any */
}			statements[] =
{
	{"read_subscription",
		"SELECT " EVENT_COLUMNS TRACE_COLUMNS
		" FROM emissions_read($1, $2)", 2, FORMAT_CLOUDEVENTS},
	{"read_events",
		"SELECT " EVENT_COLUMNS TRACE_COLUMNS
		" FROM emissions_events($1, $2)", 2, FORMAT_CLOUDEVENTS},
	{"read_subscription",
		"SELECT " EVENT_COLUMNS NO_TRACE_COLUMNS
		" FROM emissions_read($1, $2)", 2, FORMAT_ENVELOPE},
	{"read_events",
		"SELECT " EVENT_COLUMNS NO_TRACE_COLUMNS
		" FROM emissions_events($1, $2)", 2, FORMAT_ENVELOPE},
	{"ack", "SELECT emissions_ack($1, $2)", 2, -1},
	{"last_event",
		"SELECT COALESCE(pg_catalog.max(last_event_id), 0) FROM emissions_stats",
		0, -1},
};

/*
 * Whether a failed result means the connection is gone (or the server is
 * going away), as opposed to an error in what was asked.
 */
static bool
connection_lost(PGconn *conn, PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return PQstatus(conn) == CONNECTION_BAD || state == NULL ||
		strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0;
}

/*
 * Handle a failed query: SOURCE_LOST when the connection is gone; exit
 * with the server's message otherwise.
 */
static SourceResult
query_failed(Source *src, PGresult *res, const char *what)
{
	const char *text = res ? PQresultErrorMessage(res) :
		PQerrorMessage(src->conn);
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (connection_lost(src->conn, res))
	{
		relay_log("connection to PostgreSQL lost during %s: %s", what, text);
		PQclear(res);
		return SOURCE_LOST;
	}
	if (state && strcmp(state, "42883") == 0)
		relay_fatal("%s failed: %s"
					"HINT:  Subscriptions need emissions 0.2 or later: "
					"ALTER EXTENSION emissions UPDATE.", what, text);
	relay_fatal("%s failed: %s", what, text);
}

/* Log the server's notices (a shutdown's warning) as the relay's lines. */
static void
log_notice(void *arg, const char *message)
{
	(void) arg;
	relay_log("%s", message);
}

/* Run a command that returns no rows; false (logged) if it fails. */
static bool
run_command(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
		PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		relay_log("\"%s\" failed: %s", sql, PQerrorMessage(conn));
	PQclear(res);
	return ok;
}

/*
 * Connect, set the session up (TimeZone, LISTEN, prepared statements) and
 * learn the database's name; NULL, logged, when any of it fails.
 */
Source *
source_connect(void)
{
	const char *keywords[] = {"fallback_application_name", "dbname", NULL};
	const char *values[] = {PROGNAME, opts.conninfo, NULL};
	PGconn	   *conn = PQconnectdbParams(keywords, values, 1);
	PGresult   *res;
	Source	   *src;
	char	   *channel;
	Buf			sql = {0};
	bool		ok;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		relay_log("could not connect to PostgreSQL: %s",
				  conn ? PQerrorMessage(conn) : "out of memory");
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, log_notice, NULL);
	channel = PQescapeIdentifier(conn, opts.channel, strlen(opts.channel));
	if (channel == NULL)
		relay_fatal("invalid channel name: %s", PQerrorMessage(conn));
	buf_printf(&sql, "LISTEN %s", channel);
	PQfreemem(channel);
	ok = run_command(conn, "SET TimeZone = 'UTC'") &&
		run_command(conn, "SET DateStyle = 'ISO, YMD'") &&
		run_command(conn, sql.data);
	buf_free(&sql);
	for (size_t i = 0; ok && i < sizeof(statements) / sizeof(statements[0]); i++)
	{
		if (statements[i].format >= 0 &&
			statements[i].format != (int) opts.format)
			continue;
		res = PQprepare(conn, statements[i].name, statements[i].sql,
						statements[i].nparams, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			if (!connection_lost(conn, res))
				relay_fatal("could not prepare the relay's queries: %s%s",
							PQresultErrorMessage(res),
							state && strcmp(state, "42883") == 0 ?
							"HINT:  Subscriptions need emissions 0.2 or later "
							"in this database: CREATE EXTENSION emissions, or "
							"ALTER EXTENSION emissions UPDATE." : "");
			relay_log("could not prepare the relay's queries: %s",
					  PQresultErrorMessage(res));
			ok = false;
		}
		PQclear(res);
	}
	if (ok)
	{
		res = PQexec(conn, "SELECT pg_catalog.current_database()");
		ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
		if (ok)
		{
			src = calloc(1, sizeof(Source));
			if (src == NULL ||
				(src->database = strdup(PQgetvalue(res, 0, 0))) == NULL)
				relay_fatal("out of memory");
			src->conn = conn;
			PQclear(res);
			return src;
		}
		PQclear(res);
	}
	PQfinish(conn);
	return NULL;
}

/* Close the connection and free the source. */
void
source_close(Source *src)
{
	if (src == NULL)
		return;
	PQfinish(src->conn);
	free(src->database);
	free(src);
}

/*
 * Close src (when not NULL) and connect again, backing off from 0.1 s to
 * 10 s between tries; NULL when a stop is requested first.
 */
Source *
source_reconnect(Source *src)
{
	int64_t		delay = 0;

	source_close(src);
	while (!relay_stop_requested)
	{
		delay = relay_backoff_next(delay);
		relay_sleep_ms(delay);
		if (relay_stop_requested)
			break;
		src = source_connect();
		if (src)
		{
			relay_log("reconnected to PostgreSQL");
			return src;
		}
	}
	return NULL;
}

/*
 * The connection's socket, for a caller that waits for a notification
 * together with other things (then source_wait(src, 0, ...) takes it).
 */
int
source_socket(Source *src)
{
	return PQsocket(src->conn);
}

/* The name of the database the events come from. */
const char *
source_database(Source *src)
{
	return src->database;
}

/*
 * Take the answer of a statement that returns one bigint into *value
 * (what names the statement in messages).
 */
static SourceResult
take_scalar(Source *src, const char *what, long long *value)
{
	PGresult   *res = PQgetResult(src->conn);
	PGresult   *extra;

	while ((extra = PQgetResult(src->conn)) != NULL)
		PQclear(extra);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return query_failed(src, res, what);
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		relay_fatal("%s failed: no answer (does the subscription \"%s\" "
					"exist?)", what, opts.subscription);
	*value = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return SOURCE_OK;
}

/* Run a prepared statement that returns one bigint into *value. */
static SourceResult
exec_scalar(Source *src, const char *stmt, int nparams,
			const char *const *params, const char *what, long long *value)
{
	if (!PQsendQueryPrepared(src->conn, stmt, nparams, params, NULL, NULL, 0))
		return query_failed(src, NULL, what);
	return take_scalar(src, what, value);
}

/*
 * The subscription's position (its last acknowledged id), read by
 * acknowledging id 0, which never moves it.
 */
SourceResult
source_position(Source *src, long long *position)
{
	const char *params[2] = {opts.subscription, "0"};

	return exec_scalar(src, "ack", 2, params, "reading the subscription's "
					   "position", position);
}

/*
 * Send the acknowledgement of everything up to id without waiting for it:
 * the connection is busy until source_ack_finish() takes the answer.
 */
SourceResult
source_ack_start(Source *src, long long id)
{
	char		idtext[32];
	const char *params[2] = {opts.subscription, idtext};

	snprintf(idtext, sizeof(idtext), "%lld", id);
	if (!PQsendQueryPrepared(src->conn, "ack", 2, params, NULL, NULL, 0))
		return query_failed(src, NULL, "acknowledging the subscription");
	return SOURCE_OK;
}

/* Take the answer of source_ack_start(): the position goes to *position. */
SourceResult
source_ack_finish(Source *src, long long *position)
{
	return take_scalar(src, "acknowledging the subscription", position);
}

/*
 * Acknowledge everything up to id; the subscription's position comes back
 * in *position.
 */
SourceResult
source_ack(Source *src, long long id, long long *position)
{
	SourceResult r = source_ack_start(src, id);

	return r == SOURCE_OK ? source_ack_finish(src, position) : r;
}

/*
 * Whether the answer to the query sent last is still to come, after
 * taking in what has arrived (without waiting).  A lost connection is
 * not busy: taking the answer then reports it.
 */
bool
source_busy(Source *src)
{
	return PQconsumeInput(src->conn) && PQisBusy(src->conn);
}

/* The last delivered event's id (for the lag --progress reports). */
SourceResult
source_last_event(Source *src, long long *last)
{
	return exec_scalar(src, "last_event", 0, NULL, "reading emissions_stats",
					   last);
}

/*
 * Send the query for at most max events after after_id: through the
 * subscription (emissions_read) when at_position says after_id is its
 * position, from the delivered stream (emissions_events) otherwise.  The
 * connection is busy until source_read_finish() takes the result.
 */
SourceResult
source_read_start(Source *src, long long after_id, bool at_position, int max)
{
	char		after[32];
	char		maxtext[16];
	const char *params[2];

	snprintf(after, sizeof(after), "%lld", after_id);
	snprintf(maxtext, sizeof(maxtext), "%d", max);
	params[0] = at_position ? opts.subscription : after;
	params[1] = maxtext;
	src->read_after = after_id;
	src->read_at_position = at_position;
	if (!PQsendQueryPrepared(src->conn,
							 at_position ? "read_subscription" : "read_events",
							 2, params, NULL, NULL, 0))
		return query_failed(src, NULL, "reading events");
	return SOURCE_OK;
}

/*
 * Take in what has arrived of the result of source_read_start(), without
 * waiting.  A page is megabytes of text: unless the relay reads it off the
 * socket while it publishes the page before, the server stops sending as
 * soon as the socket's buffer is full, and source_read_finish() then waits
 * for nearly all of it.  A lost connection is left for
 * source_read_finish() to report.
 */
void
source_read_progress(Source *src)
{
	(void) PQconsumeInput(src->conn);
}

/*
 * The arrays of the last page freed, for the next page that fits in them:
 * a page's arrays are large, and freeing and allocating them for every
 * page had the heap consolidated each time (a few percent of the relay's
 * time in bench/relay.sh).
 */
static RelayEvent *spare_events;
static char *spare_times;
static int	spare_cap;

/* Give page arrays for rows events: the spare ones when they fit. */
static void
page_alloc(EventPage *page, int rows)
{
	if (spare_events != NULL && rows <= spare_cap)
	{
		page->events = spare_events;
		page->times = spare_times;
		page->cap = spare_cap;
		spare_events = NULL;
		spare_times = NULL;
		spare_cap = 0;
		return;
	}
	page->cap = rows;
	page->events = malloc((size_t) rows * sizeof(RelayEvent));
	page->times = malloc((size_t) rows * TIME_TEXT_SIZE);
	if (page->events == NULL || page->times == NULL)
		relay_fatal("out of memory");
}

/*
 * Put "2026-12-02 10:23:42.123456+00" (len bytes) into time_text in JSON's
 * form: "\"2026-12-02T10:23:42.123456+00:00\"".
 */
static void
json_time(char *time_text, const char *value, int len)
{
	int			n;

	if (len > TIME_TEXT_SIZE - 6)
		len = TIME_TEXT_SIZE - 6;
	time_text[0] = '"';
	memcpy(time_text + 1, value, len);
	n = len + 1;
	if (n > 11 && time_text[11] == ' ')
		time_text[11] = 'T';
	if (len >= 3 && memcmp(time_text + n - 3, "+00", 3) == 0)
	{
		memcpy(time_text + n, ":00", 3);
		n += 3;
	}
	time_text[n++] = '"';
	time_text[n] = '\0';
}

/*
 * Take the result of source_read_start() into page; on a failure, page is
 * left empty.
 */
SourceResult
source_read_finish(Source *src, EventPage *page)
{
	PGresult   *res = PQgetResult(src->conn);
	PGresult   *extra;
	int			rows;

	memset(page, 0, sizeof(*page));
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		while ((extra = PQgetResult(src->conn)) != NULL)
			PQclear(extra);
		return query_failed(src, res, src->read_at_position ?
							"reading the subscription" : "reading events");
	}
	while ((extra = PQgetResult(src->conn)) != NULL)
		PQclear(extra);
	rows = PQntuples(res);
	page->res = res;
	if (rows > 0)
		page_alloc(page, rows);
	for (int i = 0; i < rows; i++)
	{
		RelayEvent *ev = &page->events[page->count];
		char	   *time_text = page->times + (size_t) i * TIME_TEXT_SIZE;

		ev->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		/* Read from the subscription, an event at or before after_id. */
		if (ev->id <= src->read_after)
			continue;
		ev->type = PQgetvalue(res, i, 1);
		ev->payload = PQgetisnull(res, i, 2) ? "null" : PQgetvalue(res, i, 2);
		ev->payload_len = PQgetisnull(res, i, 2) ? 4 : PQgetlength(res, i, 2);
		ev->metadata = PQgetisnull(res, i, 3) ? "null" : PQgetvalue(res, i, 3);
		ev->metadata_len = PQgetisnull(res, i, 3) ? 4 : PQgetlength(res, i, 3);
		json_time(time_text, PQgetvalue(res, i, 4), PQgetlength(res, i, 4));
		ev->emitted_at = time_text;
		ev->txid = PQgetvalue(res, i, 5);
		ev->traceparent = PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6);
		ev->tracestate = PQgetisnull(res, i, 7) ? NULL : PQgetvalue(res, i, 7);
		page->count++;
	}
	return SOURCE_OK;
}

/* Read at most max events after after_id into page (see above). */
SourceResult
source_read(Source *src, long long after_id, bool at_position, int max,
			EventPage *page)
{
	SourceResult r = source_read_start(src, after_id, at_position, max);

	return r == SOURCE_OK ? source_read_finish(src, page) : r;
}

/*
 * Free a page (its events and the result they point into); its arrays are
 * kept for the next page when none are, and the larger ones when some are.
 */
void
page_free(EventPage *page)
{
	if (page->events != NULL && page->cap >= spare_cap)
	{
		free(spare_events);
		free(spare_times);
		spare_events = page->events;
		spare_times = page->times;
		spare_cap = page->cap;
	}
	else
	{
		free(page->events);
		free(page->times);
	}
	page->times = NULL;
	page->cap = 0;
	PQclear(page->res);
	page->events = NULL;
	page->res = NULL;
	page->count = 0;
}

/*
 * Wait until a notification arrives on the wake-up channel, extra_fd (if
 * not negative) is readable, a signal comes or timeout_ms passes.  Any
 * notifications are consumed (*notified says whether there were): they
 * only say that there is more to read.
 */
SourceResult
source_wait(Source *src, int timeout_ms, int extra_fd, bool *notified)
{
	int			sock = PQsocket(src->conn);
	fd_set		rfds;
	struct timeval tv;
	PGnotify   *notify;
	int			maxfd;
	bool		woken = false;

	/* A notification that came in during the last query counts too. */
	while ((notify = PQnotifies(src->conn)) != NULL)
	{
		PQfreemem(notify);
		woken = true;
	}
	*notified = woken;
	if (woken)
		return SOURCE_OK;
	if (sock < 0)
		return query_failed(src, NULL, "waiting for events");
	FD_ZERO(&rfds);
	FD_SET(sock, &rfds);
	maxfd = sock;
	if (extra_fd >= 0)
	{
		FD_SET(extra_fd, &rfds);
		if (extra_fd > maxfd)
			maxfd = extra_fd;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (select(maxfd + 1, &rfds, NULL, NULL, &tv) < 0 && errno != EINTR)
		relay_fatal("select() failed: %s", strerror(errno));
	if (!PQconsumeInput(src->conn))
		return query_failed(src, NULL, "waiting for events");
	while ((notify = PQnotifies(src->conn)) != NULL)
	{
		PQfreemem(notify);
		*notified = true;
	}
	return SOURCE_OK;
}
