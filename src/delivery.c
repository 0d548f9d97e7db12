/*-------------------------------------------------------------------------
 *
 * delivery.c
 *	  One pass of the delivery worker: committed outbox rows to adapters.
 *
 * A pass reads the outbox partitions under one snapshot and collects the
 * visible rows (committed, not yet delivered) with their place: partition,
 * TID, transaction, sequence number.  Sorted by (txid, seq), they are
 * delivered in chunks of whole transactions, about emissions.batch_size
 * events each, every chunk in a worker transaction of its own that:
 *
 *	 - fetches each row by TID and assigns its events the next ids, so ids
 *	   increase along the stream and a transaction's events are consecutive;
 *	 - NOTIFYs each event's envelope on the default channel and on every
 *	   notify adapter that wants it (only this worker notifies, so producers
 *	   never wait for the notification queue's lock);
 *	 - calls the table and function adapters, one call per adapter and
 *	   source transaction (adapters.c), recording failed calls for a retry;
 *	 - copies the row into the event log and deletes it from the outbox.
 *
 * All of it commits together: an event is in an adapter table, in the log
 * and out of the outbox, or none of these.  A crash loses nothing and
 * doubles nothing in tables; the NOTIFYs of a transaction that did not
 * commit were never sent.  The worker's commit waits for its WAL flush
 * (worker.c, commit_durably), so nothing of a delivery is seen before it
 * is durable: a crash can only lose deliveries no one saw, and their
 * events are delivered again under new ids, above any given out before
 * (rotation_reserve_ids).  An id seen names its event for good.
 *
 * A transaction that commits late (its xid below ones already delivered)
 * is simply seen by a later pass, and gets later ids: nothing is skipped.
 * Rows of a transaction still in progress, or prepared, are invisible and
 * wait for their commit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/commit_ts.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "adapters.h"
#include "delivery.h"
#include "envelope.h"
#include "event_format.h"
#include "event_log.h"
#include "extension.h"
#include "outbox.h"
#include "retries.h"
#include "rotation.h"
#include "settings.h"
#include "stats.h"

/* How often the storage is looked at for rotation. */
#define MAINTENANCE_INTERVAL_MS	1000

/* Pause after a delivery commit failed; doubled after each in a row. */
#define COMMIT_RETRY_MS			1000
#define COMMIT_RETRY_MAX_MS		30000

/* A committed outbox row waiting for delivery. */
typedef struct RowRef
{
	Oid			relid;			/* partition */
	ItemPointerData tid;
	FullTransactionId txid;
	int32		seq;
	int32		events;
	int16		depth;
} RowRef;

/* What the worker's transactions did, for the counters. */
typedef struct Totals
{
	int64		delivered;
	int64		failed;
	int64		lag_us;
} Totals;

static MemoryContext pass_cxt = NULL;

static int
rowref_cmp(const void *a, const void *b)
{
	const RowRef *ra = a;
	const RowRef *rb = b;

	if (FullTransactionIdPrecedes(ra->txid, rb->txid))
		return -1;
	if (FullTransactionIdPrecedes(rb->txid, ra->txid))
		return 1;
	return (ra->seq > rb->seq) - (ra->seq < rb->seq);
}

