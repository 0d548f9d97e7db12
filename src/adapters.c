/*-------------------------------------------------------------------------
 *
 * adapters.c
 *	  Delivery targets: loading them and delivering events to them.
 *
 * The delivery worker keeps the adapters in memory, read again only after
 * a relcache invalidation of emissions_adapters, which
 * emissions_add_adapter() and emissions_drop_adapter() send; a table
 * adapter's INSERT is prepared once and kept.  It asks each adapter whether
 * it wants an event (its type globs).  NOTIFY adapters are served by the worker itself, like the
 * default channel.  Table and function adapters run user code, so each
 * "call" (the matching events of one source transaction, for one adapter)
 * runs in a subtransaction of its own, as the adapter's owner
 * (SetUserIdAndSecContext; a security-restricted operation unless the
 * owner is a superuser), with any setting it changes undone afterwards.
 * A call that fails is rolled back alone and its error returned; the
 * caller records it for a retry.  All events of a source transaction go to
 * an adapter in one call, so a table adapter shows all of them or none.
 * Each event's insert or function call that runs longer than
 * emissions.adapter_timeout is cancelled as a query cancel is (57014, lock
 * waits included), so that the call fails like any other; the cancel comes
 * again every 100 ms should the code catch it.
 *
 * The delivery pass makes each event's envelope once (envelope.c) and
 * puts the events the table and function adapters want, with their
 * envelopes as jsonb, in an OutgoingBatch: a tuplestore, in memory up to
 * work_mem and then in a temporary file, which each adapter's call reads
 * through (only its own types) and a failed call's retry record reads
 * again.  An event whose envelope is too large for jsonb is kept without
 * it, and fails (54000) the calls that reach it.  The batch's temporary
 * file is bounded by what the outbox already holds, so temp_file_limit
 * does not apply to its writes (see lift_temp_file_limit).
 *
 * Table adapters insert one row per event: the columns of the table named
 * like envelope fields are filled from the envelope with
 * jsonb_populate_record, the others keep their defaults.  Function
 * adapters are called through fmgr with the envelope as their jsonb
 * argument, each call with a buffer of its own (buffer.c), so that what a
 * handler emits cascades at the next depth.  Each insert of a table adapter
 * gets one too, for what the table's triggers emit: a table whose trigger
 * emits into its own adapter stops at emissions.max_cascade_depth.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "adapters.h"
#include "buffer.h"
#include "compat.h"
#include "extension.h"
#include "settings.h"

/* Envelope fields a table adapter's columns are matched against. */
static const char *const envelope_fields[] = {
	"id", "type", "payload", "metadata", "emitted_at", "txid", "database"
};

/*
 * After emissions.adapter_timeout, a call is cancelled, and again every so
 * many milliseconds, should its code catch the cancellation and go on.
 */
#define ADAPTER_CANCEL_REPEAT_MS	100

static MemoryContext adapters_cxt = NULL;
static TimeoutId call_timeout_id;
static volatile sig_atomic_t call_timed_out = false;
static List *adapters = NIL;
static bool adapters_valid = false;
static Oid	adapters_relid = InvalidOid;

/* Forget the adapters when their table (or everything) is invalidated. */
static void
adapters_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == adapters_relid)
		adapters_valid = false;
}

/*
 * Timeout handler: cancel the running adapter call as a query cancel does
 * (57014 at its next CHECK_FOR_INTERRUPTS, lock waits included).
 */
static void
call_timeout_handler(void)
{
	call_timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/*
 * Start counting emissions.adapter_timeout again: for the setup of a call
 * (its target's lock may be waited for), then for each event's insert or
 * function call.
 */
static void
arm_call_timeout(void)
{
	call_timed_out = false;
	if (emissions_adapter_timeout_ms > 0)
		enable_timeout_every(call_timeout_id,
							 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 emissions_adapter_timeout_ms),
							 ADAPTER_CANCEL_REPEAT_MS);
}

/*
 * Stop counting.  A cancel that came as the call ended anyway is dropped,
 * so that it cannot fail the delivery transaction outside the call.
 */
static void
disarm_call_timeout(void)
{
	disable_timeout(call_timeout_id, false);
	if (call_timed_out)
		QueryCancelPending = false;
}

/*
 * Prepare the cache and the call timeout; called once when the delivery
 * worker starts.
 */
