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
#include "storage/block.h"
#include "storage/condition_variable.h"

extern void emissions_registry_shmem_request(void);
extern void emissions_registry_shmem_startup(void);
extern bool emissions_registry_available(void);

/* Producers and users. */
extern void emissions_registry_wake_worker(Oid dbid);
extern void emissions_registry_request_rescan(void);
extern int	emissions_registry_outbox_part(Oid dbid);
extern void emissions_registry_note_outbox_block(Oid dbid, int part,
												 BlockNumber block);
extern pid_t emissions_registry_worker_pid(Oid dbid);
extern ConditionVariable *emissions_registry_pass_cv(Oid dbid);
extern int	emissions_registry_hold_workers(Oid dbid, int hold_ms,
											pid_t **pids);
extern bool emissions_registry_worker_running(Oid dbid, pid_t pid);
extern void emissions_registry_release_hold(Oid dbid);

/* Why a worker left, as it told the registry before exiting. */
typedef enum WorkerExit
{
	WORKER_EXIT_FAILED,			/* an error, a crash: retry with backoff */
	WORKER_EXIT_ABSENT,			/* the extension is not installed there */
	WORKER_EXIT_TERMINATED,		/* asked to stop (SIGTERM): start again soon */
	WORKER_EXIT_RESTART			/* the extension was recreated: start again */
} WorkerExit;

/* Where a slot is in its life. */
typedef enum SlotState
{
	SLOT_FREE,
	SLOT_CLAIMED,				/* a launcher started a worker for it */
	SLOT_RUNNING,				/* the worker attached to it */
	SLOT_EXITED					/* the worker left; a launcher collects it */
} SlotState;

/* What a launcher sees of a slot in use. */
typedef struct SlotView
{
	int			slot;
	uint32		generation;
	SlotState	state;
	Oid			dbid;
	WorkerExit	exit;			/* SLOT_EXITED: why */
	uint64		absent_seen;	/* WORKER_EXIT_ABSENT: rescans seen then */
	TimestampTz claimed_at;
} SlotView;

/* What a worker is started with (in bgw_extra): the slot claimed for it. */
typedef struct WorkerClaim
{
	int			slot;
	uint32		generation;
} WorkerClaim;

/* How a claim went. */
typedef enum ClaimResult
{
	CLAIM_OK,
	CLAIM_TAKEN,				/* the database has a slot already */
	CLAIM_FULL					/* no free slot */
} ClaimResult;

/* The launcher. */
extern void emissions_registry_set_launcher(void);
extern uint64 emissions_registry_rescans(void);
extern int	emissions_registry_list(SlotView **views);
extern ClaimResult emissions_registry_claim(Oid dbid, WorkerClaim *claim);
extern bool emissions_registry_release(int slot, uint32 generation,
									   SlotView *view);
extern bool emissions_registry_held(Oid dbid, TimestampTz now,
									TimestampTz *until);

/* A worker. */
extern bool emissions_registry_attach_worker(const WorkerClaim *claim,
											 Oid dbid);
extern void emissions_registry_mark_exit(WorkerExit exit);
extern void emissions_registry_mark_absent(uint64 rescans_seen);
extern void emissions_registry_set_outbox_part(int part);
extern void emissions_registry_pass_committed(void);
extern void emissions_registry_take_outbox_blocks(BlockNumber *blocks);

#endif							/* EMISSIONS_REGISTRY_H */
