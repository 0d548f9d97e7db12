/*-------------------------------------------------------------------------
 *
 * nats_target.c
 *	  emissions_relay's NATS JetStream target: every event is published to
 *	  SUBJECT.<type> with Nats-Msg-Id "DATABASE:ID", many at a time, and
 *	  the subscription is acknowledged up to the last event whose publish
 *	  JetStream confirmed, with every event before it confirmed too.
 *
 * In flight.  Publishes are asynchronous (js_PublishMsgAsync); a ring of
 * slots, one per event in id order, records which are still pending.
 * libnats calls on_publish_ack() from a thread of its own for each answer;
 * it marks the event's slot confirmed or failed, under ring_lock.  The
 * slot is found by the message: answers come in the order of the
 * publishes, so it is nearly always the slot after the last one answered
 * (and a pending slot's message is alive, so no other has its address);
 * else by the id in its Nats-Msg-Id.  It wakes the main thread through a
 * pipe when that thread waits and the answers it waits for have come: when
 * the ring is full, as many as make room for an eighth of it (or the rest
 * of the page); when caught up, all those due; or a failure.
 * (Woken at every answer, the two threads would take turns at every
 * event.)  The main thread pops confirmed slots from the head: the
 * confirmed id only ever moves over an unbroken run.
 * Events that --types passes over take a slot already confirmed, so they
 * are acknowledged in their turn too.
 *
 * The pipeline.  The page after the one being published is always being
 * read, whatever room the ring has, and once it is in, the one after it:
 * a page waits (in libpq, or taken ahead) while the ring fills and
 * empties, and its events go out as room comes.  An acknowledgement of
 * the subscription is sent between two reads and its answer taken while
 * publishing (it commits, so it waits for a WAL flush).  So the broker
 * never idles while PostgreSQL reads or commits, nor PostgreSQL while the
 * broker stores.
 *
 * Failures.  A failed or timed-out publish, or a lost connection, stops
 * publishing.  The relay waits for the answers still due (up to the
 * timeout), takes back what is left unanswered, acknowledges what was
 * confirmed, drops the connection and makes a new one (backing off), then
 * publishes again from the first unconfirmed event.  Events the stream
 * did store without the relay seeing the answer come back with the same
 * Nats-Msg-Id and JetStream's duplicate detection drops them (within the
 * stream's duplicate window).  Since nothing is published on a new
 * connection before every publish of the old one is settled, and one
 * connection's messages are stored in the order sent, the stream keeps
 * the events in id order.  libnats' own reconnection is off for the same
 * reason: it would send messages buffered during the outage after ones
 * the server lost.  An answer that arrives for an older connection is
 * recognised by its generation (the handler's closure) and ignored.
 *
 * The stream.  --stream names it (by default the subject in upper case,
 * dots made underscores); --create-stream creates it when missing, with
 * file storage, subjects SUBJECT.> and a duplicate window of
 * --duplicate-window seconds; otherwise it must exist and take SUBJECT.>.
 *
 * Credentials and TLS come from the URL (nats://user:password@host,
 * nats://token@host, tls://host) or from files (--nats-creds, --nats-ca,
 * --nats-cert, --nats-key); the URL itself can come from a file or the
 * environment, so that nothing secret needs the command line.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "relay.h"

/* The longest a confirmed run waits before it is acknowledged. */
#define ACK_INTERVAL_MS 100

/*
 * While a page is published, the PostgreSQL connection is tended after
 * every this many events: what has arrived of the next page is taken in
 * (often enough that the server never waits for room in the socket for
 * long), and an acknowledgement's answer.
 */
#define READ_PROGRESS_EVERY 64

/* The longest a stopping relay waits for libnats' threads to end. */
#define CLOSE_WAIT_MS 5000

/* A slot's state. */
enum
{
	SLOT_PENDING,
	SLOT_CONFIRMED,
	SLOT_FAILED
};

typedef struct Slot
{
	long long	id;
	int			state;
	const natsMsg *msg;			/* while pending: the message published */
	int64_t		sent_ms;		/* when it was handed to libnats */
} Slot;

