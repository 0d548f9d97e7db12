/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  Handing a batch off: its events cut into outbox records.
 *
 * A batch becomes one record of the outbox, or several when it is larger
 * than OUTBOX_RECORD_MAX_BYTES (about a heap page): records are cut at
 * event boundaries, so each one decodes on its own and none grows with the
 * size of the transaction.  Records carry a sequence number that gives
 * emit order within the transaction, and the cascade depth the batch
 * travels with (0 for events of ordinary transactions, n + 1 for events a
 * handler emitted while handling an event of depth n).
 *
 * Where and how records are stored is the storage layer's business
 * (storage_outbox.c): this file only reads the buffer's stream.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "event_format.h"
#include "outbox.h"
#include "storage.h"

/* A bytea of capacity bytes for events, with the version byte written. */
static bytea *
new_record(Size capacity)
{
	bytea	   *record = palloc(VARHDRSZ + 1 + capacity);

	*VARDATA(record) = OUTBOX_RECORD_VERSION;
	SET_VARSIZE(record, VARHDRSZ + 1);
	return record;
}

/* Write the count events in data as the next record of batch. */
static void
write_record(OutboxWriter *writer, const OutboxBatch *batch, int32 *seq,
			 int64 count, bytea *data)
{
	OutboxRecord record;

	record.seq = ++(*seq);
	record.batch = batch->number;
	record.events = (int32) count;
	record.depth = batch->depth;
	record.emitted_at = emissions_event_peek_emitted_at(VARDATA(data) + 1);
	record.data = data;
	emissions_storage_outbox_write(writer, &record);
}

/*
 * Write the events of batch to the outbox; *seq is the last record
 * sequence number used in this transaction and is advanced.  Runs in the
 * caller's transaction.
 */
void
emissions_outbox_write(const OutboxBatch *batch, int32 *seq)
{
	OutboxWriter *writer = emissions_storage_outbox_begin_write();
	MemoryContext cxt;
	MemoryContext oldcxt;
	uint64		from = batch->from;
	uint64		to = batch->to;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "emissions outbox write",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	if (to - from <= OUTBOX_RECORD_MAX_BYTES)
	{
		/* The common case: the whole batch in one record, one copy. */
		bytea	   *record = new_record(to - from);

		emissions_event_stream_read(batch->stream, from, VARDATA(record) + 1, to - from);
		SET_VARSIZE(record, VARHDRSZ + 1 + (to - from));
		write_record(writer, batch, seq, batch->nevents, record);
	}
	else
	{
		/* Cut at event boundaries, OUTBOX_RECORD_MAX_BYTES at most a record. */
		uint64		pos = from;
		int64		left PG_USED_FOR_ASSERTS_ONLY = batch->nevents;

		while (pos < to)
		{
			bytea	   *record = new_record(OUTBOX_RECORD_MAX_BYTES);
			Size		used = 0;
			int64		count = 0;

			while (pos < to)
			{
				char		header[EVENT_HEADER_BYTES];
				uint32		len;

				emissions_event_stream_read(batch->stream, pos, header, EVENT_HEADER_BYTES);
				len = emissions_event_peek_length(header);
				if (count > 0 && used + len > OUTBOX_RECORD_MAX_BYTES)
					break;
				if (len > OUTBOX_RECORD_MAX_BYTES)
					record = repalloc(record, VARHDRSZ + 1 + len);
				emissions_event_stream_read(batch->stream, pos,
											VARDATA(record) + 1 + used, len);
				used += len;
				pos += len;
				count++;
			}
			SET_VARSIZE(record, VARHDRSZ + 1 + used);
			write_record(writer, batch, seq, count, record);
			MemoryContextReset(cxt);
			left -= count;
		}
		Assert(left == 0);
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	emissions_storage_outbox_end_write(writer);
}
