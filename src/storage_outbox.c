/*-------------------------------------------------------------------------
 *
 * storage_outbox.c
 *	  The outbox table: writing records, scanning the committed ones,
 *	  fetching and deleting them by position.
 *
 * A record is one row of emissions_outbox: the emitting transaction's full
 * xid, its row number in that transaction (emit order), its hand-off
 * number, how many events it holds, when the first was emitted, their
 * cascade depth, and the encoded events.  Rows go straight into the
 * partition the delivery worker names in shared memory, so that it can
 * empty and truncate the others (storage_rotation.c); which partition a row
 * lands in never matters for correctness, only for how soon space is given
 * back.  The table has no indexes.
 *
 * Readers see the committed rows of other transactions: a scan leaves out
 * the rows of the caller's own transaction (not committed yet), in one
 * place, own_transaction().  The worker remembers rows by position (their
 * TID) between its scan and its delivery; a row gone since (its partition
 * truncated) is simply not found.
 *
 * Locks: writers (producers, the worker deleting rows) keep theirs until
 * the transaction ends, so that no TRUNCATE passes their rows; readers
 * release theirs when done, so that waiting never stands in the worker's
 * way.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "registry.h"
#include "storage.h"

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

struct OutboxAccess
{
	LOCKMODE	lockmode;
	Relation	rels[STORE_PARTITIONS];
	BlockNumber nblocks[STORE_PARTITIONS];	/* sizes when opened */
	TupleTableSlot *slots[STORE_PARTITIONS];
};

struct OutboxWriter
{
	TableWriter *table;
	int			part;
	FullTransactionId txid;
};

/*
 * Open the outbox partition producers are pointed at (the worker's choice,
 * in shared memory) for emissions_storage_outbox_write, in the producer's
 * transaction; it stays locked until the transaction ends.
 */
OutboxWriter *
emissions_storage_outbox_begin_write(void)
{
	OutboxWriter *writer = palloc(sizeof(OutboxWriter));
	Oid			parts[STORE_PARTITIONS];

	emissions_storage_partitions(STORE_OUTBOX, parts);
	writer->txid = GetTopFullTransactionId();
	writer->part = emissions_registry_outbox_part(MyDatabaseId);
	writer->table = emissions_storage_writer_open(parts[writer->part]);
	return writer;
}

/* Write one record of the current transaction. */
void
emissions_storage_outbox_write(OutboxWriter *writer, const OutboxRecord *record)
{
	Datum		values[Natts_outbox];
	ItemPointerData tid;

	values[Anum_outbox_txid - 1] = FullTransactionIdGetDatum(writer->txid);
	values[Anum_outbox_seq - 1] = Int32GetDatum(record->seq);
	values[Anum_outbox_batch - 1] = Int32GetDatum(record->batch);
	values[Anum_outbox_events - 1] = Int32GetDatum(record->events);
	values[Anum_outbox_emitted_at - 1] = TimestampTzGetDatum(record->emitted_at);
	values[Anum_outbox_depth - 1] = Int16GetDatum(record->depth);
	values[Anum_outbox_part - 1] = Int16GetDatum((int16) writer->part);
	values[Anum_outbox_data - 1] = PointerGetDatum(record->data);
	tid = emissions_storage_writer_insert(writer->table, values, Natts_outbox);
	/* The worker's next scan of the partition must reach this block. */
	emissions_registry_note_outbox_block(MyDatabaseId, writer->part,
										 ItemPointerGetBlockNumber(&tid));
}

/* Close what emissions_storage_outbox_begin_write opened, keeping the lock. */
void
emissions_storage_outbox_end_write(OutboxWriter *writer)
{
	emissions_storage_writer_close(writer->table);
	pfree(writer);
}

/* Whether txid is the caller's own transaction, whose rows are not
 * committed yet and which readers therefore leave out. */
static bool
own_transaction(FullTransactionId txid)
{
	FullTransactionId self = GetTopFullTransactionIdIfAny();

	return FullTransactionIdIsValid(self) &&
		FullTransactionIdEquals(txid, self);
}

