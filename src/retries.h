/*-------------------------------------------------------------------------
 *
 * retries.h
 *	  Failed adapter deliveries: retries with backoff, then dead letters.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_RETRIES_H
#define EMISSIONS_RETRIES_H

#include "adapters.h"

extern int64 emissions_retries_record(const Adapter *adapter, EventSource *source,
									  const ErrorData *error, TimestampTz now,
									  TimestampTz *retry_at);
extern void emissions_retries_run_due(List *adapters, TimestampTz now,
									  int64 *delivered, int64 *failed);
extern TimestampTz emissions_retries_next_due(void);

#endif							/* EMISSIONS_RETRIES_H */
