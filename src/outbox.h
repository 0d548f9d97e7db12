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

/*
 * The outbox table, in the extension's schema, is partitioned by list on
 * its part column; partition N is named emissions_outbox_N.
 */
#define OUTBOX_TABLE_NAME		"emissions_outbox"

/* Columns of the outbox table, 1-based. */
#define Anum_outbox_txid		1
#define Anum_outbox_seq			2
#define Anum_outbox_batch		3
#define Anum_outbox_events		4
#define Anum_outbox_emitted_at	5
#define Anum_outbox_depth		6
#define Anum_outbox_part		7
#define Anum_outbox_data		8
#define Natts_outbox			8

/*
 * A record holds whole events up to this many bytes, so that it fits in a
 * heap page and is never moved out of line; a single larger event gets a
 * record of its own.
 */
#define OUTBOX_RECORD_MAX_BYTES 8000

/* Cascade generation of the events this backend hands off (0: not a handler). */
extern int	emissions_outbox_depth;

extern void emissions_outbox_partitions(Oid *parts);
extern void emissions_outbox_write(EventStream *stream, uint64 from, uint64 to,
								   int64 nevents, int32 batch, int32 *seq);

#endif							/* EMISSIONS_OUTBOX_H */
