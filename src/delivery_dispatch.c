/*-------------------------------------------------------------------------
 *
 * delivery_dispatch.c
 *	  Step five of a delivery pass: call the table and function adapters
 *	  that want some of the transaction's events.
 *
 * One call per adapter and source transaction (adapters.c), in the
 * delivery transaction, so that a table adapter never shows half of a
 * transaction's events.  Each call reads the events it wants, with their
 * envelopes made once for all of them, from the batch delivery_notify.c
 * filled (in memory up to work_mem, then in a temporary file, whatever the
 * transaction's size).  A failed call is rolled back alone and handed to
 * the retries module (retries.c), which says when it is tried again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "adapters.h"
#include "delivery_steps.h"
#include "retries.h"

/*
 * Call each table and function adapter of adapters that wanted[] marks
 * with txn's events it wants, from txn->batch, which is freed afterwards.
 * A failed call is recorded for a retry; *next_retry_at becomes the
 * earliest retry due (it is left alone when none is).  Returns how many
 * events failed.
 */
int64
emissions_delivery_dispatch(DeliveryTxn *txn, List *adapters, const bool *wanted,
							TimestampTz *next_retry_at)
{
	int64		failed = 0;
	ListCell   *lc;
	int			a = 0;

	if (txn->batch == NULL)
		return 0;				/* no adapter wants any of them */

	foreach(lc, adapters)
	{
		Adapter    *adapter = lfirst(lc);
		ErrorData  *error = NULL;
		TimestampTz retry_at;

		if (!wanted[a++])
			continue;
		if (emissions_adapter_deliver(adapter, emissions_outgoing_batch_source(txn->batch, adapter),
									  &error))
			continue;

		ereport(LOG,
				(errcode(error->sqlerrcode),
				 errmsg("emissions adapter \"%s\" failed with SQLSTATE %s: %s",
						adapter->name, unpack_sql_state(error->sqlerrcode),
						error->message),
				 errdetail("The events of transaction " UINT64_FORMAT " will be retried.",
						   U64FromFullTransactionId(txn->rows[0].txid))));
		failed += emissions_retries_record(adapter,
										   emissions_outgoing_batch_source(txn->batch, adapter),
										   error, txn->now, &retry_at);
		if (retry_at != 0 &&
			(*next_retry_at == 0 || *next_retry_at > retry_at))
			*next_retry_at = retry_at;
	}
	emissions_outgoing_batch_free(txn->batch);
	txn->batch = NULL;
	return failed;
}