/* The ring of events in flight, shared with libnats' callback thread. */
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static Slot *ring;
static int	ring_cap;
static int	ring_head;
static int	ring_count;
static int	ring_pending;		/* slots still waiting for an answer */
static int	ring_next_answer;	/* the slot after the last one answered */
static long ring_generation;	/* bumped at every new connection */
static bool main_waiting;		/* the main thread waits on wake_pipe */
static int	wake_after;			/* ... for this many more answers */
static char failure[256];		/* the first failure's text, if any */
static int	failure_code;		/* its JetStream error code, if any */
static int	wake_pipe[2];

/* The connection and what it publishes to. */
static natsConnection *nc;
static jsCtx *js;
static bool js_published;		/* js has made an asynchronous publish */
static char *server_url;		/* the URL without the subject */
static char *subject;
static char *stream_name;

/* Wake the main thread if it waits.  Call with ring_lock held. */
static void
wake_main(void)
{
	if (main_waiting)
	{
		ssize_t		r = write(wake_pipe[1], "x", 1);

		(void) r;				/* a full pipe is awake already */
		main_waiting = false;
	}
}

/* Record the first failure's text.  Call with ring_lock held. */
static void
set_failure(const char *text, int code)
{
	if (failure[0] == '\0')
	{
		snprintf(failure, sizeof(failure), "%s", text);
		failure_code = code;
	}
	wake_main();
}

