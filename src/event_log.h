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
#include "fmgr.h"
#include "nodes/execnodes.h"

extern void event_log_insert(int part, int64 first_id, int64 last_id,
							 FullTransactionId txid, TimestampTz delivered_at,
							 bytea *data);
extern int64 event_log_max_id(void);
extern int64 event_log_last_id(void);
extern void event_log_read(ReturnSetInfo *rsinfo, int64 after_id, int32 max);

#endif							/* EMISSIONS_EVENT_LOG_H */
