/*-------------------------------------------------------------------------
 *
 * stream_dump.c
 *	  Test helper: print every message of a JetStream stream, in stream
 *	  order, one line each: "SEQUENCE<TAB>Nats-Msg-Id<TAB>SUBJECT<TAB>DATA".
 *
 *	  stream_dump NATS_URL STREAM
 *
 * The messages are read one by one by sequence (js_GetMsg), from the
 * first to the last the stream holds; exit status 1 on any error.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>

#include <nats/nats.h>

int
main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsCtx	   *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode	jerr = 0;

	if (argc != 3)
	{
		fprintf(stderr, "usage: stream_dump NATS_URL STREAM\n");
		return 1;
	}
	if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK ||
		natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
		js_GetStreamInfo(&si, js, argv[2], NULL, &jerr) != NATS_OK)
	{
		fprintf(stderr, "stream_dump: %s (%d)\n", nats_GetLastError(NULL),
				(int) jerr);
		return 1;
	}
	for (uint64_t seq = si->State.FirstSeq;
		 seq > 0 && seq <= si->State.LastSeq; seq++)
	{
		natsMsg    *msg = NULL;
		const char *id = "";
		natsStatus	s = js_GetMsg(&msg, js, argv[2], seq, NULL, &jerr);

		if (s == NATS_NOT_FOUND)
			continue;
		if (s != NATS_OK)
		{
			fprintf(stderr, "stream_dump: message %llu: %s\n",
					(unsigned long long) seq, nats_GetLastError(NULL));
			return 1;
		}
		(void) natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
		printf("%llu\t%s\t%s\t%.*s\n", (unsigned long long) seq, id,
			   natsMsg_GetSubject(msg), natsMsg_GetDataLength(msg),
			   natsMsg_GetData(msg));
		natsMsg_Destroy(msg);
	}
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}
