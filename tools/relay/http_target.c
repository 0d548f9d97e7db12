/*-------------------------------------------------------------------------
 *
 * http_target.c
 *	  emissions_relay's webhook target: a POST per event, or per batch of
 *	  --batch N events as a JSON array, one request at a time so that the
 *	  receiver sees the events in id order; a 2xx answer confirms them.
 *	  With --parallel N, http_parallel.c keeps up to N requests in flight
 *	  with the requests, answers and dead letters of this file.
 *
 * One libcurl handle serves every request, so the connection is kept
 * alive between them.  Each request carries:
 *	 Content-Type		application/json (a batch: a JSON array of events);
 *						with --format cloudevents, one event is sent in
 *						CloudEvents' binary mode (the payload is the body,
 *						the attributes are ce-* headers, traceparent and
 *						tracestate as such), a batch in batched mode
 *						(application/cloudevents-batch+json)
 *	 Idempotency-Key	"DATABASE:ID" of the event ("DATABASE:FIRST-LAST"
 *						for a batch: each event in it has its id as well)
 *	 Emissions-Signature  "t=UNIX_SECONDS,v1=HEX" when a secret is given:
 *						HMAC-SHA256 of "UNIX_SECONDS." followed by the body,
 *						keyed with the secret (--secret-file, --secret-env)
 *	 and the lines of --header-file (an Authorization header, say).
 *
 * Answers.  Connection errors, timeouts, 5xx, 408 and 429 are retried for
 * as long as it takes, backing off from 0.1 s to 60 s, or after the
 * Retry-After the receiver asked for (at most an hour): the events wait in
 * PostgreSQL meanwhile.  Any other answer is a refusal: the request is
 * tried --max-attempts times in all, then the relay stops with status 1
 * and the receiver's answer, or, with --dead-letter FILE, appends the
 * events and the answer to FILE as a JSON line (flushed to disk before
 * the events are acknowledged) and goes on.  Nothing is dropped silently.
 *
 * The subscription is acknowledged after each page of events, and every
 * 100 ms during a long page.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "relay.h"
#include "http.h"

#define RETRY_AFTER_MAX_S 3600
/* Bytes of a refusal's answer kept for the log and the dead letter. */
#define ANSWER_KEEP 512

static CURL *curl;
static struct curl_slist *extra_headers;	/* from --header-file */
static char *secret;
static size_t secret_len;
static Buf	answer;				/* the start of the last answer's body */

/* Keep the start of the answer's body (the Buf closure); discard the rest. */
static size_t
on_answer(char *data, size_t size, size_t nmemb, void *closure)
{
	Buf		   *kept = closure;
	size_t		n = size * nmemb;

	if (kept->len < ANSWER_KEEP)
		buf_append(kept, data,
				   n < ANSWER_KEEP - kept->len ? n : ANSWER_KEEP - kept->len);
	return n;
}

/* Abort a transfer when a stop is requested (its events stay unacked). */
static int
on_transfer_progress(void *closure, curl_off_t dltotal, curl_off_t dlnow,
					 curl_off_t ultotal, curl_off_t ulnow)
{
	(void) closure;
	(void) dltotal;
	(void) dlnow;
	(void) ultotal;
	(void) ulnow;
	return relay_stop_requested ? 1 : 0;
}

/* Strip trailing newlines and carriage returns in place. */
static void
chomp(char *s, size_t *len)
{
	size_t		n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (len)
		*len = n;
}

/*
 * Read the extra headers of --header-file: "Name: value" lines; blank
 * lines and lines starting with # are skipped.
 */
static void
load_header_file(const char *path)
{
	char	   *text = relay_read_file(path, NULL);
	char	   *save = NULL;
	int			lineno = 0;

	for (char *line = strtok_r(text, "\n", &save); line;
		 line = strtok_r(NULL, "\n", &save))
	{
		const char *colon;

		lineno++;
		chomp(line, NULL);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		if (colon == NULL || colon == line || strpbrk(line, " \t") < colon)
			relay_fatal("%s, line %d: not a \"Name: value\" header", path,
						lineno);
		extra_headers = curl_slist_append(extra_headers, line);
		if (extra_headers == NULL)
			relay_fatal("out of memory");
	}
	free(text);
}

/* Read the HMAC secret from --secret-file or --secret-env, if given. */
static void
load_secret(void)
{
	if (opts.secret_file)
	{
		secret = relay_read_file(opts.secret_file, NULL);
		chomp(secret, &secret_len);
	}
	else if (opts.secret_env)
	{
		const char *value = getenv(opts.secret_env);

		if (value == NULL || value[0] == '\0')
			relay_fatal("the environment variable %s (--secret-env) is not "
						"set", opts.secret_env);
		secret = strdup(value);
		if (secret == NULL)
			relay_fatal("out of memory");
		secret_len = strlen(secret);
	}
	if (secret && secret_len == 0)
		relay_fatal("the signing secret is empty");
}

