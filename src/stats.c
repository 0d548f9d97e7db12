/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Per-database counters kept in shared memory, and the SQL functions
 *	  that read and reset them.
 *
 * Shared memory holds a small hash table keyed by database OID, with room
 * for emissions.max_stats_databases entries (read at server start).  Each
 * entry has its own spinlock; the table's LWLock is taken only to create an
 * entry.  When the table is full, a database that was not counted yet is
 * not counted at all: each of its backends says so with a WARNING at its
 * first use, its events are emitted, stored and delivered as any other, and
 * emissions_stats shows no counters for it.
 * A backend finds its database's entry once, at its first use of the
 * extension (emissions_stats_attach, which may raise an error), and keeps a
 * pointer to it: entries are never removed, so the pointer stays valid.
 *
 * While a transaction runs, the buffer (buffer.c) counts in backend-local
 * memory, so emitting takes no lock.  emissions_stats_publish adds its
 * counts to the shared entry when the transaction ends; it takes only a
 * spinlock and cannot fail, so it is safe in the commit and abort callbacks.
 *
 * The delivery worker adds what it delivered after each of its transactions
 * commits (emissions_stats_add_delivery), with the time and the lag of its
 * last delivery.
 *
 * Without shared_preload_libraries there is no shared memory: counting is
 * skipped and reading the counters raises an error that says so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "registry.h"
#include "settings.h"
#include "stats.h"

typedef struct DatabaseStats
{
	Oid			dbid;			/* hash key */
	slock_t		mutex;
	EmissionsCounters counts;
	TimestampTz reset_at;
	TimestampTz last_delivery_at;	/* 0: none yet */
	int64		delivery_lag_us;	/* of the last delivery */
} DatabaseStats;


static HTAB *stats_hash = NULL;
static LWLock *stats_lock = NULL;
static DatabaseStats *my_stats = NULL;

/* Whether this database found the table full (said once per backend). */
static bool not_counted = false;

PG_FUNCTION_INFO_V1(emissions_stats_counters);
PG_FUNCTION_INFO_V1(emissions_stats_reset);

/* Shared memory needed by the counters. */
static Size
stats_shmem_size(void)
{
	return hash_estimate_size(emissions_max_stats_databases,
							  sizeof(DatabaseStats));
}

/*
 * Ask for the counters' shared memory and lock; shmem_request_hook phase.
 */
void
emissions_stats_shmem_request(void)
{
	RequestAddinShmemSpace(stats_shmem_size());
	RequestNamedLWLockTranche("emissions_stats", 1);
}

/*
 * Create or attach the counters' hash table; shmem_startup_hook phase,
 * called with AddinShmemInitLock held.
 */
void
emissions_stats_shmem_startup(void)
{
	HASHCTL		info;

	info.keysize = sizeof(Oid);
	info.entrysize = sizeof(DatabaseStats);
	stats_hash = ShmemInitHash("emissions stats",
							   emissions_max_stats_databases,
							   emissions_max_stats_databases,
							   &info,
							   HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	stats_lock = &(GetNamedLWLockTranche("emissions_stats"))->lock;
}

/*
 * Whether the counters exist, that is whether the library was preloaded.
 */
bool
emissions_stats_available(void)
{
	return stats_hash != NULL;
}

/*
 * Find or create this database's entry.  Must be called outside the
 * end-of-transaction callbacks, before anything is counted.
 */
void
emissions_stats_attach(void)
{
	DatabaseStats *entry;
	bool		found;

	if (my_stats != NULL || stats_hash == NULL || not_counted)
		return;

	LWLockAcquire(stats_lock, LW_EXCLUSIVE);
	entry = hash_search(stats_hash, &MyDatabaseId, HASH_ENTER_NULL, &found);
	if (entry != NULL && !found)
	{
		SpinLockInit(&entry->mutex);
		memset(&entry->counts, 0, sizeof(EmissionsCounters));
		entry->reset_at = GetCurrentTimestamp();
		entry->last_delivery_at = 0;
		entry->delivery_lag_us = 0;
	}
	LWLockRelease(stats_lock);

	/* Entries are never removed: a full table stays full, look no more. */
	not_counted = (entry == NULL);
	if (entry == NULL)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("emissions cannot count events of this database"),
				 errdetail("Counters are kept for at most %d databases (emissions.max_stats_databases); events of this database are delivered but not counted.",
						   emissions_max_stats_databases),
				 errhint("Raise emissions.max_stats_databases and restart the server.")));
	my_stats = entry;
}

