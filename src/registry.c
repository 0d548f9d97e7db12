/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  Shared state of the launcher and the delivery workers.
 *
 * One small struct in shared memory, under one spinlock: the launcher's
 * latch, a "rescan" request, databases whose worker is held off for a
 * while, and one slot per delivery worker.  A slot names its database, the
 * worker's pid and latch, whether the worker left because the extension is
 * not installed there, and the outbox partition producers should write to.
 *
 * The launcher claims a slot before it starts a worker and releases it once
 * the worker has stopped; the worker fills in its pid and latch, and clears
 * them in a before_shmem_exit callback.  Producers look the slot of their
 * database up (caching its index) to wake the worker after commit and to
 * pick the outbox partition; those paths take only the spinlock, so they
 * are safe in the commit callback.  Without shared_preload_libraries there
 * is no registry: nobody is woken and producers use partition 0.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "registry.h"

/* Databases whose worker may be held off (DROP DATABASE and the like). */
#define REGISTRY_MAX_HOLDS		8

typedef struct WorkerSlot
{
	Oid			dbid;			/* InvalidOid: slot free */
	pid_t		pid;			/* 0 until the worker runs, and after */
	Latch	   *latch;
	WorkerExit	exit;			/* why the worker left */
	int			outbox_part;
} WorkerSlot;

typedef struct HeldDatabase
{
	Oid			dbid;
	TimestampTz until;
} HeldDatabase;

typedef struct Registry
{
	slock_t		mutex;
	Latch	   *launcher_latch;
	bool		rescan;
	HeldDatabase holds[REGISTRY_MAX_HOLDS];
	WorkerSlot	slots[REGISTRY_MAX_WORKERS];
} Registry;

static Registry *registry = NULL;

/* This worker's slot, or -1. */
static int	my_worker_slot = -1;

/* Slot a producer last found for its database (a hint, checked on use). */
static int	cached_slot = -1;

/*
 * Ask for the registry's shared memory; shmem_request_hook phase.
 */
void
emissions_registry_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(Registry)));
}

/*
 * Create or attach the registry; shmem_startup_hook phase, with
 * AddinShmemInitLock held.
 */
void
emissions_registry_shmem_startup(void)
{
	bool		found;

	registry = ShmemInitStruct("emissions registry", sizeof(Registry), &found);
	if (!found)
	{
		memset(registry, 0, sizeof(Registry));
		SpinLockInit(&registry->mutex);
	}
}

/*
 * Whether the registry exists, that is whether the library was preloaded.
 */
bool
emissions_registry_available(void)
{
	return registry != NULL;
}

/* Index of dbid's slot, or -1; caller holds the spinlock. */
static int
find_slot(Oid dbid)
{
	int			i;

	if (cached_slot >= 0 && registry->slots[cached_slot].dbid == dbid)
		return cached_slot;
	for (i = 0; i < REGISTRY_MAX_WORKERS; i++)
	{
		if (registry->slots[i].dbid == dbid)
		{
			cached_slot = i;
			return i;
		}
	}
	return -1;
}

/*
 * Copy dbid's slot into *slot; false (and *slot zeroed) when it has none.
 * Takes only the spinlock, so it cannot fail.
 */
static bool
read_slot(Oid dbid, WorkerSlot *slot)
{
	int			i;

	memset(slot, 0, sizeof(WorkerSlot));
	if (registry == NULL)
		return false;
	SpinLockAcquire(&registry->mutex);
	i = find_slot(dbid);
	if (i >= 0)
		*slot = registry->slots[i];
	SpinLockRelease(&registry->mutex);
	return i >= 0;
}

/*
 * Set the latch of dbid's worker, if it has one.  Cannot fail: safe in the
 * commit callback.
 */
void
emissions_registry_wake_worker(Oid dbid)
{
	WorkerSlot	slot;

	if (read_slot(dbid, &slot) && slot.latch != NULL)
		SetLatch(slot.latch);
}

/*
 * Ask the launcher to look again at databases where it found no extension
 * (called after CREATE EXTENSION commits).  Cannot fail.
 */
