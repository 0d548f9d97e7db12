/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  emissions_wait_delivered(): wait until what is committed is delivered.
 *
 * Asks the storage layer for the outbox rows visible when called
 * (committed by others; the caller's own uncommitted rows are left out),
 * then looks again until none of them is visible to a fresh snapshot any
 * more: the worker deletes a row in the transaction that delivers it.  It
 * looks again each time the database's worker has committed a pass or
 * exited (the worker broadcasts a condition variable of its registry
 * slot), and at least every WAIT_RECHECK_MS for what no broadcast announces
 * (rows deleted by other means); while the database has no running worker
 * (one about to start), every WAIT_POLL_MS.  Between looks it holds no lock on the outbox, so it
 * never stands in the worker's way.  Events that handlers emit while it
 * waits are not waited for: call it again for a cascade.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "utils/fmgrprotos.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "registry.h"
#include "storage.h"

PG_FUNCTION_INFO_V1(emissions_wait_delivered);

/* Longest sleep on the worker's condition variable between two looks. */
#define WAIT_RECHECK_MS	1000

/* Milliseconds between two looks when the database has no worker. */
#define WAIT_POLL_MS	5

/* What emissions_wait_delivered() reports while it waits. */
static uint32 wait_event = 0;

/* The rows a wait is for, as the storage layer found them. */
typedef struct WaitedRows
{
	OutboxRow  *rows;
	int			n;
} WaitedRows;

/* Keep in waited only the rows still visible to a fresh snapshot. */
static void
still_visible(WaitedRows *waited)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	OutboxAccess *access = emissions_storage_outbox_open(AccessShareLock);
	int			kept = 0;
	int			i;

	for (i = 0; i < waited->n; i++)
		if (emissions_storage_outbox_fetch(access, &waited->rows[i], snapshot, NULL,
										   NULL))
			waited->rows[kept++] = waited->rows[i];
	emissions_storage_outbox_close(access);
	UnregisterSnapshot(snapshot);
	waited->n = kept;
}

/* The rows visible to a fresh snapshot, committed by others, into waited. */
static void
collect_visible(WaitedRows *waited)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

	waited->n = emissions_storage_outbox_rows(snapshot, &waited->rows);
	UnregisterSnapshot(snapshot);
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
	WaitedRows	waited;

	if (!emissions_registry_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("emissions delivery is off"),
				 errdetail("emissions is not loaded via shared_preload_libraries, so no worker delivers events."),
				 errhint("Add emissions to shared_preload_libraries and restart the server.")));

	deadline = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													   TimestampTzGetDatum(GetCurrentTimestamp()),
													   IntervalPGetDatum(timeout)));
	collect_visible(&waited);
	while (waited.n > 0)
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
		still_visible(&waited);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_BOOL(waited.n == 0);
}
