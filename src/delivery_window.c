/*-------------------------------------------------------------------------
 *
 * delivery_window.c
 *	  Where a delivery pass starts its scan of each outbox partition.
 *
 * Delivered rows stay in an outbox partition as dead tuples until the
 * partition is truncated (every few MB, storage_rotation.c), so a pass that
 * scans whole partitions reads more the longer the partition has been in
 * use, however few rows are new: under a steady stream most of the worker's
 * time went there.  A pass therefore scans each partition only from the
 * lowest block where a row it has not seen can be, which must include every
 * row of a transaction that commits late (SPEC: late commits are never
 * skipped).  Two sources say where such rows are:
 *
 *	 - Producers note the block of every outbox row they write, lowest per
 *	   partition, in shared memory (emissions_registry_note_outbox_block),
 *	   right after writing it and before their commit.  The worker takes
 *	   (and clears) these notes just before it takes the pass's snapshot:
 *	   a row written before that is in this window's blocks, one written
 *	   after it is in the next window's.
 *	 - A row a pass did not see because its transaction was still running
 *	   was written in some earlier window: its transaction had its xid
 *	   before it wrote the row, and the row was noted before the window
 *	   was taken, so the next xid read just after the taking (the window's
 *	   bound; not the snapshot's xmax, which only follows the completed
 *	   transactions) is above it.  The xid is also at or above the xmin of
 *	   the snapshot that did not see the row.  So the next pass must scan
 *	   the lowest block of every earlier window whose bound is above the
 *	   last pass's xmin; the others can hold no such row.  Windows are
 *	   kept until that can no longer be true (xmin only grows).
 *
 * A pass that found rows but did not deliver them all (a failed commit) makes
 * the next one scan everything, as does a worker's first pass.  A partition
 * truncated or rewritten (VACUUM FULL) since the last scan has new block
 * numbers: it is scanned whole (its relfilenode changed, see
 * emissions_storage_outbox_scan_from).  Over-estimates are harmless: a block
 * noted before a truncation only makes a scan start lower than it needs.  A
 * prepared or long transaction holds xmin back, and the scans start where they
 * did when it began, as low as every scan started before this file.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"

#include "delivery_steps.h"
#include "registry.h"

/*
 * Fold the window now ending into the snapshot's, for
 * emissions_delivery_window_start.
 */
void
emissions_delivery_window_take(DeliveryWindow *window)
{
	BlockNumber taken[STORE_PARTITIONS];
	int			p;

	emissions_registry_take_outbox_blocks(taken);
	for (p = 0; p < STORE_PARTITIONS; p++)
		window->current[p] = Min(window->current[p], taken[p]);
	/* Every transaction that wrote a row noted so far has an xid below. */
	window->current_bound = ReadNextTransactionId();
}

/*
 * Where the pass whose snapshot was taken after emissions_delivery_window_take
 * starts scanning each partition (InvalidBlockNumber: not at all).
 */
void
emissions_delivery_window_start(const DeliveryWindow *window, BlockNumber *from)
{
	int			i;
	int			p;

	for (p = 0; p < STORE_PARTITIONS; p++)
		from[p] = window->scan_all ? 0 : window->current[p];
	if (window->scan_all)
		return;
	for (i = 0; i < window->npast; i++)
		if (TransactionIdFollows(window->past[i].bound, window->last_xmin))
			for (p = 0; p < STORE_PARTITIONS; p++)
				from[p] = Min(from[p], window->past[i].low[p]);
}

/*
 * Record that a pass scanned from emissions_delivery_window_start's blocks
 * under a snapshot whose xmin is xmin, and delivered every row it found.
 */
void
emissions_delivery_window_scanned(DeliveryWindow *window, TransactionId xmin)
{
	int			kept = 0;
	int			i;
	int			p;

	/* Drop the windows no later pass needs (see the file's header). */
	for (i = 0; i < window->npast; i++)
		if (TransactionIdFollows(window->past[i].bound, xmin))
			window->past[kept++] = window->past[i];
	window->npast = kept;
	if (window->npast == DELIVERY_WINDOWS)
	{
		/* Full (a long transaction): merge the two oldest, conservatively. */
		for (p = 0; p < STORE_PARTITIONS; p++)
			window->past[1].low[p] = Min(window->past[0].low[p],
										 window->past[1].low[p]);
		memmove(&window->past[0], &window->past[1],
				sizeof(window->past[0]) * (DELIVERY_WINDOWS - 1));
		window->npast--;
	}
	for (p = 0; p < STORE_PARTITIONS; p++)
	{
		window->past[window->npast].low[p] =
			window->scan_all ? 0 : window->current[p];
		window->current[p] = InvalidBlockNumber;
	}
	window->past[window->npast].bound = window->current_bound;
	window->npast++;
	window->last_xmin = xmin;
	window->scan_all = false;
}

/*
 * Have the next pass scan everything: a worker's first pass, or after one
 * that did not deliver all it found.
 */
void
emissions_delivery_window_reset(DeliveryWindow *window)
{
	int			p;

	window->scan_all = true;
	window->npast = 0;
	window->last_xmin = InvalidTransactionId;
	for (p = 0; p < STORE_PARTITIONS; p++)
	{
		window->current[p] = InvalidBlockNumber;
		window->files[p] = InvalidOid;
	}
}
