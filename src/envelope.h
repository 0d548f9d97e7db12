/*-------------------------------------------------------------------------
 *
 * envelope.h
 *	  The envelope in which an event is delivered: one definition, made as
 *	  text for NOTIFY and as jsonb for table and function adapters.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_ENVELOPE_H
#define EMISSIONS_ENVELOPE_H

#include "access/transam.h"
#include "utils/jsonb.h"

#include "event_format.h"

/* Largest NOTIFY payload, in bytes: NOTIFY allows less than 8000. */
#define ENVELOPE_NOTIFY_MAX_BYTES	7999

/*
 * One event's envelope.  Each form is made when first asked for and kept,
 * so that every NOTIFY of the event shares one text and every adapter one
 * jsonb.  The event's stored form must outlive the Envelope.
 */
typedef struct Envelope
{
	int64		id;
	FullTransactionId txid;
	const DecodedEvent *event;	/* payload and metadata NULL: left out */
	const char *dbname;
	char	   *notify_text[2]; /* [omit_payload], or NULL until made */
	Jsonb	   *jsonb;			/* valid once jsonb_made */
	bool		jsonb_made;
} Envelope;

extern void emissions_envelope_init(Envelope *envelope, int64 id,
									FullTransactionId txid, const DecodedEvent *event,
									const char *dbname);
extern const char *emissions_envelope_notify_text(Envelope *envelope, bool omit_payload);
extern Jsonb *emissions_envelope_jsonb(Envelope *envelope);
extern void emissions_envelope_report_too_large(int64 id);
extern void emissions_envelope_release(Envelope *envelope);

#endif							/* EMISSIONS_ENVELOPE_H */
