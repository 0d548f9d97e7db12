/*-------------------------------------------------------------------------
 *
 * delivery_collect.c
 *	  Step one of a delivery pass: collect the committed outbox rows, and
 *	  cut them into chunks of whole transactions.
 *
 * The storage layer scans the outbox under the pass's snapshot; the rows
 * it sees are committed and not yet delivered (a transaction still in
 * progress, or prepared, is invisible and waits for its commit).  Sorted by
 * (txid, seq), they give the order of delivery: a transaction that commits
 * late (its xid below ones already delivered) is simply seen by a later
 * pass, and gets later ids; nothing is skipped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "delivery_steps.h"
#include "settings.h"

/* Delivery order: by transaction id, then by row number within it. */
static int
row_cmp(const void *a, const void *b)
{
	const OutboxRow *ra = a;
	const OutboxRow *rb = b;

	if (FullTransactionIdPrecedes(ra->txid, rb->txid))
		return -1;
	if (FullTransactionIdPrecedes(rb->txid, ra->txid))
		return 1;
	return (ra->seq > rb->seq) - (ra->seq < rb->seq);
}

/*
 * The outbox rows visible to the active snapshot, in each partition p from
 * block from[p] on, or all of it when its file is no longer files[p]
 * (delivery_window.c), sorted by (txid, seq), into *rows (allocated in
 * cxt); returns how many.
 */
int
emissions_delivery_collect(MemoryContext cxt, const BlockNumber *from, Oid *files,
						   OutboxRow **rows)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	int			n = emissions_storage_outbox_rows_from(GetActiveSnapshot(), from, files,
													   rows);

	MemoryContextSwitchTo(oldcxt);
	if (n > 1)
		qsort(*rows, n, sizeof(OutboxRow), row_cmp);
	return n;
}

/*
 * End of the chunk starting at rows[from]: whole transactions, about
 * emissions.batch_size events.
 */
int
emissions_delivery_chunk_end(const OutboxRow *rows, int nrows, int from)
{
	int64		events = 0;
	int			i = from;

	while (i < nrows)
	{
		FullTransactionId txid = rows[i].txid;

		if (events > 0 && events + rows[i].events > emissions_batch_size)
			break;
		while (i < nrows && FullTransactionIdEquals(rows[i].txid, txid))
			events += rows[i++].events;
	}
	return i;
}

/* How many events rows[from..to) hold. */
int64
emissions_delivery_chunk_events(const OutboxRow *rows, int from, int to)
{
	int64		events = 0;
	int			i;

	for (i = from; i < to; i++)
		events += rows[i].events;
	return events;
}
