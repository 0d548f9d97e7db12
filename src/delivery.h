/*-------------------------------------------------------------------------
 *
 * delivery.h
 *	  What the delivery worker keeps between its passes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_DELIVERY_H
#define EMISSIONS_DELIVERY_H

#include "datatype/timestamp.h"

#include "registry.h"

typedef struct DeliveryState
{
	char	   *dbname;
	int64		next_id;		/* id of the next event delivered */
	int64		reserved_id;	/* ids up to here are durably reserved */
	int			outbox_part;	/* partition producers write to */
	int			log_part;		/* partition delivered events go to */
	TimestampTz log_part_since;
	TimestampTz log_closed_at[STORE_PARTITIONS];	/* 0: holds nothing */
	TimestampTz next_retry_at;	/* 0: no retry waiting */
	TimestampTz next_maintenance_at;
} DeliveryState;

extern bool delivery_start(DeliveryState *state);
extern bool delivery_pass(DeliveryState *state);
extern long delivery_sleep_ms(const DeliveryState *state);

#endif							/* EMISSIONS_DELIVERY_H */
