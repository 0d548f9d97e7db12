/*-------------------------------------------------------------------------
 *
 * adapters.h
 *	  Delivery targets: loading them and delivering events to them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_ADAPTERS_H
#define EMISSIONS_ADAPTERS_H

#include "access/transam.h"
#include "executor/spi.h"
#include "utils/elog.h"
#include "utils/jsonb.h"

#include "envelope.h"

typedef enum AdapterKind
{
	ADAPTER_NOTIFY,
	ADAPTER_TABLE,
	ADAPTER_FUNCTION
} AdapterKind;

typedef struct Adapter
{
	char	   *name;
	AdapterKind kind;
	char	   *target;			/* channel, qualified table or function
								 * signature */
	char	   *types;			/* comma-separated globs */
	Oid			owner;
	int			max_attempts;	/* 0: emissions.max_attempts */
	bool		omit_payload;	/* notify: envelopes never carry the payload */
	SPIPlanPtr	insert_plan;	/* table: prepared on first use, kept */
} Adapter;

/* One event on its way to the adapters of a delivery transaction. */
typedef struct OutgoingEvent
{
	int64		id;
	FullTransactionId txid;
	int			depth;			/* cascade generation */
	const char *type;
	int			type_len;
	TimestampTz emitted_at;		/* 0 for a retry */
	const char *dbname;
	struct varlena *envelope;	/* jsonb, maybe TOASTed; NULL: too large */
} OutgoingEvent;

/*
 * The events of one call, produced one at a time so that a transaction of
 * any size is delivered in bounded memory.  next() fills *event, whose
 * pointers stay valid until the following next() or rewind(); it returns
 * false after the last event.  rewind() starts over.
 */
typedef struct EventSource
{
	bool		(*next) (struct EventSource *source, OutgoingEvent *event);
	void		(*rewind) (struct EventSource *source);
} EventSource;

/* An EventSource over an array of events already in memory. */
typedef struct ArraySource
{
	EventSource base;
	OutgoingEvent *events;
	int			n;
	int			pos;
} ArraySource;

extern void emissions_array_source_init(ArraySource *source, OutgoingEvent *events,
										int n);

/*
 * The events of one source transaction that table or function adapters
 * want, each with its envelope made once for all of them.
 */
typedef struct OutgoingBatch OutgoingBatch;

extern OutgoingBatch *emissions_outgoing_batch_create(const char *dbname,
											 MemoryContext cxt);
extern void emissions_outgoing_batch_add(OutgoingBatch *batch, Envelope *envelope,
										 int depth);
extern EventSource *emissions_outgoing_batch_source(OutgoingBatch *batch,
													const Adapter *adapter);
extern void emissions_outgoing_batch_free(OutgoingBatch *batch);

extern void emissions_adapters_init(void);
extern List *emissions_adapters_load(void);
extern bool emissions_adapter_wants(const Adapter *adapter, const char *type, int len);
extern bool emissions_adapter_deliver(Adapter *adapter, EventSource *source,
									  ErrorData **error);
extern Jsonb *emissions_outgoing_envelope_jsonb(const OutgoingEvent *event);
extern Jsonb *emissions_outgoing_envelope_without_contents(const OutgoingEvent *event);
extern int	emissions_adapter_max_attempts(const Adapter *adapter);
extern void emissions_adapter_check_target_owner(const char *target, Oid target_owner,
												 Oid adapter_owner);

#endif							/* EMISSIONS_ADAPTERS_H */
