/*-------------------------------------------------------------------------
 *
 * delivery_delete.c
 *	  Last step of a delivery pass: delete the delivered rows from the
 *	  outbox.
 *
 * In the delivery transaction, with everything else it did: an event is in
 * adapter tables, in the log and out of the outbox, or none of these.  The
 * space is given back when the partition is truncated (storage_rotation.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "delivery_steps.h"

/* Delete txn's numbered rows from the outbox. */
void
emissions_delivery_delete(DeliveryTxn *txn)
{
	int			i;

	for (i = 0; i < txn->nrows; i++)
		if (txn->first_ids[i] >= 0)
			emissions_storage_outbox_delete(txn->outbox, &txn->rows[i]);
}