/* The slot of the event with this id, or NULL.  ring_lock held. */
static Slot *
find_slot(long long id)
{
	int			lo = 0,
				hi = ring_count - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		Slot	   *s = &ring[(ring_head + mid) % ring_cap];

		if (s->id == id)
			return s;
		if (s->id < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/*
 * The pending slot of the message msg answered, or NULL: the slot after
 * the last one answered when it is msg's, else the one its Nats-Msg-Id
 * names.  ring_lock held.
 */
static Slot *
answered_slot(const natsMsg *msg)
{
	Slot	   *next = &ring[ring_next_answer];
	const char *key = NULL;
	const char *colon;
	Slot	   *slot;

	if (next->state == SLOT_PENDING && next->msg == msg)
		return next;
	if (natsMsgHeader_Get((natsMsg *) msg, "Nats-Msg-Id", &key) != NATS_OK ||
		(colon = strrchr(key, ':')) == NULL)
		return NULL;
	slot = find_slot(strtoll(colon + 1, NULL, 10));
	return slot && slot->state == SLOT_PENDING ? slot : NULL;
}

/*
 * libnats' answer to one publish (on its own thread): mark the event's
 * slot confirmed or failed, and wake the main thread when it waits for
 * this answer (see the file's header).
 */
static void
on_publish_ack(jsCtx *ctx, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
			   void *closure)
{
	(void) ctx;
	pthread_mutex_lock(&ring_lock);
	if ((long) (intptr_t) closure == ring_generation)
	{
		Slot	   *slot = answered_slot(msg);

		if (slot)
		{
			const char *key = NULL;

			slot->msg = NULL;
			ring_pending--;
			ring_next_answer = (int) (slot - ring + 1) % ring_cap;
			if (pa != NULL)
			{
				slot->state = SLOT_CONFIRMED;
				if (wake_after > 0)
					wake_after--;
				if (wake_after == 0 || ring_pending == 0)
					wake_main();
			}
			else
			{
				char		text[200];

				slot->state = SLOT_FAILED;
				(void) natsMsgHeader_Get(msg, "Nats-Msg-Id", &key);
				snprintf(text, sizeof(text), "publishing event %s: %s%s%s",
						 key ? key : "?", natsStatus_GetText(pae->Err),
						 pae->ErrText ? ": " : "",
						 pae->ErrText ? pae->ErrText : "");
				set_failure(text, (int) pae->ErrCode);
			}
		}
	}
	pthread_mutex_unlock(&ring_lock);
	natsMsg_Destroy(msg);
}

/*
 * The connection was closed (its peer went away): wake the main thread,
 * unless it is a past connection (one the relay closed itself).
 */
static void
on_closed(natsConnection *conn, void *closure)
{
	(void) conn;
	pthread_mutex_lock(&ring_lock);
	if ((long) (intptr_t) closure == ring_generation)
		set_failure("the connection to the NATS server was lost", 0);
	pthread_mutex_unlock(&ring_lock);
}

/*
 * Pop the confirmed slots at the head: their last id goes to *confirmed,
 * their number to the progress count.  True when the head failed or a
 * failure was recorded.
 */
static bool
take_confirmed(long long *confirmed)
{
	bool		failed;
	long long	popped = 0;

	pthread_mutex_lock(&ring_lock);
	while (ring_count > 0 && ring[ring_head].state == SLOT_CONFIRMED)
	{
		*confirmed = ring[ring_head].id;
		ring_head = (ring_head + 1) % ring_cap;
		ring_count--;
		popped++;
	}
	failed = failure[0] != '\0';
	pthread_mutex_unlock(&ring_lock);
	progress_count(popped);
	return failed;
}

/*
 * Add a slot for each of the n events of the page from first on, under one
 * hold of the lock that libnats' callback thread takes for every answer:
 * pending for the events to publish, confirmed already for those --types
 * leaves out.  The caller made sure the ring has room for them.  Returns
 * the first one's slot; the others follow it (only this thread adds and
 * pops slots).
 */
static int
push_slots(const EventPage *page, int first, int n)
{
	int			start;
	int64_t		now = relay_now_ms();

	pthread_mutex_lock(&ring_lock);
	start = (ring_head + ring_count) % ring_cap;
	for (int i = first; i < first + n; i++)
	{
		Slot	   *slot = &ring[(ring_head + ring_count) % ring_cap];

		slot->id = page->events[i].id;
		slot->state = types_match(opts.types, page->events[i].type) ?
			SLOT_PENDING : SLOT_CONFIRMED;
		slot->msg = NULL;
		slot->sent_ms = now;
		ring_pending += slot->state == SLOT_PENDING;
		ring_count++;
	}
	pthread_mutex_unlock(&ring_lock);
	return start;
}

/*
 * Record a failure when the oldest publish still unanswered has waited
 * --timeout.  Answers come in the order of the publishes, so it is the
 * one to watch.  (libnats can time each publish itself, jsPubOptions'
 * MaxWait, but at a cost of about a microsecond per event: a record and a
 * copy of its reply subject each, and a timer that answers them all
 * again, as timed out, once the wait is over.)
 */
static void
check_overdue(void)
{
	int64_t		now = relay_now_ms();

	pthread_mutex_lock(&ring_lock);
	if (ring_count > 0 && ring[ring_head].state == SLOT_PENDING &&
		ring[ring_head].msg != NULL &&
		now - ring[ring_head].sent_ms >= opts.timeout_ms)
	{
		char		text[200];

		snprintf(text, sizeof(text), "publishing event %lld: no answer "
				 "from JetStream within %d s", ring[ring_head].id,
				 opts.timeout_ms / 1000);
		set_failure(text, 0);
	}
	pthread_mutex_unlock(&ring_lock);
}

/* Slots free in the ring. */
static int
ring_room(void)
{
	int			room;

	pthread_mutex_lock(&ring_lock);
	room = ring_cap - ring_count;
	pthread_mutex_unlock(&ring_lock);
	return room;
}

/*
 * Split --to (nats://[credentials@]host:port/SUBJECT, or tls://...) into
 * the server's URL and the subject; exit with a message when malformed.
 */
static void
parse_target(const char *to)
{
	const char *hostpart = strstr(to, "://");
	const char *slash;
	const char *t;

	if (hostpart == NULL || (slash = strchr(hostpart + 3, '/')) == NULL ||
		slash[1] == '\0')
		relay_fatal("--to \"nats://HOST:PORT/SUBJECT\" needs a subject after "
					"the server's address");
	server_url = strndup(to, slash - to);
	subject = strdup(slash + 1);
	if (server_url == NULL || subject == NULL)
		relay_fatal("out of memory");
	/* The subject's tokens: not empty, no wildcards, no spaces. */
	for (t = subject; *t; t++)
		if (*t == '*' || *t == '>' || *t == ' ' || *t == '\t' ||
			(*t == '.' && (t == subject || t[1] == '.' || t[1] == '\0')))
			relay_fatal("invalid NATS subject \"%s\": it takes tokens "
						"separated by single dots, without wildcards",
						subject);
	if (opts.stream)
		stream_name = strdup(opts.stream);
	else
	{
		stream_name = strdup(subject);
		for (char *c = stream_name; c && *c; c++)
			*c = (*c == '.') ? '_' : (char) toupper((unsigned char) *c);
	}
	if (stream_name == NULL)
		relay_fatal("out of memory");
}

/*
 * Whether the stream subject filter covers every subject SUBJECT.<type>,
 * that is SUBJECT.>: token by token, "*" matching one token and ">" the
 * rest.
 */
static bool
filter_covers(const char *filter, const char *subj)
{
	for (;;)
	{
		size_t		flen = strcspn(filter, ".");
		size_t		slen = strcspn(subj, ".");

		if (flen == 1 && filter[0] == '>')
			return true;
		if (*subj == '\0')
			/* Past the subject's tokens: only ">" covers what follows. */
			return strcmp(filter, ">") == 0;
		if (!(flen == 1 && filter[0] == '*') &&
			(flen != slen || strncmp(filter, subj, flen) != 0))
			return false;
		if (filter[flen] == '\0')
			return false;		/* the filter ends, SUBJECT.x goes on */
		filter += flen + 1;
		subj += slen;
		if (*subj == '.')
			subj++;
	}
}

/*
 * Check the stream (create it with --create-stream): true when it is
 * there and covers SUBJECT.>, false after a transient failure (JetStream
 * not ready yet); exits when the stream cannot do.
 */
static bool
ensure_stream(void)
{
	jsStreamInfo *si = NULL;
	jsErrCode	jerr = 0;
	natsStatus	s = js_GetStreamInfo(&si, js, stream_name, NULL, &jerr);
	char		wildcard[1024];
	bool		covered = false;

	snprintf(wildcard, sizeof(wildcard), "%s.>", subject);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
	{
		jsStreamConfig cfg;
		const char *subjects[1] = {wildcard};

		if (!opts.create_stream)
			relay_fatal("JetStream has no stream \"%s\"; create one that "
						"takes \"%s\" (or run with --create-stream, or name "
						"another with --stream)", stream_name, wildcard);
		jsStreamConfig_Init(&cfg);
		cfg.Name = stream_name;
		cfg.Subjects = subjects;
		cfg.SubjectsLen = 1;
		cfg.Storage = js_FileStorage;
		cfg.Duplicates = (int64_t) opts.duplicate_window_s * 1000000000LL;
		s = js_AddStream(&si, js, &cfg, NULL, &jerr);
		if (s != NATS_OK)
		{
			relay_log("could not create the stream \"%s\": %s (%d)",
					  stream_name, natsStatus_GetText(s), (int) jerr);
			if (s == NATS_NO_RESPONDERS || s == NATS_TIMEOUT)
				return false;
			relay_fatal("stopping: the stream cannot be created");
		}
		relay_log("created the stream \"%s\" for \"%s\"", stream_name,
				  wildcard);
		jsStreamInfo_Destroy(si);
		return true;
	}
	if (s != NATS_OK)
	{
		relay_log("could not look up the stream \"%s\": %s (%d)",
				  stream_name, natsStatus_GetText(s), (int) jerr);
		if (jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr)
			relay_fatal("stopping: JetStream is not enabled on the server");
		return false;
	}
	for (int i = 0; i < si->Config->SubjectsLen; i++)
		covered = covered || filter_covers(si->Config->Subjects[i], wildcard);
	jsStreamInfo_Destroy(si);
	if (!covered)
		relay_fatal("the stream \"%s\" does not take \"%s\"; add that subject "
					"to it or name another stream with --stream",
					stream_name, wildcard);
	return true;
}

/* Drop the connection (if any). */
static void
disconnect(void)
{
	if (js)
		jsCtx_Destroy(js);
	js = NULL;
	js_published = false;
	if (nc)
	{
		natsConnection_Close(nc);
		natsConnection_Destroy(nc);
	}
	nc = NULL;
}

/*
 * Connect and check the stream: true when ready; false after a transient
 * failure (logged); exits on a permanent one (refused credentials, bad
 * TLS files).
 */
static bool
connect_target(void)
{
	natsOptions *o = NULL;
	jsOptions	jo;
	natsStatus	s;

	pthread_mutex_lock(&ring_lock);
	ring_generation++;
	failure[0] = '\0';
	failure_code = 0;
	pthread_mutex_unlock(&ring_lock);

	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, server_url);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, PROGNAME);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(o, false);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, opts.timeout_ms);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(o, on_closed,
									(void *) (intptr_t) ring_generation);
	if (s == NATS_OK && opts.nats_creds)
		s = natsOptions_SetUserCredentialsFromFiles(o, opts.nats_creds, NULL);
	if (s == NATS_OK && (opts.nats_ca || strncmp(server_url, "tls:", 4) == 0))
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && opts.nats_ca)
		s = natsOptions_LoadCATrustedCertificates(o, opts.nats_ca);
	if (s == NATS_OK && opts.nats_cert)
		s = natsOptions_LoadCertificatesChain(o, opts.nats_cert, opts.nats_key);
	if (s != NATS_OK)
		relay_fatal("invalid NATS connection settings: %s",
					nats_GetLastError(NULL));
	s = natsConnection_Connect(&nc, o);
	natsOptions_Destroy(o);
	if (s != NATS_OK)
	{
		relay_log("could not connect to the NATS server: %s",
				  nats_GetLastError(NULL));
		nc = NULL;
		if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED ||
			s == NATS_SSL_ERROR)
			relay_fatal("stopping: the connection to the NATS server cannot "
						"be made (its credentials or its TLS set-up)");
		return false;
	}
	jsOptions_Init(&jo);
	jo.Wait = opts.timeout_ms;
	jo.PublishAsync.MaxPending = opts.max_in_flight;
	jo.PublishAsync.AckHandler = on_publish_ack;
	jo.PublishAsync.AckHandlerClosure = (void *) (intptr_t) ring_generation;
	if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
		relay_fatal("could not make a JetStream context: %s",
					nats_GetLastError(NULL));
	if (!ensure_stream())
	{
		disconnect();
		return false;
	}
	return true;
}

