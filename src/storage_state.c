/*-------------------------------------------------------------------------
 *
 * storage_state.c
 *	  The state table: the worker's durable state, and reserving ids.
 *
 * emissions_state holds one row: the highest event id reserved, which log
 * partition is current since when, and when each log partition was closed.
 * The worker loads it when it starts (emissions_storage_load_state) into a
 * StoreState, which only the storage layer changes afterwards.
 *
 * Ids: a crash may lose deliveries that were not yet flushed (no one saw
 * them: worker.c, commit_durably).  Their events are delivered again, and
 * must not get ids of another delivery, even a lost one: the worker
 * reserves ids in blocks in emissions_state, each reservation committed
 * and flushed in a transaction of its own before any of its ids is used,
 * and a new worker starts above the last reservation.
 * The worker reserves between its delivery transactions, never inside one.
 *
 * The row is read and written through SPI with qualified names: it is one
 * row, touched once per block of ids and once per log rotation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/snapmgr.h"

#include "extension.h"
#include "registry.h"
#include "storage.h"

/* Ids reserved at a time. */
#define ID_RESERVATION			10000

/*
 * Read the durable state: the next id (above the last reservation and the
 * last delivered event) and the log's current partition.  Producers are pointed
 * at outbox partition 0.  Runs in a transaction, SPI connected.
 */
void
emissions_storage_load_state(StoreState *state)
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

	memset(state, 0, sizeof(StoreState));
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

	state->next_id = Max(state->reserved_id, emissions_storage_log_last_id()) + 1;
	state->reserved_id = state->next_id - 1;
	state->outbox_part = 0;
	emissions_registry_set_outbox_part(0);
}

/*
 * Write the log's rotation state to emissions_state.  SPI connected.
 */
void
emissions_storage_save_log_state(const StoreState *state)
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

/*
 * Make sure the ids next_id .. next_id + count - 1 are reserved: if they
 * are not yet, raise the reservation in a transaction of its own,
 * committed and flushed to disk before the caller uses any of them.  Must
 * be called outside a transaction.
 *
 * The reservation only ever rises (GREATEST, under the row lock the UPDATE
 * takes).  If it already stood above the worker's own, some other worker
 * handed out ids this one did not know of: its next_id may be stale, so it
 * uses none and fails, and its successor starts above the reservation.
 */
void
emissions_storage_reserve_ids(StoreState *state, int64 count)
{
	Oid			argtype = INT8OID;
	Datum		arg;
	char	   *sql;
	int64		reserved = state->next_id + Max(count, ID_RESERVATION) - 1;
	int64		stored;
	bool		isnull;

	if (state->next_id + count - 1 <= state->reserved_id)
		return;
	Assert(!IsTransactionState());
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
 * Raise an error unless the ids up to last_id are reserved; the worker
 * checks, in its delivery transaction, before it gives any of them out.
 */
void
emissions_storage_check_reserved(const StoreState *state, int64 last_id)
{
	if (last_id > state->reserved_id)
		elog(ERROR, "emissions event id " INT64_FORMAT " is not reserved",
			 last_id);
}

/*
 * The ids below next_id have been given out, in a delivery transaction
 * that committed.
 */
void
emissions_storage_ids_used(StoreState *state, int64 next_id)
{
	Assert(next_id - 1 <= state->reserved_id);
	state->next_id = Max(state->next_id, next_id);
}
