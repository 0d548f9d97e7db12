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
 * Rows are turned into JSON by a converter (row_json.c) made once per
 * trigger and query and kept in fn_extra: the payload of an event is built
 * in one pass and serialized once.  Each row's JSON is built in a memory
 * context reset after the row, so a statement-level trigger over a large
 * change uses the memory of one row plus what the buffer holds.
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

/* What one firing of the trigger emits, apart from the rows. */
typedef struct ChangeEvent
{
	char	   *type;
	int			type_len;
	Jsonb	   *metadata;
	RowJson    *row_json;
	List	   *columns;		/* names of the columns kept; NIL: all */
	bool		skip_unchanged;
	MemoryContext row_cxt;
} ChangeEvent;

/* Kept in fn_extra: the row converter for the table's row type. */
typedef struct RowTypeCache
{
	Oid			rowtype;
	RowJson    *row_json;
} RowTypeCache;

/* The row converter of this trigger, made once per trigger and query. */
static RowJson *
trigger_row_json(FmgrInfo *trigger_flinfo, Relation rel, List *columns)
{
	RowTypeCache *cache = trigger_flinfo->fn_extra;
	Oid			rowtype = rel->rd_rel->reltype;

	if (cache == NULL || cache->rowtype != rowtype)
	{
		cache = MemoryContextAllocZero(trigger_flinfo->fn_mcxt,
									   sizeof(RowTypeCache));
		cache->rowtype = rowtype;
		cache->row_json = row_json_create(RelationGetDescr(rel), columns,
										  trigger_flinfo->fn_mcxt);
		trigger_flinfo->fn_extra = cache;
	}
	return cache->row_json;
}

/* Add "key": value to the object being built. */
static void
push_pair(JsonbParseState **state, const char *key, JsonbValue *value)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
	pushJsonbValue(state, WJB_VALUE, value);
}

/* Add "key": "text" to the object being built. */
static void
push_text(JsonbParseState **state, const char *key, const char *text)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) text;
	v.val.string.len = strlen(text);
	push_pair(state, key, &v);
}

/* Add "key": <a row as JSON> to the object being built. */
static void
push_row(JsonbParseState **state, const char *key, Jsonb *row)
{
	JsonbValue	v;

	v.type = jbvBinary;
	v.val.binary.data = &row->root;
	v.val.binary.len = VARSIZE(row) - VARHDRSZ;
	push_pair(state, key, &v);
}

/* The row in slot as JSON, with only the kept columns. */
static Jsonb *
row_jsonb(ChangeEvent *change, TupleTableSlot *slot)
{
	JsonbParseState *state = NULL;

	return JsonbValueToJsonb(row_json_push(change->row_json, slot, &state));
}

/* Add "key": <the row in slot> to the object being built. */
static void
push_slot(JsonbParseState **state, const char *key, ChangeEvent *change,
		  TupleTableSlot *slot)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
	(void) row_json_push(change->row_json, slot, state);
}

/*
 * The payload of one changed row, NULL if skip_unchanged finds nothing
 * changed; new_slot or old_slot may be NULL.
 */
static Jsonb *
change_payload(ChangeEvent *change, TupleTableSlot *new_slot,
			   TupleTableSlot *old_slot)
{
	JsonbParseState *state = NULL;

	if (change->skip_unchanged && new_slot != NULL && old_slot != NULL)
	{
		/* Compare the rows as JSON, then nest the two. */
		Jsonb	   *new_row = row_jsonb(change, new_slot);
		Jsonb	   *old_row = row_jsonb(change, old_slot);

		if (compareJsonbContainers(&new_row->root, &old_row->root) == 0)
			return NULL;
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		push_row(&state, "new", new_row);
		push_row(&state, "old", old_row);
		return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
	}

	/* One pass, one serialization. */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (new_slot != NULL)
		push_slot(&state, "new", change, new_slot);
	if (old_slot != NULL)
		push_slot(&state, "old", change, old_slot);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/* Emit the event of one changed row; new_slot or old_slot may be NULL. */
static void
emit_change(ChangeEvent *change, TupleTableSlot *new_slot,
			TupleTableSlot *old_slot)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(change->row_cxt);
	Jsonb	   *payload = change_payload(change, new_slot, old_slot);

	if (payload != NULL)
		emissions_buffer_append(change->type, change->type_len, payload,
								change->metadata);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(change->row_cxt);
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
emit_statement(ChangeEvent *change, TriggerData *trigdata,
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
		emit_change(change, have_new ? new_slot : NULL,
					have_old ? old_slot : NULL);
	}

	if (new_slot != NULL)
		ExecDropSingleTupleTableSlot(new_slot);
	if (old_slot != NULL)
		ExecDropSingleTupleTableSlot(old_slot);
}

