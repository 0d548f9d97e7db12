/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The delivery worker of one database: its life and its main loop.
 *
 * Started by the launcher for one database, as worker_spi's workers are
 * built: SIGTERM ends it at the next CHECK_FOR_INTERRUPTS (and the
 * launcher, told it was asked to stop, starts it again without backoff:
 * pg_terminate_backend() is a request, not a failure), SIGHUP rereads
 * the settings, and it sleeps on its latch, which committing producers set
 * (wakeup.c), with emissions.poll_interval as the fallback.  It delivers
 * with search_path set to pg_catalog, pg_temp, so that no user object can
 * stand in for what it calls; adapter code runs as its owner (adapters.c).
 * Its commits do not wait for their WAL flush (delivery.c says why that is
 * safe), which takes a disk flush off every delivery's latency.
 *
 * It runs only once attached to the registry slot its launcher claimed for
 * it, which no other worker of its database can hold (registry.c): a
 * worker whose slot was given to another, or whose database is held off,
 * exits at once.
 *
 * If the extension is not installed in its database, or is dropped while
 * it runs, it says so in its registry slot and exits, and the launcher
 * forgets the database until the next CREATE EXTENSION (the slot records
 * how many CREATE EXTENSIONs it had seen before looking, so one that
 * commits meanwhile is not missed).  If the extension is dropped and
 * created again in one transaction, the worker's ids, reservation and log
 * partition belong to the old tables: it exits and the launcher starts a
 * fresh one at once, which loads the new state.  An error ends the
 * worker (the launcher starts it again, with backoff): its transaction is
 * rolled back, so nothing was delivered twice.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"

#include "compat.h"
#include "delivery.h"
#include "registry.h"
#include "stats.h"

extern PGDLLEXPORT void emissions_worker_main(Datum main_arg);

/* Set by the SIGTERM handler: the worker was asked to stop. */
static volatile sig_atomic_t terminate_requested = false;

/* What the worker reports while it sleeps (see compat.h). */
static uint32 wait_event = 0;

/* SIGTERM: remember the request, then die() as any backend would. */
static void
worker_sigterm(SIGNAL_ARGS)
{
	terminate_requested = true;
	die(postgres_signal_arg);
}

/* before_shmem_exit callback: tell the launcher a SIGTERM ended us. */
static void
note_termination(int code, Datum arg)
{
	if (terminate_requested)
		emissions_registry_mark_exit(WORKER_EXIT_TERMINATED);
}

/*
 * Entry point of a delivery worker; main_arg is the database's OID and
 * bgw_extra holds the registry slot claimed for it (a WorkerClaim).
 */
void
emissions_worker_main(Datum main_arg)
{
	Oid			dbid = DatumGetObjectId(main_arg);
	WorkerClaim claim;
	DeliveryState state;
	uint64		rescans;
	DeliveryStatus status;

	memcpy(&claim, MyBgworkerEntry->bgw_extra, sizeof(WorkerClaim));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();

	if (!emissions_registry_attach_worker(&claim, dbid))
		proc_exit(0);
	before_shmem_exit(note_termination, (Datum) 0);
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("emissions delivery");

	rescans = emissions_registry_rescans();
	if (!delivery_start(&state))
	{
		emissions_registry_mark_absent(rescans);
		proc_exit(0);
	}
	emissions_stats_attach();
	ereport(DEBUG1,
			(errmsg("emissions delivery worker started for database \"%s\"",
					state.dbname)));

	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		rescans = emissions_registry_rescans();
		status = delivery_pass(&state);
		if (status == DELIVERY_NO_EXTENSION)
			emissions_registry_mark_absent(rescans);
		if (status == DELIVERY_RECREATED)
		{
			ereport(LOG,
					(errmsg("emissions delivery worker for database \"%s\" restarts: the extension was created again",
							state.dbname)));
			emissions_registry_mark_exit(WORKER_EXIT_RESTART);
		}
		if (status != DELIVERY_DONE)
			proc_exit(0);
		emissions_registry_pass_committed();
		pgstat_report_stat(false);

		/*
		 * Whatever committed during the pass (its own cascades included) has
		 * set the latch again, so this returns at once.
		 */
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 delivery_sleep_ms(&state),
						 emissions_wait_event(&wait_event, "EmissionsWorkerMain"));
	}
}
