/*-------------------------------------------------------------------------
 *
 * pending.c
 *	  emissions_pending_events(): the committed, not yet delivered events.
 *
 * Reads the outbox partitions directly under the query's snapshot and
 * decodes each row, so it shows what other transactions committed (or prepared and
 * then committed).  Rows written by the calling transaction itself are left
 * out: they are not committed yet.  The function takes no argument, so it
 * only ever decodes rows the extension wrote; EXECUTE on it is revoked from
 * PUBLIC because payloads may be private.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "event_format.h"
#include "outbox.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(emissions_pending_events);

/* Emit one result row per event of an outbox record. */
static void
decode_record(ReturnSetInfo *rsinfo, Datum txid, Datum seq, Datum batch,
			  bytea *record)
{
	const char *data = VARDATA_ANY(record);
	Size		len = VARSIZE_ANY_EXHDR(record);
	Size		pos = 1;
	int32		index = 0;
	DecodedEvent event;

	event_check_record(data, len);

	while (event_decode_next(data, len, &pos, &event))
	{
		Datum		values[8];
		bool		nulls[8] = {0};

		values[0] = txid;
		values[1] = batch;
		values[2] = seq;
		values[3] = Int32GetDatum(++index);
		values[4] = PointerGetDatum(cstring_to_text_with_len(event.type,
															 event.type_len));
		values[5] = PointerGetDatum(event_copy_jsonb(event.payload));
		values[6] = PointerGetDatum(event_copy_jsonb(event.metadata));
		values[7] = TimestampTzGetDatum(event.emitted_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * emissions_pending_events() returns one row per committed event still in
 * the outbox.
 */
Datum
emissions_pending_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FullTransactionId self = GetTopFullTransactionIdIfAny();
	Oid			parts[STORE_PARTITIONS];
	int			i;

	InitMaterializedSRF(fcinfo, 0);

	emissions_outbox_partitions(parts);
	for (i = 0; i < STORE_PARTITIONS; i++)
	{
		Relation	rel = table_open(parts[i], AccessShareLock);
		TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
		HeapTuple	tuple;

		while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			Datum		values[Natts_outbox];
			bool		nulls[Natts_outbox];

			heap_deform_tuple(tuple, RelationGetDescr(rel), values, nulls);
			if (FullTransactionIdIsValid(self) &&
				FullTransactionIdEquals(DatumGetFullTransactionId(values[Anum_outbox_txid - 1]), self))
				continue;
			decode_record(rsinfo,
						  values[Anum_outbox_txid - 1],
						  values[Anum_outbox_seq - 1],
						  values[Anum_outbox_batch - 1],
						  DatumGetByteaPP(values[Anum_outbox_data - 1]));
		}
		table_endscan(scan);
		table_close(rel, NoLock);
	}

	return (Datum) 0;
}