/* Start a worker transaction with SPI connected and a snapshot set. */
static void
begin_work(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/* Commit the transaction begin_work started. */
static void
end_work(void)
{
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Commit the delivery transaction begin_work started.  If the commit fails
 * (the notification queue is full, most likely: a session that ran LISTEN
 * stays idle in a transaction, and the queue cannot move past it), roll it
 * back, say so once, pause delivery (1 s, doubling up to 30 s) and return
 * false: nothing of the transaction happened, its events wait in the
 * outbox, and the next pass after the pause tries again.  Never reached in
 * a post-commit callback: the error comes from before the commit record.
 */
static bool
end_delivery_work(DeliveryState *state)
{
	ErrorData  *error;

	PopActiveSnapshot();
	SPI_finish();
	PG_TRY();
	{
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(pass_cxt);
		error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		state->commit_failures++;
		state->paused_until =
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										Min(COMMIT_RETRY_MAX_MS,
											COMMIT_RETRY_MS << Min(state->commit_failures - 1, 5)));
		ereport(state->commit_failures == 1 ? WARNING : DEBUG1,
				(errcode(error->sqlerrcode),
				 errmsg("emissions delivery in database \"%s\" is paused: its transaction could not commit: %s",
						state->dbname, error->message),
				 errdetail("The notification queue is %.0f%% full (pg_notification_queue_usage()).",
						   100 * DatumGetFloat8(OidFunctionCall0(F_PG_NOTIFICATION_QUEUE_USAGE))),
				 errhint("When the queue is full, a session that ran LISTEN is idle in a transaction: end it with pg_terminate_backend(). Delivery resumes by itself; no event is lost or delivered twice.")));
		FreeErrorData(error);
		return false;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	if (state->commit_failures > 0)
		ereport(LOG,
				(errmsg("emissions delivery in database \"%s\" resumed after %d failed commits",
						state->dbname, state->commit_failures)));
	state->commit_failures = 0;
	state->paused_until = 0;
	return true;
}

/*
 * The visible outbox rows, sorted by (txid, seq), into *rows (pass memory).
 */
static int
collect_rows(RowRef **rows)
{
	Oid			parts[STORE_PARTITIONS];
	int			n = 0;
	int			cap = 64;
	int			i;

	*rows = MemoryContextAlloc(pass_cxt, sizeof(RowRef) * cap);
	emissions_outbox_partitions(parts);
	for (i = 0; i < STORE_PARTITIONS; i++)
	{
		Relation	rel = table_open(parts[i], AccessShareLock);
		TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
		TupleDesc	desc = RelationGetDescr(rel);
		HeapTuple	tuple;

		while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			RowRef	   *row;
			bool		isnull;

			if (n == cap)
			{
				cap *= 2;
				*rows = repalloc_huge(*rows, sizeof(RowRef) * cap);
			}
			row = &(*rows)[n++];
			row->relid = parts[i];
			row->tid = tuple->t_self;
			row->txid = DatumGetFullTransactionId(heap_getattr(tuple, Anum_outbox_txid, desc, &isnull));
			row->seq = DatumGetInt32(heap_getattr(tuple, Anum_outbox_seq, desc, &isnull));
			row->events = DatumGetInt32(heap_getattr(tuple, Anum_outbox_events, desc, &isnull));
			row->depth = DatumGetInt16(heap_getattr(tuple, Anum_outbox_depth, desc, &isnull));
		}
		table_endscan(scan);
		table_close(rel, AccessShareLock);
	}
	if (n > 1)
		qsort(*rows, n, sizeof(RowRef), rowref_cmp);
	return n;
}

/* End of the chunk starting at rows[from]: whole transactions, about
 * emissions.batch_size events. */
static int
chunk_end(const RowRef *rows, int nrows, int from)
{
	int64		events = 0;
	int			i = from;

	while (i < nrows)
	{
		FullTransactionId txid = rows[i].txid;

		if (events > 0 && events + rows[i].events > emissions_batch_size)
			break;
		while (i < nrows && FullTransactionIdEquals(rows[i].txid, txid))
			events += rows[i++].events;
	}
	return i;
}

/*
 * Fetch the row by TID and detoast its data; NULL when the row is gone
 * (someone truncated the outbox since the scan: the partition has nblocks
 * blocks now).  The partition must be locked.  With stored, also return
 * the data as stored (compressed, most likely), for the log to keep as it
 * is instead of compressing it again.
 */
static bytea *
fetch_row_data(Relation rel, BlockNumber nblocks, const RowRef *row,
			   bytea **stored)
{
	HeapTupleData tuple;
	Buffer		buffer;
	bytea	   *data = NULL;

	if (ItemPointerGetBlockNumber(&row->tid) >= nblocks)
		return NULL;
	tuple.t_self = row->tid;
	if (heap_fetch(rel, GetActiveSnapshot(), &tuple, &buffer, false))
	{
		bool		isnull;
		Datum		datum = heap_getattr(&tuple, Anum_outbox_data,
										 RelationGetDescr(rel), &isnull);

		data = DatumGetByteaPCopy(datum);
		if (stored != NULL)
		{
			/* A value moved out of line belongs to the outbox's TOAST. */
			*stored = VARATT_IS_EXTERNAL(DatumGetPointer(datum)) ? data :
				(bytea *) DatumGetPointer(datumCopy(datum, false, -1));
		}
		ReleaseBuffer(buffer);
	}
	return data;
}

/*
 * The events of one source transaction's outbox rows, for one adapter,
 * read back row by row: only one row's data and envelopes are in memory
 * at a time.
 */
typedef struct RowSource
{
	EventSource base;
	const Adapter *filter;		/* only its events; NULL: all */
	RowRef	   *rows;
	int			nrows;
	const int64 *first_ids;		/* id of each row's first event; -1: gone */
	Relation   *rels;			/* the outbox partitions, by part */
	BlockNumber *nblocks;		/* their sizes */
	Oid		   *parts;
	const char *dbname;
	MemoryContext row_cxt;		/* the current row's data and envelopes */
	int			row;
	bytea	   *data;			/* the current row's events, or NULL */
	Size		pos;
	int64		next_id;
	DecodedEvent decoded;		/* the current event, in data */
} RowSource;

/* Read row's data by TID; NULL when it is gone.  See fetch_row_data. */
static bytea *
row_data(RowSource *source, const RowRef *row, bytea **stored)
{
	int			p;

	for (p = 0; p < STORE_PARTITIONS; p++)
		if (source->parts[p] == row->relid)
			return fetch_row_data(source->rels[p], source->nblocks[p], row,
								  stored);
	return NULL;
}

static bool
row_source_next(EventSource *base, OutgoingEvent *event)
{
	RowSource  *source = (RowSource *) base;

	for (;;)
	{
		DecodedEvent *decoded = &source->decoded;
		MemoryContext oldcxt;

		if (source->data == NULL)
		{
			if (source->row >= source->nrows)
				return false;
			MemoryContextReset(source->row_cxt);
			if (source->first_ids[source->row] < 0)
			{
				source->row++;
				continue;
			}
			oldcxt = MemoryContextSwitchTo(source->row_cxt);
			source->data = row_data(source, &source->rows[source->row], NULL);
			MemoryContextSwitchTo(oldcxt);
			source->pos = 1;
			source->next_id = source->first_ids[source->row];
			if (source->data == NULL)
			{
				source->row++;
				continue;
			}
		}
		if (!event_decode_next(VARDATA(source->data),
							   VARSIZE(source->data) - VARHDRSZ,
							   &source->pos, decoded))
		{
			source->data = NULL;
			source->row++;
			continue;
		}

		event->id = source->next_id++;
		if (source->filter != NULL &&
			!adapter_wants(source->filter, decoded->type, decoded->type_len))
			continue;
		event->txid = source->rows[source->row].txid;
		event->depth = source->rows[source->row].depth;
		event->type = decoded->type;
		event->type_len = decoded->type_len;
		/* The envelope is built by whoever needs it, in its subtransaction. */
		event->decoded = decoded;
		event->dbname = source->dbname;
		event->stored_envelope = NULL;
		event->envelope_jsonb = NULL;
		return true;
	}
}

static void
row_source_rewind(EventSource *base)
{
	RowSource  *source = (RowSource *) base;

	source->row = 0;
	source->data = NULL;
	MemoryContextReset(source->row_cxt);
}

/* An event's NOTIFY texts, each built when first needed. */
typedef struct NotifyTexts
{
	int64		id;
	FullTransactionId txid;
	const DecodedEvent *decoded;
	const char *dbname;
	char	   *text[2];		/* with its payload if it fits; without */
} NotifyTexts;

/*
 * NOTIFY the event on channel, without its payload if omit_payload or if
 * the envelope with it is too big (envelope_build_notify).
 */
static void
notify_event(const char *channel, NotifyTexts *texts, bool omit_payload)
{
	if (texts->text[omit_payload] == NULL)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		envelope_build_notify(&buf, texts->id, texts->decoded, texts->txid,
							  texts->dbname, omit_payload);
		texts->text[omit_payload] = buf.data;
	}
	Async_Notify(channel, texts->text[omit_payload]);
}

