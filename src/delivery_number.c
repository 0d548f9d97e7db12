/*-------------------------------------------------------------------------
 *
 * delivery_number.c
 *	  Step two of a delivery pass: give the events of a transaction their
 *	  ids.
 *
 * Ids increase along the stream, and a transaction's events are
 * consecutive: each row's events get the next ids in emit order, as many
 * as the row holds.  A row gone since the pass collected it (its partition
 * truncated by hand) gets none.  Every id given out must have been
 * reserved before the delivery transaction began (storage_state.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/snapmgr.h"

#include "delivery_steps.h"

/*
 * Number the events of txn's rows from next_id on, into txn->first_ids;
 * returns the id after the last one given.
 */
int64
emissions_delivery_number(DeliveryTxn *txn, const StoreState *store, int64 next_id)
{
	int			i;

	for (i = 0; i < txn->nrows; i++)
	{
		const OutboxRow *row = &txn->rows[i];

		txn->first_ids[i] = -1;
		if (!emissions_storage_outbox_fetch(txn->outbox, row, GetActiveSnapshot(),
											NULL, NULL))
			continue;
		emissions_storage_check_reserved(store, next_id + row->events - 1);
		txn->first_ids[i] = next_id;
		next_id += row->events;
	}
	return next_id;
}
