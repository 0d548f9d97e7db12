/*-------------------------------------------------------------------------
 *
 * storage_rotation.c
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
 * Log: the current partition changes every half retention; the next one
 * in line is truncated when log_partition_may_go() says its events need
 * not be kept any more, so delivered events stay readable at least
 * emissions.retention, and at most about twice that.  Beyond it, a
 * subscription that has not acknowledged a partition's events holds it, up
 * to emissions.max_retention (subscriptions.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "extension.h"
#include "registry.h"
#include "settings.h"
#include "storage.h"
#include "subscriptions.h"

/* Size of the current outbox partition that makes the worker move on. */
#define OUTBOX_ROTATE_BLOCKS	256

/* Shortest time a log partition stays current. */
#define LOG_ROTATE_MIN_MS		1000

/* Whether relid, locked by the caller, has rows visible to a new snapshot. */
static bool
has_visible_rows(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	bool		found = table_scan_getnextslot(scan, ForwardScanDirection, slot);

	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
	return found;
}

/*
 * Truncate partition part of table if its lock is free at once and, when
 * must_be_empty, it holds no visible row; false if it was left alone.
 * SPI connected.
 */
static bool
try_truncate(StoreTable table, int part, bool must_be_empty)
{
	Oid			parts[STORE_PARTITIONS];
	Relation	rel;
	char	   *name;

	emissions_storage_partitions(table, parts);
	if (!ConditionalLockRelationOid(parts[part], AccessExclusiveLock))
		return false;
	if (must_be_empty && has_visible_rows(parts[part]))
		return false;
	rel = table_open(parts[part], NoLock);
	name = pstrdup(RelationGetRelationName(rel));
	table_close(rel, NoLock);
	if (SPI_execute(psprintf("TRUNCATE %s", emissions_qualified_name(name)),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not truncate %s", name);
	return true;
}

/* Number of blocks of partition part of table. */
static BlockNumber
partition_blocks(StoreTable table, int part)
{
	Oid			parts[STORE_PARTITIONS];
	Relation	rel;
	BlockNumber blocks;

	emissions_storage_partitions(table, parts);
	rel = table_open(parts[part], AccessShareLock);
	blocks = RelationGetNumberOfBlocks(rel);
	table_close(rel, AccessShareLock);
	return blocks;
}

/*
 * Truncate the outbox partitions producers have left once they are
 * delivered, and move producers to an empty partition once the current
 * one is large.
 */
static void
rotate_outbox(StoreState *state)
{
	int			step;

	for (step = 1; step < STORE_PARTITIONS; step++)
	{
		int			part = (state->outbox_part + step) % STORE_PARTITIONS;

		if (partition_blocks(STORE_OUTBOX, part) > 0)
			(void) try_truncate(STORE_OUTBOX, part, true);
	}
	if (partition_blocks(STORE_OUTBOX, state->outbox_part) <
		OUTBOX_ROTATE_BLOCKS)
		return;
	for (step = 1; step < STORE_PARTITIONS; step++)
	{
		int			part = (state->outbox_part + step) % STORE_PARTITIONS;

		if (partition_blocks(STORE_OUTBOX, part) == 0)
		{
			state->outbox_part = part;
			emissions_registry_set_outbox_part(part);
			return;
		}
	}
}

/*
 * Whether the events of log partition part, closed at closed (0: it holds
 * nothing), need not be kept any more at now: the one decision behind
 * truncating the log.  Past the retention, the subscriptions are asked
 * last (they may mark themselves overrun). SPI connected.
 */
static bool
log_partition_may_go(int part, TimestampTz closed, TimestampTz now)
{
	TimestampTz expired_before =
		TimestampTzPlusMilliseconds(now, -1000L * emissions_retention_s);
	Oid			parts[STORE_PARTITIONS];

	if (closed == 0)
		return true;
	if (closed > expired_before)
		return false;
	emissions_storage_partitions(STORE_LOG, parts);
	return emissions_subscriptions_release(parts[part], closed, now);
}

/* Start a new current log partition every half retention. */
static void
rotate_log(StoreState *state, TimestampTz now)
{
	long		period_ms = Max((long) emissions_retention_s * 500L,
								LOG_ROTATE_MIN_MS);
	int			next = (state->log_part + 1) % STORE_PARTITIONS;
	TimestampTz closed = state->log_closed_at[next];

	if (!TimestampDifferenceExceeds(state->log_part_since, now, period_ms))
		return;
	if (!log_partition_may_go(next, closed, now))
		return;					/* its events must still be kept */
	if (closed != 0 && !try_truncate(STORE_LOG, next, false))
		return;					/* a reader holds it; try again later */

	state->log_closed_at[state->log_part] = now;
	state->log_closed_at[next] = 0;
	state->log_part = next;
	state->log_part_since = now;
	emissions_storage_save_log_state(state);
}

/*
 * Rotate the outbox and the log where due.  Runs in a transaction of its
 * own, SPI connected.
 */
void
emissions_storage_maintain(StoreState *state, TimestampTz now)
{
	rotate_outbox(state);
	rotate_log(state, now);
}
