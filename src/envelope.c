/*-------------------------------------------------------------------------
 *
 * envelope.c
 *	  The JSON envelope in which an event is delivered.
 *
 * {"id": 42, "type": "order.created", "payload": {...}, "metadata": {...},
 *  "emitted_at": "2026-11-29T15:33:33.123456+00:00", "txid": 1234,
 *  "database": "shop"}
 *
 * NOTIFY takes it as text, built straight from the event's stored form:
 * the payload and metadata are printed by the jsonb output code, the
 * timestamp in JSON's ISO 8601 form.  Without its payload (NOTIFY's size
 * limit), the envelope says "payload_omitted": true instead, and likewise
 * "metadata_omitted": true in the rare case that the metadata alone is too
 * large.  Whether the text fits is measured before it is printed: the text
 * of a payload can be far larger than its stored form (a string of control
 * characters, six bytes each once escaped; a number such as 1e100000), too
 * large to build at all, and only a text that fits is ever built.
 *
 * Table and function adapters get the envelope as jsonb, assembled from
 * the stored jsonb values without going through text.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "envelope.h"

/* Append the jsonb varlena at src (possibly unaligned) as JSON text. */
static void
append_jsonb(StringInfo buf, const char *src)
{
	Jsonb	   *value = event_copy_jsonb(src);

	(void) JsonbToCString(buf, &value->root, VARSIZE(value));
	pfree(value);
}

/*
 * Append the envelope of event, delivered with the given id, to buf.
 */
static void
envelope_build(StringInfo buf, int64 id, const DecodedEvent *event,
			   FullTransactionId txid, const char *dbname, int omit)
{
	char		type[EVENT_TYPE_MAX_BYTES + 1];
	char		ts[MAXDATELEN + 1];

	memcpy(type, event->type, event->type_len);
	type[event->type_len] = '\0';

	appendStringInfo(buf, "{\"id\": " INT64_FORMAT ", \"type\": ", id);
	escape_json(buf, type);
	if (omit & ENVELOPE_OMIT_PAYLOAD)
		appendStringInfoString(buf, ", \"payload_omitted\": true");
	else
	{
		appendStringInfoString(buf, ", \"payload\": ");
		append_jsonb(buf, event->payload);
	}
	if (omit & ENVELOPE_OMIT_METADATA)
		appendStringInfoString(buf, ", \"metadata_omitted\": true");
	else
	{
		appendStringInfoString(buf, ", \"metadata\": ");
		append_jsonb(buf, event->metadata);
	}
	JsonEncodeDateTime(ts, TimestampTzGetDatum(event->emitted_at),
					   TIMESTAMPTZOID, NULL);
	appendStringInfo(buf, ", \"emitted_at\": \"%s\", \"txid\": " UINT64_FORMAT
					 ", \"database\": ",
					 ts, U64FromFullTransactionId(txid));
	escape_json(buf, dbname);
	appendStringInfoChar(buf, '}');
}

/* Length of the JSON text of a scalar, as the jsonb output code prints it. */
static Size
scalar_text_length(const JsonbValue *v, Size max_len)
{
	Size		len = 2;
	int			i;

	switch (v->type)
	{
		case jbvNull:
			return 4;
		case jbvBool:
			return v->val.boolean ? 4 : 5;
		case jbvNumeric:
			return strlen(DatumGetCString(DirectFunctionCall1(numeric_out,
															  NumericGetDatum(v->val.numeric))));
		case jbvString:
			/* Escaping only lengthens a string: a long one is too long. */
			if ((Size) v->val.string.len > max_len)
				return max_len + 1;
			for (i = 0; i < v->val.string.len; i++)
			{
				unsigned char c = v->val.string.val[i];

				if (c == '"' || c == '\\' || c == '\b' || c == '\f' ||
					c == '\n' || c == '\r' || c == '\t')
					len += 2;
				else if (c < ' ')
					len += 6;
				else
					len++;
			}
			return len;
		default:
			elog(ERROR, "unexpected jsonb scalar type %d", (int) v->type);
	}
	return 0;					/* keep compiler quiet */
}

/*
 * Length of the JSON text of the jsonb varlena at src (possibly unaligned),
 * as JsonbToCString prints it, or max_len + 1 if it is longer than max_len:
 * counted without printing it, in time bounded by max_len.
 */
