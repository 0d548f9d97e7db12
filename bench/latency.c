/*
 * bench/latency.c: commit-to-LISTEN latency, emissions versus a direct NOTIFY.
 *
 * Two libpq connections to the database named by the PG* environment (or
 * -d CONNINFO): a listener that LISTENs on the emissions channel and on
 * bench_direct, and a producer.  Each sample is one transaction of the
 * producer, of one of these kinds:
 *
 *   emissions:    BEGIN; SELECT emissions_start();
 *                 SELECT emissions_emit('bench.latency', '{"n": N}'); COMMIT
 *   direct:       BEGIN; SELECT pg_notify('bench_direct', 'N'); COMMIT
 *   direct_write: BEGIN; INSERT INTO bench_latency_rows VALUES (N);
 *                 SELECT pg_notify('bench_direct', 'N'); COMMIT
 *
 * (direct writes nothing, so its commit flushes no WAL; direct_write is a
 * NOTIFY from a transaction that writes a row, as a real producer's does.)
 * Everything up to COMMIT goes in one round trip; the clock starts just
 * before COMMIT is sent (PQsendQuery) and stops when the listener holds the
 * notification that carries N (the envelope's payload {"n": N} on the
 * emissions channel, the payload N on bench_direct).  Both sockets are
 * watched with select(), so the time the producer got its COMMIT
 * acknowledgement is taken too ("ack").  Each round takes one sample of
 * every kind asked for, in a random order, with a pause (-g) before each
 * sample; the first -w rounds are a warm-up and are not counted.
 *
 * Usage: latency [-d CONNINFO] [-n ROUNDS] [-w WARMUP] [-T SECONDS] [-g GAP_US]
 *                [-t TIMEOUT_MS] [-k KINDS] [-c CHANNEL] [-r RAW_FILE]
 *
 * KINDS: a comma-separated list of emissions, direct and direct_write, or
 * "both" (emissions,direct) or "all" (the default).  Stops after ROUNDS
 * rounds (2000) or SECONDS (0: no limit), whichever comes first.  Creates
 * the table bench_latency_rows (n bigint) when direct_write is asked for.
 * Prints one tab-separated line per kind:
 *
 *   kind samples lost mean_ms p50_ms p90_ms p99_ms max_ms ack_p50_ms ack_p99_ms
 *
 * "lost" counts samples whose notification did not come within TIMEOUT_MS
 * (5000); they are left out of the figures.  -r writes every sample as
 * "kind seq notify_ms ack_ms".  Exits 1 on a connection or SQL error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

enum kind
{
	K_EMISSIONS,
	K_DIRECT,
	K_DIRECT_WRITE,
	K_NKINDS
};
static const char *const kind_name[K_NKINDS] = {"emissions", "direct",
"direct_write"};

typedef struct
{
	double	   *note;			/* commit sent -> notification, ms */
	double	   *ack;			/* commit sent -> COMMIT result, ms */
	long		n;
	long		lost;
} series;

static PGconn *listener;
static PGconn *producer;
static const char *channel = "emissions";
static long timeout_ms = 5000;
static FILE *raw;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
die(const char *what, PGconn *conn)
{
	fprintf(stderr, "latency: %s: %s", what,
			conn ? PQerrorMessage(conn) : "failed\n");
	PQfinish(listener);
	PQfinish(producer);
	exit(1);
}

static void
exec_ok(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "latency: %s: %s", sql, PQerrorMessage(conn));
		PQclear(res);
		die("query failed", NULL);
	}
	PQclear(res);
}

/*
 * The n a notification carries, or -1 when it is not one of ours.  On the
 * emissions channel: the number after "n" inside the envelope's "payload"
 * of an event typed bench.latency; on bench_direct: the payload itself.
 */
static long
notification_n(const PGnotify *nt, enum kind kind)
{
	const char *p;
	char	   *end;
	long		n;

	if (kind != K_EMISSIONS)
	{
		if (strcmp(nt->relname, "bench_direct") != 0)
			return -1;
		n = strtol(nt->extra, &end, 10);
		return (end != nt->extra && *end == '\0') ? n : -1;
	}
	if (strcmp(nt->relname, channel) != 0 ||
		strstr(nt->extra, "\"bench.latency\"") == NULL ||
		(p = strstr(nt->extra, "\"payload\"")) == NULL ||
		(p = strstr(p, "\"n\"")) == NULL)
		return -1;
	p += 3;
	while (*p == ' ' || *p == ':')
		p++;
	n = strtol(p, &end, 10);
	return end != p ? n : -1;
}

/* Read what the listener has without waiting, and drop it. */
static void
drain_listener(void)
{
	PGnotify   *nt;

	if (!PQconsumeInput(listener))
		die("listener", listener);
	while ((nt = PQnotifies(listener)) != NULL)
		PQfreemem(nt);
}

