/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Waking the delivery worker or the launcher once a transaction commits.
 *
 * As the logical replication launcher is woken: a flag is set while the
 * transaction works (it handed events off, ran COMMIT PREPARED, replayed a
 * dead letter, created the extension), and the COMMIT callback sets the
 * latch, after the commit record is written, so the woken process sees the
 * transaction's rows.  Setting a latch cannot fail.  An abort or a PREPARE
 * only clears the flags: a prepared transaction's events are announced by
 * the COMMIT PREPARED that commits them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"

#include "registry.h"
#include "wakeup.h"

PG_FUNCTION_INFO_V1(emissions_launcher_wakeup);

static bool wake_worker = false;
static bool wake_launcher = false;

/*
 * Have this database's delivery worker woken when the transaction commits.
 */
void
emissions_wake_worker_at_commit(void)
{
	wake_worker = true;
}

/*
 * Have the launcher look for new databases with the extension when the
 * transaction commits.
 */
void
emissions_wake_launcher_at_commit(void)
{
	wake_launcher = true;
}

static void
wakeup_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (wake_worker)
				emissions_registry_wake_worker(MyDatabaseId);
			if (wake_launcher)
				emissions_registry_request_rescan();
			wake_worker = wake_launcher = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			wake_worker = wake_launcher = false;
			break;
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			break;
	}
}

/*
 * Register the transaction callback; called once from _PG_init.
 */
void
emissions_wakeup_init(void)
{
	RegisterXactCallback(wakeup_xact_callback, NULL);
}

/*
 * emissions_launcher_wakeup(): called by the install script, so that a
 * database gets its delivery worker as soon as CREATE EXTENSION commits.
 */
Datum
emissions_launcher_wakeup(PG_FUNCTION_ARGS)
{
	emissions_wake_launcher_at_commit();
	PG_RETURN_VOID();
}
