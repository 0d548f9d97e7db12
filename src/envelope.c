/*-------------------------------------------------------------------------
 *
 * envelope.c
 *	  The JSON envelope in which an event is delivered.
 *
 * {"id": 42, "type": "order.created", "payload": {...}, "metadata": {...},
 *  "emitted_at": "2026-11-29T15:33:33.123456+00:00", "txid": 1234,
 *  "database": "shop"}
 *
 * Built as text straight from the event's stored form: the payload and
 * metadata are printed by the jsonb output code, the timestamp in JSON's
 * ISO 8601 form.  NOTIFY takes the text as it is; table and function
 * adapters get it parsed into jsonb.  Without its payload (NOTIFY's size
 * limit), the envelope says "payload_omitted": true instead, and likewise
 * "metadata_omitted": true in the rare case that the metadata alone is too
 * large.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
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
void
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
