/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  Shared state of the launcher and the delivery workers.
 *
 * One small struct in shared memory, under one LWLock: the launcher's
 * latch, a count of rescan requests (CREATE EXTENSION), databases whose
 * worker is held off for a while, and one slot per delivery worker, as the
 * logical replication launcher keeps its workers.  A slot names its
 * database, the worker's pid and latch, why the worker left, and the
 * outbox partition producers should write to.  There are
 * emissions.max_workers slots, a number read at server start that sizes
 * the struct; the registry keeps it, so every process reads the same.
 *
 * Each slot also has a condition variable that its worker broadcasts
 * after each pass it commits and as it exits, for the backends in
 * emissions_wait_delivered() to wake on instead of polling.
 *
 * The registry, not the launcher's memory, is what says which database has
 * a worker, so a restarted launcher finds the workers still running and
 * does not start them twice.  A slot goes FREE -> CLAIMED -> RUNNING ->
 * EXITED -> FREE:
 *
 *	 - a launcher claims a slot for a database before it starts a worker,
 *	   and the claim fails while the database has a slot in any other state
 *	   than FREE: a database never has two;
 *	 - each claim bumps the slot's generation, which the worker gets with the
 *	   slot's index; the worker attaches (RUNNING, with its pid and latch)
 *	   only if the slot is still CLAIMED under that generation, so a worker
 *	   started by a launcher that died, whose claim a later launcher took
 *	   back, exits without touching anything;
 *	 - the worker marks its slot EXITED as its last step, once it has left
 *	   the proc array and pg_stat_activity (an on_shmem_exit callback), and
 *	   sets the launcher's latch;
 *	 - any launcher, not only the one that claimed it, frees an EXITED slot
 *	   (reading why the worker left) and takes back a CLAIMED slot whose
 *	   worker never attached.
 *
 * A crashed worker takes the postmaster's crash restart with it, which
 * makes a new registry.  Producers look the slot of their database up
 * (caching its index) to wake the worker after commit and to pick the
 * outbox partition; those paths take the lock in shared mode and cannot
 * fail, so they are safe in the commit callback.  Without
 * shared_preload_libraries there is no registry: nobody is woken and
 * producers use partition 0.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "registry.h"
#include "settings.h"
#include "storage.h"

/* Databases whose worker may be held off (DROP DATABASE and the like). */
#define REGISTRY_MAX_HOLDS		8

typedef struct WorkerSlot
{
	SlotState	state;
	uint32		generation;		/* bumped by each claim */
	Oid			dbid;			/* InvalidOid when FREE */
	pid_t		pid;			/* RUNNING only */
	Latch	   *latch;			/* RUNNING only */
	WorkerExit	exit;			/* why the worker left */
	uint64		absent_seen;	/* rescans when it found no extension */
	TimestampTz claimed_at;
	int			outbox_part;
	ConditionVariable pass_cv;	/* broadcast after each committed pass */
	/* lowest outbox block written since the worker last looked, per part */
	pg_atomic_uint32 outbox_low_block[STORE_PARTITIONS];
} WorkerSlot;

typedef struct HeldDatabase
{
	Oid			dbid;
	TimestampTz until;
} HeldDatabase;

typedef struct Registry
{
	LWLock	   *lock;
	Latch	   *launcher_latch;
	uint64		rescans;		/* CREATE EXTENSIONs committed */
	HeldDatabase holds[REGISTRY_MAX_HOLDS];
	int			nslots;			/* emissions.max_workers at server start */
	WorkerSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} Registry;

static Registry *registry = NULL;

/* This worker's slot and its generation, or -1. */
static int	my_worker_slot = -1;
static uint32 my_generation = 0;

/* Slot a producer last found for its database (a hint, checked on use). */
static int	cached_slot = -1;

/* Size of the registry with emissions.max_workers slots. */
static Size
registry_size(void)
{
	return add_size(offsetof(Registry, slots),
					mul_size(emissions_max_workers, sizeof(WorkerSlot)));
}

/*
 * Ask for the registry's shared memory and lock; shmem_request_hook phase.
 */
void
emissions_registry_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(registry_size()));
	RequestNamedLWLockTranche("emissions_registry", 1);
}

/*
 * Create or attach the registry; shmem_startup_hook phase, with
 * AddinShmemInitLock held.
 */
