/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one delivery worker per database with the extension.
 *
 * A static background worker, connected to no database (it reads only the
 * shared catalog pg_database), as the logical replication launcher is.  It
 * starts a dynamic worker for every database that allows connections; a
 * worker that finds no extension in its database says so in its registry
 * slot and exits, and the launcher leaves that database alone until a
 * CREATE EXTENSION commits after that worker looked (the registry counts
 * them).  It is woken when its workers start and stop (bgw_notify_pid), when
 * any worker exits (the worker sets its latch), and otherwise looks at
 * pg_database every LAUNCHER_RESCAN_MS for new and dropped databases.
 *
 * Which database has a worker is kept in the registry's slots, in shared
 * memory, not here: a launcher that is terminated and started again
 * (bgw_restart_time) finds the workers still running and follows them, as
 * it follows its own; it frees the slots of workers that left, whoever
 * started them, and takes back, after LAUNCHER_ATTACH_MS, a slot claimed by
 * a launcher that died before its worker attached.  A database gets a new
 * worker only once its slot is free, so it never has two (registry.c).
 *
 * At most emissions.max_workers databases have a worker at a time (the
 * registry has that many slots), and each worker takes a slot of
 * max_worker_processes: when either runs out, the databases left over
 * wait, tried again every LAUNCHER_FULL_RETRY_MS, and a WARNING says so,
 * once per launcher for each of the two limits.
 *
 * A worker that stops without saying the extension is missing (an error,
 * SIGTERM) is started again after a delay that doubles with each failure
 * in a row, up to a minute, so a worker that keeps failing does not flood
 * the log.  Databases held off in the registry (DROP DATABASE and the like
 * are running) are not started until the hold expires or is released.
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
#include "settings.h"

/* How often pg_database is read when nothing else happens. */
#define LAUNCHER_RESCAN_MS		10000

/* Delay before restarting a worker; doubled after each failure in a row. */
#define LAUNCHER_RESTART_MS		1000

/* Longest delay before restarting a failing worker. */
#define LAUNCHER_MAX_BACKOFF_MS	60000

/* A worker that ran this long before stopping is not counted as failing. */
#define LAUNCHER_HEALTHY_MS		60000

/* How long a worker another launcher started has to attach to its slot. */
#define LAUNCHER_ATTACH_MS		5000

/* Delay before trying again a database that found no slot free. */
#define LAUNCHER_FULL_RETRY_MS	5000

typedef enum DatabaseState
{
	DB_IDLE,					/* no worker; start one at next_start */
	DB_RUNNING,					/* it has a slot in the registry */
	DB_ABSENT					/* no extension there */
} DatabaseState;

typedef struct LauncherEntry
{
	Oid			dbid;			/* hash key */
	DatabaseState state;
	BackgroundWorkerHandle *handle; /* of a worker this launcher started */
	WorkerClaim claim;			/* with handle: the slot claimed for it */
	int			failures;		/* stops in a row without a healthy run */
	uint64		absent_seen;	/* DB_ABSENT: rescans seen by its worker */
	TimestampTz started_at;
	TimestampTz next_start;
	bool		seen;			/* in pg_database at the last scan */
	bool		has_slot;		/* in the registry at the last look */
} LauncherEntry;

static HTAB *databases = NULL;

/* Whether the launcher said that emissions.max_workers was reached. */
static bool warned_registry_full = false;

/* Whether it said that max_worker_processes was reached. */
static bool warned_no_bgworker = false;

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

/* The entry of dbid, made (idle, to start now) if there is none. */
static LauncherEntry *
entry_for(Oid dbid, TimestampTz now)
{
	bool		found;
	LauncherEntry *entry = hash_search(databases, &dbid, HASH_ENTER, &found);

	if (!found)
	{
		entry->state = DB_IDLE;
		entry->handle = NULL;
		entry->failures = 0;
		entry->absent_seen = 0;
		entry->started_at = now;
		entry->next_start = now;
		entry->seen = false;
		entry->has_slot = false;
	}
	return entry;
}