/* Add "Emissions-Signature: t=T,v1=HEX" for body to *headers. */
static void
add_signature(struct curl_slist **headers, const Buf *body)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char		stamp[32];
	Buf			signed_text = {0};
	Buf			header = {0};

	snprintf(stamp, sizeof(stamp), "%lld", (long long) time(NULL));
	buf_printf(&signed_text, "%s.", stamp);
	buf_append(&signed_text, body->data, body->len);
	if (HMAC(EVP_sha256(), secret, (int) secret_len,
			 (const unsigned char *) signed_text.data, signed_text.len,
			 mac, &maclen) == NULL)
		relay_fatal("could not compute the HMAC-SHA256 signature");
	buf_printf(&header, "Emissions-Signature: t=%s,v1=", stamp);
	for (unsigned int i = 0; i < maclen; i++)
		buf_printf(&header, "%02x", mac[i]);
	*headers = curl_slist_append(*headers, header.data);
	buf_free(&signed_text);
	buf_free(&header);
}

/* Add one "Name: value" header to *headers. */
static void
add_header(struct curl_slist **headers, const char *name, const char *value)
{
	Buf			h = {0};

	buf_printf(&h, "%s: %s", name, value);
	*headers = curl_slist_append(*headers, h.data);
	buf_free(&h);
}

/*
 * Build the body and the headers of a request for events[0..n) (the
 * events --types forwards).
 */
void
http_build_request(const RelayEvent *events, int n, const FormatContext *ctx,
				   Buf *body, struct curl_slist **headers)
{
	Buf			key = {0};
	bool		binary = opts.format == FORMAT_CLOUDEVENTS && opts.batch == 1;

	buf_reset(body);
	if (binary)
	{
		const RelayEvent *ev = &events[0];
		char		id[32];
		Buf			time_value = {0};

		buf_append(body, ev->payload, ev->payload_len);
		snprintf(id, sizeof(id), "%lld", ev->id);
		/* emitted_at is a JSON string: its text without the quotes. */
		buf_append(&time_value, ev->emitted_at + 1, strlen(ev->emitted_at) - 2);
		add_header(headers, "Content-Type", "application/json");
		add_header(headers, "ce-specversion", "1.0");
		add_header(headers, "ce-id", id);
		add_header(headers, "ce-source", ctx->source);
		add_header(headers, "ce-type", ev->type);
		add_header(headers, "ce-time", time_value.data);
		add_header(headers, "ce-emissionstxid", ev->txid);
		if (ev->traceparent)
			add_header(headers, "traceparent", ev->traceparent);
		if (ev->tracestate)
			add_header(headers, "tracestate", ev->tracestate);
		buf_free(&time_value);
	}
	else if (opts.batch == 1)
	{
		format_event(body, &events[0], opts.format, ctx);
		add_header(headers, "Content-Type", "application/json");
	}
	else
	{
		buf_puts(body, "[");
		for (int i = 0; i < n; i++)
		{
			if (i > 0)
				buf_puts(body, ",\n");
			format_event(body, &events[i], opts.format, ctx);
		}
		buf_puts(body, "]");
		add_header(headers, "Content-Type",
				   opts.format == FORMAT_CLOUDEVENTS ?
				   "application/cloudevents-batch+json" : "application/json");
	}
	format_event_key(&key, &events[0], ctx);
	if (n > 1)
		buf_printf(&key, "-%lld", events[n - 1].id);
	add_header(headers, "Idempotency-Key", key.data);
	buf_free(&key);
	if (secret)
		add_signature(headers, body);
	for (struct curl_slist *h = extra_headers; h; h = h->next)
		*headers = curl_slist_append(*headers, h->data);
	*headers = curl_slist_append(*headers, "Expect:");
	if (*headers == NULL)
		relay_fatal("out of memory");
}

/*
 * Classify how a transfer of handle h ended (rc, and the start of the
 * answer's body kept in *kept): *status is the HTTP status (0: none),
 * *retry_after_ms the wait the receiver asked for (0: none), *what
 * describes a failure for the log.  A target that can never work (a bad
 * URL, a TLS certificate problem) ends the relay.
 */
