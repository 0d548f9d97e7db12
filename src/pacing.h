/*-------------------------------------------------------------------------
 *
 * pacing.h
 *	  When the delivery worker runs its next pass: at once when idle,
 *	  coalesced under a steady stream.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_PACING_H
#define EMISSIONS_PACING_H

#include "datatype/timestamp.h"

typedef struct Pacing
{
	TimestampTz last_pass_at;	/* start of the last pass; 0: none yet */
	TimestampTz last_delivery_at;	/* start of the last that delivered */
	double		events;			/* events delivered, decaying */
	double		span_us;		/* the time they came in, decaying */
} Pacing;

extern void emissions_pacing_pass_started(Pacing *pacing, TimestampTz now);
extern void emissions_pacing_pass_done(Pacing *pacing, int64 delivered);
extern long emissions_pacing_hold_us(const Pacing *pacing, TimestampTz now);

#endif							/* EMISSIONS_PACING_H */