/* Connect, backing off between tries; false when a stop comes first. */
static bool
connect_with_backoff(void)
{
	int64_t		delay = 0;

	while (!relay_stop_requested)
	{
		if (connect_target())
			return true;
		delay = relay_backoff_next(delay);
		relay_sleep_ms(delay);
	}
	return false;
}

/*
 * Publish one event, whose slot is slot, to SUBJECT.<type>; false when the
 * publish could not even be handed to the library (its slot is then
 * marked failed).
 */
static bool
publish_event(const RelayEvent *ev, Slot *slot, const FormatContext *ctx,
			  Buf *body, Buf *subj, Buf *key)
{
	natsMsg    *msg = NULL;
	jsPubOptions po;
	natsStatus	s;

	buf_reset(body);
	format_event(body, ev, opts.format, ctx);
	buf_reset(subj);
	buf_puts(subj, subject);
	buf_puts(subj, ".");
	/* Dots of the type split tokens; an empty token would be invalid. */
	for (const char *t = ev->type; *t; t++)
	{
		if (*t == '.' && (t == ev->type || t[1] == '.' || t[1] == '\0'))
			buf_puts(subj, t == ev->type ? "_." : "._");
		else
			buf_append(subj, t, 1);
	}
	buf_reset(key);
	format_event_key(key, ev, ctx);

	jsPubOptions_Init(&po);
	po.MsgId = key->data;
	s = natsMsg_Create(&msg, subj->data, NULL, body->data, (int) body->len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Content-Type",
							  opts.format == FORMAT_CLOUDEVENTS ?
							  "application/cloudevents+json" :
							  "application/json");
	if (s == NATS_OK)
	{
		/* The answer finds its slot by the message (answered_slot). */
		pthread_mutex_lock(&ring_lock);
		slot->msg = msg;
		pthread_mutex_unlock(&ring_lock);
		s = js_PublishMsgAsync(js, &msg, &po);
		js_published = true;
	}
	natsMsg_Destroy(msg);
	if (s == NATS_MAX_PAYLOAD)
		relay_fatal("event %lld (%zu bytes) is larger than the NATS server's "
					"max_payload; raise it, or keep the event smaller",
					ev->id, body->len);
	if (s != NATS_OK)
	{
		char		text[200];

		snprintf(text, sizeof(text), "publishing event %s: %s", key->data,
				 nats_GetLastError(NULL));
		pthread_mutex_lock(&ring_lock);
		slot->state = SLOT_FAILED;
		slot->msg = NULL;
		ring_pending--;
		set_failure(text, 0);
		pthread_mutex_unlock(&ring_lock);
		return false;
	}
	return true;
}