SendResult
http_classify(CURL *h, CURLcode rc, const Buf *kept, long *status,
			  int64_t *retry_after_ms, Buf *what)
{
	curl_off_t	retry_after = 0;

	buf_reset(what);
	*status = 0;
	*retry_after_ms = 0;
	if (rc != CURLE_OK)
	{
		buf_printf(what, "%s", curl_easy_strerror(rc));
		if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
			rc == CURLE_PEER_FAILED_VERIFICATION ||
			rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE)
			relay_fatal("cannot send to %s: %s", opts.to, what->data);
		return SEND_RETRY;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (*status >= 200 && *status < 300)
		return SEND_CONFIRMED;
	buf_printf(what, "HTTP status %ld", *status);
	if (kept->len > 0)
		buf_printf(what, ", answer: %.*s", (int) kept->len, kept->data);
	if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
		retry_after > 0)
		*retry_after_ms = (retry_after > RETRY_AFTER_MAX_S ?
						   RETRY_AFTER_MAX_S : retry_after) * 1000;
	if (*status >= 500 || *status == 408 || *status == 429)
		return SEND_RETRY;
	return SEND_REFUSED;
}

/*
 * The wait before the next attempt of a request that is worth retrying:
 * the receiver's Retry-After when it gave one, else the next step of
 * *backoff (relay_backoff_next(): 0.1 s doubling to 10 s), which is
 * updated.
 */
int64_t
http_retry_wait(int64_t *backoff, int64_t retry_after_ms)
{
	*backoff = relay_backoff_next(*backoff);
	return retry_after_ms ? retry_after_ms : *backoff;
}

/* Send one request with the sequential relay's handle. */
static SendResult
send_once(const Buf *body, struct curl_slist *headers, long *status,
		  int64_t *retry_after_ms, Buf *what)
{
	buf_reset(&answer);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body->len);
	return http_classify(curl, curl_easy_perform(curl), &answer, status,
						 retry_after_ms, what);
}

/*
 * Record events[0..n) as a dead letter in --dead-letter's file, flushed to
 * disk before they are acknowledged.
 */
void
http_write_dead_letter(const RelayEvent *events, int n,
					   const FormatContext *ctx, long status, const Buf *what)
{
	FILE	   *f = fopen(opts.dead_letter, "a");
	Buf			line = {0};

	if (f == NULL)
		relay_fatal("could not open the dead letter file \"%s\": %s",
					opts.dead_letter, strerror(errno));
	for (int i = 0; i < n; i++)
	{
		buf_reset(&line);
		buf_printf(&line, "{\"id\": %lld, \"status\": %ld, \"error\": ",
				   events[i].id, status);
		buf_json_string(&line, what->data);
		buf_puts(&line, ", \"event\": ");
		format_event(&line, &events[i], FORMAT_ENVELOPE, ctx);
		buf_puts(&line, "}\n");
		if (fwrite(line.data, 1, line.len, f) != line.len)
			relay_fatal("could not write to \"%s\": %s", opts.dead_letter,
						strerror(errno));
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0)
		relay_fatal("could not write to \"%s\": %s", opts.dead_letter,
					strerror(errno));
	buf_free(&line);
}

/*
 * Deliver events[0..n) in one request, trying again as the answers say:
 * true once confirmed (or dead-lettered), false when a stop came first.
 * Each attempt is built (and signed, with its own timestamp) afresh, so
 * that a receiver's tolerance for old signatures does not refuse the
 * retries after a long outage.
 */
static bool
deliver(const RelayEvent *events, int n, const FormatContext *ctx, Buf *body)
{
	struct curl_slist *headers = NULL;
	int			refusals = 0;
	int64_t		delay = 0;
	Buf			what = {0};
	bool		done = false;

	while (!relay_stop_requested)
	{
		long		status;
		int64_t		retry_after_ms;
		int64_t		wait_ms;
		SendResult	r;

		curl_slist_free_all(headers);
		headers = NULL;
		http_build_request(events, n, ctx, body, &headers);
		r = send_once(body, headers, &status, &retry_after_ms, &what);

		if (r == SEND_CONFIRMED)
		{
			done = true;
			break;
		}
		if (relay_stop_requested)
			break;
		if (r == SEND_REFUSED && ++refusals >= opts.max_attempts)
		{
			if (opts.dead_letter == NULL)
				relay_fatal("stopping: %s refused event %lld after %d attempts "
							"(%s); the subscription stays before it",
							opts.to, events[0].id, refusals, what.data);
			http_write_dead_letter(events, n, ctx, status, &what);
			relay_log("%s refused event %lld after %d attempts (%s); written "
					  "to %s", opts.to, events[0].id, refusals, what.data,
					  opts.dead_letter);
			done = true;
			break;
		}
		wait_ms = http_retry_wait(&delay, retry_after_ms);
		relay_log("sending event %lld failed (%s); trying again in %.1f s",
				  events[0].id, what.data, wait_ms / 1000.0);
		relay_sleep_ms(wait_ms);
	}
	curl_slist_free_all(headers);
	buf_free(&what);
	return done;
}

