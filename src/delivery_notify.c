/*-------------------------------------------------------------------------
 *
 * delivery_notify.c
 *	  Step three of a delivery pass: NOTIFY the events of a transaction.
 *
 * Each event's envelope goes out on the default channel and on every
 * notify adapter that wants it, in id order; only the worker notifies, so
 * producers never wait for the notification queue's lock.  The NOTIFYs are
 * sent when the worker's transaction commits, with everything else the
 * pass did, or never.  Reading the events, the step also notes which table
 * and function adapters want some of them, and puts those events in
 * txn->batch with their envelopes as jsonb, for delivery_dispatch.c: each
 * event's envelope is made once (envelope.c), its text for every NOTIFY
 * and its jsonb for every adapter.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "adapters.h"
#include "delivery_steps.h"
#include "envelope.h"
#include "event_format.h"
#include "settings.h"

/*
 * NOTIFY the event of envelope on channel, without its payload if
 * omit_payload or if the envelope with it is too big.
 */
static void
notify_event(const char *channel, Envelope *envelope, bool omit_payload)
{
	Async_Notify(channel, emissions_envelope_notify_text(envelope, omit_payload));
}

/*
 * NOTIFY the event of envelope where it is wanted, and note in wanted[] the
 * table and function adapters that want it.  Returns whether any does.
 */
static bool
notify_where_wanted(Envelope *envelope, List *adapters, bool *wanted)
{
	const DecodedEvent *decoded = envelope->event;
	bool		dispatch = false;
	ListCell   *lc;
	int			a = 0;

	if (emissions_notify_channel[0] != '\0')
		notify_event(emissions_notify_channel, envelope, false);
	foreach(lc, adapters)
	{
		Adapter    *adapter = lfirst(lc);

		if (emissions_adapter_wants(adapter, decoded->type, decoded->type_len))
		{
			if (adapter->kind == ADAPTER_NOTIFY)
				notify_event(adapter->target, envelope,
							 adapter->omit_payload);
			else
				wanted[a] = dispatch = true;
		}
		a++;
	}
	return dispatch;
}

/*
 * NOTIFY the events of txn's numbered rows; note in wanted[] (one entry an
 * adapter) which table and function adapters want some of them, and put
 * those events in txn->batch (NULL if none, else made in
 * CurrentMemoryContext).  Returns how many events there were;
 * *last_emitted_at is the last one's emission time.
 */
int64
emissions_delivery_notify(DeliveryTxn *txn, List *adapters, bool *wanted,
						  TimestampTz *last_emitted_at)
{
	MemoryContext cxt = CurrentMemoryContext;
	int64		count = 0;
	int			i;

	txn->batch = NULL;
	for (i = 0; i < txn->nrows; i++)
	{
		const OutboxRow *row = &txn->rows[i];
		MemoryContext oldcxt;
		bytea	   *data;
		const char *bytes;
		Size		len;
		Size		pos = 1;
		DecodedEvent decoded;
		int64		id = txn->first_ids[i];

		if (id < 0)
			continue;
		oldcxt = MemoryContextSwitchTo(txn->row_cxt);
		if (!emissions_storage_outbox_fetch(txn->outbox, row, GetActiveSnapshot(),
											&data, NULL))
			elog(ERROR, "emissions outbox row (%u,%u) vanished during its delivery",
				 ItemPointerGetBlockNumber(&row->tid),
				 ItemPointerGetOffsetNumber(&row->tid));
		bytes = VARDATA(data);
		len = VARSIZE(data) - VARHDRSZ;
		emissions_event_check_record(bytes, len);

		while (emissions_event_decode_next(bytes, len, &pos, &decoded))
		{
			Envelope	envelope;

			if (id >= txn->first_ids[i] + row->events)
				break;
			emissions_envelope_init(&envelope, id++, row->txid, &decoded, txn->dbname);
			if (notify_where_wanted(&envelope, adapters, wanted))
			{
				if (txn->batch == NULL)
					txn->batch = emissions_outgoing_batch_create(txn->dbname, cxt);
				emissions_outgoing_batch_add(txn->batch, &envelope, row->depth);
			}
			*last_emitted_at = decoded.emitted_at;
			emissions_envelope_release(&envelope);
			count++;
		}
		if (id != txn->first_ids[i] + row->events)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("emissions outbox row of transaction " UINT64_FORMAT " does not hold the %d events it says it holds",
							U64FromFullTransactionId(row->txid), row->events)));
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(txn->row_cxt);
	}
	return count;
}
