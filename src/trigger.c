/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  emissions_trigger(): one event per row changed by INSERT, UPDATE or
 *	  DELETE.
 *
 * Fired AFTER ROW, it emits for the row at hand; fired AFTER STATEMENT, it
 * reads the statement's transition tables (REFERENCING NEW TABLE / OLD
 * TABLE) and emits for every row in them, pairing old and new rows of an
 * UPDATE by position as PostgreSQL stores them.  An event's type is
 * "<prefix>.<insert|update|delete>", the prefix being the trigger's first
 * argument or else (also when that argument is empty) the table's name; its
 * payload is {"new": row} for INSERT, {"new": row, "old": row} for UPDATE
 * and {"old": row} for DELETE, each row as to_jsonb() renders it; its
 * metadata names the schema, the table and the operation.  The trigger
 * opens a buffer when none is active, which the transaction then commits or
 * discards like any other.
 *
 * Further arguments are options: "columns=a,b" keeps only those columns in
 * the rows (names as in SQL: unquoted ones are folded to lower case), and
 * "skip_unchanged" emits nothing for an UPDATE whose (kept) columns did not
 * change.
 *
 * What a firing needs apart from the rows (the options, the event types
 * and metadata, the row converter of row_json.c) is worked out at the
 * trigger's first firing in a query and kept in fn_extra, so a row-level
 * trigger pays for it once per statement, not once per row.  Each payload
 * is written straight into its binary jsonb form in a buffer kept with it,
 * and whatever a row needs besides is allocated in a memory context reset
 * after the row, so a statement-level trigger over a large change uses the
 * memory of one row plus what the event buffer holds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "api.h"
#include "buffer.h"
#include "row_json.h"

PG_FUNCTION_INFO_V1(emissions_trigger);

/* The type and metadata of the events of one operation. */
typedef struct OperationEvents
{
	char	   *type;			/* NULL until the operation first fires */
	int			type_len;
	Jsonb	   *metadata;
} OperationEvents;

#define OPERATION_INSERT 0
#define OPERATION_UPDATE 1
#define OPERATION_DELETE 2

/*
 * Everything a firing needs apart from the rows, worked out at the first
 * firing of a trigger in a query and kept in fn_extra for the next ones.
 */
typedef struct TriggerPlan
{
	Oid			tgoid;
	Oid			rowtype;
	const char *prefix;
	bool		skip_unchanged;
	RowJson    *row_json;
	OperationEvents operations[3];
	MemoryContext row_cxt;		/* reset after every row */
	StringInfoData payload;		/* the payload being written */
} TriggerPlan;

static const char *const operation_names[] = {"insert", "update", "delete"};

/* The keys of the three payload shapes, made once per backend. */
static JsonbKeys *payload_keys_new = NULL;
static JsonbKeys *payload_keys_old = NULL;
static JsonbKeys *payload_keys_both = NULL;

/* Make the payload keys, once. */
static void
make_payload_keys(void)
{
	static const char *const new_only[] = {"new"};
	static const char *const old_only[] = {"old"};
	static const char *const both[] = {"new", "old"};
	MemoryContext oldcxt;

	if (payload_keys_both != NULL)
		return;
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	payload_keys_new = emissions_jsonb_keys_make(new_only, 1);
	payload_keys_old = emissions_jsonb_keys_make(old_only, 1);
	payload_keys_both = emissions_jsonb_keys_make(both, 2);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The payload of one changed row, NULL if skip_unchanged finds nothing
 * changed; new_slot or old_slot may be NULL.
 */
static Jsonb *
change_payload(TriggerPlan *plan, TupleTableSlot *new_slot,
			   TupleTableSlot *old_slot)
{
	JsonbObjectWriter w;

	if (plan->skip_unchanged && new_slot != NULL && old_slot != NULL)
	{
		/* Compare the rows as JSON, then nest the two. */
		StringInfoData new_buf;
		StringInfoData old_buf;
		Jsonb	   *new_row;
		Jsonb	   *old_row;

		initStringInfo(&new_buf);
		initStringInfo(&old_buf);
		new_row = emissions_row_json_jsonb(plan->row_json, new_slot, &new_buf);
		old_row = emissions_row_json_jsonb(plan->row_json, old_slot, &old_buf);
		if (compareJsonbContainers(&new_row->root, &old_row->root) == 0)
			return NULL;
		emissions_jsonb_begin_root(&w, &plan->payload, payload_keys_both);
		emissions_jsonb_put_jsonb(&w, new_row);
		emissions_jsonb_put_jsonb(&w, old_row);
		return emissions_jsonb_end_root(&w);
	}

	/* Written in one pass: "new" sorts before "old" as a jsonb key. */
	emissions_jsonb_begin_root(&w, &plan->payload,
							   new_slot == NULL ? payload_keys_old :
							   old_slot == NULL ? payload_keys_new : payload_keys_both);
	if (new_slot != NULL)
		emissions_row_json_put(plan->row_json, new_slot, &w);
	if (old_slot != NULL)
		emissions_row_json_put(plan->row_json, old_slot, &w);
	return emissions_jsonb_end_root(&w);
}

/* Emit the event of one changed row; new_slot or old_slot may be NULL. */
static void
emit_change(TriggerPlan *plan, OperationEvents *op,
			TupleTableSlot *new_slot, TupleTableSlot *old_slot)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(plan->row_cxt);
	Jsonb	   *payload = change_payload(plan, new_slot, old_slot);

	if (payload != NULL)
		emissions_buffer_append(op->type, op->type_len, payload,
								op->metadata);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(plan->row_cxt);
}

