/*-------------------------------------------------------------------------
 *
 * pending.c
 *	  emissions_pending_events(): the committed, not yet delivered events.
 *
 * Asks the storage layer for the outbox rows visible to the query's
 * snapshot, with their events, and decodes each row, so it shows what other
 * transactions committed (or prepared and then committed); the storage
 * layer leaves out the rows of the calling transaction itself, which are
 * not committed yet.  The function takes no argument, so it only ever
 * decodes rows the extension wrote; EXECUTE on it is revoked from PUBLIC
 * because payloads may be private.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "event_format.h"
#include "storage.h"

PG_FUNCTION_INFO_V1(emissions_pending_events);

/* Emit one result row per event of an outbox row (an OutboxRowCallback). */
static void
decode_row(const OutboxRow *row, bytea *record, void *arg)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) arg;
	const char *data = VARDATA_ANY(record);
	Size		len = VARSIZE_ANY_EXHDR(record);
	Size		pos = 1;
	int32		index = 0;
	DecodedEvent event;

	emissions_event_check_record(data, len);

	while (emissions_event_decode_next(data, len, &pos, &event))
	{
		Datum		values[8];
		bool		nulls[8] = {0};

		values[0] = FullTransactionIdGetDatum(row->txid);
		values[1] = Int32GetDatum(row->batch);
		values[2] = Int32GetDatum(row->seq);
		values[3] = Int32GetDatum(++index);
		values[4] = PointerGetDatum(cstring_to_text_with_len(event.type,
															 event.type_len));
		values[5] = PointerGetDatum(emissions_event_copy_jsonb(event.payload));
		values[6] = PointerGetDatum(emissions_event_copy_jsonb(event.metadata));
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

	InitMaterializedSRF(fcinfo, 0);
	emissions_storage_outbox_scan(GetActiveSnapshot(), true, decode_row, rsinfo);
	return (Datum) 0;
}
