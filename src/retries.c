/*-------------------------------------------------------------------------
 *
 * retries.c
 *	  Failed adapter deliveries: retries with backoff, then dead letters.
 *
 * When a call of a table or function adapter fails, its events are written
 * to emissions_failed_deliveries in the delivery transaction (which goes on
 * and commits everything else), one row per event, with the error's
 * SQLSTATE and message and the time of the next try: one second after the
 * first failure, doubling after each further one, up to an hour.  After
 * the adapter's maximum number of tries the row stays, without a next try:
 * a dead letter, until emissions_replay() schedules it again.
 *
 * The worker runs the retries that are due in a transaction of their own,
 * grouped as they failed (adapter and source transaction), each group in
 * one call, exactly as a first delivery.  Retried events reach the adapter
 * after later events did: order is kept only among first deliveries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "extension.h"
#include "retries.h"

/* Seconds before the next try after attempts failed tries. */
static int
backoff_seconds(int attempts)
{
	return 1 << Min(Max(attempts - 1, 0), 11);
}

/* When a call that first failed at now is tried again. */
static TimestampTz
first_retry_at(TimestampTz now)
{
	return TimestampTzPlusMilliseconds(now, 1000L * backoff_seconds(1));
}

/* What every row of one failed call shares. */
typedef struct FailedCall
{
	const Adapter *adapter;
	const ErrorData *error;
	TimestampTz now;
	SPIPlanPtr	plan;
	MemoryContext event_cxt;
} FailedCall;

/*
 * Insert the row of one failed event, with its envelope (built now unless
 * given) and a next try unless dead.
 */
static void
insert_failure(FailedCall *call, OutgoingEvent *event, Jsonb *envelope,
			   bool dead)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(call->event_cxt);
	Datum		values[11];
	char		nulls[11];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(call->adapter->name);
	values[1] = ObjectIdGetDatum(call->adapter->owner);
	values[2] = Int64GetDatum(event->id);
	values[3] = FullTransactionIdGetDatum(event->txid);
	values[4] = PointerGetDatum(cstring_to_text_with_len(event->type,
														 event->type_len));
	values[5] = Int32GetDatum(event->depth);
	values[6] = JsonbPGetDatum(envelope ? envelope :
							   emissions_outgoing_envelope_jsonb(event));
	values[7] = TimestampTzGetDatum(first_retry_at(call->now));
	if (dead)
		nulls[7] = 'n';
	values[8] = CStringGetTextDatum(unpack_sql_state(call->error->sqlerrcode));
	values[9] = CStringGetTextDatum(call->error->message ?
									call->error->message : "");
	values[10] = TimestampTzGetDatum(call->now);
	if (SPI_execute_plan(call->plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record a failed delivery");
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(call->event_cxt);
}

/*
 * Insert the rows of the events of source, or of the event one only if
 * given, in a subtransaction, adding to *n how many.  False, with all of it
 * rolled back, if that failed.
 */
static bool
try_insert_failures(FailedCall *call, EventSource *source, OutgoingEvent *one,
					int64 *n)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner resowner = CurrentResourceOwner;
	bool		dead = emissions_adapter_max_attempts(call->adapter) <= 1;
	OutgoingEvent event;
	int64		inserted = 0;
	bool		ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (one != NULL)
		{
			insert_failure(call, one, NULL, dead);
			inserted++;
		}
		else
		{
			source->rewind(source);
			while (source->next(source, &event))
			{
				insert_failure(call, &event, NULL, dead);
				inserted++;
			}
		}
		ReleaseCurrentSubTransaction();
		*n += inserted;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = resowner;
	MemoryContextReset(call->event_cxt);
	return ok;
}

/*
 * Record the failed call of adapter for the events of source (its first
 * try).  Returns how many events it recorded; *retry_at is when they are
 * tried again, 0 if never (they are dead letters at once).  Runs in the
 * delivery transaction, with SPI connected.
 *
 * An event whose envelope cannot be built (too large for jsonb) is what
 * most likely made the call fail, and cannot be kept for a retry either:
 * it is kept as a dead letter at once, its envelope without payload and
 * metadata (which stay readable through emissions_event() for as long as
 * the log keeps them).  So that nothing an event holds can fail the
 * delivery transaction, the rows are inserted in a subtransaction, and
 * if that fails, each in one of its own.
 */