/*
 * Settle every publish of the current connection: wait for the answers
 * still due (up to the timeout), take back the unanswered ones, pop what
 * was confirmed into *confirmed, and empty the ring.
 */
static void
settle_in_flight(long long *confirmed)
{
	/*
	 * Only a context that has published: libnats 3.4's pending list does
	 * not exist before the first asynchronous publish, and asking for it
	 * then crashes (a relay stopped before it published anything).
	 */
	if (js && js_published)
	{
		jsPubOptions po;
		natsMsgList pending;

		/* On a closed connection, no answer can come any more. */
		jsPubOptions_Init(&po);
		po.MaxWait = opts.timeout_ms;
		if (natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED)
			(void) js_PublishAsyncComplete(js, &po);
		if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK)
			natsMsgList_Destroy(&pending);
	}
	(void) take_confirmed(confirmed);
	pthread_mutex_lock(&ring_lock);
	ring_generation++;			/* late answers are for a past connection */
	ring_head = ring_count = ring_pending = ring_next_answer = 0;
	pthread_mutex_unlock(&ring_lock);
}

/*
 * The relay's side of the PostgreSQL connection.  One query at a time is
 * in flight on it: the read of the next page, or an acknowledgement.
 * Neither is waited for while there is something to publish: the next
 * page is read while this one is published, and an acknowledgement is
 * answered meanwhile too (it commits, so it takes a WAL flush).
 */
