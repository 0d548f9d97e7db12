/*-------------------------------------------------------------------------
 *
 * stats.h
 *	  Per-database counters in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_STATS_H
#define EMISSIONS_STATS_H

#include "datatype/timestamp.h"

/*
 * The counters.  A backend adds to its own copy while a transaction runs
 * (buffer.c keeps it: no lock on the hot path) and publishes it when the
 * transaction ends.
 */
typedef struct EmissionsCounters
{
	int64		buffers_started;
	int64		buffers_committed;
	int64		buffers_terminated;
	int64		buffers_spilled;
	int64		events_emitted;
	int64		events_dropped;
	int64		events_discarded;
	int64		events_persisted;
	int64		batches_persisted;
	int64		bytes_spilled;
	int64		events_delivered;
	int64		deliveries_failed;
} EmissionsCounters;

extern bool emissions_stats_available(void);
extern void emissions_stats_attach(void);
extern void emissions_stats_publish(const EmissionsCounters *counts);
extern void emissions_stats_add_delivery(int64 delivered, int64 failed,
										 TimestampTz delivered_at,
										 int64 lag_us);
extern void emissions_stats_shmem_request(void);
extern void emissions_stats_shmem_startup(void);

#endif							/* EMISSIONS_STATS_H */
