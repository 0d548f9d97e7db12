/*-------------------------------------------------------------------------
 *
 * row_json.c
 *	  Table rows as JSON, as to_jsonb() renders them, without its lookups.
 *
 * to_jsonb(row) looks up every column's type category and output function
 * for every row, turns integers into text and back into numeric, and
 * returns a serialized jsonb that the trigger then unpacks again to nest it
 * in the payload.  A RowJson is made once per trigger and row type: it
 * knows each kept column's name and how to convert its values, and pushes
 * a row's object straight into the caller's JsonbParseState, so the whole
 * payload is serialized once.
 *
 * The values are those to_jsonb() gives: integers and other numbers as
 * JSON numbers (NaN and infinities as strings), booleans, dates and
 * timestamps in JSON's ISO 8601 form, jsonb as it is, and any other type
 * through its output function as a string.  Types to_jsonb() treats
 * specially in other ways (json, arrays, composites, domains, types with a
 * cast to json) are converted by to_jsonb() itself, one value at a time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "row_json.h"

typedef enum ColumnKind
{
	KIND_INTEGER,				/* int2, int4, int8: numbers */
	KIND_NUMERIC,				/* numbers, NaN and infinities as strings */
	KIND_BOOL,
	KIND_DATETIME,				/* date, timestamp, timestamptz */
	KIND_JSONB,
	KIND_TEXT,					/* text and the like: the value as a string */
	KIND_OUTPUT,				/* a number or a string, from the output text */
	KIND_TO_JSONB				/* ask to_jsonb() */
} ColumnKind;

typedef struct RowJsonColumn
{
	AttrNumber	attnum;
	char	   *name;
	ColumnKind	kind;
	Oid			typid;
	bool		numeric_text;	/* KIND_OUTPUT: a valid number becomes one */
	FmgrInfo	func;			/* output function, or to_jsonb() */
} RowJsonColumn;

struct RowJson
{
	int			ncolumns;
	RowJsonColumn columns[FLEXIBLE_ARRAY_MEMBER];
};

/* How to convert values of type typid, as to_jsonb() would. */
static ColumnKind
column_kind(Oid typid, bool *numeric_text)
{
	*numeric_text = false;
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return KIND_INTEGER;
		case NUMERICOID:
			return KIND_NUMERIC;
		case FLOAT4OID:
		case FLOAT8OID:
			*numeric_text = true;
			return KIND_OUTPUT;
		case BOOLOID:
			return KIND_BOOL;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return KIND_DATETIME;
		case JSONBOID:
			return KIND_JSONB;
		case TEXTOID:
		case VARCHAROID:
			return KIND_TEXT;
		default:
			break;
	}
	/*
	 * Other built-in base types are printed as strings; user-defined ones
	 * may have a cast to json, and json, arrays, composites, domains and
	 * the like have rules of their own: to_jsonb() knows them.
	 */
	if (typid < FirstNormalObjectId && typid != JSONOID &&
		get_typtype(typid) == TYPTYPE_BASE && !type_is_array(typid))
		return KIND_OUTPUT;
	return KIND_TO_JSONB;
}

/*
 * Make a converter for rows of desc, keeping the columns named in columns
 * (all when NIL), in memory of cxt.
 */
RowJson *
row_json_create(TupleDesc desc, List *columns, MemoryContext cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	RowJson    *conv = palloc0(offsetof(RowJson, columns) +
							   sizeof(RowJsonColumn) * desc->natts);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		RowJsonColumn *col;

		if (att->attisdropped)
			continue;
		if (columns != NIL)
		{
			ListCell   *lc;
			bool		kept = false;

			foreach(lc, columns)
				kept |= (strcmp(lfirst(lc), NameStr(att->attname)) == 0);
			if (!kept)
				continue;
		}
		col = &conv->columns[conv->ncolumns++];
		col->attnum = att->attnum;
		col->name = pstrdup(NameStr(att->attname));
		col->typid = att->atttypid;
		col->kind = column_kind(att->atttypid, &col->numeric_text);
		if (col->kind == KIND_OUTPUT)
		{
			Oid			outfunc;
			bool		isvarlena;

			getTypeOutputInfo(att->atttypid, &outfunc, &isvarlena);
			fmgr_info_cxt(outfunc, &col->func, cxt);
		}
		else if (col->kind == KIND_TO_JSONB)
		{
			/* to_jsonb() learns the argument's type from its call. */
			fmgr_info_cxt(F_TO_JSONB, &col->func, cxt);
			col->func.fn_expr = (Node *)
				makeFuncExpr(F_TO_JSONB, JSONBOID,
							 list_make1(makeNullConst(att->atttypid,
													  att->atttypmod,
													  att->attcollation)),
							 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		}
	}
	MemoryContextSwitchTo(oldcxt);
	return conv;
}

