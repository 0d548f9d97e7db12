/*-------------------------------------------------------------------------
 *
 * outbox.h
 *	  Handing a batch off: its events cut into outbox records.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_OUTBOX_H
#define EMISSIONS_OUTBOX_H

#include "event_stream.h"

/* A batch to hand off: events of the buffer's stream, and their origin. */
typedef struct OutboxBatch
{
	EventStream *stream;
	uint64		from;			/* stream offsets [from, to) */
	uint64		to;
	int64		nevents;
	int32		number;			/* hand-off number in the transaction */
	int16		depth;			/* cascade generation (0: not a handler's) */
} OutboxBatch;

extern void emissions_outbox_write(const OutboxBatch *batch, int32 *seq);

#endif							/* EMISSIONS_OUTBOX_H */