/* Time the transaction txid committed, if the server tracks it, or 0. */
static TimestampTz
commit_time(FullTransactionId txid)
{
	TimestampTz ts = 0;

	if (track_commit_timestamp)
		(void) TransactionIdGetCommitTsData(XidFromFullTransactionId(txid),
											&ts, NULL);
	return ts;
}

/*
 * Number the events of rows[0..n), NOTIFY them, copy the rows into the
 * log; note in *wanted which table and function adapters want some of
 * them.  Returns how many events there were; *last_emitted_at is the last
 * one's emission time.
 */
static int64
notify_and_log(DeliveryState *state, List *adapters, RowSource *source,
			   bool *wanted, TimestampTz now, TimestampTz *last_emitted_at)
{
	int64	   *first_ids = (int64 *) source->first_ids;
	int64		count = 0;
	int			i;

	for (i = 0; i < source->nrows; i++)
	{
		RowRef	   *row = &source->rows[i];
		MemoryContext oldcxt = MemoryContextSwitchTo(source->row_cxt);
		bytea	   *stored = NULL;
		bytea	   *data = row_data(source, row, &stored);
		const char *bytes;
		Size		len;
		Size		pos = 1;
		DecodedEvent decoded;

		first_ids[i] = -1;
		if (data == NULL)
		{
			MemoryContextSwitchTo(oldcxt);
			continue;
		}
		bytes = VARDATA(data);
		len = VARSIZE(data) - VARHDRSZ;
		event_check_record(bytes, len);

		first_ids[i] = state->next_id;
		while (event_decode_next(bytes, len, &pos, &decoded))
		{
			NotifyTexts texts = {0};
			ListCell   *lc;
			int			a = 0;

			texts.id = state->next_id++;
			if (texts.id > state->reserved_id)
				elog(ERROR, "emissions event id " INT64_FORMAT " is not reserved",
					 texts.id);
			texts.txid = row->txid;
			texts.decoded = &decoded;
			texts.dbname = state->dbname;

			if (emissions_notify_channel[0] != '\0')
				notify_event(emissions_notify_channel, &texts, false);
			foreach(lc, adapters)
			{
				Adapter    *adapter = lfirst(lc);

				if (adapter_wants(adapter, decoded.type, decoded.type_len))
				{
					if (adapter->kind == ADAPTER_NOTIFY)
						notify_event(adapter->target, &texts,
									 adapter->omit_payload);
					else
						wanted[a] = true;
				}
				a++;
			}
			*last_emitted_at = decoded.emitted_at;
			if (texts.text[0] != NULL)
				pfree(texts.text[0]);
			if (texts.text[1] != NULL)
				pfree(texts.text[1]);
			count++;
		}
		if (state->next_id > first_ids[i])
			event_log_insert(state->log_part, first_ids[i], state->next_id - 1,
							 row->txid, now, stored);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(source->row_cxt);
	}
	return count;
}