static Size
jsonb_text_length(const char *src, Size max_len)
{
	Jsonb	   *value = event_copy_jsonb(src);
	JsonbIterator *it = JsonbIteratorInit(&value->root);
	JsonbIteratorToken token;
	JsonbValue	v;
	bool		first = true;
	bool		raw_scalar = false;
	Size		len = 0;

	while (len <= max_len &&
		   (token = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (token)
		{
			case WJB_BEGIN_ARRAY:
			case WJB_BEGIN_OBJECT:
				if (!first)
					len += 2;	/* ", " */
				if (token == WJB_BEGIN_ARRAY && v.val.array.rawScalar)
					raw_scalar = true;
				else
					len++;
				first = true;
				break;
			case WJB_KEY:
				if (!first)
					len += 2;
				len += scalar_text_length(&v, max_len) + 2; /* ": " */
				first = true;	/* no ", " before its value */
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				if (!first)
					len += 2;
				len += scalar_text_length(&v, max_len);
				first = false;
				break;
			case WJB_END_ARRAY:
			case WJB_END_OBJECT:
				if (!raw_scalar)
					len++;
				first = false;
				break;
			default:
				break;
		}
	}
	pfree(value);
	return Min(len, max_len + 1);
}

/*
 * Append to buf the envelope of event as text for NOTIFY: at most
 * ENVELOPE_NOTIFY_MAX_BYTES long, without its payload (omit_payload, or
 * when the envelope with it would be longer), and then without its
 * metadata too if need be.
 */
void
envelope_build_notify(StringInfo buf, int64 id, const DecodedEvent *event,
					  FullTransactionId txid, const char *dbname,
					  bool omit_payload)
{
	Size		max_len = ENVELOPE_NOTIFY_MAX_BYTES;
	Size		metadata_len = jsonb_text_length(event->metadata, max_len);
	int			omit = omit_payload ? ENVELOPE_OMIT_PAYLOAD : 0;
	int			start = buf->len;

	if (metadata_len > max_len)
		omit |= ENVELOPE_OMIT_PAYLOAD | ENVELOPE_OMIT_METADATA;
	else if (omit == 0 &&
			 jsonb_text_length(event->payload, max_len - metadata_len) >
			 max_len - metadata_len)
		omit = ENVELOPE_OMIT_PAYLOAD;

	/* What was measured fits; the fixed fields may still tip it over. */
	for (;;)
	{
		envelope_build(buf, id, event, txid, dbname, omit);
		if (buf->len - start <= max_len ||
			omit == (ENVELOPE_OMIT_PAYLOAD | ENVELOPE_OMIT_METADATA))
			break;
		buf->len = start;
		buf->data[start] = '\0';
		omit = (omit & ENVELOPE_OMIT_PAYLOAD) ?
			ENVELOPE_OMIT_PAYLOAD | ENVELOPE_OMIT_METADATA :
			ENVELOPE_OMIT_PAYLOAD;
	}
}

/*
 * Room for an envelope's fields but the payload and metadata, as jsonb: at
 * most about 600 bytes (a type and a database name of 255 and 63 bytes, the
 * keys, the numbers and the headers).
 */
#define ENVELOPE_JSONB_FIXED_BYTES	1024

/* Size of the stored jsonb varlena at src (possibly unaligned). */
static Size
stored_size(const char *src)
{
	uint32		header;

	memcpy(&header, src, VARHDRSZ);
	return VARSIZE(&header);
}

/* Push key and the string str[0..len) into the object being built. */
static void
push_string(JsonbParseState **state, const char *key, const char *str,
			int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	(void) pushJsonbValue(state, WJB_KEY, &v);
	v.val.string.val = (char *) str;
	v.val.string.len = len;
	(void) pushJsonbValue(state, WJB_VALUE, &v);
}

/* Push key and the number printed in digits into the object being built. */
static void
push_number(JsonbParseState **state, const char *key, const char *digits)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	(void) pushJsonbValue(state, WJB_KEY, &v);
	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
														CStringGetDatum(digits),
														ObjectIdGetDatum(InvalidOid),
														Int32GetDatum(-1)));
	(void) pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * Push key and the jsonb varlena at src (possibly unaligned) into the
 * object being built, or key_omitted: true when omitted.
 */
static void
push_jsonb(JsonbParseState **state, const char *key, const char *src,
		   bool omitted)
{
	JsonbValue	v;

	v.type = jbvString;
	if (omitted)
	{
		v.val.string.val = psprintf("%s_omitted", key);
		v.val.string.len = strlen(v.val.string.val);
		(void) pushJsonbValue(state, WJB_KEY, &v);
		v.type = jbvBool;
		v.val.boolean = true;
	}
	else
	{
		Jsonb	   *value = event_copy_jsonb(src);

		v.val.string.val = (char *) key;
		v.val.string.len = strlen(key);
		(void) pushJsonbValue(state, WJB_KEY, &v);
		v.type = jbvBinary;
		v.val.binary.data = &value->root;
		v.val.binary.len = VARSIZE(value) - VARHDRSZ;
	}
	(void) pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * The envelope of event, delivered with the given id, as jsonb: the same
 * value as its text parsed, built without the text.  Fails (54000), before
 * building anything, when the envelope would be larger than a jsonb value
 * can be.
 */
Jsonb *
envelope_build_jsonb(int64 id, const DecodedEvent *event,
					 FullTransactionId txid, const char *dbname, int omit)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;
	char		ts[MAXDATELEN + 1];
	Size		size = ENVELOPE_JSONB_FIXED_BYTES;

	if (!(omit & ENVELOPE_OMIT_PAYLOAD))
		size += stored_size(event->payload);
	if (!(omit & ENVELOPE_OMIT_METADATA))
		size += stored_size(event->metadata);
	if (size > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("envelope of event " INT64_FORMAT " is too large for jsonb",
						id),
				 errdetail("Its payload and metadata take %zu bytes; a jsonb value can hold %u.",
						   size - ENVELOPE_JSONB_FIXED_BYTES, JENTRY_OFFLENMASK)));

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_number(&state, "id", psprintf(INT64_FORMAT, id));
	push_string(&state, "type", event->type, event->type_len);
	push_jsonb(&state, "payload", event->payload,
			   (omit & ENVELOPE_OMIT_PAYLOAD) != 0);
	push_jsonb(&state, "metadata", event->metadata,
			   (omit & ENVELOPE_OMIT_METADATA) != 0);
	JsonEncodeDateTime(ts, TimestampTzGetDatum(event->emitted_at),
					   TIMESTAMPTZOID, NULL);
	push_string(&state, "emitted_at", ts, strlen(ts));
	push_number(&state, "txid",
				psprintf(UINT64_FORMAT, U64FromFullTransactionId(txid)));
	push_string(&state, "database", dbname, strlen(dbname));
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}
