/*-------------------------------------------------------------------------
 *
 * event_log.h
 *	  Catch-up readers: delivered events read back from the event log.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_EVENT_LOG_H
#define EMISSIONS_EVENT_LOG_H

#include "fmgr.h"
#include "nodes/execnodes.h"

extern void emissions_event_log_read(ReturnSetInfo *rsinfo, int64 after_id, int32 max);

#endif							/* EMISSIONS_EVENT_LOG_H */
