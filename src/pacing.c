/*-------------------------------------------------------------------------
 *
 * pacing.c
 *	  When the delivery worker runs its next pass: at once when idle,
 *	  coalesced under a steady stream.
 *
 * Every committing producer sets the worker's latch.  Run a pass per wake-up
 * and a steady stream costs a pass per transaction: a worker transaction,
 * a scan of the outbox, a commit, for one or two events each.  So the
 * worker measures the rate events arrive at (the events it delivered over
 * the time they took to come, both decaying over about PACING_WINDOW_MS)
 * and, while that rate would
 * gather at least PACING_MIN_BATCH events within emissions.coalesce_delay,
 * starts its next pass no sooner than emissions.coalesce_delay after the
 * start of the last: the passes then come at a steady pace however many
 * producers commit, and each delivers what arrived meanwhile, so the work
 * per pass grows with the load.  While it holds a pass back the worker does
 * not wait on its latch, which stays set: producers' SetLatch then finds it
 * set and sends no signal.
 *
 * A pass has a cost of its own whatever it delivers (two transactions and a
 * WAL flush), paid at every pace step: under a heavy stream, when one pace
 * step would gather more than PACING_FULL_BATCH events, the pace stretches
 * in proportion to the rate, up to PACING_MAX_STRETCH times
 * emissions.coalesce_delay, so that the worker's fixed costs shrink as the
 * producers need the CPU and the WAL most; a moderate stream keeps the
 * shortest pace, and its latency.
 *
 * Below that rate (an idle system, or events some milliseconds apart) a
 * commit wakes the worker at once, as before, and holding would only add
 * latency: no pass is held back.  emissions.coalesce_delay = 0 turns it off.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "pacing.h"
#include "settings.h"

/* How long the rate remembers: a time constant, in milliseconds. */
#define PACING_WINDOW_MS	50.0

/* Hold passes back only when one would gather at least this many events. */
#define PACING_MIN_BATCH	2.5

/* Stretch the pace when a step of it would gather more events than this... */
#define PACING_FULL_BATCH	4.0

/* ... up to this many times emissions.coalesce_delay. */
#define PACING_MAX_STRETCH	4.0

/*
 * Note that a pass starts now.
 */
void
emissions_pacing_pass_started(Pacing *pacing, TimestampTz now)
{
	pacing->last_pass_at = now;
}

/*
 * Fold what the pass just done delivered into the rate: its events
 * committed since the start of the last pass that delivered any.  Passes
 * that delivered nothing (the worker's timers) are not counted, and the
 * rate is the ratio of the decayed events to the decayed time, so that one
 * short interval does not make a spike of it.
 */
void
emissions_pacing_pass_done(Pacing *pacing, int64 delivered)
{
	double		elapsed_us;
	double		keep;

	if (delivered <= 0)
		return;
	if (pacing->last_delivery_at != 0 &&
		pacing->last_pass_at > pacing->last_delivery_at)
	{
		elapsed_us = pacing->last_pass_at - pacing->last_delivery_at;
		keep = exp(-elapsed_us / (PACING_WINDOW_MS * 1000.0));
		pacing->events = keep * pacing->events + delivered;
		pacing->span_us = keep * pacing->span_us + elapsed_us;
	}
	pacing->last_delivery_at = pacing->last_pass_at;
}

/*
 * How long, in microseconds, the next pass should wait from now; 0: run it
 * at once.
 */
long
emissions_pacing_hold_us(const Pacing *pacing, TimestampTz now)
{
	double		delay_us = emissions_coalesce_delay_ms * 1000.0;
	double		batch;
	TimestampTz due;

	if (delay_us <= 0 || pacing->last_pass_at == 0 || pacing->span_us <= 0)
		return 0;
	/* What one step of the shortest pace gathers at the current rate. */
	batch = pacing->events / pacing->span_us * delay_us;
	if (batch < PACING_MIN_BATCH)
		return 0;
	if (batch > PACING_FULL_BATCH)
		delay_us *= Min(batch / PACING_FULL_BATCH, PACING_MAX_STRETCH);
	due = pacing->last_pass_at + (TimestampTz) delay_us;
	return due > now ? (long) (due - now) : 0;
}