/*
 * Read the next row of a transition table into slot; false at the end.
 * The table may be read by other triggers too, so it is read through a
 * read pointer of our own, allocated by the caller.
 */
static bool
next_transition_row(Tuplestorestate *rows, int readptr, TupleTableSlot *slot)
{
	tuplestore_select_read_pointer(rows, readptr);
	return tuplestore_gettupleslot(rows, true, false, slot);
}

/* A read pointer of our own at the start of a transition table. */
static int
rewound_read_pointer(Tuplestorestate *rows)
{
	int			readptr = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(rows, readptr);
	tuplestore_rescan(rows);
	return readptr;
}

/* Emit one event per row of the statement's transition tables. */
static void
emit_statement(TriggerPlan *plan, OperationEvents *op, TriggerData *trigdata,
			   bool wants_new, bool wants_old)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	Tuplestorestate *new_rows = wants_new ? trigdata->tg_newtable : NULL;
	Tuplestorestate *old_rows = wants_old ? trigdata->tg_oldtable : NULL;
	TupleTableSlot *new_slot = NULL;
	TupleTableSlot *old_slot = NULL;
	int			new_ptr = 0;
	int			old_ptr = 0;

	if ((wants_new && new_rows == NULL) || (wants_old && old_rows == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("statement-level emissions_trigger() needs transition tables"),
				 errhint("Declare the trigger with REFERENCING %s.",
						 wants_new && wants_old ? "NEW TABLE AS new_rows OLD TABLE AS old_rows" :
						 wants_new ? "NEW TABLE AS new_rows" : "OLD TABLE AS old_rows")));

	if (new_rows != NULL)
	{
		new_slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
		new_ptr = rewound_read_pointer(new_rows);
	}
	if (old_rows != NULL)
	{
		old_slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
		old_ptr = rewound_read_pointer(old_rows);
	}

	for (;;)
	{
		bool		have_new = new_rows != NULL &&
			next_transition_row(new_rows, new_ptr, new_slot);
		bool		have_old = old_rows != NULL &&
			next_transition_row(old_rows, old_ptr, old_slot);

		if (!have_new && !have_old)
			break;
		emit_change(plan, op, have_new ? new_slot : NULL,
					have_old ? old_slot : NULL);
	}

	if (new_slot != NULL)
		ExecDropSingleTupleTableSlot(new_slot);
	if (old_slot != NULL)
		ExecDropSingleTupleTableSlot(old_slot);
}

/*
 * Read the trigger's arguments into plan (prefix, skip_unchanged) and
 * return the columns to keep (NIL: all).
 */
static List *
parse_arguments(Trigger *trigger, Relation rel, TriggerPlan *plan)
{
	List	   *columns = NIL;
	int			i;

	plan->prefix = RelationGetRelationName(rel);
	plan->skip_unchanged = false;
	if (trigger->tgnargs >= 1 && trigger->tgargs[0][0] != '\0')
		plan->prefix = trigger->tgargs[0];

	for (i = 1; i < trigger->tgnargs; i++)
	{
		const char *arg = trigger->tgargs[i];

		if (strcmp(arg, "skip_unchanged") == 0)
			plan->skip_unchanged = true;
		else if (strncmp(arg, "columns=", 8) == 0)
		{
			ListCell   *lc;

			if (!SplitIdentifierString(pstrdup(arg + 8), ',', &columns) ||
				columns == NIL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid column list in emissions_trigger() option \"%s\"",
								arg)));
			foreach(lc, columns)
			{
				if (get_attnum(RelationGetRelid(rel), lfirst(lc)) == InvalidAttrNumber)
					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_COLUMN),
							 errmsg("column \"%s\" of relation \"%s\" does not exist",
									(char *) lfirst(lc),
									RelationGetRelationName(rel)),
							 errcontext("emissions_trigger() option \"%s\"", arg)));
			}
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown emissions_trigger() option \"%s\"", arg),
					 errhint("The options are columns=<name>[,<name>...] and skip_unchanged.")));
	}
	return columns;
}

/*
 * {"schema": ..., "table": ..., "operation": ...} for this table and op,
 * in CurrentMemoryContext.
 */