typedef enum SourceQuery
{
	QUERY_NONE,
	QUERY_READ,
	QUERY_ACK
} SourceQuery;

typedef struct RelayState
{
	Source	  **src;
	SourceQuery query;			/* in flight on the connection */
	long long	position;		/* the subscription's position */
	long long	confirmed;		/* confirmed without a gap */
	long long	cursor;			/* the last event published (or skipped) */
	long long	read_cursor;	/* the last event of the pages read */
	int			read_max;		/* the size of the read in flight */
	bool		caught_up;		/* the last read came back short */
	int64_t		last_ack_ms;
	EventPage	page;			/* being published */
	int			next;			/* its next event to publish */
	EventPage	ahead;			/* the next page, read already */
	bool		have_ahead;
} RelayState;

/*
 * The connection was lost: make a new one.  A read in flight is sent
 * again (from read_cursor) by the next pass.  False when a stop came
 * first.
 */
static bool
source_lost(RelayState *st)
{
	st->query = QUERY_NONE;
	*st->src = source_reconnect(*st->src);
	return *st->src != NULL;
}

/*
 * Acknowledge the subscription up to confirmed, waiting for the answer,
 * when it is ahead of the position; reconnects to PostgreSQL when the
 * connection was lost (the next pass acknowledges again).  The connection
 * must be free.  False when a stop came first.
 */
static bool
ack_now(RelayState *st)
{
	if (st->confirmed <= st->position ||
		source_ack(*st->src, st->confirmed, &st->position) == SOURCE_OK)
		return true;
	return source_lost(st);
}

/*
 * Take the result of the read in flight into *page (waiting for it), and
 * move the read cursor past it.  *taken says whether a page came: not when
 * the connection was lost, which is made again (a later pass sends the
 * read again, from the same cursor).  False when a stop came first.
 */
static bool
take_read(RelayState *st, EventPage *page, bool *taken)
{
	st->query = QUERY_NONE;
	*taken = false;
	if (source_read_finish(*st->src, page) != SOURCE_OK)
		return source_lost(st);
	*taken = true;
	st->caught_up = page->count < st->read_max;
	if (page->count > 0)
		st->read_cursor = page->events[page->count - 1].id;
	return true;
}

/*
 * Tend the connection without waiting: take what has come in, a read (to
 * be published after the page being published: one page is held ahead at
 * most) or the answer of an acknowledgement; once the connection is free,
 * send what is due, the acknowledgement first (a page's worth confirmed,
 * an idle moment, or now and then), else the read of the page after the
 * ones read, unless the last read came back short.  False when a stop
 * came first.
 */
static bool
tend_source(RelayState *st)
{
	if (st->query == QUERY_READ)
	{
		if (st->have_ahead)
		{
			source_read_progress(*st->src);
			return true;
		}
		if (source_busy(*st->src))
			return true;
		/* The read is in: take it, and the connection is free. */
		if (!take_read(st, &st->ahead, &st->have_ahead))
			return false;
	}
	if (st->query == QUERY_ACK)
	{
		if (source_busy(*st->src))
			return true;
		st->query = QUERY_NONE;
		if (source_ack_finish(*st->src, &st->position) != SOURCE_OK)
			return source_lost(st);
	}
	progress_maybe_report(*st->src, st->position);
	if (st->confirmed > st->position &&
		(st->confirmed - st->position >= opts.page ||
		 st->cursor == st->confirmed ||
		 relay_now_ms() - st->last_ack_ms >= ACK_INTERVAL_MS))
	{
		st->last_ack_ms = relay_now_ms();
		if (source_ack_start(*st->src, st->confirmed) != SOURCE_OK)
			return source_lost(st);
		st->query = QUERY_ACK;
		return true;
	}
	if (!st->caught_up)
	{
		st->read_max = opts.page;
		if (source_read_start(*st->src, st->read_cursor,
							  st->read_cursor == st->position,
							  st->read_max) != SOURCE_OK)
			return source_lost(st);
		st->query = QUERY_READ;
	}
	return true;
}