void
emissions_registry_shmem_startup(void)
{
	bool		found;
	int			i;

	registry = ShmemInitStruct("emissions registry", registry_size(), &found);
	if (!found)
	{
		memset(registry, 0, registry_size());
		registry->lock = &(GetNamedLWLockTranche("emissions_registry"))->lock;
		registry->nslots = emissions_max_workers;
		for (i = 0; i < registry->nslots; i++)
		{
			int			p;

			ConditionVariableInit(&registry->slots[i].pass_cv);
			for (p = 0; p < STORE_PARTITIONS; p++)
				pg_atomic_init_u32(&registry->slots[i].outbox_low_block[p], 0);
		}
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

/* Index of dbid's slot (in any state but FREE), or -1; caller holds lock. */
static int
find_slot(Oid dbid)
{
	int			i;

	if (cached_slot >= 0 && registry->slots[cached_slot].dbid == dbid &&
		registry->slots[cached_slot].state != SLOT_FREE)
		return cached_slot;
	for (i = 0; i < registry->nslots; i++)
	{
		if (registry->slots[i].state != SLOT_FREE &&
			registry->slots[i].dbid == dbid)
		{
			cached_slot = i;
			return i;
		}
	}
	return -1;
}

/*
 * Copy dbid's slot into *slot; false (and *slot zeroed) when it has none.
 * Cannot fail.
 */
static bool
read_slot(Oid dbid, WorkerSlot *slot)
{
	int			i;

	memset(slot, 0, sizeof(WorkerSlot));
	if (registry == NULL)
		return false;
	LWLockAcquire(registry->lock, LW_SHARED);
	i = find_slot(dbid);
	if (i >= 0)
		*slot = registry->slots[i];
	LWLockRelease(registry->lock);
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
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	registry->rescans++;
	latch = registry->launcher_latch;
	LWLockRelease(registry->lock);
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
 * Note that the calling producer wrote an outbox row into block of dbid's
 * outbox partition part: the worker's next scan of that partition starts
 * at or below it (delivery_window.c).  Cannot fail.
 */
void
emissions_registry_note_outbox_block(Oid dbid, int part, BlockNumber block)
{
	pg_atomic_uint32 *low;
	uint32		seen;
	int			i;

	if (registry == NULL || part < 0 || part >= STORE_PARTITIONS)
		return;
	LWLockAcquire(registry->lock, LW_SHARED);
	i = find_slot(dbid);
	if (i >= 0)
	{
		low = &registry->slots[i].outbox_low_block[part];
		seen = pg_atomic_read_u32(low);
		while (block < seen &&
			   !pg_atomic_compare_exchange_u32(low, &seen, block))
			;
	}
	LWLockRelease(registry->lock);
}

/*
 * For the calling worker: the lowest outbox block of each partition that
 * producers wrote since the last call (InvalidBlockNumber: none), and
 * start noting afresh.  All 0 (scan everything) outside a worker.
 */
void
emissions_registry_take_outbox_blocks(BlockNumber *blocks)
{
	int			p;

	for (p = 0; p < STORE_PARTITIONS; p++)
		blocks[p] = my_worker_slot < 0 ? 0 :
			pg_atomic_exchange_u32(&registry->slots[my_worker_slot].outbox_low_block[p],
								   InvalidBlockNumber);
}

/*
 * Pid of dbid's running worker, or 0.
 */
pid_t
emissions_registry_worker_pid(Oid dbid)
{
	WorkerSlot	slot;

	(void) read_slot(dbid, &slot);
	return slot.state == SLOT_RUNNING ? slot.pid : 0;
}

/*
 * The condition variable dbid's running worker broadcasts after each pass
 * it commits and as it exits, or NULL when dbid has no running worker.
 * The slot may be given to another database later: a waiter looks it up
 * again after each wake-up (a broadcast of another database's worker only
 * wakes it once for nothing).
 */
ConditionVariable *
emissions_registry_pass_cv(Oid dbid)
{
	ConditionVariable *cv = NULL;
	int			i;

	if (registry == NULL)
		return NULL;
	LWLockAcquire(registry->lock, LW_SHARED);
	i = find_slot(dbid);
	if (i >= 0 && registry->slots[i].state == SLOT_RUNNING)
		cv = &registry->slots[i].pass_cv;
	LWLockRelease(registry->lock);
	return cv;
}

/*
 * Keep dbid from getting a worker during the next hold_ms milliseconds:
 * the launcher starts none, and a worker it started before cannot attach.
 * Sets *pids to the pids of dbid's running workers (palloc'd in the
 * current memory context), for the caller to stop, and returns how many.
 */
int
emissions_registry_hold_workers(Oid dbid, int hold_ms, pid_t **pids)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until = TimestampTzPlusMilliseconds(now, hold_ms);
	int			victim = 0;
	int			n = 0;
	int			i;

	*pids = NULL;
	if (registry == NULL)
		return 0;
	*pids = palloc(sizeof(pid_t) * registry->nslots);
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
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
	/* Every slot, not only the first: there is one, but be sure. */
	for (i = 0; i < registry->nslots; i++)
	{
		WorkerSlot *slot = &registry->slots[i];

		if (slot->state == SLOT_RUNNING && slot->dbid == dbid)
			(*pids)[n++] = slot->pid;
	}
	LWLockRelease(registry->lock);
	return n;
}

/*
 * Whether pid still runs as a worker of dbid (it leaves the registry only
 * after it has left the proc array).
 */
bool
emissions_registry_worker_running(Oid dbid, pid_t pid)
{
	bool		running = false;
	int			i;

	LWLockAcquire(registry->lock, LW_SHARED);
	for (i = 0; i < registry->nslots; i++)
	{
		WorkerSlot *slot = &registry->slots[i];

		if (slot->state == SLOT_RUNNING && slot->dbid == dbid &&
			slot->pid == pid)
			running = true;
	}
	LWLockRelease(registry->lock);
	return running;
}

/*
 * End dbid's hold early, the command that needed its worker gone being
 * over, and wake the launcher to start the worker again.  Cannot fail.
 */
void
emissions_registry_release_hold(Oid dbid)
{
	Latch	   *latch;
	int			i;

	if (registry == NULL)
		return;
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	for (i = 0; i < REGISTRY_MAX_HOLDS; i++)
		if (registry->holds[i].dbid == dbid)
			registry->holds[i].until = 0;
	latch = registry->launcher_latch;
	LWLockRelease(registry->lock);
	if (latch != NULL)
		SetLatch(latch);
}

/* Whether dbid is held off at now (*until: till when); caller holds lock. */
static bool
is_held(Oid dbid, TimestampTz now, TimestampTz *until)
{
	bool		held = false;
	int			i;

	for (i = 0; i < REGISTRY_MAX_HOLDS; i++)
	{
		if (registry->holds[i].dbid == dbid && registry->holds[i].until > now)
		{
			held = true;
			*until = registry->holds[i].until;
		}
	}
	return held;
}

/*
 * Whether dbid is held off at now; if so, *until says until when.
 */
bool
emissions_registry_held(Oid dbid, TimestampTz now, TimestampTz *until)
{
	bool		held;

	LWLockAcquire(registry->lock, LW_SHARED);
	held = is_held(dbid, now, until);
	LWLockRelease(registry->lock);
	return held;
}

/* before_shmem_exit callback of the launcher. */
static void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	registry->launcher_latch = NULL;
	LWLockRelease(registry->lock);
}

/*
 * Register the calling process as the launcher.
 */
void
emissions_registry_set_launcher(void)
{
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	registry->launcher_latch = MyLatch;
	LWLockRelease(registry->lock);
	before_shmem_exit(launcher_detach, (Datum) 0);
}

/*
 * How many rescans were requested so far.  A worker that finds no
 * extension records the count it read before looking; a later request
 * means the extension may have come since.
 */
uint64
emissions_registry_rescans(void)
{
	uint64		rescans;

	LWLockAcquire(registry->lock, LW_SHARED);
	rescans = registry->rescans;
	LWLockRelease(registry->lock);
	return rescans;
}

/*
 * Copy every slot in use into *views (palloc'd in the current memory
 * context); returns how many.
 */
int
emissions_registry_list(SlotView **views)
{
	SlotView   *view = palloc(sizeof(SlotView) * registry->nslots);
	int			n = 0;
	int			i;

	*views = view;
	LWLockAcquire(registry->lock, LW_SHARED);
	for (i = 0; i < registry->nslots; i++)
	{
		WorkerSlot *slot = &registry->slots[i];

		if (slot->state == SLOT_FREE)
			continue;
		view[n].slot = i;
		view[n].generation = slot->generation;
		view[n].state = slot->state;
		view[n].dbid = slot->dbid;
		view[n].exit = slot->exit;
		view[n].absent_seen = slot->absent_seen;
		view[n].claimed_at = slot->claimed_at;
		n++;
	}
	LWLockRelease(registry->lock);
	return n;
}

/*
 * Claim a slot for a new worker of dbid: fails when dbid has a slot
 * already (a worker starting, running or not yet collected) or none is
 * free.  On success *claim is what the worker must attach with.
 */
ClaimResult
emissions_registry_claim(Oid dbid, WorkerClaim *claim)
{
	ClaimResult result = CLAIM_FULL;
	int			i;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	if (find_slot(dbid) >= 0)
		result = CLAIM_TAKEN;
	for (i = 0; result == CLAIM_FULL && i < registry->nslots; i++)
	{
		WorkerSlot *s = &registry->slots[i];

		if (s->state != SLOT_FREE)
			continue;
		s->state = SLOT_CLAIMED;
		s->generation++;
		s->dbid = dbid;
		s->pid = 0;
		s->latch = NULL;
		s->exit = WORKER_EXIT_FAILED;
		s->absent_seen = 0;
		s->claimed_at = GetCurrentTimestamp();
		s->outbox_part = 0;
		claim->slot = i;
		claim->generation = s->generation;
		result = CLAIM_OK;
	}
	LWLockRelease(registry->lock);
	return result;
}

/*
 * Free a slot whose worker left (EXITED) or never attached (CLAIMED), if
 * it still has that generation; *view gets what it held.  False when the
 * slot changed meanwhile (its worker attached, or another launcher freed
 * it).
 */
bool
emissions_registry_release(int slot, uint32 generation, SlotView *view)
{
	WorkerSlot *s = &registry->slots[slot];
	bool		released = false;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	if (s->generation == generation &&
		(s->state == SLOT_CLAIMED || s->state == SLOT_EXITED))
	{
		view->slot = slot;
		view->generation = generation;
		view->state = s->state;
		view->dbid = s->dbid;
		view->exit = s->exit;
		view->absent_seen = s->absent_seen;
		view->claimed_at = s->claimed_at;
		s->state = SLOT_FREE;
		s->dbid = InvalidOid;
		released = true;
	}
	LWLockRelease(registry->lock);
	return released;
}

/*
 * on_shmem_exit callback of a worker: it no longer runs.  Registered before
 * the worker connects, so it runs after the worker has left the proc array
 * and pg_stat_activity: a new worker never overlaps this one.
 */
static void
worker_detach(int code, Datum arg)
{
	WorkerSlot *slot = &registry->slots[my_worker_slot];
	Latch	   *launcher;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	if (slot->generation == my_generation && slot->state == SLOT_RUNNING)
	{
		slot->state = SLOT_EXITED;
		slot->pid = 0;
		slot->latch = NULL;
	}
	launcher = registry->launcher_latch;
	LWLockRelease(registry->lock);
	/* Waiters look again, and find their database without a worker. */
	ConditionVariableBroadcast(&slot->pass_cv);
	my_worker_slot = -1;
	if (launcher != NULL)
		SetLatch(launcher);
}

/*
 * Attach the calling worker to the slot its launcher claimed: true if it
 * may run.  False when the slot is no longer its (the launcher that
 * claimed it died and another took the claim back) or its database is
 * held off: the worker must then exit at once.
 */
bool
emissions_registry_attach_worker(const WorkerClaim *claim, Oid dbid)
{
	WorkerSlot *s;
	TimestampTz until;
	Latch	   *launcher = NULL;
	bool		attached = false;

	if (claim->slot < 0 || claim->slot >= registry->nslots)
		elog(ERROR, "emissions worker slot %d out of range", claim->slot);
	s = &registry->slots[claim->slot];
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	if (s->state != SLOT_CLAIMED || s->generation != claim->generation ||
		s->dbid != dbid)
		;						/* not ours any more */
	else if (is_held(dbid, GetCurrentTimestamp(), &until))
	{
		/* Let the launcher start one again once the hold expires. */
		s->state = SLOT_EXITED;
		s->exit = WORKER_EXIT_TERMINATED;
		launcher = registry->launcher_latch;
	}
	else
	{
		s->state = SLOT_RUNNING;
		s->pid = MyProcPid;
		s->latch = MyLatch;
		attached = true;
	}
	LWLockRelease(registry->lock);
	if (launcher != NULL)
		SetLatch(launcher);
	if (attached)
	{
		my_worker_slot = claim->slot;
		my_generation = claim->generation;
		on_shmem_exit(worker_detach, (Datum) 0);
	}
	return attached;
}

/*
 * Record why the calling worker is about to leave.
 */
void
emissions_registry_mark_exit(WorkerExit exit)
{
	WorkerSlot *slot;

	if (my_worker_slot < 0)
		return;
	slot = &registry->slots[my_worker_slot];
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	if (slot->generation == my_generation)
		slot->exit = exit;
	LWLockRelease(registry->lock);
}

/*
 * Record that the calling worker leaves because the extension is not
 * installed, as seen after rescans_seen rescan requests.
 */
void
emissions_registry_mark_absent(uint64 rescans_seen)
{
	WorkerSlot *slot = &registry->slots[my_worker_slot];

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	if (slot->generation == my_generation)
	{
		slot->exit = WORKER_EXIT_ABSENT;
		slot->absent_seen = rescans_seen;
	}
	LWLockRelease(registry->lock);
}

/*
 * Point producers of the worker's database at outbox partition part.
 */
void
emissions_registry_set_outbox_part(int part)
{
	WorkerSlot *slot = &registry->slots[my_worker_slot];

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	if (slot->generation == my_generation)
		slot->outbox_part = part;
	LWLockRelease(registry->lock);
}

/*
 * Wake the backends waiting for the calling worker's deliveries: it has
 * committed a pass.  Cannot fail.
 */
void
emissions_registry_pass_committed(void)
{
	if (my_worker_slot >= 0)
		ConditionVariableBroadcast(&registry->slots[my_worker_slot].pass_cv);
}
