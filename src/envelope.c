/*-------------------------------------------------------------------------
 *
 * envelope.c
 *	  The envelope in which an event is delivered: one definition, made as
 *	  text for NOTIFY and as jsonb for table and function adapters.
 *
 * {"id": 42, "type": "order.created", "payload": {...}, "metadata": {...},
 *  "emitted_at": "2026-11-29T15:33:33.123456+00:00", "txid": 1234,
 *  "database": "shop"}
 *
 * envelope_fields() is the one place that says what an envelope holds: its
 * fields, in the order the text shows them.  Without its payload (NOTIFY's
 * size limit, an adapter's omit_payload, a dead letter), the envelope says
 * "payload_omitted": true instead, and likewise "metadata_omitted": true.
 * Both forms are written from that list, straight from the event's stored
 * form, and neither is ever parsed back:
 *
 * - the text, for NOTIFY: the payload and metadata printed by the jsonb
 *	 output code, the timestamp in JSON's ISO 8601 form.  Whether it fits
 *	 NOTIFY's limit is measured before it is printed: the text of a payload
 *	 can be far larger than its stored form (a string of control
 *	 characters, six bytes each once escaped; a number such as 1e100000),
 *	 too large to build at all, and only a text that fits is ever built.
 *	 The payload goes first, then the metadata if need be.
 *
 * - jsonb, for the table and function adapters (adapters.c keeps it for
 *	 all of them): written in its binary form by jsonb_writer.c, the keys
 *	 in jsonb's order, the stored payload and metadata copied as they are
 *	 rather than unpacked into a tree and serialized again (which is what
 *	 pushJsonbValue() does with a jsonb value).  An envelope whose payload
 *	 and metadata together are larger than a jsonb value can be has no
 *	 jsonb form; the adapters that want it fail with 54000.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "envelope.h"
#include "jsonb_writer.h"

/* What an envelope may leave out. */
#define OMIT_PAYLOAD		0x01
#define OMIT_METADATA		0x02
#define OMIT_BOTH			(OMIT_PAYLOAD | OMIT_METADATA)

/* Number of fields of an envelope, whatever it leaves out. */
#define ENVELOPE_FIELDS		7

/*
 * Room for an envelope's fields but the payload and metadata, as jsonb: at
 * most about 600 bytes (a type and a database name of 255 and 63 bytes, the
 * keys, the numbers and the headers).
 */
#define ENVELOPE_JSONB_FIXED_BYTES	1024

typedef enum FieldKind
{
	FIELD_NUMBER,				/* digits: a JSON number */
	FIELD_STRING,				/* a JSON string */
	FIELD_TRUE,					/* the marker of what was left out */
	FIELD_JSONB					/* a stored jsonb varlena, maybe unaligned */
} FieldKind;

typedef struct EnvelopeField
{
	const char *key;
	FieldKind	kind;
	const char *value;			/* digits, string or stored jsonb */
	int			len;			/* FIELD_STRING: its length */
} EnvelopeField;

/* The fields of one envelope, and the room their values are printed in. */
typedef struct EnvelopeFields
{
	EnvelopeField field[ENVELOPE_FIELDS];
	char		id[MAXINT8LEN + 1];
	char		txid[MAXINT8LEN + 1];
	char		emitted_at[MAXDATELEN + 1];
} EnvelopeFields;

/*
 * The order of each set of keys (by what is left out) as jsonb keeps them,
 * and their binary form, made once per backend.
 */
typedef struct JsonbShape
{
	JsonbKeys  *keys;
	int			order[ENVELOPE_FIELDS]; /* field indexes, in key order */
} JsonbShape;

static JsonbShape *jsonb_shapes[OMIT_BOTH + 1];

/*
 * Set up envelope for the event delivered with the given id.  With its
 * payload and metadata NULL, the envelope leaves them out (a dead letter's
 * envelope when the whole one was too large).
 */
void
emissions_envelope_init(Envelope *envelope, int64 id, FullTransactionId txid,
						const DecodedEvent *event, const char *dbname)
{
	memset(envelope, 0, sizeof(Envelope));
	envelope->id = id;
	envelope->txid = txid;
	envelope->event = event;
	envelope->dbname = dbname;
}

/* What the event of envelope has no payload or metadata for. */
static int
missing_parts(const Envelope *envelope)
{
	return (envelope->event->payload == NULL ? OMIT_PAYLOAD : 0) |
		(envelope->event->metadata == NULL ? OMIT_METADATA : 0);
}

static void
set_field(EnvelopeField *field, const char *key, FieldKind kind,
		  const char *value, int len)
{
	field->key = key;
	field->kind = kind;
	field->value = value;
	field->len = len;
}

/*
 * The fields of envelope, leaving out what omit says, in the order of its
 * text; their values point into f and into the event.
 */
