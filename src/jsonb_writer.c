/*-------------------------------------------------------------------------
 *
 * jsonb_writer.c
 *	  Writing jsonb objects in their binary form, value by value, when the
 *	  keys are known in advance.
 *
 * PostgreSQL builds a jsonb by pushing every key and value into a tree of
 * JsonbValues (pushJsonbValue(), which also unpacks any jsonb value pushed
 * into it), sorting each object's keys, and then serializing the tree.  A
 * trigger's payload always has the same keys (the table's columns), so
 * their order and their part of the binary form can be worked out once;
 * then each row is written straight into its final form, one value after
 * the other, with no tree, no sort and no second copy.
 *
 * Why the extension keeps a writer of its own rather than PostgreSQL's
 * helper: it makes emissions_trigger() about three times cheaper per row
 * (bench/trigger.sh), and it lets an envelope (envelope.c) take the stored
 * payload and metadata by copying their containers instead of unpacking
 * and serializing them again.  It is kept on one condition: what it writes
 * is byte for byte what PostgreSQL writes.  sql/jsonb_writer.sql checks
 * that against to_jsonb() and jsonb_build_object() (equal, the same size,
 * the same text, every key found by lookup) over many column types, NULLs,
 * arrays, composites, numeric edge cases, Unicode, and more than
 * JB_OFFSET_STRIDE keys; any change here must keep it passing.
 *
 * The layout written is exactly the one jsonb_util.c's convertJsonbObject()
 * produces: a container header (count | JB_FOBJECT), the keys' JEntries,
 * the values' JEntries, the keys' bytes, then the values, each numeric and
 * each nested container padded to a 4-byte boundary (the padding counted in
 * the value's length), and every JB_OFFSET_STRIDE'th JEntry holding the end
 * offset rather than the length.  Values must be written in key order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "jsonb_writer.h"

/* Fail as PostgreSQL does when an object's data outgrows a JEntry. */
static void
check_length(uint64 len)
{
	if (len > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("total size of jsonb object elements exceeds the maximum of %u bytes",
						JENTRY_OFFLENMASK)));
}