void
emissions_adapters_init(void)
{
	adapters_cxt = AllocSetContextCreate(TopMemoryContext,
										 "emissions adapters",
										 ALLOCSET_SMALL_SIZES);
	CacheRegisterRelcacheCallback(adapters_relcache_callback, (Datum) 0);
	call_timeout_id = RegisterTimeout(USER_TIMEOUT, call_timeout_handler);
}

/*
 * The adapters of this database, in name order, read again if they may
 * have changed.  Runs in a transaction, with SPI connected.
 */
List *
emissions_adapters_load(void)
{
	MemoryContext cxt = adapters_cxt;
	List	   *result = NIL;
	ListCell   *lc;
	char	   *sql;
	uint64		i;

	if (adapters_valid)
		return adapters;

	foreach(lc, adapters)
	{
		Adapter    *adapter = lfirst(lc);

		if (adapter->insert_plan != NULL)
			SPI_freeplan(adapter->insert_plan);
	}
	adapters = NIL;
	MemoryContextReset(adapters_cxt);
	adapters_relid = emissions_extension_relid("emissions_adapters");
	adapters_valid = true;

	sql = psprintf("SELECT name, kind, target, types, owner::pg_catalog.oid,"
				   " COALESCE((options OPERATOR(pg_catalog.->>) 'max_attempts')"
				   "::pg_catalog.int4, 0),"
				   " COALESCE((options OPERATOR(pg_catalog.->>) 'omit_payload')"
				   "::pg_catalog.bool, false)"
				   " FROM %s ORDER BY name",
				   emissions_qualified_name("emissions_adapters"));
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the emissions adapters");

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
		Adapter    *adapter = palloc0(sizeof(Adapter));
		char	   *kind;
		bool		isnull;

		adapter->name = SPI_getvalue(tuple, desc, 1);
		kind = SPI_getvalue(tuple, desc, 2);
		adapter->kind = strcmp(kind, "notify") == 0 ? ADAPTER_NOTIFY :
			strcmp(kind, "table") == 0 ? ADAPTER_TABLE : ADAPTER_FUNCTION;
		adapter->target = SPI_getvalue(tuple, desc, 3);
		adapter->types = SPI_getvalue(tuple, desc, 4);
		adapter->owner = DatumGetObjectId(SPI_getbinval(tuple, desc, 5, &isnull));
		adapter->max_attempts = DatumGetInt32(SPI_getbinval(tuple, desc, 6, &isnull));
		adapter->omit_payload = DatumGetBool(SPI_getbinval(tuple, desc, 7, &isnull));
		result = lappend(result, adapter);
		MemoryContextSwitchTo(oldcxt);
	}
	adapters = result;
	return adapters;
}

/* Whether type[0..len) matches glob[0..glob_len), '*' matching any run. */
static bool
glob_match(const char *glob, int glob_len, const char *type, int len)
{
	int			g = 0;
	int			t = 0;
	int			star = -1;
	int			resume = 0;

	while (t < len)
	{
		if (g < glob_len && glob[g] == '*')
		{
			star = g++;
			resume = t;
		}
		else if (g < glob_len && glob[g] == type[t])
		{
			g++;
			t++;
		}
		else if (star >= 0)
		{
			g = star + 1;
			t = ++resume;
		}
		else
			return false;
	}
	while (g < glob_len && glob[g] == '*')
		g++;
	return g == glob_len;
}

/*
 * Whether the event type type[0..len) matches one of the comma-separated
 * globs of types.
 */
static bool
types_match(const char *types, const char *type, int len)
{
	const char *start = types;

	for (;;)
	{
		const char *end = strchr(start, ',');
		int			glob_len = end ? end - start : strlen(start);

		if (glob_match(start, glob_len, type, len))
			return true;
		if (end == NULL)
			return false;
		start = end + 1;
	}
}

/*
 * Whether adapter wants events of type type[0..len).
 */
bool
emissions_adapter_wants(const Adapter *adapter, const char *type, int len)
{
	return types_match(adapter->types, type, len);
}

/*
 * Tries a failing call of adapter gets before it becomes a dead letter.
 */
int
emissions_adapter_max_attempts(const Adapter *adapter)
{
	return adapter->max_attempts > 0 ? adapter->max_attempts :
		emissions_max_attempts;
}

/*
 * The envelope of event as jsonb, detoasted in CurrentMemoryContext if need
 * be.  Fails (54000) when the envelope is too large for jsonb: call it
 * where a failure is the adapter call's.
 */
