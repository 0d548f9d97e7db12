/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Definition of the emissions.* configuration parameters.
 *
 * Every parameter a producing backend reads is PGC_USERSET: it only shapes
 * what the session itself does (how loud a dropped event is, whether emit
 * opens a buffer, when the buffer spills to disk).  The prefix is reserved
 * so that a misspelt emissions.* setting is reported instead of ignored.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "settings.h"

int			emissions_log_dropped = NOTICE;
bool		emissions_auto_start = false;
int			emissions_max_buffer_bytes = 8 * 1024 * 1024;

static const struct config_enum_entry log_dropped_options[] = {
	{"off", EMISSIONS_LOG_DROPPED_OFF, false},
	{"debug", DEBUG1, false},
	{"log", LOG, false},
	{"notice", NOTICE, false},
	{"warning", WARNING, false},
	{NULL, 0, false}
};

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

	MarkGUCPrefixReserved("emissions");
}
