/*
 * bench/pipeline.c: the delivering and consuming ends of bench/pipeline.sh's
 * three pipelines, one mode each, all timing what they receive the same way.
 *
 * Usage: pipeline MODE -o DIR [-c CHANNEL] [-k KEY] [-b BATCH] [-p POLL_MS]
 *
 *   listen  LISTENs on CHANNEL and takes every notification: the consumer
 *           of emissions (CHANNEL "emissions", KEY "emitted_at") and of the
 *           hand-written outbox's relay (CHANNEL "outbox", KEY "created_at").
 *   relay   The relay people write for a hand-written outbox table
 *           outbox_hand(id bigserial, type, payload, metadata, created_at):
 *           it LISTENs on "outbox_wake" and wakes on a notification or
 *           every POLL_MS (100); then in one transaction it takes up to
 *           BATCH (1000) rows ORDER BY id FOR UPDATE SKIP LOCKED, forwards
 *           each (a pg_notify on CHANNEL of the row as JSON, in id order),
 *           deletes them and commits.  A full batch is followed at once by
 *           the next one.
 *   pgq     A PgQ consumer of queue "bench", registered as "bench_consumer":
 *           pgq.next_batch, pgq.get_batch_events (id, time and data of each
 *           event), pgq.finish_batch, in one transaction per batch; with no
 *           batch ready it sleeps POLL_MS (100).  The ticker (pgqd) cuts the
 *           batches.
 *
 * Each connects with the PG* environment, writes its backend's PID to
 * DIR/backend_pid and then creates DIR/ready.  Every event received (a
 * notification, or an event of a batch) is counted and its lag recorded:
 * the time it was received minus the time its producer stamped on it
 * (KEY of the JSON payload, an ISO timestamp in UTC, or PgQ's ev_time).
 * DIR/count holds the count, rewritten at most every 50 ms.  On SIGTERM it
 * writes DIR/samples (a line per event: received at, in microseconds since
 * the epoch, a tab, the lag in microseconds) and the final DIR/count, and
 * exits 0; on a connection or query error it exits 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static volatile sig_atomic_t stopping = 0;

static const char *out_dir;
static long long *received_at;
static long long *lags;
static long nsamples;
static long capacity;
static long long count_written_at;

static void
on_signal(int sig)
{
	(void) sig;
	stopping = 1;
}

/* Microseconds since the epoch. */
static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
die_conn(PGconn *conn, const char *what)
{
	fprintf(stderr, "pipeline: %s: %s", what, PQerrorMessage(conn));
	exit(1);
}

/* Run SQL that returns no rows or whose rows are not wanted. */
static void
run(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
		die_conn(conn, sql);
	PQclear(res);
}

