/*-------------------------------------------------------------------------
 *
 * delivery.h
 *	  The delivery worker's passes, and what it keeps between them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_DELIVERY_H
#define EMISSIONS_DELIVERY_H

#include "datatype/timestamp.h"

#include "delivery_steps.h"
#include "storage.h"

typedef struct DeliveryState
{
	char	   *dbname;
	Oid			extension_oid;	/* the extension the state was loaded from */
	StoreState	store;			/* ids and partitions (the storage layer's) */
	DeliveryWindow window;		/* where the next pass scans the outbox */
	TimestampTz next_retry_at;	/* 0: no retry waiting */
	TimestampTz next_maintenance_at;
	int			commit_failures;	/* delivery commits failed in a row */
	TimestampTz paused_until;	/* after one: no delivery before this */
} DeliveryState;

/* What a pass found, besides the events it delivered. */
typedef enum DeliveryStatus
{
	DELIVERY_DONE,
	DELIVERY_NO_EXTENSION,		/* the extension is not installed */
	DELIVERY_RECREATED			/* dropped and created again since the start */
} DeliveryStatus;

extern bool emissions_delivery_start(DeliveryState *state);
extern DeliveryStatus emissions_delivery_pass(DeliveryState *state);
extern long emissions_delivery_sleep_ms(const DeliveryState *state);

#endif							/* EMISSIONS_DELIVERY_H */