int64
emissions_retries_record(const Adapter *adapter, EventSource *source,
						 const ErrorData *error, TimestampTz now, TimestampTz *retry_at)
{
	static const Oid argtypes[] = {
		TEXTOID, OIDOID, INT8OID, XID8OID, TEXTOID, INT4OID, JSONBOID,
		TIMESTAMPTZOID, TEXTOID, TEXTOID, TIMESTAMPTZOID
	};
	FailedCall	call;
	char	   *sql;
	OutgoingEvent event;
	int64		n = 0;

	sql = psprintf("INSERT INTO %s (adapter, adapter_owner, event_id, txid, type,"
				   " depth, envelope, attempts, next_attempt_at, sqlstate, message,"
				   " first_failed_at, failed_at)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11, $11)",
				   emissions_qualified_name("emissions_failed_deliveries"));
	call.plan = SPI_prepare(sql, lengthof(argtypes), (Oid *) argtypes);
	if (call.plan == NULL)
		elog(ERROR, "could not prepare the record of a failed delivery: %s",
			 SPI_result_code_string(SPI_result));
	call.adapter = adapter;
	call.error = error;
	call.now = now;
	call.event_cxt = AllocSetContextCreate(CurrentMemoryContext,
										   "emissions failed event",
										   ALLOCSET_DEFAULT_SIZES);

	if (!try_insert_failures(&call, source, NULL, &n))
	{
		source->rewind(source);
		while (source->next(source, &event))
		{
			if (!try_insert_failures(&call, source, &event, &n))
			{
				insert_failure(&call, &event,
							   emissions_outgoing_envelope_without_contents(&event),
							   true);
				n++;
			}
		}
	}
	MemoryContextDelete(call.event_cxt);
	SPI_freeplan(call.plan);
	*retry_at = emissions_adapter_max_attempts(adapter) <= 1 ? 0 :
		first_retry_at(now);
	return n;
}

/* An int8[] of ids[0..n). */
static Datum
id_array(const int64 *ids, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Find the adapter named name in adapters, or NULL. */
static Adapter *
find_adapter(List *adapters, const char *name)
{
	ListCell   *lc;

	foreach(lc, adapters)
	{
		Adapter    *adapter = lfirst(lc);

		if (strcmp(adapter->name, name) == 0)
			return adapter;
	}
	return NULL;
}

/* Remove the rows ids[0..n): they were delivered. */
static void
forget_rows(const int64 *ids, int n)
{
	Oid			argtype = INT8ARRAYOID;
	Datum		arg = id_array(ids, n);
	char	   *sql;

	sql = psprintf("DELETE FROM %s WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
				   emissions_qualified_name("emissions_failed_deliveries"));
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, false, 0) !=
		SPI_OK_DELETE)
		elog(ERROR, "could not remove delivered retries");
}

/*
 * Count one more failed try for rows ids[0..n); those that have had
 * max_attempts tries become dead letters.
 */
static void
count_failure(const int64 *ids, int n, const ErrorData *error,
			  int max_attempts, TimestampTz now)
{
	Oid			argtypes[] = {INT8ARRAYOID, INT4OID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID};
	Datum		args[5];
	char	   *sql;

	args[0] = id_array(ids, n);
	args[1] = Int32GetDatum(max_attempts);
	args[2] = CStringGetTextDatum(unpack_sql_state(error->sqlerrcode));
	args[3] = CStringGetTextDatum(error->message ? error->message : "");
	args[4] = TimestampTzGetDatum(now);
	sql = psprintf("UPDATE %s SET attempts = attempts OPERATOR(pg_catalog.+) 1,"
				   " next_attempt_at = CASE"
				   "  WHEN attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) $2 THEN NULL"
				   "  ELSE $5 OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs =>"
				   "   pg_catalog.power(2, LEAST(attempts, 11))) END,"
				   " sqlstate = $3, message = $4, failed_at = $5"
				   " WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
				   emissions_qualified_name("emissions_failed_deliveries"));
	if (SPI_execute_with_args(sql, 5, argtypes, args, NULL, false, 0) !=
		SPI_OK_UPDATE)
		elog(ERROR, "could not record a failed retry");
}

