/*-------------------------------------------------------------------------
 *
 * delivery.c
 *	  One pass of the delivery worker: committed outbox rows to adapters.
 *
 * A pass, in worker transactions of its own:
 *
 *	 1. collects the committed outbox rows, sorted by (txid, seq), in a
 *		short transaction (delivery_collect.c);
 *	 2. cuts them into chunks of whole transactions, about
 *		emissions.batch_size events each, and for each chunk reserves the
 *		ids it may need (storage_state.c: a transaction of its own, between
 *		delivery transactions), then, in one delivery transaction, for each
 *		source transaction:
 *		- numbers its events (delivery_number.c),
 *		- NOTIFYs them (delivery_notify.c),
 *		- copies its rows into the event log (delivery_log.c),
 *		- calls the table and function adapters that want some of them
 *		  (delivery_dispatch.c), recording failed calls for a retry,
 *		- deletes its rows from the outbox (delivery_delete.c);
 *	 3. runs the retries that are due (retries.c) and the storage
 *		maintenance (storage_rotation.c).
 *
 * All of a delivery transaction commits together: an event is in an
 * adapter table, in the log and out of the outbox, or none of these.  A
 * crash loses nothing and doubles nothing in tables; the NOTIFYs of a
 * transaction that did not commit were never sent.  The worker's commit
 * waits for its WAL flush (worker.c, commit_durably), so nothing of a
 * delivery is seen before it is durable: a crash can only lose deliveries
 * no one saw, and their events are delivered again under new ids, above
 * any given out before (the reservation).  An id seen names its event for
 * good.
 *
 * If a delivery transaction cannot commit (a full notification queue),
 * none of it happened: delivery pauses, its ids are given out again, and
 * the events wait in the outbox.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/commit_ts.h"
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "adapters.h"
#include "delivery.h"
#include "delivery_steps.h"
#include "retries.h"
#include "settings.h"
#include "stats.h"
#include "storage.h"

/* How often the storage is looked at for rotation. */
#define MAINTENANCE_INTERVAL_MS	1000

/* Pause after a delivery commit failed; doubled after each in a row. */
#define COMMIT_RETRY_MS			1000
#define COMMIT_RETRY_MAX_MS		30000

/* What the worker's transactions did, for the counters. */
typedef struct Totals
{
	int64		delivered;
	int64		failed;
	int64		lag_us;
} Totals;

static MemoryContext pass_cxt = NULL;

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
 * Deliver the events of one source transaction, rows[0..n), in the current
 * worker transaction, numbering them from next_id on; returns the id after
 * the last one given.
 */
static int64
deliver_transaction(DeliveryState *state, List *adapters, OutboxRow *rows,
					int n, OutboxAccess *outbox, LogWriter *log,
					int64 next_id, Totals *totals, TimestampTz now)
{
	DeliveryTxn txn;
	bool	   *wanted = palloc0(sizeof(bool) * (list_length(adapters) + 1));
	TimestampTz last_emitted_at = 0;
	TimestampTz committed;
	int64		count;

	txn.rows = rows;
	txn.nrows = n;
	txn.first_ids = palloc(sizeof(int64) * n);
	txn.outbox = outbox;
	txn.dbname = state->dbname;
	txn.now = now;
	txn.row_cxt = AllocSetContextCreate(CurrentMemoryContext,
										"emissions outbox row",
										ALLOCSET_DEFAULT_SIZES);

	next_id = emissions_delivery_number(&txn, &state->store, next_id);
	count = emissions_delivery_notify(&txn, adapters, wanted, &last_emitted_at);
	emissions_delivery_log(&txn, log);
	/* Adapters' functions see their events in the log (emissions_events). */
	if (txn.batch != NULL)
		emissions_storage_log_flush(log);
	totals->failed += emissions_delivery_dispatch(&txn, adapters, wanted,
												  &state->next_retry_at);
	emissions_delivery_delete(&txn);
	MemoryContextDelete(txn.row_cxt);

	if (count > 0)
	{
		totals->delivered += count;
		committed = commit_time(rows[0].txid);
		if (committed == 0)
			committed = last_emitted_at;
		totals->lag_us = Max(now - committed, 0);
	}
	return next_id;
}

/*
 * Deliver rows[from..to) (whole transactions) in the current transaction;
 * returns the id after the last one given.
 */
