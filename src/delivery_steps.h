/*-------------------------------------------------------------------------
 *
 * delivery_steps.h
 *	  The steps of a delivery pass, one file each: collect, number,
 *	  notify, log, dispatch, delete.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_DELIVERY_STEPS_H
#define EMISSIONS_DELIVERY_STEPS_H

#include "nodes/pg_list.h"

#include "adapters.h"
#include "storage.h"

/*
 * The outbox rows of one source transaction, delivered in the current
 * worker transaction.
 */
typedef struct DeliveryTxn
{
	OutboxRow  *rows;			/* sorted by seq */
	int			nrows;
	int64	   *first_ids;		/* id of each row's first event; -1: gone */
	OutboxAccess *outbox;		/* the partitions, locked for deleting */
	const char *dbname;
	TimestampTz now;			/* the delivery time */
	MemoryContext row_cxt;		/* one row's data at a time */
	OutgoingBatch *batch;		/* what table and function adapters want, or
								 * NULL: made by emissions_delivery_notify() */
} DeliveryTxn;

/* Windows a scan start is kept for, at most (delivery_window.c). */
#define DELIVERY_WINDOWS 16

/*
 * Where producers wrote outbox rows, window by window between the worker's
 * scans (delivery_window.c).
 */
typedef struct DeliveryWindow
{
	bool		scan_all;		/* the next pass scans every block */
	BlockNumber current[STORE_PARTITIONS];	/* lowest noted since the last
											 * scan; InvalidBlockNumber: none */
	TransactionId current_bound;	/* next xid when they were taken */
	TransactionId last_xmin;	/* xmin of the last scan's snapshot */
	Oid			files[STORE_PARTITIONS];	/* the partitions' relfilenodes
											 * then */
	int			npast;
	struct
	{
		BlockNumber low[STORE_PARTITIONS];	/* lowest block noted in it */
		TransactionId bound;	/* next xid when it was taken */
	}			past[DELIVERY_WINDOWS];
} DeliveryWindow;

/* delivery_window.c */
extern void emissions_delivery_window_take(DeliveryWindow *window);
extern void emissions_delivery_window_start(const DeliveryWindow *window,
											BlockNumber *from);
extern void emissions_delivery_window_scanned(DeliveryWindow *window,
											  TransactionId xmin);
extern void emissions_delivery_window_reset(DeliveryWindow *window);

/* delivery_collect.c */
extern int	emissions_delivery_collect(MemoryContext cxt, const BlockNumber *from,
									   Oid *files, OutboxRow **rows);
extern int	emissions_delivery_chunk_end(const OutboxRow *rows, int nrows, int from);
extern int64 emissions_delivery_chunk_events(const OutboxRow *rows, int from, int to);

/* delivery_number.c */
extern int64 emissions_delivery_number(DeliveryTxn *txn, const StoreState *store,
									   int64 next_id);

/* delivery_notify.c */
extern int64 emissions_delivery_notify(DeliveryTxn *txn, List *adapters, bool *wanted,
									   TimestampTz *last_emitted_at);

/* delivery_log.c */
extern void emissions_delivery_log(DeliveryTxn *txn, LogWriter *log);

/* delivery_dispatch.c */
extern int64 emissions_delivery_dispatch(DeliveryTxn *txn, List *adapters,
										 const bool *wanted, TimestampTz *next_retry_at);

/* delivery_delete.c */
extern void emissions_delivery_delete(DeliveryTxn *txn);

#endif							/* EMISSIONS_DELIVERY_STEPS_H */