Jsonb *
emissions_outgoing_envelope_jsonb(const OutgoingEvent *event)
{
	if (event->envelope == NULL)
		emissions_envelope_report_too_large(event->id);
	return DatumGetJsonbP(PointerGetDatum(event->envelope));
}

/*
 * The envelope of a first delivery's event without its payload and
 * metadata, as jsonb: what a dead letter keeps when the whole envelope
 * cannot be kept.
 */
Jsonb *
emissions_outgoing_envelope_without_contents(const OutgoingEvent *event)
{
	DecodedEvent bare = {0};
	Envelope	envelope;

	bare.emitted_at = event->emitted_at;
	bare.type = event->type;
	bare.type_len = event->type_len;
	emissions_envelope_init(&envelope, event->id, event->txid, &bare, event->dbname);
	return emissions_envelope_jsonb(&envelope);
}

/*
 * Raise an error unless target_owner, the role that owns an adapter's
 * target, already has every right of adapter_owner, as whom the adapter
 * runs.  That role controls what a delivery runs: a function's body (it
 * may replace it at any time), a table's triggers, rules and defaults.
 * Run as the adapter's owner, that code would give its author the rights
 * of a role it is not, a superuser's included, whenever an event arrives.
 * Checked when the adapter is added and again at every delivery, since
 * owners change.
 */
void
emissions_adapter_check_target_owner(const char *target, Oid target_owner,
									 Oid adapter_owner)
{
	if (has_privs_of_role(target_owner, adapter_owner))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("adapter target %s is owned by role \"%s\", which does not have the rights of role \"%s\"",
					target, GetUserNameFromId(target_owner, false),
					GetUserNameFromId(adapter_owner, false)),
			 errdetail("An adapter runs the code of its target's owner (a function's body, a table's triggers, rules and defaults) as the adapter's owner."),
			 errhint("Add the adapter as the target's owner (SET ROLE \"%s\"), or give the target to a role that has the rights of role \"%s\".",
					 GetUserNameFromId(target_owner, false),
					 GetUserNameFromId(adapter_owner, false))));
}

/* Raise an error unless a table adapter's table exists and its owner may
 * run code as the adapter's. */
static void
check_table_target(Adapter *adapter)
{
	RangeVar   *rv = makeRangeVarFromNameList(stringToQualifiedNameList(adapter->target, NULL));
	Oid			relid = RangeVarGetRelid(rv, AccessShareLock, true);
	HeapTuple	tuple;
	Oid			owner;

	tuple = OidIsValid(relid) ?
		SearchSysCache1(RELOID, ObjectIdGetDatum(relid)) : NULL;
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("target table of adapter \"%s\" no longer exists",
						adapter->name),
				 errhint("Drop the adapter with emissions_drop_adapter().")));
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	emissions_adapter_check_target_owner(adapter->target, owner, adapter->owner);
}

/* Prepare the INSERT of a table adapter, as its owner. */
static void
prepare_table_insert(Adapter *adapter)
{
	RangeVar   *rv = makeRangeVarFromNameList(stringToQualifiedNameList(adapter->target, NULL));
	Oid			relid = RangeVarGetRelid(rv, AccessShareLock, true);
	Relation	rel = OidIsValid(relid) ? try_relation_open(relid, NoLock) : NULL;
	TupleDesc	desc;
	StringInfoData columns;
	char	   *table;
	char	   *sql;
	Oid			argtype = JSONBOID;
	SPIPlanPtr	plan;
	int			i;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("target table of adapter \"%s\" no longer exists",
						adapter->name),
				 errhint("Drop the adapter with emissions_drop_adapter().")));

	initStringInfo(&columns);
	desc = RelationGetDescr(rel);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		int			f;

		if (att->attisdropped)
			continue;
		for (f = 0; f < lengthof(envelope_fields); f++)
		{
			if (strcmp(NameStr(att->attname), envelope_fields[f]) == 0)
			{
				if (columns.len > 0)
					appendStringInfoString(&columns, ", ");
				appendStringInfoString(&columns,
									   quote_identifier(NameStr(att->attname)));
			}
		}
	}
	table = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									   RelationGetRelationName(rel));
	relation_close(rel, AccessShareLock);
	if (columns.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table %s has no column named like an envelope field",
						table),
				 errhint("Give it columns among id, type, payload, metadata, emitted_at, txid and database.")));

	sql = psprintf("INSERT INTO %s (%s) SELECT %s FROM pg_catalog.jsonb_populate_record(NULL::%s, $1)",
				   table, columns.data, columns.data, table);
	plan = SPI_prepare(sql, 1, &argtype);
	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "could not prepare the insert of adapter \"%s\": %s",
			 adapter->name, SPI_result_code_string(SPI_result));
	adapter->insert_plan = plan;
}