static int64
deliver_chunk(DeliveryState *state, OutboxRow *rows, int from, int to,
			  Totals *totals)
{
	List	   *adapters = emissions_adapters_load();
	TimestampTz now = GetCurrentTimestamp();
	OutboxAccess *outbox = emissions_storage_outbox_open(RowExclusiveLock);
	LogWriter  *log = emissions_storage_log_open(&state->store);
	int64		next_id = state->store.next_id;
	int			i;

	for (i = from; i < to;)
	{
		int			end = i;

		while (end < to && FullTransactionIdEquals(rows[end].txid, rows[i].txid))
			end++;
		next_id = deliver_transaction(state, adapters, &rows[i], end - i,
									  outbox, log, next_id, totals, now);
		i = end;
	}

	emissions_storage_log_close(log);
	emissions_storage_outbox_close(outbox);
	return next_id;
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
emissions_delivery_start(DeliveryState *state)
{
	bool		installed;

	pass_cxt = AllocSetContextCreate(TopMemoryContext, "emissions delivery pass",
									 ALLOCSET_DEFAULT_SIZES);
	emissions_adapters_init();
	memset(state, 0, sizeof(DeliveryState));
	emissions_delivery_window_reset(&state->window);
	begin_work("loading state");
	state->extension_oid = get_extension_oid("emissions", true);
	installed = OidIsValid(state->extension_oid);
	if (installed)
	{
		state->dbname = MemoryContextStrdup(TopMemoryContext,
											get_database_name(MyDatabaseId));
		emissions_storage_load_state(&state->store);
		state->next_retry_at = emissions_retries_next_due();
	}
	end_work();
	return installed;
}

/*
 * The outbox rows to deliver now, into *rows (pass memory), in a
 * transaction of their own; sets *status to what the pass must do instead
 * when the extension is gone, or was dropped and created again (in one
 * transaction) since the state was loaded: the state then belongs to
 * tables that no longer exist, and the worker must start afresh.
 */
static int
collect_pass_rows(DeliveryState *state, OutboxRow **rows,
				  DeliveryStatus *status, TransactionId *scan_xmin)
{
	int			nrows = 0;
	BlockNumber from[STORE_PARTITIONS];
	bool		known;

	*status = DELIVERY_DONE;
	/* Before the snapshot: see delivery_window.c. */
	emissions_delivery_window_take(&state->window);
	begin_work("collecting events");
	/*
	 * The storage is cached until DROP EXTENSION (or CREATE EXTENSION)
	 * invalidates it: only then can the extension be another one, and only
	 * then is pg_extension looked up, not on every pass.
	 */
	known = emissions_storage_known();
	if (!emissions_storage_installed())
		*status = DELIVERY_NO_EXTENSION;
	else if (!known &&
			 get_extension_oid("emissions", true) != state->extension_oid)
		*status = DELIVERY_RECREATED;
	/* Paused after a failed commit: nothing to deliver until then. */
	else if (state->paused_until <= GetCurrentTimestamp())
	{
		/*
		 * After a failed commit, move the notification queue's tail past
		 * what no listener needs any more: PostgreSQL does it only as
		 * notifications are written, which a full queue prevents, and
		 * pg_notification_queue_usage() does it first.
		 */
		if (state->commit_failures > 0)
			(void) OidFunctionCall0(F_PG_NOTIFICATION_QUEUE_USAGE);
		emissions_delivery_window_start(&state->window, from);
		nrows = emissions_delivery_collect(pass_cxt, from, state->window.files, rows);
		*scan_xmin = GetActiveSnapshot()->xmin;
	}
	end_work();
	return nrows;
}

/*
 * Deliver rows[0..nrows) chunk by chunk, each in a delivery transaction of
 * its own, its ids reserved before it begins.  Stops after a chunk that
 * could not commit.
 */
static bool
deliver_rows(DeliveryState *state, OutboxRow *rows, int nrows)
{
	Totals		totals = {0};
	int			from = 0;

	while (from < nrows)
	{
		int			to = emissions_delivery_chunk_end(rows, nrows, from);
		MemoryContext chunk_cxt;
		MemoryContext oldcxt;
		int64		next_id;

		emissions_storage_reserve_ids(&state->store,
									  emissions_delivery_chunk_events(rows, from, to));
		CHECK_FOR_INTERRUPTS();

		begin_work("delivering events");
		chunk_cxt = AllocSetContextCreate(pass_cxt, "emissions delivery chunk",
										  ALLOCSET_DEFAULT_SIZES);
		oldcxt = MemoryContextSwitchTo(chunk_cxt);
		next_id = deliver_chunk(state, rows, from, to, &totals);
		MemoryContextSwitchTo(oldcxt);
		if (!end_delivery_work(state))
		{
			/* None of it happened: its ids are given out again. */
			MemoryContextDelete(chunk_cxt);
			return false;
		}
		MemoryContextDelete(chunk_cxt);
		emissions_storage_ids_used(&state->store, next_id);
		publish(&totals);
		from = to;
	}
	return true;
}

/*
 * One pass: deliver everything committed so far, then run the retries and
 * the storage maintenance that are due.
 */
DeliveryStatus
emissions_delivery_pass(DeliveryState *state)
{
	Totals		totals = {0};
	DeliveryStatus status;
	OutboxRow  *rows = NULL;
	int			nrows;
	TransactionId scan_xmin = InvalidTransactionId;
	TimestampTz now;

	MemoryContextReset(pass_cxt);
	nrows = collect_pass_rows(state, &rows, &status, &scan_xmin);
	if (status != DELIVERY_DONE)
		return status;
	if (!deliver_rows(state, rows, nrows))
		emissions_delivery_window_reset(&state->window);
	else if (TransactionIdIsValid(scan_xmin))
		emissions_delivery_window_scanned(&state->window, scan_xmin);

	now = GetCurrentTimestamp();
	if (state->next_retry_at != 0 && state->next_retry_at <= now)
	{
		begin_work("retrying failed deliveries");
		emissions_retries_run_due(emissions_adapters_load(), now, &totals.delivered,
								  &totals.failed);
		state->next_retry_at = emissions_retries_next_due();
		end_work();
		publish(&totals);
	}
	if (state->next_maintenance_at <= now)
	{
		begin_work("rotating storage");
		emissions_storage_maintain(&state->store, now);
		/* Also notices dead letters replayed meanwhile. */
		state->next_retry_at = emissions_retries_next_due();
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
emissions_delivery_sleep_ms(const DeliveryState *state)
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