/*
 * The page published is done with: the next one takes its place, the one
 * read ahead if there is one, else the one being read (waited for).  When
 * that read is lost with the connection, the page stays as it is until a
 * later pass has read it again.  False when a stop came first.
 */
static bool
next_page(RelayState *st)
{
	EventPage	page;
	bool		taken;

	if (st->have_ahead)
	{
		page = st->ahead;
		memset(&st->ahead, 0, sizeof(st->ahead));
		st->have_ahead = false;
	}
	else if (!take_read(st, &page, &taken))
		return false;
	else if (!taken)
		return true;
	page_free(&st->page);
	st->page = page;
	st->next = 0;
	return true;
}

/*
 * Let the query in flight end, dropping its answer, so that the
 * connection is free.  False when a stop came first.
 */
static bool
drop_query(RelayState *st)
{
	EventPage	unused;
	long long	position;

	if (st->query == QUERY_READ)
	{
		st->query = QUERY_NONE;
		if (source_read_finish(*st->src, &unused) != SOURCE_OK)
			return source_lost(st);
		page_free(&unused);
	}
	else if (st->query == QUERY_ACK)
	{
		st->query = QUERY_NONE;
		if (source_ack_finish(*st->src, &position) != SOURCE_OK)
			return source_lost(st);
		st->position = position;
	}
	return true;
}

/*
 * Publish the page's events from st->next on, as many as the ring has room
 * for, tending the connection every READ_PROGRESS_EVERY events (so that
 * the next page keeps coming and an acknowledgement's answer is taken).
 * False when a stop came first.
 */
static bool
publish_some(RelayState *st, const FormatContext *ctx, Buf *body, Buf *subj,
			 Buf *key)
{
	int			n = st->page.count - st->next;
	int			room = ring_room();
	int			slot;

	if (n > room)
		n = room;
	slot = push_slots(&st->page, st->next, n);
	for (int i = 0; i < n; i++)
	{
		const RelayEvent *ev = &st->page.events[st->next];

		if (i % READ_PROGRESS_EVERY == READ_PROGRESS_EVERY - 1 &&
			!tend_source(st))
			return false;
		if (types_match(opts.types, ev->type) &&
			!publish_event(ev, &ring[(slot + i) % ring_cap], ctx, body, subj,
						   key))
			return true;		/* the next pass sees the failure */
		st->cursor = ev->id;
		st->next++;
	}
	return true;
}

/*
 * Wait for answers, a notification, the connection's answer or the
 * fallback poll: when the ring is full, until there is room for a chunk
 * of the page; when caught up, until every answer due has come.
 */
static bool
wait_for_work(RelayState *st)
{
	bool		notified = false;
	bool		publishing = st->next < st->page.count;
	char		drain[64];

	pthread_mutex_lock(&ring_lock);
	main_waiting = !(ring_count > 0 &&
					 ring[ring_head].state != SLOT_PENDING) &&
		failure[0] == '\0';
	if (publishing)
	{
		int			want = st->page.count - st->next;

		if (want > ring_cap / 8)
			want = ring_cap / 8 > 0 ? ring_cap / 8 : 1;
		wake_after = want - (ring_cap - ring_count);
	}
	else
		wake_after = INT_MAX;
	pthread_mutex_unlock(&ring_lock);
	if (main_waiting &&
		source_wait(*st->src, st->cursor == st->confirmed ? IDLE_POLL_MS :
					ACK_INTERVAL_MS, wake_pipe[0], &notified) != SOURCE_OK &&
		!source_lost(st))
		return false;
	pthread_mutex_lock(&ring_lock);
	main_waiting = false;
	pthread_mutex_unlock(&ring_lock);
	while (read(wake_pipe[0], drain, sizeof(drain)) > 0)
		;
	if (notified || (!publishing && st->cursor == st->confirmed))
		st->caught_up = false;
	return true;
}