/* Forget the handle of the worker this launcher started for entry. */
static void
forget_handle(LauncherEntry *entry)
{
	if (entry->handle != NULL)
		pfree(entry->handle);
	entry->handle = NULL;
}

/* Start a delivery worker for entry's database; false if none could be. */
static bool
start_worker(LauncherEntry *entry, TimestampTz now)
{
	BackgroundWorker worker;
	WorkerClaim claim;
	SlotView	view;

	switch (emissions_registry_claim(entry->dbid, &claim))
	{
		case CLAIM_OK:
			break;
		case CLAIM_TAKEN:
			/* Someone's worker holds it: follow it at the next look. */
			entry->state = DB_RUNNING;
			return true;
		case CLAIM_FULL:
			if (!warned_registry_full)
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("emissions cannot deliver events of more than %d databases",
								emissions_max_workers),
						 errdetail("Databases beyond emissions.max_workers get no delivery worker until another database's worker stops; their events wait in the outbox."),
						 errhint("Raise emissions.max_workers and restart the server.")));
			warned_registry_full = true;
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
	memcpy(worker.bgw_extra, &claim, sizeof(WorkerClaim));
	worker.bgw_notify_pid = MyProcPid;

	forget_handle(entry);
	if (!RegisterDynamicBackgroundWorker(&worker, &entry->handle))
	{
		(void) emissions_registry_release(claim.slot, claim.generation, &view);
		entry->handle = NULL;
		if (!warned_no_bgworker)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("emissions could not start a delivery worker"),
					 errhint("Raise max_worker_processes: emissions needs one for its launcher and one per database where it is installed.")));
		warned_no_bgworker = true;
		return false;
	}
	entry->claim = claim;
	entry->state = DB_RUNNING;
	entry->started_at = now;
	return true;
}

/*
 * Record that entry's worker has stopped (its slot is free again) for the
 * reason exit, and decide when to start again: after a failure with
 * backoff, after a requested stop (SIGTERM) soon, after the extension was
 * recreated at once.
 */
static void
worker_stopped(LauncherEntry *entry, const SlotView *view, TimestampTz now)
{
	WorkerExit	exit = (view->state == SLOT_EXITED) ?
		view->exit : WORKER_EXIT_FAILED;

	forget_handle(entry);
	entry->has_slot = false;
	entry->state = DB_IDLE;
	switch (exit)
	{
		case WORKER_EXIT_ABSENT:
			entry->state = DB_ABSENT;
			entry->absent_seen = view->absent_seen;
			entry->failures = 0;
			return;
		case WORKER_EXIT_RESTART:
			entry->failures = 0;
			entry->next_start = now;
			return;
		case WORKER_EXIT_TERMINATED:
			entry->failures = 0;
			entry->next_start = TimestampTzPlusMilliseconds(now,
															LAUNCHER_RESTART_MS);
			return;
		case WORKER_EXIT_FAILED:
			break;
	}

	if (TimestampDifferenceExceeds(entry->started_at, now, LAUNCHER_HEALTHY_MS))
		entry->failures = 0;
	entry->failures++;
	entry->next_start = TimestampTzPlusMilliseconds(now,
													Min(LAUNCHER_MAX_BACKOFF_MS,
														LAUNCHER_RESTART_MS << Min(entry->failures - 1, 6)));
}

/*
 * Bring the launcher's entry for a slot in use in line with it, whoever
 * claimed the slot (this launcher, or one that was terminated): collect a
 * worker that left, take back a claim whose worker never attached, follow
 * a running worker.  Returns when to look again at the latest.
 */