static bool
array_source_next(EventSource *base, OutgoingEvent *event)
{
	ArraySource *source = (ArraySource *) base;

	if (source->pos >= source->n)
		return false;
	*event = source->events[source->pos++];
	return true;
}

static void
array_source_rewind(EventSource *base)
{
	((ArraySource *) base)->pos = 0;
}

/*
 * Set up source to produce events[0..n).
 */
void
emissions_array_source_init(ArraySource *source, OutgoingEvent *events, int n)
{
	source->base.next = array_source_next;
	source->base.rewind = array_source_rewind;
	source->events = events;
	source->n = n;
	source->pos = 0;
}

/* The columns of an OutgoingBatch's tuples. */
enum
{
	BATCH_ID,
	BATCH_TXID,
	BATCH_DEPTH,
	BATCH_TYPE,
	BATCH_EMITTED_AT,
	BATCH_ENVELOPE,				/* NULL: too large for jsonb */
	BATCH_COLUMNS
};

struct OutgoingBatch
{
	EventSource base;
	const Adapter *filter;		/* the adapter reading it */
	const char *dbname;
	MemoryContext cxt;
	Tuplestorestate *events;
	TupleTableSlot *slot;
};

/* The row type of the batches, made once per backend. */
static TupleDesc batch_desc = NULL;

/*
 * Lift temp_file_limit while the batch writes its temporary file (also when
 * it flushes it, at the first read): the file is no larger than the source
 * transaction's events already in the outbox, and a limit meant for
 * queries must not stop delivery for good.  Returns what
 * restore_temp_file_limit() needs.  Adapter code runs under the limit.
 */
