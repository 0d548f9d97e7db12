/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Definition of the emissions.* configuration parameters.
 *
 * Every parameter a producing backend reads is PGC_USERSET: it only shapes
 * what the session itself does (how loud a dropped event is, whether emit
 * opens a buffer, when the buffer spills to disk).  The delivery worker's
 * parameters are PGC_SIGHUP: they are the administrator's, set in
 * postgresql.conf or with ALTER SYSTEM, and the worker rereads them on
 * SIGHUP.  The limits that size the module's shared memory (how many
 * databases get a delivery worker, how many are counted) are
 * PGC_POSTMASTER, as max_worker_processes is: read once at server start,
 * before shared memory is requested.  The prefix is reserved so that a
 * misspelt emissions.* setting is reported instead of ignored.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "settings.h"

int			emissions_log_dropped = NOTICE;
bool		emissions_auto_start = false;
int			emissions_max_buffer_bytes = 8 * 1024 * 1024;
char	   *emissions_notify_channel = NULL;
int			emissions_poll_interval_ms = 1000;
int			emissions_batch_size = 1000;
int			emissions_coalesce_delay_ms = 5;
int			emissions_max_attempts = 5;
int			emissions_max_cascade_depth = 8;
int			emissions_adapter_timeout_ms = 30000;
int			emissions_retention_s = 3600;
int			emissions_max_retention_s = 7 * 24 * 3600;
int			emissions_max_workers = 64;
int			emissions_max_stats_databases = 256;

static const struct config_enum_entry log_dropped_options[] = {
	{"off", EMISSIONS_LOG_DROPPED_OFF, false},
	{"debug", DEBUG1, false},
	{"log", LOG, false},
	{"notice", NOTICE, false},
	{"warning", WARNING, false},
	{NULL, 0, false}
};

static void define_shared_memory_limits(void);

/* A channel name must fit NOTIFY's limit; empty disables the adapter. */
static bool
check_notify_channel(char **newval, void **extra, GucSource source)
{
	if (strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("A channel name is at most %d bytes long.",
							NAMEDATALEN - 1);
		return false;
	}
	return true;
}

/*
 * Register the parameters; called once from _PG_init.
 */
void
emissions_define_settings(void)
{
	DefineCustomEnumVariable("emissions.log_dropped",
							 "Message level raised when an event is dropped because no buffer is active.",
							 NULL,
							 &emissions_log_dropped,
							 NOTICE,
							 log_dropped_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("emissions.auto_start",
							 "Lets emissions_emit() open a buffer when none is active.",
							 NULL,
							 &emissions_auto_start,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("emissions.max_buffer_bytes",
							"Size above which a transaction's event buffer spills to a temporary file.",
							NULL,
							&emissions_max_buffer_bytes,
							8 * 1024 * 1024,
							8 * 1024,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("emissions.notify_channel",
							   "Channel on which every delivered event is sent with NOTIFY; empty disables it.",
							   NULL,
							   &emissions_notify_channel,
							   "emissions",
							   PGC_SIGHUP,
							   0,
							   check_notify_channel, NULL, NULL);

	DefineCustomIntVariable("emissions.poll_interval",
							"Time the delivery worker sleeps when nothing wakes it.",
							NULL,
							&emissions_poll_interval_ms,
							1000,
							10,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("emissions.batch_size",
							"Events the delivery worker delivers in one transaction, at most; a transaction's events are never split.",
							NULL,
							&emissions_batch_size,
							1000,
							1,
							INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("emissions.coalesce_delay",
							"Least time between the starts of two delivery passes under a steady stream of events; 0 runs a pass at every wake-up.",
							"Under a heavy stream (more than 4 events per step of this delay) the pace stretches in proportion to the rate, up to 4 times this delay.",
							&emissions_coalesce_delay_ms,
							5,
							0,
							1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("emissions.max_attempts",
							"Tries of a failing adapter delivery, the first included, before it becomes a dead letter.",
							NULL,
							&emissions_max_attempts,
							5,
							1,
							1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("emissions.max_cascade_depth",
							"Generations of events that handler functions may emit in cascade.",
							NULL,
							&emissions_max_cascade_depth,
							8,
							0,
							1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("emissions.adapter_timeout",
							"Longest an adapter's insert or function call for one event may run before it is cancelled and counted as failed; 0 disables the limit.",
							NULL,
							&emissions_adapter_timeout_ms,
							30000,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("emissions.retention",
							"How long delivered events stay readable through emissions_events().",
							NULL,
							&emissions_retention_s,
							3600,
							0,
							INT_MAX / 1000,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("emissions.max_retention",
							"How long a subscription that has not acknowledged delivered events can keep them; 0 means no limit.",
							NULL,
							&emissions_max_retention_s,
							7 * 24 * 3600,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	/*
	 * A module loaded on first use (no preload) may not define them (a
	 * FATAL error), and has no shared memory for them to size.
	 */
	if (process_shared_preload_libraries_in_progress)
		define_shared_memory_limits();

	MarkGUCPrefixReserved("emissions");
}

/* The PGC_POSTMASTER settings that size shared memory. */
static void
define_shared_memory_limits(void)
{
	DefineCustomIntVariable("emissions.max_workers",
							"Databases whose events are delivered at the same time, each by a delivery worker of its own.",
							"Each worker also takes a slot of max_worker_processes.",
							&emissions_max_workers,
							64,
							1,
							10000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("emissions.max_stats_databases",
							"Databases whose events are counted in emissions_stats; further databases are not counted.",
							NULL,
							&emissions_max_stats_databases,
							256,
							1,
							100000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}