/* A retry row read from the table. */
typedef struct RetryRow
{
	int64		id;
	char	   *adapter;
	FullTransactionId txid;
	OutgoingEvent event;
} RetryRow;

/*
 * Run the retries due at now, each group (adapter and source transaction)
 * in one call.  Runs in a transaction of its own, with SPI connected; adds
 * to the counts of events delivered and failed.
 */
void
emissions_retries_run_due(List *adapters, TimestampTz now, int64 *delivered,
						  int64 *failed)
{
	Oid			argtype = TIMESTAMPTZOID;
	Datum		arg = TimestampTzGetDatum(now);
	MemoryContext cxt = CurrentMemoryContext;
	RetryRow   *rows;
	int			nrows;
	int			g;
	char	   *sql;

	sql = psprintf("SELECT id, adapter, event_id, txid, type, depth, envelope"
				   " FROM %s WHERE next_attempt_at OPERATOR(pg_catalog.<=) $1"
				   " ORDER BY adapter, txid, event_id",
				   emissions_qualified_name("emissions_failed_deliveries"));
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, true, 0) !=
		SPI_OK_SELECT)
		elog(ERROR, "could not read the retries");

	nrows = (int) SPI_processed;
	rows = MemoryContextAllocZero(cxt, sizeof(RetryRow) * Max(nrows, 1));
	for (g = 0; g < nrows; g++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[g];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
		RetryRow   *row = &rows[g];
		bool		isnull;

		row->id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		row->adapter = SPI_getvalue(tuple, desc, 2);
		row->event.id = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
		row->txid = DatumGetFullTransactionId(SPI_getbinval(tuple, desc, 4, &isnull));
		row->event.txid = row->txid;
		row->event.type = SPI_getvalue(tuple, desc, 5);
		row->event.type_len = strlen(row->event.type);
		row->event.depth = DatumGetInt32(SPI_getbinval(tuple, desc, 6, &isnull));
		/* Read when delivered: a large one is not held in memory meanwhile. */
		row->event.envelope = (struct varlena *)
			DatumGetPointer(datumCopy(SPI_getbinval(tuple, desc, 7, &isnull),
									  false, -1));
		MemoryContextSwitchTo(oldcxt);
	}

	for (g = 0; g < nrows;)
	{
		int			end = g;
		int			n;
		OutgoingEvent *events;
		ArraySource source;
		int64	   *ids;
		Adapter    *adapter;
		ErrorData  *error = NULL;
		int			i;

		while (end < nrows && strcmp(rows[end].adapter, rows[g].adapter) == 0 &&
			   FullTransactionIdEquals(rows[end].txid, rows[g].txid))
			end++;
		n = end - g;
		events = palloc(sizeof(OutgoingEvent) * n);
		ids = palloc(sizeof(int64) * n);
		for (i = 0; i < n; i++)
		{
			events[i] = rows[g + i].event;
			ids[i] = rows[g + i].id;
		}
		emissions_array_source_init(&source, events, n);

		adapter = find_adapter(adapters, rows[g].adapter);
		if (adapter == NULL || adapter->kind == ADAPTER_NOTIFY)
			forget_rows(ids, n);	/* the adapter was dropped meanwhile */
		else if (emissions_adapter_deliver(adapter, &source.base, &error))
		{
			forget_rows(ids, n);
			*delivered += n;
		}
		else
		{
			*failed += n;
			count_failure(ids, n, error, emissions_adapter_max_attempts(adapter), now);
		}
		g = end;
	}
}

/*
 * When the next retry is due, or 0 when none is waiting.
 */
TimestampTz
emissions_retries_next_due(void)
{
	char	   *sql;
	bool		isnull;
	Datum		next;

	sql = psprintf("SELECT pg_catalog.min(next_attempt_at) FROM %s",
				   emissions_qualified_name("emissions_failed_deliveries"));
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the retries");
	next = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						 &isnull);
	return isnull ? 0 : DatumGetTimestampTz(next);
}
