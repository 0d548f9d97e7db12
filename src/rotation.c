/*-------------------------------------------------------------------------
 *
 * rotation.c
 *	  Keeping the outbox and the event log small without vacuum.
 *
 * Both tables have three partitions, one of them current.  Deleted outbox
 * rows and expired log rows are never vacuumed away: the worker truncates
 * a whole partition once nothing in it is needed, before making it current
 * again.  TRUNCATE needs an ACCESS EXCLUSIVE lock, taken only if it is
 * free at once (ConditionalLockRelationOid): a producer with rows in the
 * partition still holds its lock until it commits, and so does a prepared
 * transaction, so no row can be lost; a busy partition is simply tried
 * again at the next maintenance.
 *
 * Outbox: once the current partition has grown past OUTBOX_ROTATE_BLOCKS,
 * the worker points producers at an empty partition through the registry;
 * a partition producers have left is truncated as soon as it holds no
 * visible row (checked under the lock with a fresh snapshot), so each pass
 * of the worker scans little more than the current partition.
 *
 * Log: the current partition changes every half retention; a partition is
 * truncated when it is next in line and closed longer than the retention
 * ago, so delivered events stay readable at least emissions.retention, and
 * at most about twice that.  Beyond it, a subscription that has not
 * acknowledged a partition's events holds it, up to emissions.max_retention
 * (subscriptions.c).
 *
 * Ids: a crash may lose deliveries that were not yet flushed (no one saw
 * them: worker.c, commit_durably).  Their events are delivered again, and
 * must not get ids of another delivery, even a lost one: the worker
 * reserves ids in blocks in emissions_state,
 * each reservation committed and flushed before any of its ids is used,
 * and a new worker starts above the last reservation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "event_log.h"
#include "extension.h"
#include "outbox.h"
#include "rotation.h"
#include "settings.h"
#include "subscriptions.h"

/* Size of the current outbox partition that makes the worker move on. */
#define OUTBOX_ROTATE_BLOCKS	256

/* Ids reserved at a time. */
#define ID_RESERVATION			10000

/* Shortest time a log partition stays current. */
#define LOG_ROTATE_MIN_MS		1000

/* OID of partition part of the extension's table base ("emissions_log"). */
static Oid
partition_relid(const char *base, int part)
{
	Oid			parts[STORE_PARTITIONS];

	if (!emissions_extension_partitions(base, parts))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"emissions\" is not installed")));
	return parts[part];
}

/* Whether relid, locked by the caller, has rows visible to a new snapshot. */
static bool
has_visible_rows(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	bool		found = (heap_getnext(scan, ForwardScanDirection) != NULL);

	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
	return found;
}

/*
 * Truncate partition part of base if its lock is free at once and, when
 * must_be_empty, it holds no visible row; false if it was left alone.
 * SPI connected.
 */