/*
 * Deliver the events of one source transaction, rows[0..n), in the current
 * worker transaction: NOTIFY and log them, call the table and function
 * adapters that want some (reading the rows again for each), then delete
 * the rows from the outbox.
 */
static void
deliver_transaction(DeliveryState *state, List *adapters, RowRef *rows,
					int n, Relation *rels, BlockNumber *nblocks, Oid *parts,
					Totals *totals, TimestampTz now)
{
	RowSource	source;
	bool	   *wanted = palloc0(sizeof(bool) * (list_length(adapters) + 1));
	TimestampTz last_emitted_at = 0;
	TimestampTz committed;
	int64		count;
	ListCell   *lc;
	int			a = 0;
	int			i;

	memset(&source, 0, sizeof(source));
	source.base.next = row_source_next;
	source.base.rewind = row_source_rewind;
	source.rows = rows;
	source.nrows = n;
	source.first_ids = palloc(sizeof(int64) * n);
	source.rels = rels;
	source.nblocks = nblocks;
	source.parts = parts;
	source.dbname = state->dbname;
	source.row_cxt = AllocSetContextCreate(CurrentMemoryContext,
										   "emissions outbox row",
										   ALLOCSET_DEFAULT_SIZES);

	count = notify_and_log(state, adapters, &source, wanted, now,
						   &last_emitted_at);

	foreach(lc, adapters)
	{
		Adapter    *adapter = lfirst(lc);
		ErrorData  *error = NULL;

		if (!wanted[a++])
			continue;
		source.filter = adapter;
		source.base.rewind(&source.base);
		if (adapter_deliver(adapter, &source.base, &error))
			continue;

		ereport(LOG,
				(errcode(error->sqlerrcode),
				 errmsg("emissions adapter \"%s\" failed with SQLSTATE %s: %s",
						adapter->name, unpack_sql_state(error->sqlerrcode),
						error->message),
				 errdetail("The events of transaction " UINT64_FORMAT " will be retried.",
						   U64FromFullTransactionId(rows[0].txid))));
		totals->failed += retries_record(adapter, &source.base, error, now);
		if (state->next_retry_at == 0 ||
			state->next_retry_at > TimestampTzPlusMilliseconds(now, 1000))
			state->next_retry_at = TimestampTzPlusMilliseconds(now, 1000);
	}

	for (i = 0; i < n; i++)
	{
		int			p;

		if (source.first_ids[i] < 0)
			continue;
		for (p = 0; p < STORE_PARTITIONS; p++)
			if (parts[p] == rows[i].relid)
				simple_heap_delete(rels[p], &rows[i].tid);
	}
	MemoryContextDelete(source.row_cxt);

	if (count == 0)
		return;
	totals->delivered += count;
	committed = commit_time(rows[0].txid);
	if (committed == 0)
		committed = last_emitted_at;
	totals->lag_us = Max(now - committed, 0);
}

