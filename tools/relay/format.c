/*-------------------------------------------------------------------------
 *
 * format.c
 *	  What an event looks like outside PostgreSQL: the delivery envelope
 *	  or CloudEvents 1.0 JSON, its idempotency key, and the --types globs.
 *
 * The envelope is the one the worker NOTIFYs (src/envelope.c), always with
 * its payload:
 *	 {"id": 42, "type": "order.created", "payload": {...}, "metadata": {...},
 *	  "emitted_at": "2026-11-29T15:33:33.123456+00:00", "txid": 1234,
 *	  "database": "shop"}
 *
 * CloudEvents (structured mode, https://github.com/cloudevents/spec):
 *	 specversion "1.0"; id the event id as a string (unique within the
 *	 source); source "/emissions/DATABASE" unless --source names another
 *	 URI-reference; type the event type; time emitted_at (RFC 3339, UTC);
 *	 datacontenttype "application/json"; data the payload; traceparent and
 *	 tracestate from the metadata, when it has them (the distributed
 *	 tracing extension); emissionstxid the emitting transaction's id.
 *	 The rest of the metadata is not carried: CloudEvents extension
 *	 attributes are scalars.
 *
 * The key that names an event outside, as JetStream's Nats-Msg-Id and as
 * the webhook's Idempotency-Key, is "DATABASE:ID": ids are unique within
 * a database and never reused (SPEC "Stable ids").
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "relay.h"

/* Append the envelope of ev. */
static void
format_envelope(Buf *b, const RelayEvent *ev, const FormatContext *ctx)
{
	buf_puts(b, "{\"id\": ");
	buf_put_int(b, ev->id);
	buf_puts(b, ", \"type\": ");
	buf_json_string(b, ev->type);
	buf_puts(b, ", \"payload\": ");
	buf_append(b, ev->payload, ev->payload_len);
	buf_puts(b, ", \"metadata\": ");
	buf_append(b, ev->metadata, ev->metadata_len);
	buf_puts(b, ", \"emitted_at\": ");
	buf_puts(b, ev->emitted_at);
	buf_puts(b, ", \"txid\": ");
	buf_puts(b, ev->txid);
	buf_puts(b, ", \"database\": ");
	buf_json_string(b, ctx->database);
	buf_puts(b, "}");
}

/* Append ev as a CloudEvents 1.0 JSON object (structured mode). */
static void
format_cloudevent(Buf *b, const RelayEvent *ev, const FormatContext *ctx)
{
	buf_printf(b, "{\"specversion\": \"1.0\", \"id\": \"%lld\", \"source\": ",
			   ev->id);
	buf_json_string(b, ctx->source);
	buf_puts(b, ", \"type\": ");
	buf_json_string(b, ev->type);
	buf_puts(b, ", \"time\": ");
	buf_puts(b, ev->emitted_at);
	buf_puts(b, ", \"datacontenttype\": \"application/json\"");
	if (ev->traceparent)
	{
		buf_puts(b, ", \"traceparent\": ");
		buf_json_string(b, ev->traceparent);
	}
	if (ev->tracestate)
	{
		buf_puts(b, ", \"tracestate\": ");
		buf_json_string(b, ev->tracestate);
	}
	buf_printf(b, ", \"emissionstxid\": \"%s\", \"data\": ", ev->txid);
	buf_append(b, ev->payload, ev->payload_len);
	buf_puts(b, "}");
}

/* Append ev in the given format. */
void
format_event(Buf *b, const RelayEvent *ev, RelayFormat format,
			 const FormatContext *ctx)
{
	if (format == FORMAT_CLOUDEVENTS)
		format_cloudevent(b, ev, ctx);
	else
		format_envelope(b, ev, ctx);
}

/* Append the key that names ev outside: "DATABASE:ID". */
void
format_event_key(Buf *b, const RelayEvent *ev, const FormatContext *ctx)
{
	buf_puts(b, ctx->database);
	buf_puts(b, ":");
	buf_put_int(b, ev->id);
}

/*
 * Whether type matches glob, '*' matching any run of characters (dots
 * too), as adapters' types do: "order.*" matches "order.created", not
 * "orders.x".
 */
bool
glob_match(const char *glob, const char *type)
{
	const char *star = NULL;
	const char *retry = NULL;

	while (*type)
	{
		if (*glob == '*')
		{
			star = glob++;
			retry = type;
		}
		else if (*glob == *type)
		{
			glob++;
			type++;
		}
		else if (star)
		{
			glob = star + 1;
			type = ++retry;
		}
		else
			return false;
	}
	while (*glob == '*')
		glob++;
	return *glob == '\0';
}

/* Whether type matches one of globs (NULL: every type does). */
bool
types_match(char *const *globs, const char *type)
{
	if (globs == NULL)
		return true;
	for (; *globs; globs++)
		if (glob_match(*globs, type))
			return true;
	return false;
}
