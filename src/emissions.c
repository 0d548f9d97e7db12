/*-------------------------------------------------------------------------
 *
 * emissions.c
 *	  Module entry point: settings, shared memory, callbacks and workers.
 *
 * Loaded through shared_preload_libraries, the module reserves shared
 * memory for its counters and its registry of workers, registers the
 * launcher (which starts a delivery worker per database with the
 * extension) and hooks the utility commands that must not find a worker
 * connected.  Loaded on first use instead (no preload), it still registers
 * its settings and transaction callbacks, so events are persisted exactly
 * as with the preload; only the counters and delivery are missing, which
 * the SQL functions report.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"

#include "buffer.h"
#include "compat.h"
#include "launcher.h"
#include "registry.h"
#include "settings.h"
#include "stats.h"
#include "storage.h"
#include "utility_hook.h"
#include "wakeup.h"

EMISSIONS_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Ask for the shared memory of every part of the module. */
static void
emissions_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	emissions_stats_shmem_request();
	emissions_registry_shmem_request();
}

/* Create or attach the module's shared memory. */
static void
emissions_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	emissions_stats_shmem_startup();
	emissions_registry_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Module load.
 */
void
_PG_init(void)
{
	emissions_define_settings();
	emissions_buffer_init();
	emissions_storage_init();
	emissions_wakeup_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	emissions_launcher_register();
	emissions_utility_hook_install();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = emissions_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = emissions_shmem_startup;
}