/*
 * One sample: the transaction up to its COMMIT in one round trip, then
 * COMMIT, timed to the COMMIT result and to the notification.  Returns 0 and
 * sets *note_ms and *ack_ms, or returns -1 when the notification did not
 * come in time (lost; the COMMIT result has been read all the same).
 */
static int
sample(enum kind kind, long n, double *note_ms, double *ack_ms)
{
	char		sql[256];
	int			got_ack = 0,
				got_note = 0,
				gave_up = 0;
	double		t0,
				deadline;
	int			lfd = PQsocket(listener),
				pfd = PQsocket(producer);

	if (kind == K_EMISSIONS)
		snprintf(sql, sizeof(sql),
				 "BEGIN; SELECT emissions_start(); "
				 "SELECT emissions_emit('bench.latency', '{\"n\": %ld}')", n);
	else if (kind == K_DIRECT)
		snprintf(sql, sizeof(sql),
				 "BEGIN; SELECT pg_notify('bench_direct', '%ld')", n);
	else
		snprintf(sql, sizeof(sql),
				 "BEGIN; INSERT INTO bench_latency_rows VALUES (%ld); "
				 "SELECT pg_notify('bench_direct', '%ld')", n, n);
	drain_listener();
	exec_ok(producer, sql);

	t0 = now_ms();
	if (!PQsendQuery(producer, "COMMIT"))
		die("producer: send COMMIT", producer);
	deadline = t0 + timeout_ms;
	*note_ms = *ack_ms = -1;

	while (!got_ack || (!got_note && !gave_up))
	{
		fd_set		rfds;
		struct timeval tv;
		double		left = deadline - now_ms();
		int			maxfd = -1;

		/* Past the deadline only the COMMIT result is still awaited. */
		if (left <= 0)
		{
			gave_up = 1;
			if (got_ack)
				break;
			left = 60000;
		}
		FD_ZERO(&rfds);
		if (!got_ack)
		{
			FD_SET(pfd, &rfds);
			maxfd = pfd;
		}
		if (!got_note && !gave_up)
		{
			FD_SET(lfd, &rfds);
			if (lfd > maxfd)
				maxfd = lfd;
		}
		tv.tv_sec = (long) (left * 1000) / 1000000;
		tv.tv_usec = (long) (left * 1000) % 1000000;
		if (select(maxfd + 1, &rfds, NULL, NULL, &tv) < 0)
		{
			if (errno == EINTR)
				continue;
			perror("latency: select");
			exit(1);
		}
		if (!got_note && !gave_up && FD_ISSET(lfd, &rfds))
		{
			double		t = now_ms();
			PGnotify   *nt;

			if (!PQconsumeInput(listener))
				die("listener", listener);
			while ((nt = PQnotifies(listener)) != NULL)
			{
				if (!got_note && notification_n(nt, kind) == n)
				{
					got_note = 1;
					*note_ms = t - t0;
				}
				PQfreemem(nt);
			}
		}
		if (!got_ack && FD_ISSET(pfd, &rfds))
		{
			double		t = now_ms();

			if (!PQconsumeInput(producer))
				die("producer", producer);
			while (!PQisBusy(producer))
			{
				PGresult   *res = PQgetResult(producer);

				if (res == NULL)
				{
					got_ack = 1;
					break;
				}
				if (PQresultStatus(res) != PGRES_COMMAND_OK)
				{
					fprintf(stderr, "latency: COMMIT: %s",
							PQresultErrorMessage(res));
					exit(1);
				}
				if (*ack_ms < 0)
					*ack_ms = t - t0;
				PQclear(res);
			}
		}
	}
	return got_note ? 0 : -1;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double
pct(const double *v, long n, double p)
{
	long		i;

	if (n == 0)
		return 0;
	i = (long) (p * n);
	if ((double) i < p * n)
		i++;
	i--;						/* ceil(p * n) - 1 */
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void
report(enum kind kind, series *s)
{
	double		sum = 0;
	long		i;

	qsort(s->note, s->n, sizeof(double), cmp_double);
	qsort(s->ack, s->n, sizeof(double), cmp_double);
	for (i = 0; i < s->n; i++)
		sum += s->note[i];
	printf("%s\t%ld\t%ld\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n",
		   kind_name[kind], s->n, s->lost, s->n ? sum / s->n : 0,
		   pct(s->note, s->n, 0.50), pct(s->note, s->n, 0.90),
		   pct(s->note, s->n, 0.99), s->n ? s->note[s->n - 1] : 0,
		   pct(s->ack, s->n, 0.50), pct(s->ack, s->n, 0.99));
}

/* Drops a notice ("relation ... already exists, skipping"). */
static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

/* Parse -k: a comma-separated list of kind names, "both" or "all". */
static int
parse_kinds(const char *arg, int *kinds)
{
	char	   *list = strdup(arg),
			   *tok,
			   *save = NULL;
	int			k,
				any = 0;

	for (k = 0; k < K_NKINDS; k++)
		kinds[k] = 0;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		int			found = 0;

		if (strcmp(tok, "all") == 0 || strcmp(tok, "both") == 0)
		{
			kinds[K_EMISSIONS] = kinds[K_DIRECT] = 1;
			kinds[K_DIRECT_WRITE] = strcmp(tok, "all") == 0;
			found = 1;
		}
		for (k = 0; k < K_NKINDS; k++)
			if (strcmp(tok, kind_name[k]) == 0)
				kinds[k] = found = 1;
		if (!found)
		{
			free(list);
			return 0;
		}
		any = 1;
	}
	free(list);
	return any;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: latency [-d CONNINFO] [-n PAIRS] [-w WARMUP] [-T SECONDS]"
			" [-g GAP_US] [-t TIMEOUT_MS] [-k KINDS]"
			" [-c CHANNEL] [-r RAW_FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *conninfo = "";
	long		rounds = 2000,
				warmup = 50,
				gap_us = 1000;
	double		seconds = 0,
				start;
	int			kinds[K_NKINDS] = {1, 1, 1};
	series		s[K_NKINDS];
	long		i,
				n = 0;
	int			opt,
				k;
	char		sql[200];
	char	   *ident;

	while ((opt = getopt(argc, argv, "d:n:w:T:g:t:k:c:r:")) != -1)
	{
		switch (opt)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'n':
				rounds = atol(optarg);
				break;
			case 'w':
				warmup = atol(optarg);
				break;
			case 'T':
				seconds = atof(optarg);
				break;
			case 'g':
				gap_us = atol(optarg);
				break;
			case 't':
				timeout_ms = atol(optarg);
				break;
			case 'k':
				if (!parse_kinds(optarg, kinds))
					usage();
				break;
			case 'c':
				channel = optarg;
				break;
			case 'r':
				if ((raw = fopen(optarg, "w")) == NULL)
				{
					perror(optarg);
					return 1;
				}
				break;
			default:
				usage();
		}
	}
	if (rounds < 1 || optind != argc)
		usage();

	listener = PQconnectdb(conninfo);
	if (PQstatus(listener) != CONNECTION_OK)
		die("listener connection", listener);
	producer = PQconnectdb(conninfo);
	if (PQstatus(producer) != CONNECTION_OK)
		die("producer connection", producer);
	ident = PQescapeIdentifier(listener, channel, strlen(channel));
	snprintf(sql, sizeof(sql), "LISTEN %s", ident);
	PQfreemem(ident);
	exec_ok(listener, sql);
	exec_ok(listener, "LISTEN bench_direct");
	if (kinds[K_DIRECT_WRITE])
	{
		PQsetNoticeProcessor(producer, ignore_notice, NULL);
		exec_ok(producer,
				"CREATE TABLE IF NOT EXISTS bench_latency_rows (n bigint)");
	}

	for (k = 0; k < K_NKINDS; k++)
	{
		s[k].note = calloc(rounds, sizeof(double));
		s[k].ack = calloc(rounds, sizeof(double));
		s[k].n = s[k].lost = 0;
		if (!s[k].note || !s[k].ack)
			die("out of memory", NULL);
	}
	srand((unsigned) getpid());

	start = 0;
	for (i = 0; i < warmup + rounds; i++)
	{
		enum kind	order[K_NKINDS];
		int			j;

		if (i == warmup)
			start = now_ms();
		if (i >= warmup && seconds > 0 && now_ms() - start > seconds * 1000)
			break;
		/* this round's order: a random permutation (Fisher-Yates) */
		for (j = 0; j < K_NKINDS; j++)
			order[j] = (enum kind) j;
		for (j = K_NKINDS - 1; j > 0; j--)
		{
			int			r = rand() % (j + 1);
			enum kind	t = order[j];

			order[j] = order[r];
			order[r] = t;
		}
		for (j = 0; j < K_NKINDS; j++)
		{
			enum kind	kind = order[j];
			double		note_ms,
						ack_ms;
			int			ok;

			if (!kinds[kind])
				continue;
			if (gap_us > 0)
				usleep((useconds_t) gap_us);
			ok = sample(kind, ++n, &note_ms, &ack_ms) == 0;
			if (i < warmup)
				continue;
			if (raw)
				fprintf(raw, "%s\t%ld\t%.3f\t%.3f\n", kind_name[kind], n,
						note_ms, ack_ms);
			if (ok)
			{
				s[kind].note[s[kind].n] = note_ms;
				s[kind].ack[s[kind].n] = ack_ms;
				s[kind].n++;
			}
			else
				s[kind].lost++;
		}
	}
	for (k = 0; k < K_NKINDS; k++)
		if (kinds[k])
			report((enum kind) k, &s[k]);
	if (raw)
		fclose(raw);
	PQfinish(listener);
	PQfinish(producer);
	return 0;
}
