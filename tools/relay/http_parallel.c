/*-------------------------------------------------------------------------
 *
 * http_parallel.c
 *	  emissions_relay's webhook target with --parallel N (N > 1): up to N
 *	  requests in flight at once, each one event or one --batch array,
 *	  over keep-alive connections driven by libcurl's multi interface.
 *
 * Requests start in id order, but a later one may be answered, or retried,
 * before an earlier one: the receiver may get the events out of id order.
 * That is what the user accepts by asking for this mode.  Everything else
 * is as in http_target.c, per request: the same bodies and headers (the
 * Idempotency-Key stays the same at every attempt, the signature is made
 * again with the attempt's time, as docs/relay.md promises), the same retries with backoff or after Retry-After, and after --max-attempts
 * refusals the same stop, or the same dead letter.
 *
 * A "unit" is what one request covers: a run of consecutive events of
 * the stream (with the events --types passes over in it or after it).
 * Units are queued in id order and marked done once the receiver
 * confirmed them (2xx) or they were dead-lettered.  The subscription is
 * acknowledged up to the end of the longest done prefix of the queue, so
 * the acknowledgement never passes an event that was not confirmed, however
 * far the later requests got: a kill at any moment loses nothing.  A unit
 * waiting for its next attempt keeps its slot (its request), while the
 * other slots go on sending.
 *
 * Events point into the page (PGresult) they were read in; a page is kept
 * until every unit of it is done, and at most MAX_PAGES_HELD pages are
 * kept, so a request retried for long holds the relay back by that many
 * pages at most.
 *
 * On SIGINT or SIGTERM no request starts any more (nor a retry); those in
 * flight are awaited (each ends within --timeout), then the done prefix is
 * acknowledged.
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* Pages read ahead of the acknowledged position and kept, at most. */
#define MAX_PAGES_HELD 4

/* A page whose events are, or may still be, in requests. */
typedef struct HeldPage
{
	EventPage	page;
	int			next;			/* its first event not yet taken */
	int			undone;			/* its units not done yet */
	struct HeldPage *prev;
	struct HeldPage *next_page;
} HeldPage;

/* What one request covers. */
typedef struct Unit
{
	const RelayEvent *events;	/* its events, in its page */
	int			n;
	long long	upto;			/* done: confirmed up to this id */
	HeldPage   *page;
	bool		done;
} Unit;

/* A request slot: one easy handle, and the request it is sending. */
typedef struct Slot
{
	CURL	   *easy;
	long long	unit;			/* the unit's number; -1: free */
	Buf			body;
	struct curl_slist *headers;
	Buf			answer;			/* the start of the answer's body */
	Buf			what;			/* the last failure, for the log */
	int			refusals;
	int64_t		backoff;
	int64_t		retry_at;		/* > 0: waiting for its next attempt */
} Slot;

/* The relay's state, for the functions below. */
typedef struct Parallel
{
	Source	  **src;
	const FormatContext *ctx;
	CURLM	   *multi;
	Slot	   *slots;
	int			in_multi;		/* handles added to the multi handle */
	/* The queue of units, numbered from 0 in id order. */
	Unit	   *units;
	int			head;			/* index of the oldest unit in units[] */
	int			count;
	int			cap;
	long long	head_number;	/* number of units[head] */
	/* Pages, oldest first; the newest is the one events are taken from. */
	HeldPage   *oldest;
	HeldPage   *newest;
	int			pages;
	long long	read_after;		/* the last event id read */
	bool		at_end;			/* the last read found no full page */
	int64_t		at_end_since;
	long long	confirmed;		/* everything up to here is done */
	long long	position;		/* the subscription's, as last seen */
	int64_t		last_ack_ms;
} Parallel;

/* The unit numbered number (still in the queue). */
static Unit *
unit_at(Parallel *p, long long number)
{
	return &p->units[p->head + (int) (number - p->head_number)];
}

/* Append a unit to the queue; return its number. */
static long long
unit_push(Parallel *p, const Unit *unit)
{
	if (p->head + p->count == p->cap)
	{
		if (p->head > 0)
		{
			memmove(p->units, p->units + p->head, p->count * sizeof(Unit));
			p->head = 0;
		}
		else
		{
			p->cap = p->cap ? p->cap * 2 : 256;
			p->units = realloc(p->units, p->cap * sizeof(Unit));
			if (p->units == NULL)
				relay_fatal("out of memory");
		}
	}
	p->units[p->head + p->count] = *unit;
	p->count++;
	return p->head_number + p->count - 1;
}

