/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one delivery worker per database with the extension.
 *
 * A static background worker, connected to no database (it reads only the
 * shared catalog pg_database), as the logical replication launcher is.  It
 * starts a dynamic worker for every database that allows connections; a
 * worker that finds no extension in its database says so in its registry
 * slot and exits, and the launcher leaves that database alone until asked
 * to rescan (CREATE EXTENSION does, once it commits).  It is notified when
 * its workers start and stop (bgw_notify_pid), and otherwise looks at
 * pg_database every LAUNCHER_RESCAN_MS for new and dropped databases.
 *
 * A worker that stops without saying the extension is missing (an error,
 * SIGTERM) is started again after a delay that doubles with each failure
 * in a row, up to a minute, so a worker that keeps failing does not flood
 * the log.  Databases held off in the registry (DROP DATABASE and the like
 * are running) are not started until the hold expires.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "launcher.h"
#include "registry.h"

/* How often pg_database is read when nothing else happens. */
#define LAUNCHER_RESCAN_MS		10000

/* Delay before restarting a worker; doubled after each failure in a row. */
#define LAUNCHER_RESTART_MS		1000

/* Longest delay before restarting a failing worker. */
#define LAUNCHER_MAX_BACKOFF_MS	60000

/* A worker that ran this long before stopping is not counted as failing. */
#define LAUNCHER_HEALTHY_MS		60000

typedef enum DatabaseState
{
	DB_IDLE,					/* no worker; start one at next_start */
	DB_RUNNING,					/* a worker was started */
	DB_ABSENT					/* no extension there */
} DatabaseState;

typedef struct LauncherEntry
{
	Oid			dbid;			/* hash key */
	DatabaseState state;
	BackgroundWorkerHandle *handle;
	int			slot;
	int			failures;		/* stops in a row without a healthy run */
	TimestampTz started_at;
	TimestampTz next_start;
	bool		seen;			/* in pg_database at the last scan */
} LauncherEntry;

static HTAB *databases = NULL;
static bool warned_no_slot = false;

/* What the launcher reports while it sleeps (see compat.h). */
static uint32 wait_event = 0;

/*
 * Register the launcher; called from _PG_init during
 * shared_preload_libraries processing.
 */
void
emissions_launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "emissions");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "emissions_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "emissions launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "emissions launcher");
	RegisterBackgroundWorker(&worker);
}

/* OIDs of the databases that allow connections, in memory of cxt. */
static List *
list_databases(MemoryContext cxt)
{
	List	   *result = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
		MemoryContext oldcxt;

		if (!db->datallowconn)
			continue;
		oldcxt = MemoryContextSwitchTo(cxt);
		result = lappend_oid(result, db->oid);
		MemoryContextSwitchTo(oldcxt);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return result;
}

/* Start a delivery worker for entry's database; false if none could be. */
static bool
start_worker(LauncherEntry *entry)
{
	BackgroundWorker worker;
	int			slot = emissions_registry_claim(entry->dbid);

	if (slot < 0)
	{
		if (!warned_no_slot)
			ereport(WARNING,
					(errmsg("emissions cannot deliver events of more than %d databases",
							REGISTRY_MAX_WORKERS)));
		warned_no_slot = true;
		return false;
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "emissions");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "emissions_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "emissions delivery for database %u",
			 entry->dbid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "emissions delivery");
	worker.bgw_main_arg = ObjectIdGetDatum(entry->dbid);
	memcpy(worker.bgw_extra, &slot, sizeof(int));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &entry->handle))
	{
		emissions_registry_release(slot);
		if (!warned_no_slot)
			ereport(WARNING,
					(errmsg("emissions could not start a delivery worker"),
					 errhint("Raise max_worker_processes: emissions needs one for its launcher and one per database where it is installed.")));
		warned_no_slot = true;
		return false;
	}
	entry->slot = slot;
	entry->state = DB_RUNNING;
	entry->started_at = GetCurrentTimestamp();
	return true;
}

/*
 * Record that entry's worker has stopped, and decide when to start again:
 * after a failure with backoff, after a requested stop (SIGTERM) soon.
 */
