/*-------------------------------------------------------------------------
 *
 * event_log.c
 *	  Delivered events kept for catch-up: writing and reading them.
 *
 * The delivery worker copies every outbox row it delivers, unchanged, into
 * emissions_log with the id range its events got (first_id .. last_id, in
 * emit order), in the same transaction as the delivery, with heap_insert
 * (the column order below is the table's).  So an event is in
 * the log exactly when it has been delivered, and ids in the log are
 * contiguous and increase with last_id.  The table is partitioned for
 * truncation by age (rotation.c) and indexed on last_id.
 *
 * emissions_events(after_id, max) and emissions_event(id) read it through
 * SPI and decode the rows they need.  They are SECURITY DEFINER: the log
 * itself is not readable by PUBLIC, the functions are (see the install
 * script for why).  Subscriptions (subscriptions.c) read it with
 * event_log_read(), which runs its query as the extension's owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "event_format.h"
#include "event_log.h"
#include "extension.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(emissions_events);
PG_FUNCTION_INFO_V1(emissions_event);

/* Insert index entries for tuple, just inserted into rel. */
static void
insert_index_entries(Relation rel, HeapTuple tuple)
{
	List	   *indexes = RelationGetIndexList(rel);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel),
													&TTSOpsHeapTuple);
	ListCell   *lc;

	ExecStoreHeapTuple(tuple, slot, false);
	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *info = BuildIndexInfo(index);
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		FormIndexDatum(info, slot, NULL, values, isnull);
		index_insert(index, values, isnull, &tuple->t_self, rel,
					 UNIQUE_CHECK_NO, false, info);
		index_close(index, NoLock);
	}
	ExecDropSingleTupleTableSlot(slot);
	list_free(indexes);
}

/*
 * Add a log row for a delivered outbox row: its events got the ids
 * first_id .. last_id; data is the row's data as the outbox stored it
 * (compressed or not: a compressed value is kept as it is).  Runs in the
 * delivery transaction.  The row goes straight into the current
 * partition, with its index entry (the log's only index, on last_id, is
 * plain): no executor, no user code.
 */
void
event_log_insert(int part, int64 first_id, int64 last_id,
				 FullTransactionId txid, TimestampTz delivered_at, bytea *data)
{
	Oid			parts[STORE_PARTITIONS];
	Relation	rel;
	Datum		values[6];
	bool		nulls[6] = {0};
	HeapTuple	tuple;

	if (!emissions_extension_partitions("emissions_log", parts))
		elog(ERROR, "extension \"emissions\" is not installed");
	rel = table_open(parts[part], RowExclusiveLock);
	values[0] = Int64GetDatum(first_id);
	values[1] = Int64GetDatum(last_id);
	values[2] = FullTransactionIdGetDatum(txid);
	values[3] = TimestampTzGetDatum(delivered_at);
	values[4] = Int16GetDatum((int16) part);
	values[5] = PointerGetDatum(data);
	tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
	simple_heap_insert(rel, tuple);
	insert_index_entries(rel, tuple);
	heap_freetuple(tuple);
	table_close(rel, NoLock);
}

/*
 * Highest event id in the log, or 0 when it is empty.  SPI connected.
 */
int64
event_log_max_id(void)
{
	char	   *sql;
	bool		isnull;
	Datum		max;

	sql = psprintf("SELECT pg_catalog.max(last_id) FROM %s",
				   emissions_qualified_name("emissions_log"));
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the event log");
	max = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						&isnull);
	return isnull ? 0 : DatumGetInt64(max);
}

/*
 * Put the events of the log rows SPI returned with ids in (after_id,
 * up_to] into the result, at most max of them.
 */
