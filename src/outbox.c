/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  Writing handed-off batches into the outbox table.
 *
 * A batch becomes one row of emissions_outbox, or several when it is larger
 * than OUTBOX_RECORD_MAX_BYTES (about a heap page): rows are cut at event
 * boundaries, so each row decodes on its own and none grows with the size
 * of the transaction.
 * Rows carry the emitting transaction's full xid and a sequence number that
 * gives emit order within it, and the cascade depth of their events (0 for
 * events of ordinary transactions, n + 1 for events a handler emitted while
 * handling an event of depth n).
 *
 * The table is partitioned (see rotation.c): rows go straight into the
 * partition the delivery worker names in shared memory, so that it can
 * empty and truncate the others instead of depending on vacuum.  Which
 * partition a row lands in never matters for correctness, only for how soon
 * space is given back.
 *
 * Rows are inserted with heap_insert, not through the executor: no user
 * trigger, rule or row security policy runs while a transaction commits,
 * and the producer needs no privilege on the table.  The table has no
 * indexes, so nothing else needs maintaining.
 *
 * The partitions' OIDs are found through pg_extension, as the extension
 * may live in any schema, and cached (extension.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "event_format.h"
#include "extension.h"
#include "outbox.h"
#include "registry.h"

int			emissions_outbox_depth = 0;

/*
 * OIDs of the outbox partitions of this database, into parts[]; raises an
 * error when the extension is not installed here.
 */
void
emissions_outbox_partitions(Oid *parts)
{
	if (!emissions_extension_partitions(OUTBOX_TABLE_NAME, parts))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"emissions\" is not installed in database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errdetail("Events emitted in this transaction cannot be stored."),
				 errhint("Run CREATE EXTENSION emissions.")));
}

/* Insert one outbox row holding data[0..len) (a version byte + events). */
static void
insert_record(Relation rel, int part, FullTransactionId txid, int32 seq,
			  int32 batch, int64 nevents, bytea *record)
{
	Datum		values[Natts_outbox];
	bool		nulls[Natts_outbox] = {0};
	HeapTuple	tuple;

	values[Anum_outbox_txid - 1] = FullTransactionIdGetDatum(txid);
	values[Anum_outbox_seq - 1] = Int32GetDatum(seq);
	values[Anum_outbox_batch - 1] = Int32GetDatum(batch);
	values[Anum_outbox_events - 1] = Int32GetDatum((int32) nevents);
	values[Anum_outbox_emitted_at - 1] =
		TimestampTzGetDatum(event_peek_emitted_at(VARDATA(record) + 1));
	values[Anum_outbox_depth - 1] = Int16GetDatum((int16) emissions_outbox_depth);
	values[Anum_outbox_part - 1] = Int16GetDatum((int16) part);
	values[Anum_outbox_data - 1] = PointerGetDatum(record);

	tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
	simple_heap_insert(rel, tuple);
	heap_freetuple(tuple);
}

/* A bytea of capacity bytes for events, with the version byte written. */
static bytea *
new_record(Size capacity)
{
	bytea	   *record = palloc(VARHDRSZ + 1 + capacity);

	*VARDATA(record) = OUTBOX_RECORD_VERSION;
	SET_VARSIZE(record, VARHDRSZ + 1);
	return record;
}

/*
 * Write the nevents events at log offsets [from, to) of stream as batch
 * number batch; *seq is the last row sequence number used in this
 * transaction and is advanced.  Runs in the caller's transaction.
 */
void
emissions_outbox_write(EventStream *stream, uint64 from, uint64 to,
					   int64 nevents, int32 batch, int32 *seq)
{
	Relation	rel;
	FullTransactionId txid = GetTopFullTransactionId();
	MemoryContext cxt;
	MemoryContext oldcxt;
	Oid			parts[STORE_PARTITIONS];
	int			part = emissions_registry_outbox_part(MyDatabaseId);

	emissions_outbox_partitions(parts);
	rel = table_open(parts[part], RowExclusiveLock);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "emissions outbox write",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	if (to - from <= OUTBOX_RECORD_MAX_BYTES)
	{
		/* The common case: the whole batch in one row, one copy. */
		bytea	   *record = new_record(to - from);

		event_stream_read(stream, from, VARDATA(record) + 1, to - from);
		SET_VARSIZE(record, VARHDRSZ + 1 + (to - from));
		insert_record(rel, part, txid, ++(*seq), batch, nevents, record);
	}
	else
	{
		/* Cut at event boundaries, OUTBOX_RECORD_MAX_BYTES at most a row. */
		uint64		pos = from;

		while (pos < to)
		{
			bytea	   *record = new_record(OUTBOX_RECORD_MAX_BYTES);
			Size		used = 0;
			int64		count = 0;

			while (pos < to)
			{
				char		header[EVENT_HEADER_BYTES];
				uint32		len;

				event_stream_read(stream, pos, header, EVENT_HEADER_BYTES);
				len = event_peek_length(header);
				if (count > 0 && used + len > OUTBOX_RECORD_MAX_BYTES)
					break;
				if (len > OUTBOX_RECORD_MAX_BYTES)
					record = repalloc(record, VARHDRSZ + 1 + len);
				event_stream_read(stream, pos, VARDATA(record) + 1 + used, len);
				used += len;
				pos += len;
				count++;
			}
			SET_VARSIZE(record, VARHDRSZ + 1 + used);
			insert_record(rel, part, txid, ++(*seq), batch, count, record);
			MemoryContextReset(cxt);
			nevents -= count;
		}
		Assert(nevents == 0);
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	/* Keep the lock until commit: a TRUNCATE must not pass our rows. */
	table_close(rel, NoLock);
}
