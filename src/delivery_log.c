/*-------------------------------------------------------------------------
 *
 * delivery_log.c
 *	  Step four of a delivery pass: copy the transaction's rows into the
 *	  event log, for catch-up readers.
 *
 * Each numbered outbox row goes into the log as it was stored (compressed,
 * most likely: it is not compressed again) with the ids its events got, in
 * the delivery transaction: an event is in the log exactly when it has
 * been delivered.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "delivery_steps.h"

/* Copy txn's numbered rows into the log through log. */
void
emissions_delivery_log(DeliveryTxn *txn, LogWriter *log)
{
	int			i;

	for (i = 0; i < txn->nrows; i++)
	{
		const OutboxRow *row = &txn->rows[i];
		MemoryContext oldcxt;
		bytea	   *stored;

		if (txn->first_ids[i] < 0 || row->events == 0)
			continue;
		oldcxt = MemoryContextSwitchTo(txn->row_cxt);
		if (!emissions_storage_outbox_fetch(txn->outbox, row, GetActiveSnapshot(),
											NULL, &stored))
			elog(ERROR, "emissions outbox row (%u,%u) vanished during its delivery",
				 ItemPointerGetBlockNumber(&row->tid),
				 ItemPointerGetOffsetNumber(&row->tid));
		emissions_storage_log_append(log, txn->first_ids[i],
									 txn->first_ids[i] + row->events - 1, row->txid,
									 txn->now, stored);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(txn->row_cxt);
	}
}