static TimestampTz
follow_slot(const SlotView *slot, TimestampTz now, TimestampTz wake)
{
	LauncherEntry *entry = entry_for(slot->dbid, now);
	bool		mine = (entry->handle != NULL &&
						entry->claim.slot == slot->slot &&
						entry->claim.generation == slot->generation);
	TimestampTz give_up = TimestampTzPlusMilliseconds(slot->claimed_at,
													  LAUNCHER_ATTACH_MS);
	SlotView	released;
	pid_t		pid;

	entry->has_slot = true;
	if (entry->state != DB_RUNNING)
		entry->started_at = now;	/* a worker found running */
	entry->state = DB_RUNNING;

	switch (slot->state)
	{
		case SLOT_RUNNING:
		case SLOT_FREE:
			break;
		case SLOT_EXITED:
			if (emissions_registry_release(slot->slot, slot->generation,
										   &released))
				worker_stopped(entry, &released, now);
			break;
		case SLOT_CLAIMED:
			if (mine)
			{
				/* Started by us: it may have died before attaching. */
				if (GetBackgroundWorkerPid(entry->handle, &pid) == BGWH_STOPPED &&
					emissions_registry_release(slot->slot, slot->generation,
											   &released))
					worker_stopped(entry, &released, now);
			}
			else if (give_up <= now)
			{
				/*
				 * Claimed by a launcher that is gone, and its worker never
				 * attached: take the claim back.  Should that worker start
				 * after all, it finds the slot's generation changed and
				 * exits.
				 */
				if (emissions_registry_release(slot->slot, slot->generation,
											   &released))
				{
					forget_handle(entry);
					entry->has_slot = false;
					entry->state = DB_IDLE;
					entry->next_start = now;
				}
			}
			else
				wake = Min(wake, give_up);
			break;
	}
	return wake;
}

/*
 * Bring the workers in line with pg_database and the registry; returns how
 * long to sleep, in milliseconds, before looking again.
 */
static long
reconcile(MemoryContext cxt)
{
	uint64		rescans = emissions_registry_rescans();
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = TimestampTzPlusMilliseconds(now, LAUNCHER_RESCAN_MS);
	SlotView   *slots;
	int			nslots;
	List	   *dbids;
	ListCell   *lc;
	HASH_SEQ_STATUS seq;
	LauncherEntry *entry;
	MemoryContext oldcxt;
	int			i;

	MemoryContextReset(cxt);
	dbids = list_databases(cxt);

	hash_seq_init(&seq, databases);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		entry->seen = false;
		entry->has_slot = false;
	}
	foreach(lc, dbids)
		entry_for(lfirst_oid(lc), now)->seen = true;

	/* The workers as the registry has them, whoever started them. */
	oldcxt = MemoryContextSwitchTo(cxt);
	nslots = emissions_registry_list(&slots);
	MemoryContextSwitchTo(oldcxt);
	for (i = 0; i < nslots; i++)
		wake = follow_slot(&slots[i], now, wake);

	hash_seq_init(&seq, databases);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		TimestampTz until;

		if (entry->has_slot)
			continue;
		if (!entry->seen)
		{
			/* Dropped, and its worker is gone. */
			forget_handle(entry);
			hash_search(databases, &entry->dbid, HASH_REMOVE, NULL);
			continue;
		}
		if (entry->state == DB_RUNNING)
		{
			/* Its slot went away without us: start again. */
			forget_handle(entry);
			entry->state = DB_IDLE;
			entry->next_start = now;
		}

		/*
		 * A CREATE EXTENSION committed after the worker looked: the
		 * extension may be there now.  (A count, not a flag consumed here,
		 * so one committed while that worker was still exiting is not
		 * lost.)
		 */
		if (entry->state == DB_ABSENT && entry->absent_seen != rescans)
		{
			entry->state = DB_IDLE;
			entry->next_start = now;
		}
		if (entry->state != DB_IDLE)
			continue;

		if (emissions_registry_held(entry->dbid, now, &until))
		{
			/* Until it expires, or is released (which wakes us). */
			wake = Min(wake, until);
			continue;
		}
		if (entry->next_start <= now && !start_worker(entry, now))
			entry->next_start = TimestampTzPlusMilliseconds(now,
															LAUNCHER_FULL_RETRY_MS);
		if (entry->state == DB_IDLE)
			wake = Min(wake, entry->next_start);
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
