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
 * (wakeup.c), with emissions.poll_interval as the fallback; under a steady
 * stream it lets wake-ups gather before the next pass (pacing.c).  It delivers
 * with search_path set to pg_catalog, pg_temp, so that no user object can
 * stand in for what it calls; adapter code runs as its owner (adapters.c).
 * Its commits wait for their WAL flush, so that an id is seen only once it
 * is durable (commit_durably says why that is enough, and what it costs).
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
#include "utils/timestamp.h"

#include "compat.h"
#include "delivery.h"
#include "pacing.h"
#include "registry.h"
#include "stats.h"

extern PGDLLEXPORT void emissions_worker_main(Datum main_arg);

/* Set by the SIGTERM handler: the worker was asked to stop. */
static volatile sig_atomic_t terminate_requested = false;

/* What the worker reports while it sleeps (see compat.h). */
static uint32 wait_event = 0;
static uint32 hold_wait_event = 0;

/*
 * Make the worker's commits durable before anything they did is visible:
 * synchronous_commit as configured for the database (postgresql.conf,
 * ALTER SYSTEM, ALTER DATABASE), raised to "local" where that says "off".
 * Called at start and after every configuration reload (the value is set
 * at session level, above the file's, but the reset value it starts from
 * follows the file).
 *
 * This is what makes ids stable (SPEC "Stable ids"): every place an id
 * becomes visible is behind a worker commit, and a commit that waits for
 * its flush is visible nowhere before the flush.  PostgreSQL flushes the
 * commit record, then marks the transaction committed in the clog, and
 * only then takes it out of the running transactions, so:
 *
 *	 - NOTIFY: the envelopes enter the queue before the commit, but a
 *	   listener delivers an entry only once its transaction is neither
 *	   running (its snapshot) nor uncommitted (the clog), and is signalled
 *	   after the commit: a notification is always of a flushed delivery;
 *	 - emissions_events / emissions_event (and subscriptions, which read
 *	   the same log), adapter tables, retry and replay deliveries, the
 *	   reservation of ids (storage_state.c): rows a snapshot sees only once
 *	   their transaction has left the running set, hence after the flush;
 *	   emissions_stats' last_event_id is published after the commit;
 *	 - a standby: WAL is streamed only once flushed.
 *
 * A crash can lose only deliveries no one has seen: their events are
 * delivered again under new ids (above the reservation, never an id
 * seen before), and nobody saw the old ones.  The commit record's LSN is
 * also past that of every producer commit the delivery read (a snapshot
 * sees a commit only after its record is inserted), so flushing it
 * flushes theirs: the events of a producer at synchronous_commit = off
 * are seen only once its commit is durable too, and none of a
 * transaction whose commit a crash lost is ever seen.
 *
 * Not covered, as nothing in PostgreSQL can cover it: what a function
 * adapter does outside the database (a message sent, a file written)
 * happens before the commit; after a crash before it, the call is made
 * again for the same event, under a new id (the id it saw first is
 * never given to another event: storage_state.c reserves ids durably).
 *
 * A stronger configured value is kept (on with synchronous_standby_names,
 * remote_write, remote_apply): a delivery is then seen only once the
 * synchronous standbys have it as well, so an id seen before a failover to
 * one of them names the same event after it, as the user's own commits
 * survive it.  It costs each delivery the standby's round trip, as it
 * costs the user's commits, and delivery waits while no synchronous
 * standby answers, as their commits do.
 */
static void
commit_durably(void)
{
	const char *configured = GetConfigOptionResetString("synchronous_commit");

	SetConfigOption("synchronous_commit",
					strcmp(configured, "off") == 0 ? "local" : configured,
					PGC_SUSET, PGC_S_SESSION);
}

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
	Pacing		pacing = {0};
	int64		first_id;
	long		hold_us;

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
	commit_durably();
	pgstat_report_appname("emissions delivery");

	rescans = emissions_registry_rescans();
	if (!emissions_delivery_start(&state))
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
			commit_durably();
		}

		rescans = emissions_registry_rescans();
		emissions_pacing_pass_started(&pacing, GetCurrentTimestamp());
		first_id = state.store.next_id;
		status = emissions_delivery_pass(&state);
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
		emissions_pacing_pass_done(&pacing, state.store.next_id - first_id);
		pgstat_report_stat(false);

		/*
		 * Whatever committed during the pass (its own cascades included) has
		 * set the latch again, so this returns at once.
		 */
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 emissions_delivery_sleep_ms(&state),
						 emissions_wait_event(&wait_event, "EmissionsWorkerMain"));

		/*
		 * Under a steady stream, let more commits gather before the next
		 * pass.  The latch stays set meanwhile, so they send no signal.
		 */
		hold_us = emissions_pacing_hold_us(&pacing, GetCurrentTimestamp());
		if (hold_us > 0)
			(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 (hold_us + 999) / 1000,
							 emissions_wait_event(&hold_wait_event,
												  "EmissionsWorkerCoalesce"));
	}
}