/*
 * A failure: settle what is in flight, acknowledge what was confirmed,
 * connect again, and publish again from the first unconfirmed event.
 * False when a stop came first.
 */
static bool
recover(RelayState *st)
{
	char		text[256];
	int			code;

	pthread_mutex_lock(&ring_lock);
	snprintf(text, sizeof(text), "%s", failure[0] ? failure :
			 "the connection to the NATS server was lost");
	code = failure_code;
	pthread_mutex_unlock(&ring_lock);
	if (code == JSStreamMessageExceedsMaximumErr)
		relay_fatal("%s; stopping: raise the stream's max_msg_size", text);
	settle_in_flight(&st->confirmed);
	relay_log("%s; publishing again after id %lld", text, st->confirmed);
	disconnect();
	page_free(&st->page);
	page_free(&st->ahead);
	st->have_ahead = false;
	st->next = 0;
	st->cursor = st->read_cursor = st->confirmed;
	st->caught_up = false;
	return drop_query(st) && ack_now(st) && connect_with_backoff();
}

/*
 * Run the relay to JetStream until a stop (0) or a permanent failure
 * (exits 1).  *src is the PostgreSQL side, replaced when reconnected.
 */
int
nats_relay_run(Source **src, const FormatContext *ctx)
{
	RelayState	st = {0};
	Buf			body = {0},
				subj = {0},
				key = {0};

#ifdef M_MXFAST

	/*
	 * No fastbins in glibc's allocator.  libnats makes and frees several
	 * small blocks per event on three threads, while libpq takes a page's
	 * rows in 2 kB blocks; glibc consolidates every fastbin before each
	 * such block is handed out, which was 7% of the relay's time in
	 * bench/relay.sh.  Without fastbins the relay used 0.3 us less CPU per
	 * event (and relayed 3-4% more) in each of four pairs of runs.
	 */
	(void) mallopt(M_MXFAST, 0);
#endif
	parse_target(opts.to);
	ring_cap = opts.max_in_flight;
	ring = calloc(ring_cap, sizeof(Slot));
	if (ring == NULL || pipe(wake_pipe) != 0 ||
		fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK) != 0)
		relay_fatal("could not set up: %s", strerror(errno));

	st.src = src;
	while (source_position(*src, &st.position) != SOURCE_OK)
		if ((*src = source_reconnect(*src)) == NULL)
			return 0;
	st.confirmed = st.cursor = st.read_cursor = st.position;
	st.last_ack_ms = relay_now_ms();
	if (!connect_with_backoff())
		return 0;
	relay_log("relaying subscription \"%s\" from id %lld to %s (stream \"%s\")",
			  opts.subscription, st.position, opts.to, stream_name);

	while (!relay_stop_requested)
	{
		bool		ok;

		check_overdue();
		if (take_confirmed(&st.confirmed) ||
			natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED)
			ok = recover(&st);
		else if (!tend_source(&st))
			ok = false;
		else if (st.next < st.page.count && ring_room() > 0)
			ok = publish_some(&st, ctx, &body, &subj, &key);
		else if (st.next >= st.page.count &&
				 (st.have_ahead || st.query == QUERY_READ))
			ok = next_page(&st);
		else if (st.next >= st.page.count && st.query == QUERY_NONE &&
				 !st.caught_up)
			continue;			/* reconnected: the read is sent again */
		else
			ok = wait_for_work(&st);
		if (!ok)
			break;
	}

	/* Stopping: settle what is in flight and acknowledge it. */
	if (*src)
		(void) drop_query(&st);
	page_free(&st.page);
	page_free(&st.ahead);
	settle_in_flight(&st.confirmed);
	if (*src && st.confirmed > st.position)
		(void) source_ack(*src, st.confirmed, &st.position);
	disconnect();

	/*
	 * Let libnats' own threads (the callbacks of the closed connection,
	 * its timers) end before the process exits, so that none runs while
	 * the process is torn down.
	 */
	(void) nats_CloseAndWait(CLOSE_WAIT_MS);
	relay_log("stopped at id %lld", st.position);
	buf_free(&body);
	buf_free(&subj);
	buf_free(&key);
	return 0;
}