static Jsonb *
change_metadata(Relation rel, const char *operation)
{
	/* The keys in jsonb's order: shorter first. */
	static const char *const names[] = {"table", "schema", "operation"};
	JsonbKeys  *keys = emissions_jsonb_keys_make(names, lengthof(names));
	const char *table = RelationGetRelationName(rel);
	char	   *schema = get_namespace_name(RelationGetNamespace(rel));
	JsonbObjectWriter w;
	StringInfoData buf;

	initStringInfo(&buf);
	emissions_jsonb_begin_root(&w, &buf, keys);
	emissions_jsonb_put_string(&w, table, strlen(table));
	emissions_jsonb_put_string(&w, schema, strlen(schema));
	emissions_jsonb_put_string(&w, operation, strlen(operation));
	return emissions_jsonb_end_root(&w);
}

/*
 * The plan of this trigger on this table, made at its first firing in the
 * query (fn_extra lives as long as the query's trigger state).
 */
static TriggerPlan *
trigger_plan(FmgrInfo *flinfo, TriggerData *trigdata)
{
	TriggerPlan *plan = flinfo->fn_extra;
	Relation	rel = trigdata->tg_relation;
	MemoryContext oldcxt;
	List	   *columns;

	if (plan != NULL && plan->tgoid == trigdata->tg_trigger->tgoid &&
		plan->rowtype == rel->rd_rel->reltype)
		return plan;

	make_payload_keys();
	oldcxt = MemoryContextSwitchTo(flinfo->fn_mcxt);
	plan = palloc0(sizeof(TriggerPlan));
	plan->tgoid = trigdata->tg_trigger->tgoid;
	plan->rowtype = rel->rd_rel->reltype;
	columns = parse_arguments(trigdata->tg_trigger, rel, plan);
	plan->prefix = pstrdup(plan->prefix);
	plan->row_json = emissions_row_json_create(RelationGetDescr(rel), columns,
											   flinfo->fn_mcxt);
	plan->row_cxt = AllocSetContextCreate(flinfo->fn_mcxt,
										  "emissions trigger row",
										  ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&plan->payload);
	MemoryContextSwitchTo(oldcxt);
	flinfo->fn_extra = plan;
	return plan;
}

/* The type and metadata of this plan's events for operation. */
static OperationEvents *
operation_events(FmgrInfo *flinfo, TriggerPlan *plan, Relation rel,
				 int operation)
{
	OperationEvents *op = &plan->operations[operation];
	MemoryContext oldcxt;
	char	   *type;

	if (op->type != NULL)
		return op;
	oldcxt = MemoryContextSwitchTo(flinfo->fn_mcxt);
	type = psprintf("%s.%s", plan->prefix, operation_names[operation]);
	emissions_check_event_type(type, strlen(type));
	op->metadata = change_metadata(rel, operation_names[operation]);
	op->type_len = strlen(type);
	op->type = type;
	MemoryContextSwitchTo(oldcxt);
	return op;
}

/*
 * emissions_trigger() emits one event per changed row; see the file header.
 */
Datum
emissions_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent tg_event;
	int			operation;
	TriggerPlan *plan;
	OperationEvents *op;
	BufferAvailability buffer;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("emissions_trigger() must be called as a trigger")));

	tg_event = trigdata->tg_event;
	if (!TRIGGER_FIRED_AFTER(tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("emissions_trigger() must be fired AFTER the change"),
				 errhint("Create the trigger as AFTER INSERT OR UPDATE OR DELETE.")));

	if (TRIGGER_FIRED_BY_INSERT(tg_event))
		operation = OPERATION_INSERT;
	else if (TRIGGER_FIRED_BY_UPDATE(tg_event))
		operation = OPERATION_UPDATE;
	else if (TRIGGER_FIRED_BY_DELETE(tg_event))
		operation = OPERATION_DELETE;
	else
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("emissions_trigger() supports INSERT, UPDATE and DELETE only")));

	plan = trigger_plan(fcinfo->flinfo, trigdata);
	op = operation_events(fcinfo->flinfo, plan, trigdata->tg_relation,
						  operation);

	buffer = emissions_ensure_buffer();
	if (buffer != BUFFER_ACTIVE)
	{
		/* A handler past the cascade limit changed the table. */
		Tuplestorestate *rows = trigdata->tg_newtable ?
			trigdata->tg_newtable : trigdata->tg_oldtable;

		emissions_note_dropped(op->type, op->type_len,
							   TRIGGER_FIRED_FOR_ROW(tg_event) ? 1 :
							   rows ? tuplestore_tuple_count(rows) : 0,
							   buffer);
		return PointerGetDatum(NULL);
	}

	if (TRIGGER_FIRED_FOR_ROW(tg_event))
	{
		if (operation == OPERATION_INSERT)
			emit_change(plan, op, trigdata->tg_trigslot, NULL);
		else if (operation == OPERATION_UPDATE)
			emit_change(plan, op, trigdata->tg_newslot, trigdata->tg_trigslot);
		else
			emit_change(plan, op, NULL, trigdata->tg_trigslot);
	}
	else
		emit_statement(plan, op, trigdata, operation != OPERATION_DELETE,
					   operation != OPERATION_INSERT);

	return PointerGetDatum(NULL);
}