#define ADD_COUNT(field) \
	(my_stats->counts.field += counts->field)

/*
 * Add a transaction's counts to the shared entry.
 */
void
emissions_stats_publish(const EmissionsCounters *counts)
{
	static const EmissionsCounters zero;

	if (memcmp(counts, &zero, sizeof(EmissionsCounters)) == 0)
		return;

	if (my_stats != NULL)
	{
		SpinLockAcquire(&my_stats->mutex);
		ADD_COUNT(buffers_started);
		ADD_COUNT(buffers_committed);
		ADD_COUNT(buffers_terminated);
		ADD_COUNT(buffers_spilled);
		ADD_COUNT(events_emitted);
		ADD_COUNT(events_dropped);
		ADD_COUNT(events_discarded);
		ADD_COUNT(events_persisted);
		ADD_COUNT(batches_persisted);
		ADD_COUNT(bytes_spilled);
		SpinLockRelease(&my_stats->mutex);
	}
}

/*
 * Add what a committed delivery transaction of the worker did.
 */
void
emissions_stats_add_delivery(int64 delivered, int64 failed,
							 TimestampTz delivered_at, int64 lag_us)
{
	if (my_stats == NULL)
		return;
	SpinLockAcquire(&my_stats->mutex);
	my_stats->counts.events_delivered += delivered;
	my_stats->counts.deliveries_failed += failed;
	if (delivered > 0)
	{
		my_stats->last_delivery_at = delivered_at;
		my_stats->delivery_lag_us = lag_us;
	}
	SpinLockRelease(&my_stats->mutex);
}

/* Error out when the counters do not exist. */
static void
require_shared_memory(void)
{
	if (stats_hash == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("emissions must be loaded via shared_preload_libraries"),
				 errhint("Add emissions to shared_preload_libraries and restart the server.")));
}

/*
 * emissions_stats_counters() returns one row: this database's counters.
 */
Datum
emissions_stats_counters(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	EmissionsCounters counts;
	TimestampTz reset_at;
	TimestampTz last_delivery_at;
	int64		lag_us;
	pid_t		worker_pid = emissions_registry_worker_pid(MyDatabaseId);
	Interval   *lag;
	Datum		values[16];
	bool		nulls[16] = {0};
	int			i = 0;

	require_shared_memory();
	emissions_stats_attach();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (my_stats == NULL)
		PG_RETURN_NULL();

	SpinLockAcquire(&my_stats->mutex);
	counts = my_stats->counts;
	reset_at = my_stats->reset_at;
	last_delivery_at = my_stats->last_delivery_at;
	lag_us = my_stats->delivery_lag_us;
	SpinLockRelease(&my_stats->mutex);

	values[i++] = Int64GetDatum(counts.buffers_started);
	values[i++] = Int64GetDatum(counts.buffers_committed);
	values[i++] = Int64GetDatum(counts.buffers_terminated);
	values[i++] = Int64GetDatum(counts.events_emitted);
	values[i++] = Int64GetDatum(counts.events_dropped);
	values[i++] = Int64GetDatum(counts.events_discarded);
	values[i++] = Int64GetDatum(counts.events_persisted);
	values[i++] = Int64GetDatum(counts.batches_persisted);
	values[i++] = Int64GetDatum(counts.buffers_spilled);
	values[i++] = Int64GetDatum(counts.bytes_spilled);
	values[i++] = Int64GetDatum(counts.events_delivered);
	values[i++] = Int64GetDatum(counts.deliveries_failed);
	nulls[i] = (worker_pid == 0);
	values[i++] = Int32GetDatum((int32) worker_pid);
	nulls[i] = (last_delivery_at == 0);
	values[i++] = TimestampTzGetDatum(last_delivery_at);
	lag = palloc0(sizeof(Interval));
	lag->time = lag_us;
	nulls[i] = (last_delivery_at == 0);
	values[i++] = IntervalPGetDatum(lag);
	values[i++] = TimestampTzGetDatum(reset_at);
	Assert(i == tupdesc->natts);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * emissions_stats_reset() clears this database's counters.
 */
Datum
emissions_stats_reset(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTimestamp();

	require_shared_memory();
	emissions_stats_attach();
	if (my_stats != NULL)
	{
		SpinLockAcquire(&my_stats->mutex);
		memset(&my_stats->counts, 0, sizeof(EmissionsCounters));
		my_stats->reset_at = now;
		my_stats->last_delivery_at = 0;
		my_stats->delivery_lag_us = 0;
		SpinLockRelease(&my_stats->mutex);
	}
	PG_RETURN_VOID();
}