/* Free a held page once every event of it was taken and every unit done. */
static void
page_release_if_done(Parallel *p, HeldPage *hp)
{
	if (hp->undone > 0 || hp->next < hp->page.count)
		return;
	if (hp->prev)
		hp->prev->next_page = hp->next_page;
	else
		p->oldest = hp->next_page;
	if (hp->next_page)
		hp->next_page->prev = hp->prev;
	else
		p->newest = hp->prev;
	page_free(&hp->page);
	free(hp);
	p->pages--;
}

/* Mark a unit done: count its events, release its page when it can go. */
static void
unit_done(Parallel *p, Unit *unit)
{
	unit->done = true;
	unit->events = NULL;
	progress_count(unit->n);
	unit->page->undone--;
	page_release_if_done(p, unit->page);
}

/* Drop the done units at the head of the queue, moving p->confirmed. */
static void
advance_confirmed(Parallel *p)
{
	while (p->count > 0 && p->units[p->head].done)
	{
		p->confirmed = p->units[p->head].upto;
		p->head++;
		p->head_number++;
		p->count--;
	}
	if (p->count == 0)
		p->head = 0;
}

/*
 * Acknowledge the subscription up to p->confirmed when it moved and it is
 * time (or always when force); false when PostgreSQL was lost and a stop
 * came before a new connection.
 */
static bool
maybe_ack(Parallel *p, bool force)
{
	if (p->confirmed <= p->position ||
		(!force && relay_now_ms() - p->last_ack_ms < ACK_INTERVAL_MS))
		return true;
	p->last_ack_ms = relay_now_ms();
	if (source_ack(*p->src, p->confirmed, &p->position) != SOURCE_OK &&
		(*p->src = source_reconnect(*p->src)) == NULL)
		return false;
	return true;
}

/*
 * Read the next page into a new held page.  False when PostgreSQL was
 * lost and a stop came before a new connection.
 */
static bool
read_page(Parallel *p)
{
	HeldPage   *hp = calloc(1, sizeof(HeldPage));

	if (hp == NULL)
		relay_fatal("out of memory");
	if (source_read(*p->src, p->read_after, p->read_after == p->position,
					opts.page, &hp->page) != SOURCE_OK)
	{
		free(hp);
		return (*p->src = source_reconnect(*p->src)) != NULL;
	}
	if (hp->page.count < opts.page)
	{
		p->at_end = true;
		p->at_end_since = relay_now_ms();
	}
	if (hp->page.count == 0)
	{
		page_free(&hp->page);
		free(hp);
		return true;
	}
	p->read_after = hp->page.events[hp->page.count - 1].id;
	hp->prev = p->newest;
	if (p->newest)
		p->newest->next_page = hp;
	else
		p->oldest = hp;
	p->newest = hp;
	p->pages++;
	return true;
}

/*
 * Take the next unit from the newest page: up to --batch events that
 * --types forwards, with the others passed over (acknowledged with what
 * comes before them).  False when the page has no such event left.
 */
static bool
take_unit(Parallel *p, Unit *unit)
{
	HeldPage   *hp = p->newest;

	memset(unit, 0, sizeof(Unit));
	if (hp == NULL)
		return false;
	while (hp->next < hp->page.count && unit->n < opts.batch)
	{
		const RelayEvent *ev = &hp->page.events[hp->next++];

		if (types_match(opts.types, ev->type))
		{
			if (unit->n == 0)
				unit->events = ev;
			unit->n++;
			unit->upto = ev->id;
		}
		else if (unit->n > 0)
			unit->upto = ev->id;
		else
		{
			/* Passed over: done once everything before it is. */
			if (p->count > 0)
				p->units[p->head + p->count - 1].upto = ev->id;
			else
				p->confirmed = ev->id;
			progress_count(1);
		}
	}
	if (unit->n == 0)
	{
		page_release_if_done(p, hp);
		return false;
	}
	unit->page = hp;
	hp->undone++;
	return true;
}

/*
 * Start (or start again) the request of slot s, built anew so that its
 * signature has the time of this attempt.
 */
static void
start_attempt(Parallel *p, Slot *s)
{
	Unit	   *unit = unit_at(p, s->unit);
	CURLMcode	rc;

	curl_slist_free_all(s->headers);
	s->headers = NULL;
	http_build_request(unit->events, unit->n, p->ctx, &s->body, &s->headers);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body.data);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t) s->body.len);
	buf_reset(&s->answer);
	s->retry_at = 0;
	rc = curl_multi_add_handle(p->multi, s->easy);
	if (rc != CURLM_OK)
		relay_fatal("could not start a request: %s", curl_multi_strerror(rc));
	p->in_multi++;
}