void
emissions_registry_request_rescan(void)
{
	Latch	   *latch;

	if (registry == NULL)
		return;
	SpinLockAcquire(&registry->mutex);
	registry->rescan = true;
	latch = registry->launcher_latch;
	SpinLockRelease(&registry->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * Outbox partition producers of dbid write to: the worker's choice, or 0
 * when there is no worker.
 */
int
emissions_registry_outbox_part(Oid dbid)
{
	WorkerSlot	slot;

	(void) read_slot(dbid, &slot);
	return slot.outbox_part;
}

/*
 * Pid of dbid's running worker, or 0.
 */
pid_t
emissions_registry_worker_pid(Oid dbid)
{
	WorkerSlot	slot;

	(void) read_slot(dbid, &slot);
	return slot.pid;
}

/*
 * Keep the launcher from starting a worker for dbid during the next hold_ms
 * milliseconds; returns the pid of its running worker, or 0, for the caller
 * to stop.
 */
pid_t
emissions_registry_hold_worker(Oid dbid, int hold_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until = TimestampTzPlusMilliseconds(now, hold_ms);
	int			victim = 0;
	pid_t		pid = 0;
	int			i;

	if (registry == NULL)
		return 0;
	SpinLockAcquire(&registry->mutex);
	for (i = 0; i < REGISTRY_MAX_HOLDS; i++)
	{
		HeldDatabase *hold = &registry->holds[i];

		if (hold->dbid == dbid)
		{
			victim = i;
			break;
		}
		/* Reuse an expired entry, else the one that expires first. */
		if (hold->until < registry->holds[victim].until)
			victim = i;
	}
	registry->holds[victim].dbid = dbid;
	registry->holds[victim].until = until;
	i = find_slot(dbid);
	if (i >= 0)
		pid = registry->slots[i].pid;
	SpinLockRelease(&registry->mutex);
	return pid;
}

/*
 * Whether dbid is held off at now; if so, *until says until when.
 */
bool
emissions_registry_held(Oid dbid, TimestampTz now, TimestampTz *until)
{
	bool		held = false;
	int			i;

	SpinLockAcquire(&registry->mutex);
	for (i = 0; i < REGISTRY_MAX_HOLDS; i++)
	{
		if (registry->holds[i].dbid == dbid && registry->holds[i].until > now)
		{
			held = true;
			*until = registry->holds[i].until;
		}
	}
	SpinLockRelease(&registry->mutex);
	return held;
}

/* before_shmem_exit callback of the launcher. */
static void
launcher_detach(int code, Datum arg)
{
	SpinLockAcquire(&registry->mutex);
	registry->launcher_latch = NULL;
	SpinLockRelease(&registry->mutex);
}

/*
 * Register the calling process as the launcher.
 */
void
emissions_registry_set_launcher(void)
{
	SpinLockAcquire(&registry->mutex);
	registry->launcher_latch = MyLatch;
	SpinLockRelease(&registry->mutex);
	before_shmem_exit(launcher_detach, (Datum) 0);
}

/*
 * Return and clear the rescan request.
 */
bool
emissions_registry_take_rescan(void)
{
	bool		rescan;

	SpinLockAcquire(&registry->mutex);
	rescan = registry->rescan;
	registry->rescan = false;
	SpinLockRelease(&registry->mutex);
	return rescan;
}

/*
 * Claim a free slot for dbid's worker; -1 when all are taken.
 */
int
emissions_registry_claim(Oid dbid)
{
	int			i;

	SpinLockAcquire(&registry->mutex);
	for (i = 0; i < REGISTRY_MAX_WORKERS; i++)
	{
		WorkerSlot *slot = &registry->slots[i];

		if (slot->dbid == InvalidOid)
		{
			memset(slot, 0, sizeof(WorkerSlot));
			slot->dbid = dbid;
			break;
		}
	}
	SpinLockRelease(&registry->mutex);
	return i < REGISTRY_MAX_WORKERS ? i : -1;
}

/*
 * Free a slot whose worker has stopped.
 */
void
emissions_registry_release(int slot)
{
	SpinLockAcquire(&registry->mutex);
	memset(&registry->slots[slot], 0, sizeof(WorkerSlot));
	SpinLockRelease(&registry->mutex);
}

/*
 * Why the slot's worker left.
 */
WorkerExit
emissions_registry_slot_exit(int slot)
{
	WorkerExit	exit;

	SpinLockAcquire(&registry->mutex);
	exit = registry->slots[slot].exit;
	SpinLockRelease(&registry->mutex);
	return exit;
}

/* before_shmem_exit callback of a worker: it no longer runs. */
static void
worker_detach(int code, Datum arg)
{
	SpinLockAcquire(&registry->mutex);
	registry->slots[my_worker_slot].pid = 0;
	registry->slots[my_worker_slot].latch = NULL;
	SpinLockRelease(&registry->mutex);
}

/*
 * Fill in the calling worker's pid and latch in its slot.
 */
void
emissions_registry_attach_worker(int slot, Oid dbid)
{
	if (slot < 0 || slot >= REGISTRY_MAX_WORKERS)
		elog(ERROR, "emissions worker slot %d out of range", slot);
	SpinLockAcquire(&registry->mutex);
	if (registry->slots[slot].dbid != dbid)
	{
		SpinLockRelease(&registry->mutex);
		elog(ERROR, "emissions worker slot %d is not for database %u",
			 slot, dbid);
	}
	registry->slots[slot].pid = MyProcPid;
	registry->slots[slot].latch = MyLatch;
	SpinLockRelease(&registry->mutex);
	my_worker_slot = slot;
	before_shmem_exit(worker_detach, (Datum) 0);
}

/*
 * Record why the calling worker is about to leave.
 */
void
emissions_registry_mark_exit(WorkerExit exit)
{
	SpinLockAcquire(&registry->mutex);
	registry->slots[my_worker_slot].exit = exit;
	SpinLockRelease(&registry->mutex);
}

/*
 * Point producers of the worker's database at outbox partition part.
 */
void
emissions_registry_set_outbox_part(int part)
{
	SpinLockAcquire(&registry->mutex);
	registry->slots[my_worker_slot].outbox_part = part;
	SpinLockRelease(&registry->mutex);
}