/*
 * Read the trigger's arguments into change (columns, skip_unchanged) and
 * return the type prefix.
 */
static const char *
parse_arguments(Trigger *trigger, Relation rel, ChangeEvent *change)
{
	const char *prefix = RelationGetRelationName(rel);
	int			i;

	change->columns = NIL;
	change->skip_unchanged = false;
	if (trigger->tgnargs >= 1 && trigger->tgargs[0][0] != '\0')
		prefix = trigger->tgargs[0];

	for (i = 1; i < trigger->tgnargs; i++)
	{
		const char *arg = trigger->tgargs[i];

		if (strcmp(arg, "skip_unchanged") == 0)
			change->skip_unchanged = true;
		else if (strncmp(arg, "columns=", 8) == 0)
		{
			ListCell   *lc;

			if (!SplitIdentifierString(pstrdup(arg + 8), ',', &change->columns) ||
				change->columns == NIL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid column list in emissions_trigger() option \"%s\"",
								arg)));
			foreach(lc, change->columns)
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
	return prefix;
}

/* {"schema": ..., "table": ..., "operation": ...} for this table and op. */
static Jsonb *
change_metadata(Relation rel, const char *operation)
{
	JsonbParseState *state = NULL;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_text(&state, "schema",
			  get_namespace_name(RelationGetNamespace(rel)));
	push_text(&state, "table", RelationGetRelationName(rel));
	push_text(&state, "operation", operation);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/*
 * emissions_trigger() emits one event per changed row; see the file header.
 */
Datum
emissions_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent tg_event;
	Relation	rel;
	const char *operation;
	const char *prefix;
	ChangeEvent change;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("emissions_trigger() must be called as a trigger")));

	tg_event = trigdata->tg_event;
	rel = trigdata->tg_relation;
	if (!TRIGGER_FIRED_AFTER(tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("emissions_trigger() must be fired AFTER the change"),
				 errhint("Create the trigger as AFTER INSERT OR UPDATE OR DELETE.")));

	if (TRIGGER_FIRED_BY_INSERT(tg_event))
		operation = "insert";
	else if (TRIGGER_FIRED_BY_UPDATE(tg_event))
		operation = "update";
	else if (TRIGGER_FIRED_BY_DELETE(tg_event))
		operation = "delete";
	else
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("emissions_trigger() supports INSERT, UPDATE and DELETE only")));

	prefix = parse_arguments(trigdata->tg_trigger, rel, &change);
	change.type = psprintf("%s.%s", prefix, operation);
	change.type_len = strlen(change.type);
	emissions_check_event_type(change.type, change.type_len);
	change.metadata = change_metadata(rel, operation);
	change.row_json = trigger_row_json(fcinfo->flinfo, rel, change.columns);
	change.row_cxt = AllocSetContextCreate(CurrentMemoryContext,
										   "emissions trigger row",
										   ALLOCSET_DEFAULT_SIZES);

	if (!emissions_ensure_buffer())
	{
		/* A handler past the cascade limit changed the table. */
		Tuplestorestate *rows = trigdata->tg_newtable ?
			trigdata->tg_newtable : trigdata->tg_oldtable;

		emissions_note_dropped(change.type, change.type_len,
							   TRIGGER_FIRED_FOR_ROW(tg_event) ? 1 :
							   rows ? tuplestore_tuple_count(rows) : 0);
		MemoryContextDelete(change.row_cxt);
		return PointerGetDatum(NULL);
	}

	if (TRIGGER_FIRED_FOR_ROW(tg_event))
	{
		bool		is_update = TRIGGER_FIRED_BY_UPDATE(tg_event);

		if (TRIGGER_FIRED_BY_DELETE(tg_event))
			emit_change(&change, NULL, trigdata->tg_trigslot);
		else
			emit_change(&change,
						is_update ? trigdata->tg_newslot : trigdata->tg_trigslot,
						is_update ? trigdata->tg_trigslot : NULL);
	}
	else
		emit_statement(&change, trigdata,
					   !TRIGGER_FIRED_BY_DELETE(tg_event),
					   !TRIGGER_FIRED_BY_INSERT(tg_event));

	MemoryContextDelete(change.row_cxt);
	return PointerGetDatum(NULL);
}