/* Put the next unit in free slot s; false when there is none yet. */
static bool
start_unit(Parallel *p, Slot *s)
{
	Unit		unit;

	while (!take_unit(p, &unit))
	{
		if (p->at_end || p->pages >= MAX_PAGES_HELD)
			return false;
		if (!read_page(p) || relay_stop_requested)
			return false;
	}
	s->unit = unit_push(p, &unit);
	s->refusals = 0;
	s->backoff = 0;
	start_attempt(p, s);
	return true;
}

/*
 * Handle the end of slot s's transfer: the unit is done (confirmed or
 * dead-lettered), waits for its next attempt, or stops the relay.  After
 * a stop request a unit not confirmed is left undone (and unacknowledged).
 */
static void
finish_attempt(Parallel *p, Slot *s, CURLcode rc)
{
	Unit	   *unit = unit_at(p, s->unit);
	long		status;
	int64_t		retry_after_ms;
	int64_t		wait_ms;
	SendResult	r;

	curl_multi_remove_handle(p->multi, s->easy);
	p->in_multi--;
	r = http_classify(s->easy, rc, &s->answer, &status, &retry_after_ms,
					  &s->what);
	if (r == SEND_CONFIRMED)
	{
		unit_done(p, unit);
		s->unit = -1;
		return;
	}
	if (relay_stop_requested)
	{
		s->unit = -1;
		return;
	}
	if (r == SEND_REFUSED && ++s->refusals >= opts.max_attempts)
	{
		if (opts.dead_letter == NULL)
		{
			advance_confirmed(p);
			(void) maybe_ack(p, true);
			relay_fatal("stopping: %s refused event %lld after %d attempts "
						"(%s); the subscription stays before it",
						opts.to, unit->events[0].id, s->refusals, s->what.data);
		}
		http_write_dead_letter(unit->events, unit->n, p->ctx, status,
							   &s->what);
		relay_log("%s refused event %lld after %d attempts (%s); written "
				  "to %s", opts.to, unit->events[0].id, s->refusals,
				  s->what.data, opts.dead_letter);
		unit_done(p, unit);
		s->unit = -1;
		return;
	}
	wait_ms = http_retry_wait(&s->backoff, retry_after_ms);
	relay_log("sending event %lld failed (%s); trying again in %.1f s",
			  unit->events[0].id, s->what.data, wait_ms / 1000.0);
	s->retry_at = relay_now_ms() + wait_ms;
}

/*
 * Start what can start: the retries that are due, then new units in the
 * free slots.  False when PostgreSQL was lost and a stop came first.
 */
static bool
start_requests(Parallel *p)
{
	int64_t		now = relay_now_ms();

	for (int i = 0; i < opts.parallel; i++)
		if (p->slots[i].unit >= 0 && p->slots[i].retry_at > 0 &&
			p->slots[i].retry_at <= now)
			start_attempt(p, &p->slots[i]);
	for (int i = 0; i < opts.parallel && !relay_stop_requested; i++)
	{
		if (p->slots[i].unit >= 0)
			continue;
		if (!start_unit(p, &p->slots[i]))
			break;
	}
	return *p->src != NULL;
}

/*
 * How long to wait for the transfers: until the next retry is due, the
 * next acknowledgement or, with nothing to do, the idle poll.
 */
static int
wait_time(Parallel *p)
{
	int64_t		now = relay_now_ms();
	int64_t		wait = IDLE_POLL_MS;

	if (!p->at_end && p->pages < MAX_PAGES_HELD)
	{
		for (int i = 0; i < opts.parallel; i++)
			if (p->slots[i].unit < 0)
				return 0;		/* a free slot, and maybe events for it */
	}
	for (int i = 0; i < opts.parallel; i++)
		if (p->slots[i].unit >= 0 && p->slots[i].retry_at > 0 &&
			p->slots[i].retry_at - now < wait)
			wait = p->slots[i].retry_at - now;
	if (p->confirmed > p->position && wait > ACK_INTERVAL_MS)
		wait = ACK_INTERVAL_MS;
	if (p->at_end && wait > p->at_end_since + IDLE_POLL_MS - now)
		wait = p->at_end_since + IDLE_POLL_MS - now;
	return wait < 0 ? 0 : (int) wait;
}

/*
 * At the end of the events read so far, see whether a notification says
 * there are more (or the idle poll is due): then the next free slot reads
 * again.  False when PostgreSQL was lost and a stop came first.
 */
static bool
check_for_more(Parallel *p)
{
	bool		notified = false;

	if (!p->at_end)
		return true;
	if (source_wait(*p->src, 0, -1, &notified) != SOURCE_OK)
	{
		if ((*p->src = source_reconnect(*p->src)) == NULL)
			return false;
		notified = true;
	}
	if (notified || relay_now_ms() - p->at_end_since >= IDLE_POLL_MS)
		p->at_end = false;
	return true;
}