/* The row in slot, a row of partition part, into *row. */
static void
read_row(TupleTableSlot *slot, int part, OutboxRow *row)
{
	slot_getsomeattrs(slot, Anum_outbox_depth);
	row->part = part;
	row->tid = slot->tts_tid;
	row->txid = DatumGetFullTransactionId(slot->tts_values[Anum_outbox_txid - 1]);
	row->seq = DatumGetInt32(slot->tts_values[Anum_outbox_seq - 1]);
	row->batch = DatumGetInt32(slot->tts_values[Anum_outbox_batch - 1]);
	row->events = DatumGetInt32(slot->tts_values[Anum_outbox_events - 1]);
	row->depth = DatumGetInt16(slot->tts_values[Anum_outbox_depth - 1]);
}

/*
 * Call callback for every outbox row visible to snapshot, but those of the
 * caller's own transaction, partition by partition; with with_data, also
 * pass the row's events, detoasted.  The callback runs in a memory context
 * reset after each row: what it keeps must go to memory of its own.  The
 * partitions are locked (AccessShareLock) only during the scan.
 */
void
emissions_storage_outbox_scan(Snapshot snapshot, bool with_data,
							  OutboxRowCallback callback, void *arg)
{
	BlockNumber from[STORE_PARTITIONS];
	int			p;

	for (p = 0; p < STORE_PARTITIONS; p++)
		from[p] = 0;
	emissions_storage_outbox_scan_from(snapshot, from, NULL, with_data, callback, arg);
}

/*
 * emissions_storage_outbox_scan, of each partition p only from block from[p]
 * on (a TID range scan), or not at all when from[p] is InvalidBlockNumber.
 * With files, a partition whose file (relfilenode) is not files[p] is scanned
 * whole (it was truncated or rewritten since the caller's blocks were noted),
 * and files[p] is set to its file.
 */
void
emissions_storage_outbox_scan_from(Snapshot snapshot, const BlockNumber *from,
								   Oid *files, bool with_data,
								   OutboxRowCallback callback, void *arg)
{
	Oid			parts[STORE_PARTITIONS];
	MemoryContext row_cxt;
	MemoryContext oldcxt;
	int			p;

	emissions_storage_partitions(STORE_OUTBOX, parts);
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "emissions outbox scan",
									ALLOCSET_DEFAULT_SIZES);
	for (p = 0; p < STORE_PARTITIONS; p++)
	{
		Relation	rel = table_open(parts[p], AccessShareLock);
		BlockNumber start = from[p];
		TableScanDesc scan;
		TupleTableSlot *slot;
		ItemPointerData mintid;
		ItemPointerData maxtid;

		if (files != NULL && files[p] != rel->rd_rel->relfilenode)
		{
			start = 0;
			files[p] = rel->rd_rel->relfilenode;
		}
		if (start == InvalidBlockNumber)
		{
			table_close(rel, AccessShareLock);
			continue;
		}
		ItemPointerSet(&mintid, start, FirstOffsetNumber);
		ItemPointerSet(&maxtid, MaxBlockNumber, MaxOffsetNumber);
		scan = table_beginscan_tidrange(rel, snapshot, &mintid, &maxtid);
		slot = table_slot_create(rel, NULL);
		while (table_scan_getnextslot_tidrange(scan, ForwardScanDirection, slot))
		{
			OutboxRow	row;
			bytea	   *data = NULL;

			read_row(slot, p, &row);
			if (own_transaction(row.txid))
				continue;
			oldcxt = MemoryContextSwitchTo(row_cxt);
			if (with_data)
			{
				bool		isnull;

				data = DatumGetByteaPP(slot_getattr(slot, Anum_outbox_data,
													&isnull));
			}
			callback(&row, data, arg);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(row_cxt);
		}
		ExecDropSingleTupleTableSlot(slot);
		table_endscan(scan);
		table_close(rel, AccessShareLock);
	}
	MemoryContextDelete(row_cxt);
}

/* The rows a emissions_storage_outbox_rows call has found so far. */
typedef struct FoundRows
{
	OutboxRow  *rows;
	int			n;
	int			cap;
} FoundRows;

/* Keep one row a scan found (an OutboxRowCallback). */
static void
keep_row(const OutboxRow *row, bytea *data, void *arg)
{
	FoundRows  *found = (FoundRows *) arg;

	if (found->n == found->cap)
	{
		found->cap *= 2;
		found->rows = repalloc_huge(found->rows, sizeof(OutboxRow) * found->cap);
	}
	found->rows[found->n++] = *row;
}

/*
 * The outbox rows visible to snapshot, but those of the caller's own
 * transaction, into *rows (allocated in the current memory context), in no
 * particular order; returns how many.
 */
