/*-------------------------------------------------------------------------
 *
 * event_log.h
 *	  Delivered events kept for catch-up: writing and reading them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_EVENT_LOG_H
#define EMISSIONS_EVENT_LOG_H

#include "access/transam.h"
#include "datatype/timestamp.h"

extern void event_log_insert(int part, int64 first_id, int64 last_id,
							 FullTransactionId txid, TimestampTz delivered_at,
							 bytea *data);
extern int64 event_log_max_id(void);

#endif							/* EMISSIONS_EVENT_LOG_H */