/*
 * Wait for the transfers, for a notification of new events (when the
 * last read found none to spare) or for the next thing to do; then drive
 * the transfers and handle those that ended.  False when PostgreSQL was
 * lost and a stop came first.
 */
static bool
wait_and_drive(Parallel *p)
{
	struct curl_waitfd pg = {0};
	int			running;
	int			left;
	CURLMsg    *msg;
	CURLMcode	rc;

	if (!check_for_more(p))
		return false;
	pg.fd = p->at_end ? source_socket(*p->src) : -1;
	pg.events = CURL_WAIT_POLLIN;
	rc = curl_multi_poll(p->multi, &pg, pg.fd >= 0 ? 1 : 0, wait_time(p),
						 NULL);
	if (rc != CURLM_OK)
		relay_fatal("waiting for the webhook failed: %s",
					curl_multi_strerror(rc));
	if (!check_for_more(p))
		return false;
	rc = curl_multi_perform(p->multi, &running);
	if (rc != CURLM_OK)
		relay_fatal("sending to the webhook failed: %s",
					curl_multi_strerror(rc));
	while ((msg = curl_multi_info_read(p->multi, &left)) != NULL)
	{
		char	   *slot = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &slot);
		finish_attempt(p, (Slot *) slot, msg->data.result);
	}
	advance_confirmed(p);
	return true;
}

/* Set up the multi handle and opts.parallel slots. */
static void
setup(Parallel *p)
{
	p->multi = curl_multi_init();
	p->slots = calloc(opts.parallel, sizeof(Slot));
	if (p->multi == NULL || p->slots == NULL)
		relay_fatal("could not initialise libcurl");
	/* One keep-alive connection per slot, kept between requests. */
	curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
					  (long) opts.parallel);
	curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long) opts.parallel);
	for (int i = 0; i < opts.parallel; i++)
	{
		Slot	   *s = &p->slots[i];

		s->unit = -1;
		if ((s->easy = curl_easy_init()) == NULL)
			relay_fatal("could not initialise libcurl");
		http_setup_handle(s->easy, &s->answer);
		curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (char *) s);
	}
}

/* Free the slots, the multi handle, the queue and the pages. */
static void
teardown(Parallel *p)
{
	for (int i = 0; i < opts.parallel; i++)
	{
		Slot	   *s = &p->slots[i];

		if (s->unit >= 0 && s->retry_at == 0)
			curl_multi_remove_handle(p->multi, s->easy);
		curl_easy_cleanup(s->easy);
		curl_slist_free_all(s->headers);
		buf_free(&s->body);
		buf_free(&s->answer);
		buf_free(&s->what);
	}
	curl_multi_cleanup(p->multi);
	free(p->slots);
	free(p->units);
	while (p->oldest)
	{
		HeldPage   *hp = p->oldest;

		p->oldest = hp->next_page;
		page_free(&hp->page);
		free(hp);
	}
}

/*
 * Run the relay with --parallel N until a stop (0) or a permanent failure
 * (exits 1).  *src is the PostgreSQL side, replaced when reconnected.
 */
int
http_parallel_run(Source **src, const FormatContext *ctx)
{
	Parallel	p = {0};
	bool		lost = false;

	p.src = src;
	p.ctx = ctx;
	setup(&p);
	while (source_position(*src, &p.position) != SOURCE_OK)
		if ((*src = source_reconnect(*src)) == NULL)
		{
			teardown(&p);
			return 0;
		}
	p.confirmed = p.read_after = p.position;
	p.last_ack_ms = relay_now_ms();
	relay_log("relaying subscription \"%s\" from id %lld to %s, %d requests "
			  "at once", opts.subscription, p.position, opts.to,
			  opts.parallel);

	/* After a stop request, go on until the transfers in flight ended. */
	while (!relay_stop_requested || p.in_multi > 0)
	{
		if (!relay_stop_requested && !start_requests(&p))
		{
			lost = true;
			break;
		}
		/* Acknowledge every ACK_INTERVAL_MS, and at once when idle. */
		if (!wait_and_drive(&p) ||
			!maybe_ack(&p, (p.count == 0 && p.at_end) ||
					   relay_stop_requested))
		{
			lost = true;
			break;
		}
		progress_maybe_report(*src, p.position);
	}

	if (!lost && *src)
		(void) maybe_ack(&p, true);
	relay_log("stopped at id %lld", p.position);
	teardown(&p);
	return 0;
}