static void
worker_stopped(LauncherEntry *entry, TimestampTz now)
{
	WorkerExit	exit = emissions_registry_slot_exit(entry->slot);

	emissions_registry_release(entry->slot);
	pfree(entry->handle);
	entry->handle = NULL;
	entry->slot = -1;
	if (exit == WORKER_EXIT_ABSENT)
	{
		entry->state = DB_ABSENT;
		entry->failures = 0;
		return;
	}

	entry->state = DB_IDLE;
	if (exit == WORKER_EXIT_TERMINATED)
	{
		entry->failures = 0;
		entry->next_start = TimestampTzPlusMilliseconds(now,
														LAUNCHER_RESTART_MS);
		return;
	}

	if (TimestampDifferenceExceeds(entry->started_at, now, LAUNCHER_HEALTHY_MS))
		entry->failures = 0;
	entry->failures++;
	entry->next_start = TimestampTzPlusMilliseconds(now,
													Min(LAUNCHER_MAX_BACKOFF_MS,
														LAUNCHER_RESTART_MS << Min(entry->failures - 1, 6)));
}

/*
 * Bring the workers in line with pg_database; returns how long to sleep,
 * in milliseconds, before looking again.
 */
static long
reconcile(MemoryContext cxt)
{
	bool		rescan = emissions_registry_take_rescan();
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = TimestampTzPlusMilliseconds(now, LAUNCHER_RESCAN_MS);
	List	   *dbids;
	ListCell   *lc;
	HASH_SEQ_STATUS seq;
	LauncherEntry *entry;

	MemoryContextReset(cxt);
	dbids = list_databases(cxt);

	hash_seq_init(&seq, databases);
	while ((entry = hash_seq_search(&seq)) != NULL)
		entry->seen = false;

	foreach(lc, dbids)
	{
		Oid			dbid = lfirst_oid(lc);
		bool		found;
		TimestampTz until;

		entry = hash_search(databases, &dbid, HASH_ENTER, &found);
		if (!found)
		{
			entry->state = DB_IDLE;
			entry->handle = NULL;
			entry->slot = -1;
			entry->failures = 0;
			entry->next_start = now;
		}
		entry->seen = true;

		if (entry->state == DB_RUNNING)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(entry->handle, &pid) == BGWH_STOPPED)
				worker_stopped(entry, now);
		}
		if (entry->state == DB_ABSENT && rescan)
		{
			entry->state = DB_IDLE;
			entry->next_start = now;
		}
		if (entry->state != DB_IDLE)
			continue;

		if (emissions_registry_held(dbid, now, &until))
			entry->next_start = Max(entry->next_start, until);
		if (entry->next_start <= now)
		{
			if (!start_worker(entry))
				entry->next_start = TimestampTzPlusMilliseconds(now, 5000);
		}
		if (entry->state == DB_IDLE)
			wake = Min(wake, entry->next_start);
	}

	/* Forget dropped databases once their worker is gone. */
	hash_seq_init(&seq, databases);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		pid_t		pid;

		if (entry->seen)
			continue;
		if (entry->state == DB_RUNNING &&
			GetBackgroundWorkerPid(entry->handle, &pid) != BGWH_STOPPED)
			continue;
		if (entry->state == DB_RUNNING)
			worker_stopped(entry, now);
		hash_search(databases, &entry->dbid, HASH_REMOVE, NULL);
	}

	return Max(10, (long) ((wake - now) / 1000));
}

/*
 * Entry point of the launcher.
 */
void
emissions_launcher_main(Datum main_arg)
{
	HASHCTL		info;
	MemoryContext scan_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	emissions_registry_set_launcher();

	info.keysize = sizeof(Oid);
	info.entrysize = sizeof(LauncherEntry);
	databases = hash_create("emissions launcher databases", 64, &info,
							HASH_ELEM | HASH_BLOBS);
	scan_cxt = AllocSetContextCreate(TopMemoryContext,
									 "emissions launcher scan",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		long		sleep_ms;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		pgstat_report_activity(STATE_RUNNING, "starting delivery workers");
		sleep_ms = reconcile(scan_cxt);
		pgstat_report_activity(STATE_IDLE, NULL);

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms,
						 emissions_wait_event(&wait_event, "EmissionsLauncherMain"));
	}
}