static void
envelope_fields(const Envelope *envelope, int omit, EnvelopeFields *f)
{
	const DecodedEvent *event = envelope->event;

	snprintf(f->id, sizeof(f->id), INT64_FORMAT, envelope->id);
	snprintf(f->txid, sizeof(f->txid), UINT64_FORMAT,
			 U64FromFullTransactionId(envelope->txid));
	JsonEncodeDateTime(f->emitted_at, TimestampTzGetDatum(event->emitted_at),
					   TIMESTAMPTZOID, NULL);

	set_field(&f->field[0], "id", FIELD_NUMBER, f->id, 0);
	set_field(&f->field[1], "type", FIELD_STRING, event->type,
			  event->type_len);
	if (omit & OMIT_PAYLOAD)
		set_field(&f->field[2], "payload_omitted", FIELD_TRUE, NULL, 0);
	else
		set_field(&f->field[2], "payload", FIELD_JSONB, event->payload, 0);
	if (omit & OMIT_METADATA)
		set_field(&f->field[3], "metadata_omitted", FIELD_TRUE, NULL, 0);
	else
		set_field(&f->field[3], "metadata", FIELD_JSONB, event->metadata, 0);
	set_field(&f->field[4], "emitted_at", FIELD_STRING, f->emitted_at,
			  strlen(f->emitted_at));
	set_field(&f->field[5], "txid", FIELD_NUMBER, f->txid, 0);
	set_field(&f->field[6], "database", FIELD_STRING, envelope->dbname,
			  strlen(envelope->dbname));
}

/*
 * Append str[0..len) to buf as a JSON string.  escape_json() wants a
 * terminated string, which the stored type is not.
 */
static void
append_json_string(StringInfo buf, const char *str, int len)
{
	char	   *copy = pnstrdup(str, len);

	escape_json(buf, copy);
	pfree(copy);
}

/* Append the jsonb varlena at src (possibly unaligned) as JSON text. */
static void
append_jsonb(StringInfo buf, const char *src)
{
	Jsonb	   *value = emissions_event_copy_jsonb(src);

	(void) JsonbToCString(buf, &value->root, VARSIZE(value));
	pfree(value);
}