/*
 * Set handle h up for requests to the target, keeping the start of each
 * answer's body in *kept.
 */
void
http_setup_handle(CURL *h, Buf *kept)
{
	curl_easy_setopt(h, CURLOPT_URL, opts.to);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, PROGNAME);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) opts.timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) opts.timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, kept);
	/* A redirect would send the events somewhere nobody named. */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
}

/* Set the sequential relay's handle up; a stop aborts its transfer. */
static void
setup_curl(void)
{
	if ((curl = curl_easy_init()) == NULL)
		relay_fatal("could not initialise libcurl");
	http_setup_handle(curl, &answer);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_transfer_progress);
}

/*
 * Run the sequential relay (--parallel 1) until a stop (0) or a permanent
 * failure (exits 1).  *src is the PostgreSQL side, replaced when
 * reconnected.
 */
static int
sequential_run(Source **src, const FormatContext *ctx)
{
	long long	position = 0;
	long long	confirmed;
	int64_t		last_ack_ms = relay_now_ms();
	RelayEvent *batch = calloc(opts.batch, sizeof(RelayEvent));
	Buf			body = {0};

	if (batch == NULL)
		relay_fatal("out of memory");
	setup_curl();

	while (source_position(*src, &position) != SOURCE_OK)
		if ((*src = source_reconnect(*src)) == NULL)
			return 0;
	confirmed = position;
	relay_log("relaying subscription \"%s\" from id %lld to %s",
			  opts.subscription, position, opts.to);

	while (!relay_stop_requested)
	{
		EventPage	page;
		int			n = 0;
		bool		stopped = false;

		if (source_read(*src, confirmed, confirmed == position, opts.page,
						&page) != SOURCE_OK)
		{
			if ((*src = source_reconnect(*src)) == NULL)
				break;
			continue;
		}
		for (int i = 0; i < page.count && !stopped; i++)
		{
			const RelayEvent *ev = &page.events[i];
			bool		last = i == page.count - 1;

			if (types_match(opts.types, ev->type))
				batch[n++] = *ev;
			else if (n == 0)
			{
				/* Passed over, and nothing before it is waiting. */
				confirmed = ev->id;
				progress_count(1);
			}
			if (n > 0 && (n == opts.batch || last))
			{
				if (!deliver(batch, n, ctx, &body))
					stopped = true;
				else
				{
					/* Everything up to this event, skipped ones included. */
					confirmed = ev->id;
					progress_count(n);
					n = 0;
				}
			}
			if (confirmed > position &&
				relay_now_ms() - last_ack_ms >= ACK_INTERVAL_MS)
			{
				if (source_ack(*src, confirmed, &position) != SOURCE_OK &&
					(*src = source_reconnect(*src)) == NULL)
					stopped = true;
				last_ack_ms = relay_now_ms();
			}
		}
		/* Acknowledge the page, or wait for more when there was none. */
		if (!stopped && confirmed > position)
		{
			if (source_ack(*src, confirmed, &position) != SOURCE_OK &&
				(*src = source_reconnect(*src)) == NULL)
				stopped = true;
			last_ack_ms = relay_now_ms();
		}
		else if (!stopped && page.count < opts.page)
		{
			bool		notified;

			if (source_wait(*src, IDLE_POLL_MS, -1, &notified) != SOURCE_OK &&
				(*src = source_reconnect(*src)) == NULL)
				stopped = true;
		}
		page_free(&page);
		progress_maybe_report(*src, position);
		if (stopped)
			break;
	}

	if (*src && confirmed > position)
		(void) source_ack(*src, confirmed, &position);
	relay_log("stopped at id %lld", position);
	curl_easy_cleanup(curl);
	buf_free(&body);
	free(batch);
	return 0;
}

/*
 * Run the relay to the webhook until a stop (0) or a permanent failure
 * (exits 1): one request at a time, or --parallel N at once
 * (http_parallel.c).  *src is the PostgreSQL side, replaced when
 * reconnected.
 */
int
http_relay_run(Source **src, const FormatContext *ctx)
{
	int			status;

	if (opts.header_file)
		load_header_file(opts.header_file);
	load_secret();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		relay_fatal("could not initialise libcurl");
	if (opts.parallel > 1)
		status = http_parallel_run(src, ctx);
	else
		status = sequential_run(src, ctx);
	curl_slist_free_all(extra_headers);
	curl_global_cleanup();
	return status;
}
