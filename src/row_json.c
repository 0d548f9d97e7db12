/*-------------------------------------------------------------------------
 *
 * row_json.c
 *	  Table rows as JSON, as to_jsonb() renders them, without its lookups.
 *
 * to_jsonb(row) looks up every column's type category and output function
 * for every row, turns integers into text and back into numeric, and
 * returns a serialized jsonb that the trigger then unpacks again to nest it
 * in the payload.  A RowJson is made once per trigger and row type: it
 * knows each kept column's name, the columns' order as jsonb keys and how
 * to convert their values, and writes a row's object straight into its
 * binary form (jsonb_writer.c), inside the payload being written.
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
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "jsonb_writer.h"
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
	JsonbKeys  *keys;			/* the kept columns' names */
	int			ncolumns;
	RowJsonColumn columns[FLEXIBLE_ARRAY_MEMBER];	/* in key order */
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

/* qsort comparator: columns in the order of their names as jsonb keys. */
static int
column_key_compare(const void *a, const void *b)
{
	const char *an = ((const RowJsonColumn *) a)->name;
	const char *bn = ((const RowJsonColumn *) b)->name;

	return emissions_jsonb_key_compare(an, strlen(an), bn, strlen(bn));
}

/*
 * Make a converter for rows of desc, keeping the columns named in columns
 * (all when NIL), in memory of cxt.
 */
RowJson *
emissions_row_json_create(TupleDesc desc, List *columns, MemoryContext cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	RowJson    *conv = palloc0(offsetof(RowJson, columns) +
							   sizeof(RowJsonColumn) * desc->natts);
	const char **names;
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

	/* Columns in the order jsonb keeps keys in, and those keys. */
	qsort(conv->columns, conv->ncolumns, sizeof(RowJsonColumn),
		  column_key_compare);
	names = palloc(sizeof(char *) * Max(conv->ncolumns, 1));
	for (i = 0; i < conv->ncolumns; i++)
		names[i] = conv->columns[i].name;
	conv->keys = emissions_jsonb_keys_make(names, conv->ncolumns);
	MemoryContextSwitchTo(oldcxt);
	return conv;
}

/* Put one non-null value of col into the object being written. */
static void
put_value(JsonbObjectWriter *w, RowJsonColumn *col, Datum value)
{
	switch (col->kind)
	{
		case KIND_INTEGER:
			emissions_jsonb_put_numeric(w, int64_to_numeric(col->typid == INT2OID ?
															DatumGetInt16(value) :
															col->typid == INT4OID ?
															DatumGetInt32(value) :
															DatumGetInt64(value)));
			break;
		case KIND_NUMERIC:
			{
				Numeric		num = DatumGetNumeric(value);

				if (numeric_is_nan(num) || numeric_is_inf(num))
				{
					char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
																		   value));

					emissions_jsonb_put_string(w, text, strlen(text));
				}
				else
					emissions_jsonb_put_numeric(w, num);
			}
			break;
		case KIND_BOOL:
			emissions_jsonb_put_bool(w, DatumGetBool(value));
			break;
		case KIND_DATETIME:
			{
				char		text[MAXDATELEN + 1];

				JsonEncodeDateTime(text, value, col->typid, NULL);
				emissions_jsonb_put_string(w, text, strlen(text));
			}
			break;
		case KIND_JSONB:
			emissions_jsonb_put_jsonb(w, DatumGetJsonbP(value));
			break;
		case KIND_TEXT:
			{
				text	   *t = DatumGetTextPP(value);

				emissions_jsonb_put_string(w, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
			break;
		case KIND_OUTPUT:
			{
				char	   *text = OutputFunctionCall(&col->func, value);
				int			len = strlen(text);

				if (col->numeric_text && IsValidJsonNumber(text, len))
					emissions_jsonb_put_numeric(w, DatumGetNumeric(DirectFunctionCall3(numeric_in,
																					   CStringGetDatum(text),
																					   ObjectIdGetDatum(InvalidOid),
																					   Int32GetDatum(-1))));
				else
					emissions_jsonb_put_string(w, text, len);
			}
			break;
		case KIND_TO_JSONB:
			emissions_jsonb_put_jsonb(w, DatumGetJsonbP(FunctionCall1(&col->func, value)));
			break;
	}
}

/* Write the kept columns of the row in slot as the values of object w. */
static void
put_row(RowJson *conv, TupleTableSlot *slot, JsonbObjectWriter *w)
{
	int			i;

	slot_getallattrs(slot);
	for (i = 0; i < conv->ncolumns; i++)
	{
		RowJsonColumn *col = &conv->columns[i];

		if (slot->tts_isnull[col->attnum - 1])
			emissions_jsonb_put_null(w);
		else
			put_value(w, col, slot->tts_values[col->attnum - 1]);
	}
}

/*
 * Write the row in slot, as an object of the kept columns, as the next
 * value of the object parent.
 */
void
emissions_row_json_put(RowJson *conv, TupleTableSlot *slot, JsonbObjectWriter *parent)
{
	JsonbObjectWriter w;

	emissions_jsonb_begin_nested(parent, &w, conv->keys);
	put_row(conv, slot, &w);
	emissions_jsonb_end_nested(parent, &w);
}

/* The row in slot as a jsonb object of the kept columns, written in buf. */
Jsonb *
emissions_row_json_jsonb(RowJson *conv, TupleTableSlot *slot, StringInfo buf)
{
	JsonbObjectWriter w;

	emissions_jsonb_begin_root(&w, buf, conv->keys);
	put_row(conv, slot, &w);
	return emissions_jsonb_end_root(&w);
}
