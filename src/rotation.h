/*-------------------------------------------------------------------------
 *
 * rotation.h
 *	  Keeping the outbox and the event log small without vacuum.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_ROTATION_H
#define EMISSIONS_ROTATION_H

#include "delivery.h"

extern void rotation_load_state(DeliveryState *state);
extern void rotation_maintain(DeliveryState *state, TimestampTz now);
extern void rotation_reserve_ids(DeliveryState *state, int64 count);

#endif							/* EMISSIONS_ROTATION_H */