/* Deliver rows[from..to) (whole transactions) in the current transaction. */
static void
deliver_chunk(DeliveryState *state, RowRef *rows, int from, int to,
			  Totals *totals)
{
	Oid			parts[STORE_PARTITIONS];
	Relation	rels[STORE_PARTITIONS];
	BlockNumber nblocks[STORE_PARTITIONS];
	List	   *adapters = adapters_load();
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	emissions_outbox_partitions(parts);
	for (i = 0; i < STORE_PARTITIONS; i++)
	{
		rels[i] = table_open(parts[i], RowExclusiveLock);
		nblocks[i] = RelationGetNumberOfBlocks(rels[i]);
	}

	for (i = from; i < to;)
	{
		int			end = i;

		while (end < to && FullTransactionIdEquals(rows[end].txid, rows[i].txid))
			end++;
		deliver_transaction(state, adapters, &rows[i], end - i, rels, nblocks,
							parts, totals, now);
		i = end;
	}

	for (i = 0; i < STORE_PARTITIONS; i++)
		table_close(rels[i], NoLock);
}

/* Publish what a committed worker transaction did. */
static void
publish(Totals *totals)
{
	emissions_stats_add_delivery(totals->delivered, totals->failed,
								 GetCurrentTimestamp(),
								 totals->lag_us);
	memset(totals, 0, sizeof(Totals));
}

/*
 * Prepare the worker: check that the extension is installed and load the
 * durable state, noting which extension (its OID) it came from.  False if
 * the extension is not installed here.
 */
bool
delivery_start(DeliveryState *state)
{
	bool		installed;

	pass_cxt = AllocSetContextCreate(TopMemoryContext, "emissions delivery pass",
									 ALLOCSET_DEFAULT_SIZES);
	adapters_init();
	memset(state, 0, sizeof(DeliveryState));
	begin_work("loading state");
	state->extension_oid = get_extension_oid("emissions", true);
	installed = OidIsValid(state->extension_oid);
	if (installed)
	{
		state->dbname = MemoryContextStrdup(TopMemoryContext,
											get_database_name(MyDatabaseId));
		rotation_load_state(state);
		state->next_retry_at = retries_next_due();
	}
	end_work();
	return installed;
}

/*
 * One pass: deliver everything committed so far, then run the retries and
 * the storage maintenance that are due.  Delivers nothing when the
 * extension is gone, or was dropped and created again (in one transaction)
 * since the state was loaded: the state then belongs to tables that no
 * longer exist, and the worker must start afresh.
 */
