/*-------------------------------------------------------------------------
 *
 * event_log.c
 *	  Catch-up readers: emissions_events(), emissions_event(), and
 *	  emissions_event_log_read() for subscriptions (subscriptions.c).
 *
 * Delivered events stay in the event log for emissions.retention (the
 * storage layer keeps it, storage_log.c).  These functions ask it for the
 * log rows after an id, one range scan of its index whatever the log's
 * length, and decode the events they need.  emissions_events() and
 * emissions_event() are SECURITY DEFINER: the log itself is not readable
 * by PUBLIC, the functions are (see the install script for why).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "event_format.h"
#include "event_log.h"
#include "storage.h"

PG_FUNCTION_INFO_V1(emissions_events);
PG_FUNCTION_INFO_V1(emissions_event);

/* What a read wants: events with ids in (after_id, up_to], max of them. */
typedef struct EventsWanted
{
	ReturnSetInfo *rsinfo;
	int64		after_id;
	int64		up_to;
	int64		max;
	int64		emitted;
} EventsWanted;

/*
 * Put the wanted events of one log row into the result (a LogRowCallback);
 * false once there are enough.
 */
static bool
emit_row(int64 first_id, FullTransactionId txid, TimestampTz delivered_at,
		 bytea *record, void *arg)
{
	EventsWanted *wanted = (EventsWanted *) arg;
	const char *data = VARDATA_ANY(record);
	Size		len = VARSIZE_ANY_EXHDR(record);
	Size		pos = 1;
	int64		id = first_id;
	DecodedEvent event;

	emissions_event_check_record(data, len);

	for (; emissions_event_decode_next(data, len, &pos, &event); id++)
	{
		Datum		values[7];
		bool		nulls[7] = {0};

		if (id <= wanted->after_id)
			continue;
		if (id > wanted->up_to || wanted->emitted >= wanted->max)
			break;
		values[0] = Int64GetDatum(id);
		values[1] = PointerGetDatum(cstring_to_text_with_len(event.type,
															 event.type_len));
		values[2] = PointerGetDatum(emissions_event_copy_jsonb(event.payload));
		values[3] = PointerGetDatum(emissions_event_copy_jsonb(event.metadata));
		values[4] = TimestampTzGetDatum(event.emitted_at);
		values[5] = FullTransactionIdGetDatum(txid);
		values[6] = TimestampTzGetDatum(delivered_at);
		tuplestore_putvalues(wanted->rsinfo->setResult,
							 wanted->rsinfo->setDesc, values, nulls);
		wanted->emitted++;
	}
	return wanted->emitted < wanted->max;
}

/*
 * Put the delivered events with an id above after_id into the result, in
 * id order, at most max of them.
 */
void
emissions_event_log_read(ReturnSetInfo *rsinfo, int64 after_id, int32 max)
{
	EventsWanted wanted = {0};

	if (max <= 0)
		return;
	wanted.rsinfo = rsinfo;
	wanted.after_id = after_id;
	wanted.up_to = PG_INT64_MAX;
	wanted.max = max;
	emissions_storage_log_read(after_id, max, emit_row, &wanted);
}

/*
 * emissions_events(after_id, max): delivered events with an id above
 * after_id, in id order, at most max.
 */
Datum
emissions_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		after_id = PG_GETARG_INT64(0);
	int32		max = PG_GETARG_INT32(1);

	if (max < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must not be negative")));
	InitMaterializedSRF(fcinfo, 0);
	emissions_event_log_read(rsinfo, after_id, max);
	return (Datum) 0;
}

/*
 * emissions_event(id): the delivered event with that id, if it is still
 * kept.
 */
Datum
emissions_event(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		id = PG_GETARG_INT64(0);
	EventsWanted wanted = {0};

	InitMaterializedSRF(fcinfo, 0);
	if (id < 1)
		return (Datum) 0;		/* ids start at 1 */
	wanted.rsinfo = rsinfo;
	wanted.after_id = id - 1;
	wanted.up_to = id;
	wanted.max = 1;
	emissions_storage_log_read(wanted.after_id, 1, emit_row, &wanted);
	return (Datum) 0;
}
