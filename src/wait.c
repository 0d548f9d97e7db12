/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  emissions_wait_delivered(): wait until what is committed is delivered.
 *
 * Notes the outbox rows visible when called (committed by others; the
 * caller's own uncommitted rows are left out), then looks again until none
 * of them is visible to a fresh snapshot any more: the worker deletes a
 * row in the transaction that delivers it.  It looks again each time the
 * database's worker has committed a pass or exited (the worker broadcasts
 * a condition variable of its registry slot), and at least every
 * WAIT_RECHECK_MS for what no broadcast announces (rows deleted by other
 * means); while the database has no running worker (one about to start),
 * every WAIT_POLL_MS.  Between looks it holds no lock on the outbox, so it
 * never stands in the worker's way.  Events that handlers emit while it
 * waits are not waited for: call it again for a cascade.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "utils/fmgrprotos.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "compat.h"
#include "outbox.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(emissions_wait_delivered);

/* Longest sleep on the worker's condition variable between two looks. */
#define WAIT_RECHECK_MS	1000

/* Milliseconds between two looks when the database has no worker. */
#define WAIT_POLL_MS	5

/* What emissions_wait_delivered() reports while it waits. */
static uint32 wait_event = 0;

typedef struct WaitedRow
{
	int			part;
	ItemPointerData tid;
} WaitedRow;

/*
 * Keep in rows[0..n) those still visible to a fresh snapshot; returns how
 * many remain.  With collect, first fill rows with every visible row.
 */
static int
visible_rows(WaitedRow **rows, int n, bool collect)
{
	FullTransactionId self = GetTopFullTransactionIdIfAny();
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	Oid			parts[STORE_PARTITIONS];
	int			cap = Max(n, 16);
	int			kept = 0;
	int			p;
	int			i;

	emissions_outbox_partitions(parts);
	for (p = 0; p < STORE_PARTITIONS; p++)
	{
		Relation	rel = table_open(parts[p], AccessShareLock);
		BlockNumber nblocks = RelationGetNumberOfBlocks(rel);

		if (collect)
		{
			TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
			HeapTuple	tuple;

			while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
			{
				bool		isnull;
				Datum		txid = heap_getattr(tuple, Anum_outbox_txid,
												RelationGetDescr(rel), &isnull);

				if (FullTransactionIdIsValid(self) &&
					FullTransactionIdEquals(DatumGetFullTransactionId(txid), self))
					continue;
				if (kept == cap)
				{
					cap *= 2;
					*rows = repalloc_huge(*rows, sizeof(WaitedRow) * cap);
				}
				(*rows)[kept].part = p;
				(*rows)[kept].tid = tuple->t_self;
				kept++;
			}
			table_endscan(scan);
		}
		else
		{
			for (i = 0; i < n; i++)
			{
				HeapTupleData tuple;
				Buffer		buffer;

				if ((*rows)[i].part != p ||
					ItemPointerGetBlockNumber(&(*rows)[i].tid) >= nblocks)
					continue;
				tuple.t_self = (*rows)[i].tid;
				if (heap_fetch(rel, snapshot, &tuple, &buffer, false))
				{
					ReleaseBuffer(buffer);
					(*rows)[kept++] = (*rows)[i];
				}
			}
		}
		table_close(rel, AccessShareLock);
	}
	UnregisterSnapshot(snapshot);
	return kept;
}

/*
 * emissions_wait_delivered(timeout): true once every event committed
 * before the call has been delivered, false if the timeout passes first.
 */
Datum
emissions_wait_delivered(PG_FUNCTION_ARGS)
{
	Interval   *timeout = PG_GETARG_INTERVAL_P(0);
	TimestampTz deadline;
	WaitedRow  *rows;
	int			n;

	if (!emissions_registry_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("emissions delivery is off"),
				 errdetail("emissions is not loaded via shared_preload_libraries, so no worker delivers events."),
				 errhint("Add emissions to shared_preload_libraries and restart the server.")));

	deadline = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													   TimestampTzGetDatum(GetCurrentTimestamp()),
													   IntervalPGetDatum(timeout)));
	rows = palloc(sizeof(WaitedRow) * 16);
	n = visible_rows(&rows, 0, true);
	while (n > 0)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		left_ms;
		ConditionVariable *cv;

		if (now >= deadline)
			break;
		left_ms = Max(TimestampDifferenceMilliseconds(now, deadline), 1);

		/*
		 * Looked up again each time: the database's worker may have exited
		 * and a new one taken another slot.  The first sleep on a condition
		 * variable only gets ready and returns at once, so a pass committed
		 * since the last look is not missed.
		 */
		cv = emissions_registry_pass_cv(MyDatabaseId);
		if (cv != NULL)
			(void) ConditionVariableTimedSleep(cv, Min(left_ms, WAIT_RECHECK_MS),
											   emissions_wait_event(&wait_event, "EmissionsWaitDelivered"));
		else
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(left_ms, WAIT_POLL_MS),
							 emissions_wait_event(&wait_event, "EmissionsWaitDelivered"));
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
		n = visible_rows(&rows, n, false);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_BOOL(n == 0);
}
