/*-------------------------------------------------------------------------
 *
 * envelope.h
 *	  The JSON envelope in which an event is delivered.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_ENVELOPE_H
#define EMISSIONS_ENVELOPE_H

#include "access/transam.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "event_format.h"

/* Largest NOTIFY payload, in bytes: NOTIFY allows less than 8000. */
#define ENVELOPE_NOTIFY_MAX_BYTES	7999

/* What envelope_build may leave out, to fit NOTIFY's limit. */
#define ENVELOPE_OMIT_PAYLOAD		0x01
#define ENVELOPE_OMIT_METADATA		0x02

extern void envelope_build_notify(StringInfo buf, int64 id,
								  const DecodedEvent *event,
								  FullTransactionId txid, const char *dbname,
								  bool omit_payload);
extern Jsonb *envelope_build_jsonb(int64 id, const DecodedEvent *event,
								   FullTransactionId txid, const char *dbname,
								   int omit);

#endif							/* EMISSIONS_ENVELOPE_H */