static void
emit_rows(ReturnSetInfo *rsinfo, int64 after_id, int64 up_to, int64 max)
{
	int64		emitted = 0;
	uint64		r;

	for (r = 0; r < SPI_processed && emitted < max; r++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		Datum		txid = SPI_getbinval(tuple, desc, 2, &isnull);
		Datum		delivered_at = SPI_getbinval(tuple, desc, 3, &isnull);
		bytea	   *record = DatumGetByteaPP(SPI_getbinval(tuple, desc, 4,
														   &isnull));
		const char *data = VARDATA_ANY(record);
		Size		len = VARSIZE_ANY_EXHDR(record);
		Size		pos = 1;
		DecodedEvent event;

		event_check_record(data, len);

		for (; event_decode_next(data, len, &pos, &event); id++)
		{
			Datum		values[7];
			bool		nulls[7] = {0};

			if (id <= after_id)
				continue;
			if (id > up_to || emitted >= max)
				break;
			values[0] = Int64GetDatum(id);
			values[1] = PointerGetDatum(cstring_to_text_with_len(event.type,
																 event.type_len));
			values[2] = PointerGetDatum(event_copy_jsonb(event.payload));
			values[3] = PointerGetDatum(event_copy_jsonb(event.metadata));
			values[4] = TimestampTzGetDatum(event.emitted_at);
			values[5] = txid;
			values[6] = delivered_at;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
								 nulls);
			emitted++;
		}
	}
}

/*
 * Run the log query for the rows matching condition, with one bigint
 * parameter ($1) and a limit ($2), as the extension's owner: the callers
 * that run as the caller (emissions_read) may not read the log themselves.
 */
static void
query_log(const char *condition, int64 id, int64 limit)
{
	Oid			argtypes[] = {INT8OID, INT8OID};
	Datum		args[2];
	char	   *sql;

	args[0] = Int64GetDatum(id);
	args[1] = Int64GetDatum(limit);
	sql = psprintf("SELECT first_id, txid, delivered_at, data FROM %s"
				   " WHERE %s ORDER BY last_id LIMIT $2",
				   emissions_qualified_name("emissions_log"), condition);
	emissions_execute_as_owner(sql, 2, argtypes, args, NULL, true,
							   SPI_OK_SELECT);
}

/*
 * Put the delivered events with an id above after_id into the result, in
 * id order, at most max of them.  One range scan of the log's index on
 * last_id from after_id: its cost does not depend on how many events are
 * kept below after_id.  SPI connected.
 */
void
event_log_read(ReturnSetInfo *rsinfo, int64 after_id, int32 max)
{
	if (max <= 0)
		return;
	/* Every row holds at least one event: max rows are enough. */
	query_log("last_id OPERATOR(pg_catalog.>) $1", after_id, max);
	emit_rows(rsinfo, after_id, PG_INT64_MAX, max);
}

/*
 * The id of the last delivered event: the log's highest, or when the log
 * is empty the highest it held when last truncated.  SPI connected.
 */
int64
event_log_last_id(void)
{
	char	   *sql;
	bool		isnull;
	Datum		last;

	sql = psprintf("SELECT COALESCE((SELECT pg_catalog.max(g.last_id) FROM %s AS g),"
				   " s.truncated_id) FROM %s AS s",
				   emissions_qualified_name("emissions_log"),
				   emissions_qualified_name("emissions_state"));
	emissions_execute_as_owner(sql, 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("emissions_state must hold exactly one row")));
	last = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						 &isnull);
	return isnull ? 0 : DatumGetInt64(last);
}

/*
 * emissions_events(after_id, max): delivered events with an id above
 * after_id, in id order, at most max.
 */
Datum
emissions_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		after_id = PG_GETARG_INT64(0);
	int32		max = PG_GETARG_INT32(1);

	if (max < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must not be negative")));
	InitMaterializedSRF(fcinfo, 0);
	if (max == 0)
		return (Datum) 0;

	SPI_connect();
	event_log_read(rsinfo, after_id, max);
	SPI_finish();
	return (Datum) 0;
}

/*
 * emissions_event(id): the delivered event with that id, if it is still
 * kept.
 */
Datum
emissions_event(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		id = PG_GETARG_INT64(0);

	InitMaterializedSRF(fcinfo, 0);
	if (id < 1)
		return (Datum) 0;		/* ids start at 1 */
	SPI_connect();
	query_log("last_id OPERATOR(pg_catalog.>=) $1", id, 1);
	emit_rows(rsinfo, id - 1, id, 1);
	SPI_finish();
	return (Datum) 0;
}