static bool
try_truncate(const char *base, int part, bool must_be_empty)
{
	Oid			relid = partition_relid(base, part);
	char		name[NAMEDATALEN];

	if (!ConditionalLockRelationOid(relid, AccessExclusiveLock))
		return false;
	if (must_be_empty && has_visible_rows(relid))
		return false;
	snprintf(name, sizeof(name), "%s_%d", base, part);
	if (SPI_execute(psprintf("TRUNCATE %s", emissions_qualified_name(name)),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not truncate %s", name);
	return true;
}

/* Number of blocks of partition part of base. */
static BlockNumber
partition_blocks(const char *base, int part)
{
	Relation	rel = table_open(partition_relid(base, part), AccessShareLock);
	BlockNumber blocks = RelationGetNumberOfBlocks(rel);

	table_close(rel, AccessShareLock);
	return blocks;
}

/*
 * Truncate the outbox partitions producers have left once they are
 * delivered, and move producers to an empty partition once the current
 * one is large.
 */
static void
rotate_outbox(DeliveryState *state)
{
	int			step;

	for (step = 1; step < STORE_PARTITIONS; step++)
	{
		int			part = (state->outbox_part + step) % STORE_PARTITIONS;

		if (partition_blocks(OUTBOX_TABLE_NAME, part) > 0)
			(void) try_truncate(OUTBOX_TABLE_NAME, part, true);
	}
	if (partition_blocks(OUTBOX_TABLE_NAME, state->outbox_part) <
		OUTBOX_ROTATE_BLOCKS)
		return;
	for (step = 1; step < STORE_PARTITIONS; step++)
	{
		int			part = (state->outbox_part + step) % STORE_PARTITIONS;

		if (partition_blocks(OUTBOX_TABLE_NAME, part) == 0)
		{
			state->outbox_part = part;
			emissions_registry_set_outbox_part(part);
			return;
		}
	}
}

/* Write the log's state to emissions_state. */
static void
save_log_state(DeliveryState *state)
{
	Oid			argtypes[] = {INT2OID, TIMESTAMPTZOID, TIMESTAMPTZARRAYOID,
	INT8OID};
	Datum		args[4];
	Datum		closed[STORE_PARTITIONS];
	bool		closed_nulls[STORE_PARTITIONS];
	int			dims[1] = {STORE_PARTITIONS};
	int			lbs[1] = {1};
	int			i;
	char	   *sql;

	for (i = 0; i < STORE_PARTITIONS; i++)
	{
		closed[i] = TimestampTzGetDatum(state->log_closed_at[i]);
		closed_nulls[i] = (state->log_closed_at[i] == 0);
	}
	args[0] = Int16GetDatum((int16) state->log_part);
	args[1] = TimestampTzGetDatum(state->log_part_since);
	args[2] = PointerGetDatum(construct_md_array(closed, closed_nulls, 1, dims,
												 lbs, TIMESTAMPTZOID,
												 sizeof(TimestampTz),
												 FLOAT8PASSBYVAL,
												 TYPALIGN_DOUBLE));
	args[3] = Int64GetDatum(state->next_id - 1);
	sql = psprintf("UPDATE %s SET log_part = $1, log_part_since = $2,"
				   " log_closed_at = $3, truncated_id = $4",
				   emissions_qualified_name("emissions_state"));
	if (SPI_execute_with_args(sql, 4, argtypes, args, NULL, false, 0) !=
		SPI_OK_UPDATE)
		elog(ERROR, "could not update the emissions state");
}

/* Start a new current log partition every half retention. */
static void
rotate_log(DeliveryState *state, TimestampTz now)
{
	long		period_ms = Max((long) emissions_retention_s * 500L,
								LOG_ROTATE_MIN_MS);
	TimestampTz expired_before = TimestampTzPlusMilliseconds(now,
															 -1000L * emissions_retention_s);
	int			next = (state->log_part + 1) % STORE_PARTITIONS;
	TimestampTz closed = state->log_closed_at[next];

	if (!TimestampDifferenceExceeds(state->log_part_since, now, period_ms))
		return;
	if (closed != 0 && closed > expired_before)
		return;					/* its events must still be kept */
	if (closed != 0 &&
		!emissions_subscriptions_release(partition_relid("emissions_log", next),
										 closed, now))
		return;					/* a subscription still needs them */
	if (closed != 0 && !try_truncate("emissions_log", next, false))
		return;					/* a reader holds it; try again later */

	state->log_closed_at[state->log_part] = now;
	state->log_closed_at[next] = 0;
	state->log_part = next;
	state->log_part_since = now;
	save_log_state(state);
}

/*
 * Rotate the outbox and the log where due.  Runs in a transaction of its
 * own, SPI connected.
 */
void
rotation_maintain(DeliveryState *state, TimestampTz now)
{
	rotate_outbox(state);
	rotate_log(state, now);
}

/*
 * Reserve ids so that next_id .. next_id + count - 1 may be used: raise
 * the reservation in a transaction of its own, committed and flushed to
 * disk before the caller uses any of them.  Must be called outside a
 * transaction.
 *
 * The reservation only ever rises (GREATEST, under the row lock the UPDATE
 * takes).  If it already stood above the worker's own, some other worker
 * handed out ids this one did not know of: its next_id may be stale, so it
 * uses none and fails, and its successor starts above the reservation.
 */
void
rotation_reserve_ids(DeliveryState *state, int64 count)
{
	Oid			argtype = INT8OID;
	Datum		arg;
	char	   *sql;
	int64		reserved = state->next_id + Max(count, ID_RESERVATION) - 1;
	int64		stored;
	bool		isnull;

	if (state->next_id + count - 1 <= state->reserved_id)
		return;
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	arg = Int64GetDatum(reserved);
	sql = psprintf("UPDATE %s SET reserved_id ="
				   " GREATEST(reserved_id, $1)"
				   " RETURNING reserved_id",
				   emissions_qualified_name("emissions_state"));
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, false, 0) !=
		SPI_OK_UPDATE_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not reserve event ids");
	stored = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	if (stored != reserved)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("emissions event ids up to " INT64_FORMAT " were reserved by another delivery worker",
						stored),
				 errdetail("This worker was about to reserve ids up to " INT64_FORMAT ".",
						   reserved),
				 errhint("The worker restarts and continues above the reservation.")));
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	/* On disk whatever synchronous_commit says (commit_durably). */
	XLogFlush(XactLastCommitEnd);
	state->reserved_id = reserved;
}

/*
 * Read the durable state: the next id (above the last reservation and the
 * log's highest) and the log's current partition.  Producers are pointed
 * at outbox partition 0.  Runs in a transaction, SPI connected.
 */
void
rotation_load_state(DeliveryState *state)
{
	char	   *sql;
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		closed;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	sql = psprintf("SELECT reserved_id, log_part, log_part_since, log_closed_at FROM %s",
				   emissions_qualified_name("emissions_state"));
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("emissions_state must hold exactly one row")));
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	state->reserved_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
	state->log_part = DatumGetInt16(SPI_getbinval(tuple, desc, 2, &isnull));
	state->log_part_since = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 3,
															  &isnull));
	closed = SPI_getbinval(tuple, desc, 4, &isnull);
	deconstruct_array(DatumGetArrayTypeP(closed), TIMESTAMPTZOID,
					  sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &n);
	for (i = 0; i < STORE_PARTITIONS; i++)
		state->log_closed_at[i] = (i < n && !nulls[i]) ?
			DatumGetTimestampTz(elems[i]) : 0;
	if (state->log_part < 0 || state->log_part >= STORE_PARTITIONS)
		state->log_part = 0;

	state->next_id = Max(state->reserved_id, event_log_max_id()) + 1;
	state->reserved_id = state->next_id - 1;
	state->outbox_part = 0;
	emissions_registry_set_outbox_part(0);
}
