/*-------------------------------------------------------------------------
 *
 * storage_log.c
 *	  The event log: delivered outbox rows, kept for catch-up.
 *
 * The delivery worker copies every outbox row it delivers, unchanged, into
 * the current partition of emissions_log with the id range its events got
 * (first_id .. last_id, in emit order), in the same transaction as the
 * delivery.  So an event is in the log exactly when it has been delivered,
 * and ids in the log increase with last_id, the log's one index.  Rows go
 * in through the table access method with their index entries
 * (storage.c), several at a time (one WAL record per page of them); the
 * partitions are truncated by age (storage_rotation.c).
 *
 * Readers ask for the rows after an id, in id order, through SPI as the
 * extension's owner (subscriptions read as their caller, who may not read
 * the log): the planner walks the index of each partition, so a page costs
 * the same however long the log is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "extension.h"
#include "storage.h"

/* Columns of the log table, 1-based. */
#define Anum_log_first_id		1
#define Anum_log_last_id		2
#define Anum_log_txid			3
#define Anum_log_delivered_at	4
#define Anum_log_part			5
#define Anum_log_data			6
#define Natts_log				6

/* The rows a read asks for first (emissions_storage_log_read). */
#define LOG_READ_FIRST_ROWS		16

struct LogWriter
{
	TableWriter *table;
	int			part;
};

/*
 * Open the current log partition for emissions_storage_log_append, in the
 * delivery transaction; it stays locked until the transaction ends.
 */
LogWriter *
emissions_storage_log_open(const StoreState *state)
{
	LogWriter  *writer = palloc(sizeof(LogWriter));
	Oid			parts[STORE_PARTITIONS];

	emissions_storage_partitions(STORE_LOG, parts);
	writer->part = state->log_part;
	writer->table = emissions_storage_writer_open(parts[state->log_part]);
	return writer;
}

/*
 * Add the log row of a delivered outbox row: its events got the ids
 * first_id .. last_id; stored is the row's data as the outbox stored it
 * (compressed or not: a compressed value is kept as it is), copied here.
 * The row is written with others, by emissions_storage_log_flush() or
 * emissions_storage_log_close() at the latest.
 */
void
emissions_storage_log_append(LogWriter *writer, int64 first_id, int64 last_id,
							 FullTransactionId txid, TimestampTz delivered_at,
							 bytea *stored)
{
	Datum		values[Natts_log];

	values[Anum_log_first_id - 1] = Int64GetDatum(first_id);
	values[Anum_log_last_id - 1] = Int64GetDatum(last_id);
	values[Anum_log_txid - 1] = FullTransactionIdGetDatum(txid);
	values[Anum_log_delivered_at - 1] = TimestampTzGetDatum(delivered_at);
	values[Anum_log_part - 1] = Int16GetDatum((int16) writer->part);
	values[Anum_log_data - 1] = PointerGetDatum(stored);
	emissions_storage_writer_add(writer->table, values, Natts_log,
								 VARSIZE_ANY(stored));
}

/*
 * Write the rows appended so far, so that the delivery transaction's own
 * queries (an adapter's function reading emissions_events()) see them.
 */
void
emissions_storage_log_flush(LogWriter *writer)
{
	emissions_storage_writer_flush(writer->table);
}

/* Write what is appended and close what emissions_storage_log_open opened, keeping the lock. */
void
emissions_storage_log_close(LogWriter *writer)
{
	emissions_storage_writer_close(writer->table);
	pfree(writer);
}

/*
 * Call callback for the log rows holding events with ids above after_id,
 * in id order, until it returns false or max_events events have been
 * passed (every row holds at least one event, of consecutive ids).
 *
 * A row holds a whole transaction's events, often dozens: asking for
 * max_events rows at once would read many times the rows needed and throw
 * most of them away.  So the rows come in batches: a few first, then as
 * many as the events still wanted need at the rows' mean size so far, with
 * a margin; usually two queries.  All of them see the caller's snapshot.
 */
