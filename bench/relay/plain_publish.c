/*-------------------------------------------------------------------------
 *
 * plain_publish.c
 *	  bench/relay.sh's yardstick: the same events the relay publishes,
 *	  published by a plain libnats program, the broker's limit on this
 *	  machine.
 *
 *	  plain_publish CONNINFO NATS_URL SUBJECT AFTER_ID COUNT MAX_IN_FLIGHT
 *
 * Reads COUNT events after AFTER_ID from emissions_events() into memory
 * first, as envelopes like the relay's, then creates the stream SUBJECT
 * (upper case) taking SUBJECT.>, and publishes every event to
 * SUBJECT.<type> with js_PublishMsgAsync, as the relay's messages are:
 * Nats-Msg-Id "bench:ID" and Content-Type: application/json headers, at
 * most MAX_IN_FLIGHT unacknowledged, until JetStream acknowledged them all.
 * Prints "EVENTS PUBLISH_SECONDS READ_SECONDS": the publishing alone, and
 * the reading of the events from PostgreSQL before it (one query, the
 * relay's columns in text form), what the relay pays on top.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "libpq-fe.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	natsConnection *nc = NULL;
	jsCtx	   *js = NULL;
	jsOptions	jo;
	jsStreamConfig cfg;
	jsErrCode	jerr = 0;
	char		stream[256];
	char		wildcard[256];
	const char *subjects[1] = {wildcard};
	const char *params[2];
	int			rows;
	double		start;
	double		read_s;

	if (argc != 7)
	{
		fprintf(stderr, "usage: plain_publish CONNINFO NATS_URL SUBJECT "
				"AFTER_ID COUNT MAX_IN_FLIGHT\n");
		return 1;
	}
	conn = PQconnectdb(argv[1]);
	params[0] = argv[4];
	params[1] = argv[5];
	PQclear(PQexec(conn, "SET TimeZone = 'UTC'"));
	start = now_s();
	res = PQexecParams(conn, "SELECT id, type, payload, metadata, emitted_at, "
					   "txid FROM emissions_events($1, $2)",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "plain_publish: %s", PQerrorMessage(conn));
		return 1;
	}
	read_s = now_s() - start;
	PQclear(res);
	res = PQexecParams(conn,
					   "SELECT id, type, pg_catalog.format('{\"id\": %s, "
					   "\"type\": %s, \"payload\": %s, \"metadata\": %s, "
					   "\"emitted_at\": %s, \"txid\": %s, \"database\": %s}', "
					   "id, pg_catalog.to_json(type), payload, metadata, "
					   "pg_catalog.to_json(emitted_at), txid, "
					   "pg_catalog.to_json(pg_catalog.current_database())) "
					   "FROM emissions_events($1, $2) ORDER BY id",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "plain_publish: %s", PQerrorMessage(conn));
		return 1;
	}
	rows = PQntuples(res);

	snprintf(wildcard, sizeof(wildcard), "%s.>", argv[3]);
	snprintf(stream, sizeof(stream), "%s", argv[3]);
	for (char *c = stream; *c; c++)
		*c = (char) toupper((unsigned char) *c);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = atoi(argv[6]);
	jsStreamConfig_Init(&cfg);
	cfg.Name = stream;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Duplicates = 120 * 1000000000LL;
	if (natsConnection_ConnectTo(&nc, argv[2]) != NATS_OK ||
		natsConnection_JetStream(&js, nc, &jo) != NATS_OK ||
		js_AddStream(NULL, js, &cfg, NULL, &jerr) != NATS_OK)
	{
		fprintf(stderr, "plain_publish: %s (%d)\n", nats_GetLastError(NULL),
				(int) jerr);
		return 1;
	}

	start = now_s();
	for (int i = 0; i < rows; i++)
	{
		char		subject[512];
		char		msgid[64];
		jsPubOptions po;
		natsMsg    *msg = NULL;
		const char *data = PQgetvalue(res, i, 2);

		snprintf(subject, sizeof(subject), "%s.%s", argv[3],
				 PQgetvalue(res, i, 1));
		snprintf(msgid, sizeof(msgid), "bench:%s", PQgetvalue(res, i, 0));
		jsPubOptions_Init(&po);
		po.MsgId = msgid;
		if (natsMsg_Create(&msg, subject, NULL, data,
						   PQgetlength(res, i, 2)) != NATS_OK ||
			natsMsgHeader_Set(msg, "Content-Type", "application/json")
			!= NATS_OK ||
			js_PublishMsgAsync(js, &msg, &po) != NATS_OK)
		{
			fprintf(stderr, "plain_publish: %s\n", nats_GetLastError(NULL));
			return 1;
		}
		/* Taken by the library once published (then NULL). */
		natsMsg_Destroy(msg);
	}
	if (js_PublishAsyncComplete(js, NULL) != NATS_OK)
	{
		fprintf(stderr, "plain_publish: %s\n", nats_GetLastError(NULL));
		return 1;
	}
	{
		double		elapsed = now_s() - start;
		jsStreamInfo *si = NULL;

		/* Every message stored, or the figure means nothing. */
		if (js_GetStreamInfo(&si, js, stream, NULL, &jerr) != NATS_OK ||
			si->State.Msgs < (uint64_t) rows)
		{
			fprintf(stderr, "plain_publish: the stream holds %llu of %d\n",
					si ? (unsigned long long) si->State.Msgs : 0ULL, rows);
			return 1;
		}
		jsStreamInfo_Destroy(si);
		printf("%d %.3f %.3f\n", rows, elapsed, read_s);
	}
	PQclear(res);
	PQfinish(conn);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}
