/*-------------------------------------------------------------------------
 *
 * delivery_dispatch.c
 *	  Step five of a delivery pass: call the table and function adapters
 *	  that want some of the transaction's events.
 *
 * One call per adapter and source transaction (adapters.c), in the
 * delivery transaction, so that a table adapter never shows half of a
 * transaction's events.  The events are read back from the outbox row by
 * row for each adapter (a RowSource): only one row's data and envelopes
 * are in memory at a time, whatever the transaction's size.  A failed call
 * is rolled back alone and handed to the retries module (retries.c), which
 * says when it is tried again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "adapters.h"
#include "delivery_steps.h"
#include "event_format.h"
#include "retries.h"

/*
 * The events of one source transaction's outbox rows, for one adapter,
 * read back row by row.
 */
typedef struct RowSource
{
	EventSource base;
	const Adapter *filter;		/* only its events */
	DeliveryTxn *txn;
	int			row;
	bytea	   *data;			/* the current row's events, or NULL */
	Size		pos;
	int64		next_id;
	DecodedEvent decoded;		/* the current event, in data */
} RowSource;

static bool
row_source_next(EventSource *base, OutgoingEvent *event)
{
	RowSource  *source = (RowSource *) base;
	DeliveryTxn *txn = source->txn;

	for (;;)
	{
		DecodedEvent *decoded = &source->decoded;
		const OutboxRow *row;

		if (source->row >= txn->nrows)
			return false;
		row = &txn->rows[source->row];
		if (source->data == NULL)
		{
			MemoryContext oldcxt;
			bool		found;

			MemoryContextReset(txn->row_cxt);
			if (txn->first_ids[source->row] < 0)
			{
				source->row++;
				continue;
			}
			oldcxt = MemoryContextSwitchTo(txn->row_cxt);
			found = storage_outbox_fetch(txn->outbox, row, GetActiveSnapshot(),
										 &source->data, NULL);
			MemoryContextSwitchTo(oldcxt);
			source->pos = 1;
			source->next_id = txn->first_ids[source->row];
			if (!found)
			{
				source->data = NULL;
				source->row++;
				continue;
			}
		}
		if (!event_decode_next(VARDATA(source->data),
							   VARSIZE(source->data) - VARHDRSZ,
							   &source->pos, decoded))
		{
			source->data = NULL;
			source->row++;
			continue;
		}

		event->id = source->next_id++;
		if (!adapter_wants(source->filter, decoded->type, decoded->type_len))
			continue;
		event->txid = row->txid;
		event->depth = row->depth;
		event->type = decoded->type;
		event->type_len = decoded->type_len;
		/* The envelope is built by whoever needs it, in its subtransaction. */
		event->decoded = decoded;
		event->dbname = txn->dbname;
		event->stored_envelope = NULL;
		event->envelope_jsonb = NULL;
		return true;
	}
}

static void
row_source_rewind(EventSource *base)
{
	RowSource  *source = (RowSource *) base;

	source->row = 0;
	source->data = NULL;
	MemoryContextReset(source->txn->row_cxt);
}

/*
 * Call each table and function adapter of adapters that wanted[] marks
 * with txn's events it wants.  A failed call is recorded for a retry;
 * *next_retry_at becomes the earliest retry due (it is left alone when
 * none is).  Returns how many events failed.
 */
int64
delivery_dispatch(DeliveryTxn *txn, List *adapters, const bool *wanted,
				  TimestampTz *next_retry_at)
{
	RowSource	source;
	int64		failed = 0;
	ListCell   *lc;
	int			a = 0;

	memset(&source, 0, sizeof(source));
	source.base.next = row_source_next;
	source.base.rewind = row_source_rewind;
	source.txn = txn;

	foreach(lc, adapters)
	{
		Adapter    *adapter = lfirst(lc);
		ErrorData  *error = NULL;
		TimestampTz retry_at;

		if (!wanted[a++])
			continue;
		source.filter = adapter;
		source.base.rewind(&source.base);
		if (adapter_deliver(adapter, &source.base, &error))
			continue;

		ereport(LOG,
				(errcode(error->sqlerrcode),
				 errmsg("emissions adapter \"%s\" failed with SQLSTATE %s: %s",
						adapter->name, unpack_sql_state(error->sqlerrcode),
						error->message),
				 errdetail("The events of transaction " UINT64_FORMAT " will be retried.",
						   U64FromFullTransactionId(txn->rows[0].txid))));
		failed += retries_record(adapter, &source.base, error, txn->now,
								 &retry_at);
		if (retry_at != 0 &&
			(*next_retry_at == 0 || *next_retry_at > retry_at))
			*next_retry_at = retry_at;
	}
	MemoryContextReset(txn->row_cxt);
	return failed;
}