void
emissions_storage_log_read(int64 after_id, int64 max_events,
						   LogRowCallback callback, void *arg)
{
	Oid			argtypes[] = {INT8OID, INT8OID};
	Datum		args[2];
	char	   *sql;
	int64		batch = Min(max_events, LOG_READ_FIRST_ROWS);
	int64		rows_read = 0;
	int64		events_read = 0;
	int64		read_to = after_id;
	int64		estimate;

	SPI_connect();
	sql = psprintf("SELECT first_id, last_id, txid, delivered_at, data FROM %s"
				   " WHERE last_id OPERATOR(pg_catalog.>) $1"
				   " ORDER BY last_id LIMIT $2",
				   emissions_qualified_name("emissions_log"));
	while (batch > 0)
	{
		uint64		processed;
		bool		wanted = true;

		args[0] = Int64GetDatum(read_to);
		args[1] = Int64GetDatum(batch);
		emissions_execute_as_owner(sql, 2, argtypes, args, NULL, true,
								   SPI_OK_SELECT);
		processed = SPI_processed;
		for (uint64 r = 0; r < processed && wanted; r++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		first_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1,
															   &isnull));

			wanted = callback(first_id,
							  DatumGetFullTransactionId(SPI_getbinval(tuple, desc, 3,
																	  &isnull)),
							  DatumGetTimestampTz(SPI_getbinval(tuple, desc, 4,
																&isnull)),
							  DatumGetByteaPP(SPI_getbinval(tuple, desc, 5, &isnull)),
							  arg);
			read_to = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
			events_read += read_to - Max(first_id - 1, after_id);
			rows_read++;
		}
		SPI_freetuptable(SPI_tuptable);
		if (!wanted || (int64) processed < batch || events_read >= max_events)
			break;
		/*
		 * The rows the events still wanted need at the mean so far, a
		 * quarter and 8 more; at least twice the last batch, so that rows
		 * smaller than the first ones take few more queries.
		 */
		estimate = (max_events - events_read) * rows_read / events_read;
		batch = Min(Max(estimate + estimate / 4 + 8, batch * 2),
					max_events - events_read);
	}
	SPI_finish();
}

/*
 * What the log keeps, into *extent.  SPI connected; runs as the
 * extension's owner.
 */
void
emissions_storage_log_extent(LogExtent *extent)
{
	char	   *sql;
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	bool		first_null;
	bool		last_null;
	Datum		first;
	Datum		last;

	sql = psprintf("SELECT s.truncated_id,"
				   " (SELECT g.first_id FROM %s AS g ORDER BY g.last_id LIMIT 1),"
				   " (SELECT g.last_id FROM %s AS g ORDER BY g.last_id DESC LIMIT 1)"
				   " FROM %s AS s",
				   emissions_qualified_name("emissions_log"),
				   emissions_qualified_name("emissions_log"),
				   emissions_qualified_name("emissions_state"));
	emissions_execute_as_owner(sql, 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("emissions_state must hold exactly one row")));
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	extent->truncated_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1,
													   &isnull));
	first = SPI_getbinval(tuple, desc, 2, &first_null);
	last = SPI_getbinval(tuple, desc, 3, &last_null);
	extent->empty = first_null || last_null;
	extent->first_id = extent->empty ? 0 : DatumGetInt64(first);
	extent->last_id = extent->empty ? extent->truncated_id :
		DatumGetInt64(last);
}

/*
 * The id of the last delivered event: the log's highest, or when the log
 * is empty the highest it held when last truncated.  SPI connected.
 */
int64
emissions_storage_log_last_id(void)
{
	LogExtent	extent;

	emissions_storage_log_extent(&extent);
	return extent.last_id;
}

/*
 * Ids of the first and the last event in log partition partition; false
 * when it is empty.  Two ends of its index on last_id.  SPI connected, in
 * the worker.
 */
bool
emissions_storage_log_partition_range(Oid partition, int64 *first_id, int64 *last_id)
{
	char	   *name;
	char	   *sql;
	HeapTuple	tuple;
	bool		first_null;
	bool		last_null;
	Datum		first;
	Datum		last;

	name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(partition)),
									  get_rel_name(partition));
	sql = psprintf("SELECT (SELECT g.first_id FROM %s AS g ORDER BY g.last_id LIMIT 1),"
				   " (SELECT g.last_id FROM %s AS g ORDER BY g.last_id DESC LIMIT 1)",
				   name, name);
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read log partition %s", name);
	tuple = SPI_tuptable->vals[0];
	first = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &first_null);
	last = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &last_null);
	if (first_null || last_null)
		return false;
	*first_id = DatumGetInt64(first);
	*last_id = DatumGetInt64(last);
	return true;
}