/* Append n zero bytes to buf; returns where they start. */
static int
append_zeros(StringInfo buf, int n)
{
	int			offset = buf->len;

	enlargeStringInfo(buf, n);
	memset(buf->data + offset, 0, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
	return offset;
}

/* Pad buf to a 4-byte boundary; returns the number of bytes added. */
static int
pad_to_int(StringInfo buf)
{
	int			padding = INTALIGN(buf->len) - buf->len;

	if (padding > 0)
		append_zeros(buf, padding);
	return padding;
}

/*
 * Order of keys in a jsonb object: shorter first, then bytewise; as
 * jsonb_util.c's lengthCompareJsonbString().
 */
int
emissions_jsonb_key_compare(const char *a, int alen, const char *b, int blen)
{
	if (alen != blen)
		return alen > blen ? 1 : -1;
	return memcmp(a, b, alen);
}

/*
 * The binary form of the keys names[0..n-1], which must be distinct and in
 * emissions_jsonb_key_compare() order.  Allocated in the current memory
 * context.
 */
JsonbKeys *
emissions_jsonb_keys_make(const char *const *names, int n)
{
	JsonbKeys  *keys = palloc(sizeof(JsonbKeys));
	StringInfoData data;
	int			i;

	initStringInfo(&data);
	keys->nkeys = n;
	keys->entries = palloc(sizeof(JEntry) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int			len = strlen(names[i]);

		Assert(i == 0 || emissions_jsonb_key_compare(names[i - 1], strlen(names[i - 1]),
													 names[i], len) < 0);
		appendBinaryStringInfo(&data, names[i], len);
		check_length(data.len);
		keys->entries[i] = (i % JB_OFFSET_STRIDE) == 0 ?
			JENTRY_ISSTRING | JENTRY_HAS_OFF | data.len :
			JENTRY_ISSTRING | len;
	}
	keys->data = data.data;
	keys->datalen = data.len;
	return keys;
}

/* Start an object with keys at the end of buf. */
static void
begin_object(JsonbObjectWriter *w, StringInfo buf, const JsonbKeys *keys)
{
	uint32		header = keys->nkeys | JB_FOBJECT;

	w->buf = buf;
	w->base = buf->len;
	pad_to_int(buf);
	appendBinaryStringInfo(buf, (char *) &header, sizeof(uint32));
	w->entries = append_zeros(buf, sizeof(JEntry) * keys->nkeys * 2);
	memcpy(buf->data + w->entries, keys->entries, sizeof(JEntry) * keys->nkeys);
	appendBinaryStringInfo(buf, keys->data, keys->datalen);
	w->npairs = keys->nkeys;
	w->nvalues = 0;
	w->datalen = keys->datalen;
}

/* Record the next value, of JEntry type type and len bytes (padding too). */
static void
end_value(JsonbObjectWriter *w, uint32 type, uint32 len)
{
	int			index = w->npairs + w->nvalues;
	JEntry		entry;

	Assert(w->nvalues < w->npairs);
	check_length((uint64) w->datalen + len);
	w->datalen += len;
	entry = (index % JB_OFFSET_STRIDE) == 0 ?
		type | JENTRY_HAS_OFF | w->datalen : type | len;
	memcpy(w->buf->data + w->entries + sizeof(JEntry) * index, &entry,
		   sizeof(JEntry));
	w->nvalues++;
}

/* Finish an object; returns its length, padding included. */
static uint32
end_object(JsonbObjectWriter *w)
{
	Assert(w->nvalues == w->npairs);
	check_length(w->buf->len - w->base);
	return w->buf->len - w->base;
}

/*
 * Start a jsonb whose root is an object with keys, in buf (emptied first).
 */
void
emissions_jsonb_begin_root(JsonbObjectWriter *w, StringInfo buf, const JsonbKeys *keys)
{
	resetStringInfo(buf);
	append_zeros(buf, VARHDRSZ);
	begin_object(w, buf, keys);
}

/* Finish the root object; the jsonb is in the writer's buffer. */
Jsonb *
emissions_jsonb_end_root(JsonbObjectWriter *w)
{
	(void) end_object(w);
	SET_VARSIZE(w->buf->data, w->buf->len);
	return (Jsonb *) w->buf->data;
}

/* Start an object with keys as parent's next value. */
void
emissions_jsonb_begin_nested(JsonbObjectWriter *parent, JsonbObjectWriter *w,
							 const JsonbKeys *keys)
{
	begin_object(w, parent->buf, keys);
}

/* Finish the object w started by emissions_jsonb_begin_nested(). */
void
emissions_jsonb_end_nested(JsonbObjectWriter *parent, JsonbObjectWriter *w)
{
	end_value(parent, JENTRY_ISCONTAINER, end_object(w));
}

void
emissions_jsonb_put_null(JsonbObjectWriter *w)
{
	end_value(w, JENTRY_ISNULL, 0);
}

void
emissions_jsonb_put_bool(JsonbObjectWriter *w, bool value)
{
	end_value(w, value ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE, 0);
}

void
emissions_jsonb_put_string(JsonbObjectWriter *w, const char *s, Size len)
{
	if (len > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("string too long to represent as jsonb string"),
				 errdetail("Due to an implementation restriction, jsonb strings cannot exceed %d bytes.",
						   JENTRY_OFFLENMASK)));
	appendBinaryStringInfo(w->buf, s, len);
	end_value(w, JENTRY_ISSTRING, len);
}

void
emissions_jsonb_put_numeric(JsonbObjectWriter *w, Numeric num)
{
	int			padding = pad_to_int(w->buf);
	Size		len = VARSIZE_ANY(num);

	appendBinaryStringInfo(w->buf, (char *) num, len);
	end_value(w, JENTRY_ISNUMERIC, padding + len);
}

/*
 * Put the value of the jsonb jb: a scalar as that scalar, an object or an
 * array by copying its container, which reads the same wherever it starts
 * on a 4-byte boundary.
 */
void
emissions_jsonb_put_jsonb(JsonbObjectWriter *w, const Jsonb *jb)
{
	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbValue	v;

		(void) JsonbExtractScalar((JsonbContainer *) &jb->root, &v);
		switch (v.type)
		{
			case jbvNull:
				emissions_jsonb_put_null(w);
				break;
			case jbvBool:
				emissions_jsonb_put_bool(w, v.val.boolean);
				break;
			case jbvString:
				emissions_jsonb_put_string(w, v.val.string.val, v.val.string.len);
				break;
			case jbvNumeric:
				emissions_jsonb_put_numeric(w, v.val.numeric);
				break;
			default:
				elog(ERROR, "unexpected jsonb scalar type: %d", (int) v.type);
		}
	}
	else
	{
		int			start = w->buf->len;

		pad_to_int(w->buf);
		appendBinaryStringInfo(w->buf, (char *) &jb->root,
							   VARSIZE(jb) - VARHDRSZ);
		end_value(w, JENTRY_ISCONTAINER, w->buf->len - start);
	}
}
