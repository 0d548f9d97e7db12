/*-------------------------------------------------------------------------
 *
 * drop_stream.c
 *	  bench/relay.sh's clean-up between runs: delete a JetStream stream,
 *	  its messages and its duplicate-detection state with it, so that
 *	  every run starts on a broker holding the same.
 *
 *	  drop_stream NATS_URL STREAM
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>

#include <nats/nats.h>

int
main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsCtx	   *js = NULL;
	jsErrCode	jerr = 0;

	if (argc != 3)
	{
		fprintf(stderr, "usage: drop_stream NATS_URL STREAM\n");
		return 1;
	}
	if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK ||
		natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
		js_DeleteStream(js, argv[2], NULL, &jerr) != NATS_OK)
	{
		fprintf(stderr, "drop_stream: %s (%d)\n", nats_GetLastError(NULL),
				(int) jerr);
		return 1;
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}