/* Write TEXT to DIR/NAME through a temporary file, so readers never see half. */
static void
write_file(const char *name, const char *text)
{
	char		path[4096],
				tmp[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", out_dir, name);
	f = fopen(tmp, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 ||
		rename(tmp, path) != 0)
	{
		fprintf(stderr, "pipeline: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void
write_count(int force)
{
	char		buf[32];
	long long	now = now_us();

	if (!force && now - count_written_at < 50000)
		return;
	snprintf(buf, sizeof(buf), "%ld\n", nsamples);
	write_file("count", buf);
	count_written_at = now;
}

/* Record one event, stamped by its producer at STAMP_US. */
static void
record(long long stamp_us)
{
	long long	now = now_us();

	if (nsamples == capacity)
	{
		capacity = capacity ? capacity * 2 : 65536;
		received_at = realloc(received_at, capacity * sizeof(long long));
		lags = realloc(lags, capacity * sizeof(long long));
		if (received_at == NULL || lags == NULL)
		{
			fprintf(stderr, "pipeline: out of memory\n");
			exit(1);
		}
	}
	received_at[nsamples] = now;
	lags[nsamples] = now - stamp_us;
	nsamples++;
}

static void
finish(void)
{
	char		path[4096];
	FILE	   *f;
	long		i;

	snprintf(path, sizeof(path), "%s/samples", out_dir);
	f = fopen(path, "w");
	if (f == NULL)
	{
		fprintf(stderr, "pipeline: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	for (i = 0; i < nsamples; i++)
		fprintf(f, "%lld\t%lld\n", received_at[i], lags[i]);
	if (fclose(f) != 0)
		exit(1);
	write_count(1);
	exit(0);
}

/*
 * Microseconds since the epoch of an ISO 8601 timestamp with a UTC offset
 * ("2026-12-02T10:23:41.123456+00:00"), or -1 when TEXT does not hold one.
 */
static long long
parse_timestamp(const char *text)
{
	struct tm	tm;
	int			n = 0,
				oh = 0,
				om = 0;
	long long	frac = 0,
				scale = 1000000;
	const char *p;
	time_t		secs;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(text, "%d-%d-%d%*1[T ]%d:%d:%d%n", &tm.tm_year, &tm.tm_mon,
			   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	p = text + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
		{
			if (scale > 1)
			{
				scale /= 10;
				frac += (*p - '0') * scale;
			}
		}
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%d:%d", &oh, &om) >= 1)
	{
		if (*p == '-')
			oh = -oh, om = -om;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	secs = timegm(&tm) - (oh * 3600 + om * 60);
	return (long long) secs * 1000000 + frac;
}

/* The timestamp under "KEY" in a JSON text, or -1. */
static long long
json_stamp(const char *json, const char *key)
{
	char		quoted[128];
	const char *p;

	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	p = strstr(json, quoted);
	if (p == NULL)
		return -1;
	p += strlen(quoted);
	while (*p == ' ' || *p == ':')
		p++;
	if (*p != '"')
		return -1;
	return parse_timestamp(p + 1);
}

/* Wait up to TIMEOUT_MS for input on CONN's socket (or a signal). */
static void
wait_socket(PGconn *conn, long timeout_ms)
{
	fd_set		fds;
	struct timeval tv;
	int			sock = PQsocket(conn);

	FD_ZERO(&fds);
	FD_SET(sock, &fds);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (select(sock + 1, &fds, NULL, NULL, &tv) < 0 && errno != EINTR)
	{
		fprintf(stderr, "pipeline: select: %s\n", strerror(errno));
		exit(1);
	}
	if (!PQconsumeInput(conn))
		die_conn(conn, "reading");
}

static void
listen_mode(PGconn *conn, const char *channel, const char *key)
{
	char		sql[256];
	PGnotify   *n;
	long long	stamp;

	snprintf(sql, sizeof(sql), "LISTEN \"%s\"", channel);
	run(conn, sql);
	write_file("ready", "");
	while (!stopping)
	{
		wait_socket(conn, 50);
		while ((n = PQnotifies(conn)) != NULL)
		{
			stamp = json_stamp(n->extra, key);
			if (stamp < 0)
			{
				fprintf(stderr, "pipeline: no \"%s\" in a notification: %.200s\n",
						key, n->extra);
				exit(1);
			}
			record(stamp);
			PQfreemem(n);
		}
		write_count(0);
	}
}

/* A growing string: an array literal under construction. */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

/* Make room for MORE bytes and a terminating NUL. */
static void
buf_reserve(Buf *buf, size_t more)
{
	if (buf->len + more + 1 <= buf->cap)
		return;
	buf->cap = (buf->len + more + 1) * 2;
	buf->data = realloc(buf->data, buf->cap);
	if (buf->data == NULL)
	{
		fprintf(stderr, "pipeline: out of memory\n");
		exit(1);
	}
}

static void
buf_char(Buf *buf, char c)
{
	buf_reserve(buf, 1);
	buf->data[buf->len++] = c;
	buf->data[buf->len] = '\0';
}

/* Append TEXT as an array element: quoted, backslashes and quotes escaped. */
static void
buf_element(Buf *buf, const char *text)
{
	const char *p;

	buf_reserve(buf, 2 * strlen(text) + 2);
	buf->data[buf->len++] = '"';
	for (p = text; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			buf->data[buf->len++] = '\\';
		buf->data[buf->len++] = *p;
	}
	buf->data[buf->len++] = '"';
	buf->data[buf->len] = '\0';
}

static void
relay_mode(PGconn *conn, const char *channel, int batch, long poll_ms)
{
	char		select_sql[256];
	const char *notify_sql =
		"SELECT pg_notify($1, j) FROM unnest($2::text[]) WITH ORDINALITY AS t(j, n) ORDER BY n";
	Buf			rows = {0},
				ids = {0};
	PGresult   *res;
	PGnotify   *n;
	int			got = 0,
				i;

	snprintf(select_sql, sizeof(select_sql),
			 "SELECT id, row_to_json(o)::text FROM outbox_hand o"
			 " ORDER BY id LIMIT %d FOR UPDATE SKIP LOCKED", batch);
	run(conn, "LISTEN outbox_wake");
	write_file("ready", "");
	while (!stopping)
	{
		if (got < batch)
			wait_socket(conn, poll_ms);
		while ((n = PQnotifies(conn)) != NULL)
			PQfreemem(n);
		if (stopping)
			break;

		run(conn, "BEGIN");
		res = PQexec(conn, select_sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die_conn(conn, "taking rows");
		got = PQntuples(res);
		if (got == 0)
		{
			PQclear(res);
			run(conn, "COMMIT");
			continue;
		}
		rows.len = ids.len = 0;
		buf_char(&rows, '{');
		buf_char(&ids, '{');
		for (i = 0; i < got; i++)
		{
			if (i > 0)
			{
				buf_char(&rows, ',');
				buf_char(&ids, ',');
			}
			buf_element(&rows, PQgetvalue(res, i, 1));
			buf_element(&ids, PQgetvalue(res, i, 0));
		}
		buf_char(&rows, '}');
		buf_char(&ids, '}');
		PQclear(res);

		{
			const char *params[2] = {channel, rows.data};

			res = PQexecParams(conn, notify_sql, 2, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				die_conn(conn, "forwarding");
			PQclear(res);
		}
		{
			const char *params[1] = {ids.data};

			res = PQexecParams(conn, "DELETE FROM outbox_hand WHERE id = ANY($1::bigint[])",
							   1, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				die_conn(conn, "deleting");
			PQclear(res);
		}
		run(conn, "COMMIT");
	}
}

static void
pgq_mode(PGconn *conn, long poll_ms)
{
	PGresult   *res;
	const char *batch_id;
	char		batch[32];
	int			i;

	write_file("ready", "");
	while (!stopping)
	{
		run(conn, "BEGIN");
		res = PQexec(conn, "SELECT pgq.next_batch('bench', 'bench_consumer')");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die_conn(conn, "next_batch");
		if (PQgetisnull(res, 0, 0))
		{
			PQclear(res);
			run(conn, "COMMIT");
			write_count(0);
			wait_socket(conn, poll_ms);
			continue;
		}
		batch_id = PQgetvalue(res, 0, 0);
		snprintf(batch, sizeof(batch), "%s", batch_id);
		PQclear(res);
		{
			const char *params[1] = {batch};

			res = PQexecParams(conn,
							   "SELECT ev_id, (extract(epoch FROM ev_time) * 1000000)::int8, ev_data"
							   " FROM pgq.get_batch_events($1::int8)",
							   1, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				die_conn(conn, "get_batch_events");
			for (i = 0; i < PQntuples(res); i++)
				record(atoll(PQgetvalue(res, i, 1)));
			PQclear(res);
			res = PQexecParams(conn, "SELECT pgq.finish_batch($1::int8)",
							   1, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				die_conn(conn, "finish_batch");
			PQclear(res);
		}
		run(conn, "COMMIT");
		write_count(0);
	}
}

int
main(int argc, char **argv)
{
	const char *mode;
	const char *channel = NULL;
	const char *key = "emitted_at";
	int			batch = 1000,
				opt;
	long		poll_ms = 100;
	PGconn	   *conn;
	PGresult   *res;
	char		pid[32];
	struct sigaction sa;

	if (argc < 2)
	{
		fprintf(stderr, "usage: pipeline listen|relay|pgq -o DIR [-c CHANNEL] [-k KEY] [-b BATCH] [-p POLL_MS]\n");
		return 2;
	}
	mode = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "o:c:k:b:p:")) != -1)
	{
		switch (opt)
		{
			case 'o':
				out_dir = optarg;
				break;
			case 'c':
				channel = optarg;
				break;
			case 'k':
				key = optarg;
				break;
			case 'b':
				batch = atoi(optarg);
				break;
			case 'p':
				poll_ms = atol(optarg);
				break;
			default:
				return 2;
		}
	}
	if (out_dir == NULL || batch < 1 || poll_ms < 1)
	{
		fprintf(stderr, "pipeline: -o DIR is required; BATCH and POLL_MS must be positive\n");
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
		die_conn(conn, "connecting");
	res = PQexec(conn, "SELECT pg_backend_pid()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		die_conn(conn, "pg_backend_pid");
	snprintf(pid, sizeof(pid), "%s\n", PQgetvalue(res, 0, 0));
	PQclear(res);
	write_file("backend_pid", pid);
	write_count(1);

	if (strcmp(mode, "listen") == 0)
		listen_mode(conn, channel ? channel : "emissions", key);
	else if (strcmp(mode, "relay") == 0)
		relay_mode(conn, channel ? channel : "outbox", batch, poll_ms);
	else if (strcmp(mode, "pgq") == 0)
		pgq_mode(conn, poll_ms);
	else
	{
		fprintf(stderr, "pipeline: unknown mode \"%s\"\n", mode);
		return 2;
	}
	PQfinish(conn);
	finish();
	return 0;
}