static int
lift_temp_file_limit(void)
{
	int			nestlevel;

	if (temp_file_limit < 0)
		return 0;
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("temp_file_limit", "-1", PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

static void
restore_temp_file_limit(int nestlevel)
{
	if (nestlevel > 0)
		AtEOXact_GUC(true, nestlevel);
}

/* The batch's next event its reader wants; see EventSource. */
static bool
outgoing_batch_next(EventSource *base, OutgoingEvent *event)
{
	OutgoingBatch *batch = (OutgoingBatch *) base;
	MemoryContext oldcxt = MemoryContextSwitchTo(batch->cxt);
	TupleTableSlot *slot = batch->slot;
	int			nestlevel = lift_temp_file_limit();
	bool		found = false;

	while (!found && tuplestore_gettupleslot(batch->events, true, false, slot))
	{
		bool		isnull;
		text	   *type;

		slot_getallattrs(slot);
		type = DatumGetTextPP(slot->tts_values[BATCH_TYPE]);
		event->type = VARDATA_ANY(type);
		event->type_len = VARSIZE_ANY_EXHDR(type);
		if (!emissions_adapter_wants(batch->filter, event->type, event->type_len))
			continue;
		event->id = DatumGetInt64(slot->tts_values[BATCH_ID]);
		event->txid = FullTransactionIdFromU64((uint64)
											   DatumGetInt64(slot->tts_values[BATCH_TXID]));
		event->depth = DatumGetInt32(slot->tts_values[BATCH_DEPTH]);
		event->emitted_at =
			DatumGetTimestampTz(slot->tts_values[BATCH_EMITTED_AT]);
		event->dbname = batch->dbname;
		isnull = slot->tts_isnull[BATCH_ENVELOPE];
		event->envelope = isnull ? NULL :
			(struct varlena *) DatumGetPointer(slot->tts_values[BATCH_ENVELOPE]);
		found = true;
	}
	restore_temp_file_limit(nestlevel);
	MemoryContextSwitchTo(oldcxt);
	return found;
}

/* Start the batch's events over. */
static void
outgoing_batch_rewind(EventSource *base)
{
	OutgoingBatch *batch = (OutgoingBatch *) base;

	ExecClearTuple(batch->slot);
	tuplestore_rescan(batch->events);
}

/*
 * An empty batch of the events of one source transaction, in memory of
 * cxt.  Runs in the delivery transaction.
 */
OutgoingBatch *
emissions_outgoing_batch_create(const char *dbname, MemoryContext cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	OutgoingBatch *batch = palloc0(sizeof(OutgoingBatch));

	if (batch_desc == NULL)
	{
		TupleDesc	desc;

		MemoryContextSwitchTo(TopMemoryContext);
		desc = CreateTemplateTupleDesc(BATCH_COLUMNS);

		TupleDescInitEntry(desc, BATCH_ID + 1, "id", INT8OID, -1, 0);
		TupleDescInitEntry(desc, BATCH_TXID + 1, "txid", INT8OID, -1, 0);
		TupleDescInitEntry(desc, BATCH_DEPTH + 1, "depth", INT4OID, -1, 0);
		TupleDescInitEntry(desc, BATCH_TYPE + 1, "type", TEXTOID, -1, 0);
		TupleDescInitEntry(desc, BATCH_EMITTED_AT + 1, "emitted_at",
						   TIMESTAMPTZOID, -1, 0);
		TupleDescInitEntry(desc, BATCH_ENVELOPE + 1, "envelope", JSONBOID,
						   -1, 0);
		batch_desc = desc;
		MemoryContextSwitchTo(cxt);
	}
	batch->base.next = outgoing_batch_next;
	batch->base.rewind = outgoing_batch_rewind;
	batch->dbname = dbname;
	batch->cxt = cxt;
	batch->events = tuplestore_begin_heap(false, false, work_mem);
	batch->slot = MakeSingleTupleTableSlot(batch_desc, &TTSOpsMinimalTuple);
	MemoryContextSwitchTo(oldcxt);
	return batch;
}

/*
 * Add the event of envelope, of cascade generation depth, with its
 * envelope as jsonb (made now, unless it was).
 */
void
emissions_outgoing_batch_add(OutgoingBatch *batch, Envelope *envelope, int depth)
{
	const DecodedEvent *event = envelope->event;
	Jsonb	   *jsonb = emissions_envelope_jsonb(envelope);
	text	   *type = cstring_to_text_with_len(event->type, event->type_len);
	Datum		values[BATCH_COLUMNS];
	bool		nulls[BATCH_COLUMNS] = {0};
	int			nestlevel;

	values[BATCH_ID] = Int64GetDatum(envelope->id);
	values[BATCH_TXID] =
		Int64GetDatum((int64) U64FromFullTransactionId(envelope->txid));
	values[BATCH_DEPTH] = Int32GetDatum(depth);
	values[BATCH_TYPE] = PointerGetDatum(type);
	values[BATCH_EMITTED_AT] = TimestampTzGetDatum(event->emitted_at);
	values[BATCH_ENVELOPE] = PointerGetDatum(jsonb);
	nulls[BATCH_ENVELOPE] = (jsonb == NULL);
	nestlevel = lift_temp_file_limit();
	tuplestore_putvalues(batch->events, batch_desc, values, nulls);
	restore_temp_file_limit(nestlevel);
	pfree(type);
}

/*
 * The events of batch that adapter wants, from the first; valid until the
 * next call.
 */
EventSource *
emissions_outgoing_batch_source(OutgoingBatch *batch, const Adapter *adapter)
{
	batch->filter = adapter;
	outgoing_batch_rewind(&batch->base);
	return &batch->base;
}

/* Free batch and its temporary file, if it has one. */
void
emissions_outgoing_batch_free(OutgoingBatch *batch)
{
	ExecDropSingleTupleTableSlot(batch->slot);
	tuplestore_end(batch->events);
	pfree(batch);
}

/* Insert one row per event into a table adapter's table. */
static void
deliver_to_table(Adapter *adapter, EventSource *source, MemoryContext event_cxt)
{
	OutgoingEvent event;

	check_table_target(adapter);
	if (adapter->insert_plan == NULL)
		prepare_table_insert(adapter);
	while (source->next(source, &event))
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(event_cxt);
		Datum		arg = JsonbPGetDatum(emissions_outgoing_envelope_jsonb(&event));
		int			rc;

		/*
		 * Triggers on the table may emit (emissions_trigger() does): like a
		 * handler's, their events cascade one generation deeper, so that a
		 * table fed by its own events stops at emissions.max_cascade_depth.
		 * The buffer opens only if they do.
		 */
		emissions_buffer_enter_handler(event.depth + 1, false);
		arm_call_timeout();
		rc = SPI_execute_plan(adapter->insert_plan, &arg, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "insert of adapter \"%s\" failed: %s",
				 adapter->name, SPI_result_code_string(rc));
		emissions_buffer_leave_handler();
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(event_cxt);
	}
}

/* Call a function adapter once per event, each with a buffer of its own. */
static void
deliver_to_function(Adapter *adapter, EventSource *source,
					MemoryContext event_cxt)
{
	FmgrInfo	flinfo;
	AclResult	aclresult;
	OutgoingEvent event;
	Oid			fn;
	HeapTuple	tuple;
	Oid			owner;

	/* A function that no longer exists is an error (42883) here. */
	fn = DatumGetObjectId(DirectFunctionCall1(regprocedurein,
											  CStringGetDatum(adapter->target)));
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", fn);
	owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
	ReleaseSysCache(tuple);
	emissions_adapter_check_target_owner(adapter->target, owner, adapter->owner);
	aclresult = object_aclcheck(ProcedureRelationId, fn, GetUserId(),
								ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(fn));
	fmgr_info(fn, &flinfo);

	while (source->next(source, &event))
	{
		LOCAL_FCINFO(fcinfo, 1);
		MemoryContext oldcxt = MemoryContextSwitchTo(event_cxt);

		InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
		fcinfo->args[0].value = JsonbPGetDatum(emissions_outgoing_envelope_jsonb(&event));
		fcinfo->args[0].isnull = false;

		emissions_buffer_enter_handler(event.depth + 1, true);
		PushActiveSnapshot(GetTransactionSnapshot());
		arm_call_timeout();
		(void) FunctionCallInvoke(fcinfo);
		PopActiveSnapshot();
		emissions_buffer_leave_handler();
		CommandCounterIncrement();
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(event_cxt);
	}
}

/*
 * Deliver the events of source (the matching events of one source
 * transaction) to a table or function adapter, in a subtransaction, as the
 * adapter's owner.  Returns false, with the error in *error (in
 * CurrentMemoryContext), when the call failed and was rolled back.  Runs
 * with SPI connected.
 */
bool
emissions_adapter_deliver(Adapter *adapter, EventSource *source, ErrorData **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext event_cxt = AllocSetContextCreate(cxt, "emissions adapter event",
													ALLOCSET_DEFAULT_SIZES);
	ResourceOwner resowner = CurrentResourceOwner;
	Oid			save_userid;
	int			save_sec_context;
	int			sec_context;
	bool		ok = true;

	Assert(adapter->kind != ADAPTER_NOTIFY);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);

	/*
	 * The worker's session is a superuser's, shared by every adapter's
	 * owner.  Unless the owner could become that superuser anyway, its code
	 * runs as a security-restricted operation (as PostgreSQL runs a table
	 * owner's code during maintenance): it cannot leave temporary tables or
	 * types, prepared statements, held cursors or listeners behind in the
	 * session, where they would capture the names used by the code of other
	 * owners (a temporary table comes first in a search_path that does not
	 * list pg_temp).
	 */
	sec_context = save_sec_context | SECURITY_LOCAL_USERID_CHANGE;
	if (!is_member_of_role(adapter->owner, save_userid))
		sec_context |= SECURITY_RESTRICTED_OPERATION;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int			save_nestlevel = NewGUCNestLevel();

		/*
		 * DROP ROLE does not know about adapters: an adapter whose owner was
		 * dropped must not go on running as a role that no longer exists.
		 */
		if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(adapter->owner)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("the role that owned adapter \"%s\" no longer exists",
							adapter->name),
					 errhint("A superuser can drop the adapter with emissions_drop_adapter().")));
		SetUserIdAndSecContext(adapter->owner, sec_context);
		arm_call_timeout();
		if (adapter->kind == ADAPTER_TABLE)
			deliver_to_table(adapter, source, event_cxt);
		else
			deliver_to_function(adapter, source, event_cxt);
		disarm_call_timeout();
		AtEOXact_GUC(false, save_nestlevel);
		SetUserIdAndSecContext(save_userid, save_sec_context);

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = resowner;
	}
	PG_CATCH();
	{
		bool		timed_out = call_timed_out;

		disarm_call_timeout();
		MemoryContextSwitchTo(cxt);
		*error = CopyErrorData();
		FlushErrorState();
		if (timed_out && (*error)->sqlerrcode == ERRCODE_QUERY_CANCELED)
			(*error)->message =
				psprintf("canceling adapter call after emissions.adapter_timeout (%d ms)",
						 emissions_adapter_timeout_ms);

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = resowner;
		emissions_buffer_reset_handler();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextDelete(event_cxt);
	return ok;
}
