/*-------------------------------------------------------------------------
 *
 * event_format.h
 *	  The byte layout of one event, shared by the buffer and the outbox.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_EVENT_FORMAT_H
#define EMISSIONS_EVENT_FORMAT_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* Longest event type, in bytes. */
#define EVENT_TYPE_MAX_BYTES	255

/* Fixed part of an encoded event: length, timestamp, type length. */
#define EVENT_HEADER_BYTES		13

/* First byte of every outbox record: the layout version of what follows. */
#define OUTBOX_RECORD_VERSION	1

/*
 * An event decoded from a record.  The pointers point into the record; the
 * JSON values are complete varlenas but may be unaligned, so use
 * emissions_event_copy_jsonb() before handing them to jsonb code.
 */
typedef struct DecodedEvent
{
	TimestampTz emitted_at;
	const char *type;
	int			type_len;
	const char *payload;
	const char *metadata;
} DecodedEvent;

extern Size emissions_event_encoded_size(int type_len, const Jsonb *payload,
										 const Jsonb *metadata);
extern void emissions_event_encode_header(char *dst, uint32 total_len,
										  TimestampTz emitted_at, int type_len);
extern uint32 emissions_event_peek_length(const char *src);
extern TimestampTz emissions_event_peek_emitted_at(const char *src);
extern bool emissions_event_decode_next(const char *data, Size len, Size *pos,
										DecodedEvent *event);
extern Jsonb *emissions_event_copy_jsonb(const char *src);
extern void emissions_event_check_record(const char *data, Size len);

#endif							/* EMISSIONS_EVENT_FORMAT_H */