/* Append the envelope of fields f to buf as JSON text. */
static void
write_text(StringInfo buf, const EnvelopeFields *f)
{
	int			i;

	appendStringInfoChar(buf, '{');
	for (i = 0; i < ENVELOPE_FIELDS; i++)
	{
		const EnvelopeField *field = &f->field[i];

		if (i > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, field->key);
		appendStringInfoString(buf, ": ");
		switch (field->kind)
		{
			case FIELD_NUMBER:
				appendStringInfoString(buf, field->value);
				break;
			case FIELD_STRING:
				append_json_string(buf, field->value, field->len);
				break;
			case FIELD_TRUE:
				appendStringInfoString(buf, "true");
				break;
			case FIELD_JSONB:
				append_jsonb(buf, field->value);
				break;
		}
	}
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
	Jsonb	   *value = emissions_event_copy_jsonb(src);
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
 * The envelope as text for NOTIFY: at most ENVELOPE_NOTIFY_MAX_BYTES long,
 * without its payload (omit_payload, or when the envelope with it would be
 * longer), and then without its metadata too if need be.  Made on first
 * use, in CurrentMemoryContext.
 */
const char *
emissions_envelope_notify_text(Envelope *envelope, bool omit_payload)
{
	const DecodedEvent *event = envelope->event;
	Size		max_len = ENVELOPE_NOTIFY_MAX_BYTES;
	Size		metadata_len = 0;
	int			omit = missing_parts(envelope);
	EnvelopeFields fields;
	StringInfoData buf;

	if (envelope->notify_text[omit_payload] != NULL)
		return envelope->notify_text[omit_payload];

	if (omit_payload)
		omit |= OMIT_PAYLOAD;
	if (!(omit & OMIT_METADATA))
		metadata_len = jsonb_text_length(event->metadata, max_len);
	if (metadata_len > max_len)
		omit = OMIT_BOTH;
	else if (!(omit & OMIT_PAYLOAD) &&
			 jsonb_text_length(event->payload, max_len - metadata_len) >
			 max_len - metadata_len)
		omit |= OMIT_PAYLOAD;

	/* What was measured fits; the fixed fields may still tip it over. */
	initStringInfo(&buf);
	for (;;)
	{
		envelope_fields(envelope, omit, &fields);
		write_text(&buf, &fields);
		if (buf.len <= max_len || omit == OMIT_BOTH)
			break;
		resetStringInfo(&buf);
		omit = (omit & OMIT_PAYLOAD) ? OMIT_BOTH : omit | OMIT_PAYLOAD;
	}
	envelope->notify_text[omit_payload] = buf.data;
	return buf.data;
}

/*
 * The key order and binary keys of envelopes leaving out omit, from the
 * fields f of one of them; made once per backend.
 */
static const JsonbShape *
jsonb_shape(int omit, const EnvelopeFields *f)
{
	JsonbShape *shape = jsonb_shapes[omit];
	const char *names[ENVELOPE_FIELDS];
	MemoryContext oldcxt;
	int			i;

	if (shape != NULL)
		return shape;
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	shape = palloc(sizeof(JsonbShape));
	for (i = 0; i < ENVELOPE_FIELDS; i++)
	{
		const char *key = f->field[i].key;
		int			j;

		/* Insertion sort: shorter keys first, then bytewise. */
		for (j = i; j > 0; j--)
		{
			const char *before = f->field[shape->order[j - 1]].key;

			if (emissions_jsonb_key_compare(before, strlen(before),
											key, strlen(key)) < 0)
				break;
			shape->order[j] = shape->order[j - 1];
		}
		shape->order[j] = i;
	}
	for (i = 0; i < ENVELOPE_FIELDS; i++)
		names[i] = f->field[shape->order[i]].key;
	shape->keys = emissions_jsonb_keys_make(names, ENVELOPE_FIELDS);
	MemoryContextSwitchTo(oldcxt);
	jsonb_shapes[omit] = shape;
	return shape;
}

/*
 * The envelope of fields f, leaving out omit, as jsonb, written in a buffer
 * of size bytes to start with.
 */
static Jsonb *
write_jsonb(const EnvelopeFields *f, int omit, Size size)
{
	const JsonbShape *shape = jsonb_shape(omit, f);
	JsonbObjectWriter w;
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	enlargeStringInfo(&buf, size);
	emissions_jsonb_begin_root(&w, &buf, shape->keys);
	for (i = 0; i < ENVELOPE_FIELDS; i++)
	{
		const EnvelopeField *field = &f->field[shape->order[i]];

		switch (field->kind)
		{
			case FIELD_NUMBER:
				emissions_jsonb_put_numeric(&w,
											DatumGetNumeric(DirectFunctionCall3(numeric_in,
																	  CStringGetDatum(field->value),
																	  ObjectIdGetDatum(InvalidOid),
																	  Int32GetDatum(-1))));
				break;
			case FIELD_STRING:
				emissions_jsonb_put_string(&w, field->value, field->len);
				break;
			case FIELD_TRUE:
				emissions_jsonb_put_bool(&w, true);
				break;
			case FIELD_JSONB:
				{
					Jsonb	   *value = emissions_event_copy_jsonb(field->value);

					emissions_jsonb_put_jsonb(&w, value);
					pfree(value);
				}
				break;
		}
	}
	return emissions_jsonb_end_root(&w);
}

/* Size of the stored jsonb varlena at src (possibly unaligned). */
static Size
stored_size(const char *src)
{
	uint32		header;

	memcpy(&header, src, VARHDRSZ);
	return VARSIZE(&header);
}

/*
 * The envelope as jsonb, the same value as its text parsed (when that
 * keeps its payload), or NULL when it would be larger than a jsonb value
 * can be.  Made on first use, in CurrentMemoryContext.
 */
Jsonb *
emissions_envelope_jsonb(Envelope *envelope)
{
	const DecodedEvent *event = envelope->event;
	int			omit = missing_parts(envelope);
	Size		size = ENVELOPE_JSONB_FIXED_BYTES;
	EnvelopeFields fields;

	if (envelope->jsonb_made)
		return envelope->jsonb;
	envelope->jsonb_made = true;

	if (!(omit & OMIT_PAYLOAD))
		size += stored_size(event->payload);
	if (!(omit & OMIT_METADATA))
		size += stored_size(event->metadata);
	if (size > JENTRY_OFFLENMASK)
		return NULL;

	envelope_fields(envelope, omit, &fields);
	envelope->jsonb = write_jsonb(&fields, omit, size);
	return envelope->jsonb;
}

/*
 * Raise the error (54000) an adapter call fails with when the envelope of
 * event id has no jsonb form (emissions_envelope_jsonb() returned NULL).
 */
void
emissions_envelope_report_too_large(int64 id)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("envelope of event " INT64_FORMAT " is too large for jsonb",
					id),
			 errdetail("Its payload and metadata together take more than the %u bytes a jsonb value can hold.",
					   JENTRY_OFFLENMASK)));
}

/* Free the forms of envelope that were made. */
void
emissions_envelope_release(Envelope *envelope)
{
	if (envelope->notify_text[0] != NULL)
		pfree(envelope->notify_text[0]);
	if (envelope->notify_text[1] != NULL)
		pfree(envelope->notify_text[1]);
	if (envelope->jsonb != NULL)
		pfree(envelope->jsonb);
	envelope->notify_text[0] = envelope->notify_text[1] = NULL;
	envelope->jsonb = NULL;
	envelope->jsonb_made = false;
}
