/*-------------------------------------------------------------------------
 *
 * outbox.h
 *	  The durable outbox table: where handed-off batches wait.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_OUTBOX_H
#define EMISSIONS_OUTBOX_H

#include "event_stream.h"

/* Name of the outbox table, in the extension's schema. */
#define OUTBOX_TABLE_NAME		"emissions_outbox"

/* Columns of the outbox table, 1-based. */
#define Anum_outbox_txid		1
#define Anum_outbox_seq			2
#define Anum_outbox_batch		3
#define Anum_outbox_events		4
#define Anum_outbox_emitted_at	5
#define Anum_outbox_data		6
#define Natts_outbox			6

/*
 * A record holds whole events up to this many bytes, so that it fits in a
 * heap page and is never moved out of line; a single larger event gets a
 * record of its own.
 */
#define OUTBOX_RECORD_MAX_BYTES 8000

extern void emissions_outbox_init(void);
extern Oid	emissions_outbox_relid(void);
extern void emissions_outbox_write(EventStream *stream, uint64 from, uint64 to,
								   int64 nevents, int32 batch, int32 *seq);

#endif							/* EMISSIONS_OUTBOX_H */