int
emissions_storage_outbox_rows(Snapshot snapshot, OutboxRow **rows)
{
	BlockNumber from[STORE_PARTITIONS];
	int			p;

	for (p = 0; p < STORE_PARTITIONS; p++)
		from[p] = 0;
	return emissions_storage_outbox_rows_from(snapshot, from, NULL, rows);
}

/*
 * emissions_storage_outbox_rows, scanning as
 * emissions_storage_outbox_scan_from does.
 */
int
emissions_storage_outbox_rows_from(Snapshot snapshot, const BlockNumber *from,
								   Oid *files, OutboxRow **rows)
{
	FoundRows	found;

	found.n = 0;
	found.cap = 64;
	found.rows = palloc(sizeof(OutboxRow) * found.cap);
	emissions_storage_outbox_scan_from(snapshot, from, files, false, keep_row, &found);
	*rows = found.rows;
	return found.n;
}

/*
 * Open the outbox partitions for emissions_storage_outbox_fetch and, with
 * RowExclusiveLock, emissions_storage_outbox_delete.  Their sizes are noted
 * now: a row remembered from before a truncation may point past the end.
 */
OutboxAccess *
emissions_storage_outbox_open(LOCKMODE lockmode)
{
	OutboxAccess *access = palloc0(sizeof(OutboxAccess));
	Oid			parts[STORE_PARTITIONS];
	int			p;

	emissions_storage_partitions(STORE_OUTBOX, parts);
	access->lockmode = lockmode;
	for (p = 0; p < STORE_PARTITIONS; p++)
	{
		access->rels[p] = table_open(parts[p], lockmode);
		access->nblocks[p] = RelationGetNumberOfBlocks(access->rels[p]);
		access->slots[p] = table_slot_create(access->rels[p], NULL);
	}
	return access;
}

/*
 * Fetch the row at row's position if snapshot sees it; false when it is
 * gone.  With data, also return its events detoasted; with stored, also as
 * stored (compressed, most likely), for the log to keep as they are
 * instead of compressing them again.  Both in the current memory context.
 */
bool
emissions_storage_outbox_fetch(OutboxAccess *access, const OutboxRow *row,
							   Snapshot snapshot, bytea **data, bytea **stored)
{
	TupleTableSlot *slot = access->slots[row->part];
	ItemPointerData tid = row->tid;

	if (ItemPointerGetBlockNumber(&tid) >= access->nblocks[row->part])
		return false;
	if (!table_tuple_fetch_row_version(access->rels[row->part], &tid,
									   snapshot, slot))
		return false;
	if (data != NULL || stored != NULL)
	{
		bool		isnull;
		Datum		datum = slot_getattr(slot, Anum_outbox_data, &isnull);
		bytea	   *detoasted = NULL;

		if (data != NULL || VARATT_IS_EXTERNAL(DatumGetPointer(datum)))
			detoasted = DatumGetByteaPCopy(datum);
		if (data != NULL)
			*data = detoasted;
		if (stored != NULL)
		{
			/* A value moved out of line belongs to the outbox's TOAST. */
			*stored = VARATT_IS_EXTERNAL(DatumGetPointer(datum)) ? detoasted :
				(bytea *) DatumGetPointer(datumCopy(datum, false, -1));
		}
	}
	ExecClearTuple(slot);
	return true;
}

/*
 * Delete the row at row's position, in the current transaction.  The
 * access must have been opened with RowExclusiveLock.
 */
void
emissions_storage_outbox_delete(OutboxAccess *access, const OutboxRow *row)
{
	ItemPointerData tid = row->tid;

	Assert(access->lockmode == RowExclusiveLock);
	simple_table_tuple_delete(access->rels[row->part], &tid,
							  GetActiveSnapshot());
}

/*
 * Close what emissions_storage_outbox_open opened: a writer keeps its locks
 * until the transaction ends, a reader gives them back now.
 */
void
emissions_storage_outbox_close(OutboxAccess *access)
{
	int			p;

	for (p = 0; p < STORE_PARTITIONS; p++)
	{
		ExecDropSingleTupleTableSlot(access->slots[p]);
		table_close(access->rels[p],
					access->lockmode == RowExclusiveLock ? NoLock :
					access->lockmode);
	}
	pfree(access);
}