DeliveryStatus
delivery_pass(DeliveryState *state)
{
	Totals		totals = {0};
	Oid			parts[STORE_PARTITIONS];
	RowRef	   *rows = NULL;
	int			nrows;
	int			from = 0;
	TimestampTz now;

	MemoryContextReset(pass_cxt);
	begin_work("delivering events");
	/* Cached until DROP EXTENSION invalidates it. */
	if (!emissions_extension_partitions(OUTBOX_TABLE_NAME, parts))
	{
		end_work();
		return DELIVERY_NO_EXTENSION;
	}
	if (get_extension_oid("emissions", true) != state->extension_oid)
	{
		end_work();
		return DELIVERY_RECREATED;
	}
	/* Paused after a failed commit: nothing to deliver until then. */
	if (state->paused_until > GetCurrentTimestamp())
		nrows = 0;
	else
	{
		/*
		 * After a failed commit, move the notification queue's tail past
		 * what no listener needs any more: PostgreSQL does it only as
		 * notifications are written, which a full queue prevents, and
		 * pg_notification_queue_usage() does it first.
		 */
		if (state->commit_failures > 0)
			(void) OidFunctionCall0(F_PG_NOTIFICATION_QUEUE_USAGE);
		nrows = collect_rows(&rows);
	}
	for (;;)
	{
		int			to = chunk_end(rows, nrows, from);
		MemoryContext oldcxt;

		if (to > from)
		{
			MemoryContext chunk_cxt;
			int64		events = 0;
			int64		first_id;
			bool		committed;
			int			i;

			for (i = from; i < to; i++)
				events += rows[i].events;
			if (state->next_id + events - 1 > state->reserved_id)
			{
				end_work();
				rotation_reserve_ids(state, events);
				begin_work("delivering events");
			}
			chunk_cxt = AllocSetContextCreate(pass_cxt,
															"emissions delivery chunk",
															ALLOCSET_DEFAULT_SIZES);

			first_id = state->next_id;
			oldcxt = MemoryContextSwitchTo(chunk_cxt);
			deliver_chunk(state, rows, from, to, &totals);
			MemoryContextSwitchTo(oldcxt);
			committed = end_delivery_work(state);
			MemoryContextDelete(chunk_cxt);
			if (!committed)
			{
				/* None of it happened: its ids are given out again. */
				state->next_id = first_id;
				memset(&totals, 0, sizeof(Totals));
				break;
			}
			publish(&totals);
		}
		else
			end_work();
		from = to;
		if (from >= nrows)
			break;
		CHECK_FOR_INTERRUPTS();
		begin_work("delivering events");
	}

	now = GetCurrentTimestamp();
	if (state->next_retry_at != 0 && state->next_retry_at <= now)
	{
		begin_work("retrying failed deliveries");
		retries_run_due(adapters_load(), now, &totals.delivered,
						&totals.failed);
		state->next_retry_at = retries_next_due();
		end_work();
		publish(&totals);
	}
	if (state->next_maintenance_at <= now)
	{
		begin_work("rotating storage");
		rotation_maintain(state, now);
		/* Also notices dead letters replayed meanwhile. */
		state->next_retry_at = retries_next_due();
		end_work();
		state->next_maintenance_at =
			TimestampTzPlusMilliseconds(now, MAINTENANCE_INTERVAL_MS);
	}
	return DELIVERY_DONE;
}

/*
 * How long the worker may sleep when nothing wakes it.
 */
long
delivery_sleep_ms(const DeliveryState *state)
{
	TimestampTz now = GetCurrentTimestamp();
	long		sleep_ms = emissions_poll_interval_ms;

	if (state->next_retry_at != 0)
		sleep_ms = Min(sleep_ms, (long) ((state->next_retry_at - now) / 1000));
	if (state->paused_until != 0)
		sleep_ms = Min(sleep_ms, (long) ((state->paused_until - now) / 1000));
	sleep_ms = Min(sleep_ms,
				   (long) ((state->next_maintenance_at - now) / 1000));
	return Max(sleep_ms, 1);
}
