/*-------------------------------------------------------------------------
 *
 * event_format.c
 *	  Encoding and decoding of one event.
 *
 * An encoded event is
 *
 *		uint32		total length, header included
 *		int64		emitted_at (TimestampTz)
 *		uint8		length of the type
 *		char[]		the type, not terminated
 *		varlena		the payload, a jsonb with its 4-byte header
 *		varlena		the metadata, likewise
 *
 * in native byte order and without padding.  The buffer keeps events in this
 * form and an outbox record is a version byte followed by whole events, so a
 * hand-off copies bytes and never re-serializes JSON.  Decoding checks every
 * length against the bytes it has, so a damaged record gives an error rather
 * than a read past its end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "event_format.h"

/*
 * Number of bytes the encoded form of an event takes.
 */
Size
emissions_event_encoded_size(int type_len, const Jsonb *payload, const Jsonb *metadata)
{
	return EVENT_HEADER_BYTES + type_len + VARSIZE(payload) + VARSIZE(metadata);
}

/*
 * Write the fixed header of an event into dst (EVENT_HEADER_BYTES bytes).
 */
void
emissions_event_encode_header(char *dst, uint32 total_len, TimestampTz emitted_at,
							  int type_len)
{
	uint8		tl = (uint8) type_len;

	memcpy(dst, &total_len, sizeof(uint32));
	memcpy(dst + 4, &emitted_at, sizeof(TimestampTz));
	memcpy(dst + 12, &tl, sizeof(uint8));
}

/*
 * Total length of the encoded event starting at src.
 */
uint32
emissions_event_peek_length(const char *src)
{
	uint32		len;

	memcpy(&len, src, sizeof(uint32));
	return len;
}

/*
 * emitted_at of the encoded event starting at src.
 */
TimestampTz
emissions_event_peek_emitted_at(const char *src)
{
	TimestampTz ts;

	memcpy(&ts, src + 4, sizeof(TimestampTz));
	return ts;
}

/* Size of the varlena at src, or 0 if fewer than 4 bytes remain. */
static Size
varlena_size_at(const char *src, Size avail)
{
	uint32		header;

	if (avail < VARHDRSZ)
		return 0;
	memcpy(&header, src, VARHDRSZ);
	return VARSIZE(&header);
}

static void
report_corrupt(Size pos)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("emissions outbox record is damaged"),
			 errdetail("An event entry at byte %zu does not fit the record.",
					   pos)));
}

/*
 * Decode the event at *pos in data[0..len) and advance *pos past it.
 * Returns false at the end of the data; raises an error if the bytes do not
 * form an event.
 */
bool
emissions_event_decode_next(const char *data, Size len, Size *pos, DecodedEvent *event)
{
	Size		start = *pos;
	Size		avail = len - start;
	uint32		total;
	Size		off;
	Size		payload_size;
	Size		metadata_size;

	if (start >= len)
		return false;
	if (avail < EVENT_HEADER_BYTES)
		report_corrupt(start);

	total = emissions_event_peek_length(data + start);
	if (total < EVENT_HEADER_BYTES || total > avail)
		report_corrupt(start);

	event->emitted_at = emissions_event_peek_emitted_at(data + start);
	event->type_len = (uint8) data[start + 12];
	event->type = data + start + EVENT_HEADER_BYTES;
	off = EVENT_HEADER_BYTES + event->type_len;

	payload_size = varlena_size_at(data + start + off, total - Min(off, total));
	if (payload_size < VARHDRSZ || off + payload_size > total)
		report_corrupt(start);
	event->payload = data + start + off;
	off += payload_size;

	metadata_size = varlena_size_at(data + start + off, total - Min(off, total));
	if (metadata_size < VARHDRSZ || off + metadata_size != total)
		report_corrupt(start);
	event->metadata = data + start + off;

	*pos = start + total;
	return true;
}

/*
 * Raise an error unless the record data[0..len) (an outbox or log row's
 * data) starts with the layout version this code reads.
 */
void
emissions_event_check_record(const char *data, Size len)
{
	if (len < 1 || data[0] != OUTBOX_RECORD_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("emissions record has an unknown layout")));
}

/*
 * Copy a (possibly unaligned) jsonb varlena into palloc'd, aligned memory.
 */
Jsonb *
emissions_event_copy_jsonb(const char *src)
{
	Size		size = varlena_size_at(src, VARHDRSZ);
	Jsonb	   *copy = palloc(size);

	memcpy(copy, src, size);
	return copy;
}
