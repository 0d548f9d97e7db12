/*-------------------------------------------------------------------------
 *
 * subscriptions.h
 *	  Durable consumers: named positions in the delivered stream.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_SUBSCRIPTIONS_H
#define EMISSIONS_SUBSCRIPTIONS_H

#include "datatype/timestamp.h"

extern bool emissions_subscriptions_release(Oid partition,
											TimestampTz closed_at,
											TimestampTz now);

#endif							/* EMISSIONS_SUBSCRIPTIONS_H */
