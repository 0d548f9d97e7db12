/*-------------------------------------------------------------------------
 *
 * http.h
 *	  What the two ways of sending to a webhook share: http_target.c (one
 *	  request at a time, and the requests themselves) and http_parallel.c
 *	  (--parallel N requests at once through libcurl's multi interface).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_RELAY_HTTP_H
#define EMISSIONS_RELAY_HTTP_H

#include <curl/curl.h>

#include "relay.h"

/* Acknowledge the subscription at least this often during a long page. */
#define ACK_INTERVAL_MS 100

/* How one request ended. */
typedef enum SendResult
{
	SEND_CONFIRMED,				/* 2xx */
	SEND_RETRY,					/* worth trying again: wait and repeat */
	SEND_REFUSED				/* any other answer */
} SendResult;

extern void http_setup_handle(CURL *h, Buf *kept);
extern void http_build_request(const RelayEvent *events, int n,
							   const FormatContext *ctx, Buf *body,
							   struct curl_slist **headers);
extern SendResult http_classify(CURL *h, CURLcode rc, const Buf *kept,
								long *status, int64_t *retry_after_ms,
								Buf *what);
extern int64_t http_retry_wait(int64_t *backoff, int64_t retry_after_ms);
extern void http_write_dead_letter(const RelayEvent *events, int n,
								   const FormatContext *ctx, long status,
								   const Buf *what);
extern int	http_parallel_run(Source **src, const FormatContext *ctx);

#endif							/* EMISSIONS_RELAY_HTTP_H */
