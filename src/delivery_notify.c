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
 * and function adapters want some of them (delivery_dispatch.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "adapters.h"
#include "delivery_steps.h"
#include "envelope.h"
#include "event_format.h"
#include "settings.h"

/* An event's NOTIFY texts, each built when first needed. */
typedef struct NotifyTexts
{
	int64		id;
	FullTransactionId txid;
	const DecodedEvent *decoded;
	const char *dbname;
	char	   *text[2];		/* with its payload if it fits; without */
} NotifyTexts;

/*
 * NOTIFY the event on channel, without its payload if omit_payload or if
 * the envelope with it is too big (envelope_build_notify).
 */
static void
notify_event(const char *channel, NotifyTexts *texts, bool omit_payload)
{
	if (texts->text[omit_payload] == NULL)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		envelope_build_notify(&buf, texts->id, texts->decoded, texts->txid,
							  texts->dbname, omit_payload);
		texts->text[omit_payload] = buf.data;
	}
	Async_Notify(channel, texts->text[omit_payload]);
}

/*
 * NOTIFY one event where it is wanted, and note in wanted[] the table and
 * function adapters that want it.
 */
static void
notify_where_wanted(NotifyTexts *texts, List *adapters, bool *wanted)
{
	const DecodedEvent *decoded = texts->decoded;
	ListCell   *lc;
	int			a = 0;

	if (emissions_notify_channel[0] != '\0')
		notify_event(emissions_notify_channel, texts, false);
	foreach(lc, adapters)
	{
		Adapter    *adapter = lfirst(lc);

		if (adapter_wants(adapter, decoded->type, decoded->type_len))
		{
			if (adapter->kind == ADAPTER_NOTIFY)
				notify_event(adapter->target, texts, adapter->omit_payload);
			else
				wanted[a] = true;
		}
		a++;
	}
}

/*
 * NOTIFY the events of txn's numbered rows; note in wanted[] (one entry an
 * adapter) which table and function adapters want some of them.  Returns
 * how many events there were; *last_emitted_at is the last one's emission
 * time.
 */
int64
delivery_notify(DeliveryTxn *txn, List *adapters, bool *wanted,
				TimestampTz *last_emitted_at)
{
	int64		count = 0;
	int			i;

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
		if (!storage_outbox_fetch(txn->outbox, row, GetActiveSnapshot(),
								  &data, NULL))
			elog(ERROR, "emissions outbox row (%u,%u) vanished during its delivery",
				 ItemPointerGetBlockNumber(&row->tid),
				 ItemPointerGetOffsetNumber(&row->tid));
		bytes = VARDATA(data);
		len = VARSIZE(data) - VARHDRSZ;
		event_check_record(bytes, len);

		while (event_decode_next(bytes, len, &pos, &decoded))
		{
			NotifyTexts texts = {0};

			if (id >= txn->first_ids[i] + row->events)
				break;
			texts.id = id++;
			texts.txid = row->txid;
			texts.decoded = &decoded;
			texts.dbname = txn->dbname;
			notify_where_wanted(&texts, adapters, wanted);
			*last_emitted_at = decoded.emitted_at;
			if (texts.text[0] != NULL)
				pfree(texts.text[0]);
			if (texts.text[1] != NULL)
				pfree(texts.text[1]);
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
