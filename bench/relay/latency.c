/*-------------------------------------------------------------------------
 *
 * latency.c
 *	  bench/relay.sh's latency probe: from COMMIT to the event coming out
 *	  of the JetStream stream the relay publishes to.
 *
 *	  latency CONNINFO NATS_URL SUBJECT SAMPLES GAP_US
 *
 * A JetStream push consumer (new messages only) on SUBJECT.bench.latency
 * receives what the stream has stored.  For each sample, a transaction
 * emits one bench.latency event {"n": N}; the time runs from just before
 * COMMIT is sent to the arrival of the message carrying N, which the
 * stream delivers only once stored: an upper bound of commit-to-ack.
 * For reference, a second connection LISTENs on the default channel and
 * times the event's notification too (commit to LISTEN: what the relay
 * waits for before it reads).  Prints "NOTIFY_US STREAM_US" a line.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "libpq-fe.h"

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void
run(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "latency: %s", PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
}

/* Wait for the notification whose payload contains want; its time. */
static long long
wait_notify(PGconn *listener, const char *want)
{
	for (;;)
	{
		PGnotify   *n;
		fd_set		rfds;
		int			sock = PQsocket(listener);

		PQconsumeInput(listener);
		while ((n = PQnotifies(listener)) != NULL)
		{
			int			found = strstr(n->extra, want) != NULL;

			PQfreemem(n);
			if (found)
				return now_us();
		}
		FD_ZERO(&rfds);
		FD_SET(sock, &rfds);
		if (select(sock + 1, &rfds, NULL, NULL, NULL) < 0)
		{
			fprintf(stderr, "latency: select failed\n");
			exit(1);
		}
	}
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGconn	   *listener;
	natsConnection *nc = NULL;
	jsCtx	   *js = NULL;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode	jerr = 0;
	char		subject[256];
	int			samples;
	int			gap_us;

	if (argc != 6)
	{
		fprintf(stderr, "usage: latency CONNINFO NATS_URL SUBJECT SAMPLES GAP_US\n");
		return 1;
	}
	samples = atoi(argv[4]);
	gap_us = atoi(argv[5]);
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "latency: %s", PQerrorMessage(conn));
		return 1;
	}
	listener = PQconnectdb(argv[1]);
	run(listener, "LISTEN emissions");
	snprintf(subject, sizeof(subject), "%s.bench.latency", argv[3]);
	jsSubOptions_Init(&so);
	so.Config.DeliverPolicy = js_DeliverNew;
	if (natsConnection_ConnectTo(&nc, argv[2]) != NATS_OK ||
		natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
		js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr) != NATS_OK)
	{
		fprintf(stderr, "latency: %s (%d)\n", nats_GetLastError(NULL),
				(int) jerr);
		return 1;
	}
	for (int n = 1; n <= samples; n++)
	{
		char		sql[128];
		char		want[32];
		long long	start;
		long long	notified;

		usleep(gap_us);
		run(conn, "BEGIN");
		run(conn, "SELECT emissions_start()");
		snprintf(sql, sizeof(sql),
				 "SELECT emissions_emit('bench.latency', '{\"n\": %d}')", n);
		run(conn, sql);
		snprintf(want, sizeof(want), "{\"n\": %d}", n);
		start = now_us();
		run(conn, "COMMIT");
		notified = wait_notify(listener, want);
		for (;;)
		{
			natsMsg    *msg = NULL;

			if (natsSubscription_NextMsg(&msg, sub, 30000) != NATS_OK)
			{
				fprintf(stderr, "latency: sample %d never came: %s\n", n,
						nats_GetLastError(NULL));
				return 1;
			}
			if (strstr(natsMsg_GetData(msg), want) != NULL)
			{
				printf("%lld %lld\n", notified - start, now_us() - start);
				natsMsg_Ack(msg, NULL);
				natsMsg_Destroy(msg);
				break;
			}
			natsMsg_Ack(msg, NULL);
			natsMsg_Destroy(msg);
		}
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	PQfinish(conn);
	PQfinish(listener);
	return 0;
}
