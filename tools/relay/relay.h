/*-------------------------------------------------------------------------
 *
 * relay.h
 *	  Declarations shared by the parts of emissions_relay: the options,
 *	  an event as read from a subscription, logging, a growable text
 *	  buffer, the event formats, the PostgreSQL source and the two targets.
 *
 * emissions_relay is one thread of its own (libnats runs its own threads
 * for the connection and for publish acknowledgments; nats_target.c is the
 * only part that shares data with them).  Everything else here is called
 * from the main thread only.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_RELAY_H
#define EMISSIONS_RELAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libpq-fe.h"

#define PROGNAME "emissions_relay"

/*
 * How long an idle relay waits for a notification before it reads
 * anyway: a fallback for a lost or missing notification, never the way
 * events normally arrive (those wake it through LISTEN at once).
 */
#define IDLE_POLL_MS 5000

/* How events are written out. */
typedef enum RelayFormat
{
	FORMAT_ENVELOPE,			/* the delivery envelope, with its payload */
	FORMAT_CLOUDEVENTS			/* CloudEvents 1.0 JSON (structured mode) */
} RelayFormat;

/* The command line, parsed by main.c. */
typedef struct RelayOptions
{
	const char *conninfo;		/* -d: libpq connection string or name */
	const char *subscription;	/* --subscription */
	char	   *to;				/* --to, --to-file or EMISSIONS_RELAY_TO */
	const char *channel;		/* LISTEN channel for wake-ups */
	RelayFormat format;
	const char *source;			/* CloudEvents source; NULL: /emissions/DB */
	char	  **types;			/* --types globs, NULL-terminated; NULL: all */
	int			page;			/* events per read */
	int			max_in_flight;	/* NATS: unconfirmed publishes at most */
	int			batch;			/* HTTP: events per request (1: one each) */
	int			parallel;		/* HTTP: requests in flight at most */
	int			timeout_ms;		/* a request's or a publish's time limit */
	int			max_attempts;	/* tries of a refused HTTP request */
	bool		progress;		/* print rate and lag every few seconds */
	/* NATS JetStream */
	const char *stream;			/* stream name; NULL: from the subject */
	bool		create_stream;
	int			duplicate_window_s; /* of a stream created here */
	const char *nats_creds;		/* credentials file (JWT and seed) */
	const char *nats_ca;		/* CA certificates (PEM) */
	const char *nats_cert;		/* client certificate chain (PEM) */
	const char *nats_key;		/* its private key (PEM) */
	/* HTTP */
	const char *header_file;	/* "Name: value" lines */
	const char *secret_file;	/* HMAC secret, read from a file */
	const char *secret_env;		/* or from this environment variable */
	const char *dead_letter;	/* file of events refused for good */
} RelayOptions;

extern RelayOptions opts;

/*
 * One event read from the subscription.  The strings point into the
 * PGresult of the page that holds it and live as long as that page.
 * payload and metadata are JSON text; emitted_at is a JSON string (with
 * its quotes, ISO 8601 in UTC); traceparent and tracestate are NULL when
 * the metadata has none.
 */
typedef struct RelayEvent
{
	long long	id;
	const char *type;
	const char *payload;
	const char *metadata;
	int			payload_len;	/* their lengths */
	int			metadata_len;
	const char *emitted_at;
	const char *txid;
	const char *traceparent;
	const char *tracestate;
} RelayEvent;

/* Room for an emitted_at in JSON's form, quotes included. */
#define TIME_TEXT_SIZE 48

/*
 * A page of events in id order, owning the PGresult they point into and
 * the JSON forms of their timestamps.
 */
typedef struct EventPage
{
	RelayEvent *events;
	int			count;
	int			cap;			/* of events and times */
	PGresult   *res;
	char	   *times;
} EventPage;

/* log.c: timestamped messages on stderr, signals, time */
extern volatile sig_atomic_t relay_stop_requested;
extern void relay_log(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void relay_fatal(const char *fmt,...)
			__attribute__((format(printf, 1, 2), noreturn));
extern void relay_install_signal_handlers(void);
extern int64_t relay_now_ms(void);
extern void relay_sleep_ms(int64_t ms);
extern int64_t relay_backoff_next(int64_t current);

/* buf.c: a growable text buffer, and JSON helpers */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

extern void buf_reset(Buf *b);
extern void buf_free(Buf *b);
extern void buf_append(Buf *b, const char *s, size_t n);
extern void buf_puts(Buf *b, const char *s);
extern void buf_printf(Buf *b, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern void buf_put_int(Buf *b, long long v);
extern void buf_json_string(Buf *b, const char *s);
extern char *relay_read_file(const char *path, size_t *len);

/* format.c: what an event looks like outside */
typedef struct FormatContext
{
	const char *database;		/* the database the events come from */
	const char *source;			/* CloudEvents source */
} FormatContext;

extern void format_event(Buf *b, const RelayEvent *ev, RelayFormat format,
						 const FormatContext *ctx);
extern void format_event_key(Buf *b, const RelayEvent *ev,
							 const FormatContext *ctx);
extern bool types_match(char *const *globs, const char *type);
extern bool glob_match(const char *glob, const char *type);

/* source.c: the subscription in PostgreSQL */
typedef struct Source Source;

typedef enum SourceResult
{
	SOURCE_OK,
	SOURCE_LOST					/* connection lost: reconnect */
} SourceResult;

extern Source *source_connect(void);
extern void source_close(Source *src);
extern const char *source_database(Source *src);
extern SourceResult source_position(Source *src, long long *position);
extern SourceResult source_read(Source *src, long long after_id,
								bool at_position, int max, EventPage *page);
extern SourceResult source_read_start(Source *src, long long after_id,
									  bool at_position, int max);
extern void source_read_progress(Source *src);
extern SourceResult source_read_finish(Source *src, EventPage *page);
extern void page_free(EventPage *page);
extern SourceResult source_ack(Source *src, long long id,
							   long long *position);
extern SourceResult source_ack_start(Source *src, long long id);
extern SourceResult source_ack_finish(Source *src, long long *position);
extern bool source_busy(Source *src);
extern SourceResult source_last_event(Source *src, long long *last);
extern int	source_socket(Source *src);
extern SourceResult source_wait(Source *src, int timeout_ms, int extra_fd,
							   bool *notified);
extern Source *source_reconnect(Source *src);

/* progress.c: --progress reports */
extern void progress_init(void);
extern void progress_count(long long events);
extern void progress_maybe_report(Source *src, long long position);

/* The two targets, each running the relay until a stop or a failure. */
extern int nats_relay_run(Source **src, const FormatContext *ctx);
extern int http_relay_run(Source **src, const FormatContext *ctx);

#endif							/* EMISSIONS_RELAY_H */