/* Set *v to the JSON string text. */
static void
string_value(JsonbValue *v, char *text)
{
	v->type = jbvString;
	v->val.string.val = text;
	v->val.string.len = strlen(text);
}

/* Set *v to the value of the jsonb jb: a scalar, or the container. */
static void
jsonb_value(Jsonb *jb, JsonbValue *v)
{
	if (JB_ROOT_IS_SCALAR(jb))
		(void) JsonbExtractScalar(&jb->root, v);
	else
	{
		v->type = jbvBinary;
		v->val.binary.data = &jb->root;
		v->val.binary.len = VARSIZE(jb) - VARHDRSZ;
	}
}

/* Convert one non-null value of col into *v. */
static void
convert_value(RowJsonColumn *col, Datum value, JsonbValue *v)
{
	switch (col->kind)
	{
		case KIND_INTEGER:
			v->type = jbvNumeric;
			v->val.numeric = int64_to_numeric(col->typid == INT2OID ?
											  DatumGetInt16(value) :
											  col->typid == INT4OID ?
											  DatumGetInt32(value) :
											  DatumGetInt64(value));
			break;
		case KIND_NUMERIC:
			{
				Numeric		num = DatumGetNumeric(value);

				if (numeric_is_nan(num) || numeric_is_inf(num))
					string_value(v, DatumGetCString(DirectFunctionCall1(numeric_out,
																		value)));
				else
				{
					v->type = jbvNumeric;
					v->val.numeric = num;
				}
			}
			break;
		case KIND_BOOL:
			v->type = jbvBool;
			v->val.boolean = DatumGetBool(value);
			break;
		case KIND_DATETIME:
			string_value(v, JsonEncodeDateTime(NULL, value, col->typid, NULL));
			break;
		case KIND_JSONB:
			jsonb_value(DatumGetJsonbP(value), v);
			break;
		case KIND_TEXT:
			string_value(v, TextDatumGetCString(value));
			break;
		case KIND_OUTPUT:
			{
				char	   *text = OutputFunctionCall(&col->func, value);

				if (col->numeric_text && IsValidJsonNumber(text, strlen(text)))
				{
					v->type = jbvNumeric;
					v->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																		 CStringGetDatum(text),
																		 ObjectIdGetDatum(InvalidOid),
																		 Int32GetDatum(-1)));
				}
				else
					string_value(v, text);
			}
			break;
		case KIND_TO_JSONB:
			jsonb_value(DatumGetJsonbP(FunctionCall1(&col->func, value)), v);
			break;
	}
}

/*
 * Push the row in slot, as a JSON object of the kept columns, into state
 * (as a value after a key, or as the top-level object, which it returns).
 */
JsonbValue *
row_json_push(RowJson *conv, TupleTableSlot *slot, JsonbParseState **state)
{
	int			i;

	slot_getallattrs(slot);
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < conv->ncolumns; i++)
	{
		RowJsonColumn *col = &conv->columns[i];
		JsonbValue	k;
		JsonbValue	v;

		k.type = jbvString;
		k.val.string.val = col->name;
		k.val.string.len = strlen(col->name);
		pushJsonbValue(state, WJB_KEY, &k);
		if (slot->tts_isnull[col->attnum - 1])
			v.type = jbvNull;
		else
			convert_value(col, slot->tts_values[col->attnum - 1], &v);
		pushJsonbValue(state, WJB_VALUE, &v);
	}
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}
