/*-------------------------------------------------------------------------
 *
 * registry.h
 *	  Shared state of the launcher and the delivery workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_REGISTRY_H
#define EMISSIONS_REGISTRY_H

#include "datatype/timestamp.h"

/* Databases that can have a delivery worker at the same time. */
#define REGISTRY_MAX_WORKERS	64

/* Partitions of the outbox and of the event log. */
#define STORE_PARTITIONS		3

extern void emissions_registry_shmem_request(void);
extern void emissions_registry_shmem_startup(void);
extern bool emissions_registry_available(void);

/* Producers and users. */
extern void emissions_registry_wake_worker(Oid dbid);
extern void emissions_registry_request_rescan(void);
extern int	emissions_registry_outbox_part(Oid dbid);
extern pid_t emissions_registry_worker_pid(Oid dbid);
extern pid_t emissions_registry_hold_worker(Oid dbid, int hold_ms);

/* Why a worker left, as it told the registry before exiting. */
typedef enum WorkerExit
{
	WORKER_EXIT_FAILED,			/* an error, a crash: retry with backoff */
	WORKER_EXIT_ABSENT,			/* the extension is not installed there */
	WORKER_EXIT_TERMINATED		/* asked to stop (SIGTERM): start again soon */
} WorkerExit;

/* The launcher. */
extern void emissions_registry_set_launcher(void);
extern bool emissions_registry_take_rescan(void);
extern int	emissions_registry_claim(Oid dbid);
extern void emissions_registry_release(int slot);
extern WorkerExit emissions_registry_slot_exit(int slot);
extern bool emissions_registry_held(Oid dbid, TimestampTz now,
									TimestampTz *until);

/* A worker. */
extern void emissions_registry_attach_worker(int slot, Oid dbid);
extern void emissions_registry_mark_exit(WorkerExit exit);
extern void emissions_registry_set_outbox_part(int part);

#endif							/* EMISSIONS_REGISTRY_H */
