/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL-callable buffer functions and the checks on their input.
 *
 * emissions_start, emissions_emit, emissions_flush, emissions_commit,
 * emissions_terminate and emissions_active, with the return values of the
 * contract: NULL or false where there is no active buffer, never an error
 * for that.  Bad input is rejected before the buffer is looked at, so it
 * always gets its error.  emissions_emit does its checks on the arguments
 * alone (no catalog access) and copies the event once, into the buffer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "api.h"
#include "buffer.h"
#include "event_format.h"
#include "settings.h"
#include "stats.h"

PG_FUNCTION_INFO_V1(emissions_start);
PG_FUNCTION_INFO_V1(emissions_emit);
PG_FUNCTION_INFO_V1(emissions_flush);
PG_FUNCTION_INFO_V1(emissions_commit);
PG_FUNCTION_INFO_V1(emissions_terminate);
PG_FUNCTION_INFO_V1(emissions_active);
PG_FUNCTION_INFO_V1(emissions_buffer_status);

/* Refuse to run inside a parallel operation; the buffer is backend-local. */
static void
check_not_parallel(void)
{
	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot use emissions during a parallel operation"),
				 errhint("The emissions functions are PARALLEL UNSAFE; do not mark them otherwise.")));
}

/* Refuse to emit where nothing could be written. */
static void
check_writable(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot emit events during recovery"),
				 errhint("Events can only be emitted on the primary server.")));
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot emit events in a read-only transaction")));
}

/*
 * Raise an error unless the event type is 1 to 255 bytes of [A-Za-z0-9_.:-].
 */
void
emissions_check_event_type(const char *type, int len)
{
	int			i;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event type must not be empty")));
	if (len > EVENT_TYPE_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event type is too long"),
				 errdetail("The type is %d bytes long; the limit is %d bytes.",
						   len, EVENT_TYPE_MAX_BYTES)));
	for (i = 0; i < len; i++)
	{
		char		c = type[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
			c == '-')
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event type \"%s\"", pnstrdup(type, len)),
				 errdetail("Byte %d is not allowed in an event type.", i + 1),
				 errhint("Use only ASCII letters, digits, and the characters \"_\", \".\", \":\" and \"-\".")));
	}
}

/* A jsonb constant parsed once and kept for the life of the backend. */
static Jsonb *
jsonb_constant(Jsonb **cache, const char *text)
{
	if (*cache == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		*cache = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													CStringGetDatum(text)));
		MemoryContextSwitchTo(oldcxt);
	}
	return *cache;
}

/* Name of the JSON kind of a non-object jsonb, for messages. */
static const char *
json_kind(const Jsonb *value)
{
	if (JB_ROOT_IS_SCALAR(value))
		return "scalar";
	return "array";
}

/* Tell once per backend that events are stored but nobody delivers them. */
static void
warn_if_not_preloaded(void)
{
	static bool warned = false;

	if (warned || emissions_stats_available())
		return;
	warned = true;
	ereport(WARNING,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("emissions is not loaded via shared_preload_libraries"),
			 errdetail("Events are stored in the outbox but not delivered."),
			 errhint("Add emissions to shared_preload_libraries and restart the server.")));
}

/*
 * Open the buffer, warning first if delivery is off; false if one is
 * already active.
 */
bool
emissions_open_buffer(void)
{
	warn_if_not_preloaded();
	return emissions_buffer_start();
}

/*
 * Make sure a buffer is active, opening one if needed: BUFFER_ACTIVE when
 * one is, BUFFER_CASCADE_LIMIT inside a handler past the cascade limit.
 */
BufferAvailability
emissions_ensure_buffer(void)
{
	if (emissions_buffer_availability() == BUFFER_NONE)
		emissions_open_buffer();
	return emissions_buffer_availability();
}

/*
 * Count count events of the given type as dropped, why being the buffer's
 * availability that refused them, and say so as emissions.log_dropped asks
 * (a cascade cut off by its limit is always reported, as a WARNING: it
 * usually means a handler loop).
 */
void
emissions_note_dropped(const char *type, int type_len, int64 count,
					   BufferAvailability why)
{
	emissions_stats_attach();
	emissions_buffer_count_dropped(count);
	if (why == BUFFER_CASCADE_LIMIT)
		ereport(WARNING,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("event \"%s\" dropped: cascade depth limit reached",
						pnstrdup(type, type_len)),
				 errdetail("Handlers may emit events at most %d generations deep.",
						   emissions_max_cascade_depth),
				 errhint("Raise emissions.max_cascade_depth if the cascade is intended.")));
	else if (emissions_log_dropped != EMISSIONS_LOG_DROPPED_OFF)
		ereport(emissions_log_dropped,
				(errmsg("event \"%s\" dropped: no active buffer",
						pnstrdup(type, type_len)),
				 errhint("Call emissions_start() first, or set emissions.auto_start to on.")));
}

/*
 * emissions_start() opens a buffer; false when one is already active.
 */
Datum
emissions_start(PG_FUNCTION_ARGS)
{
	check_not_parallel();
	PG_RETURN_BOOL(emissions_open_buffer());
}

/*
 * emissions_emit(type, payload, metadata) appends an event; false when no
 * buffer is active and emissions.auto_start is off (the event is dropped).
 */
Datum
emissions_emit(PG_FUNCTION_ARGS)
{
	static Jsonb *json_null = NULL;
	static Jsonb *empty_object = NULL;
	text	   *type;
	Jsonb	   *payload;
	Jsonb	   *metadata;
	BufferAvailability buffer;

	check_not_parallel();
	check_writable();

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event type must not be null")));
	type = PG_GETARG_TEXT_PP(0);
	emissions_check_event_type(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type));

	payload = PG_ARGISNULL(1) ? jsonb_constant(&json_null, "null")
		: PG_GETARG_JSONB_P(1);
	metadata = PG_ARGISNULL(2) ? jsonb_constant(&empty_object, "{}")
		: PG_GETARG_JSONB_P(2);
	if (!JB_ROOT_IS_OBJECT(metadata))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event metadata must be a JSON object"),
				 errdetail("The metadata given is a JSON %s.",
						   json_kind(metadata))));

	buffer = emissions_buffer_availability();
	if (buffer == BUFFER_NONE && emissions_auto_start)
		buffer = emissions_ensure_buffer();
	if (buffer != BUFFER_ACTIVE)
	{
		emissions_note_dropped(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type), 1,
							   buffer);
		PG_RETURN_BOOL(false);
	}

	emissions_buffer_append(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type),
							payload, metadata);
	PG_RETURN_BOOL(true);
}

/* An event count as an SQL integer. */
static Datum
count_datum(int64 count)
{
	if (count > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("more than %d events in one batch", PG_INT32_MAX)));
	return Int32GetDatum((int32) count);
}

/*
 * emissions_flush() hands the pending events off as one batch and keeps the
 * buffer open; returns the batch's size, NULL when no buffer is active.
 */
Datum
emissions_flush(PG_FUNCTION_ARGS)
{
	check_not_parallel();
	if (!emissions_buffer_active())
		PG_RETURN_NULL();
	PG_RETURN_DATUM(count_datum(emissions_buffer_flush()));
}

/*
 * emissions_commit() hands the pending events off and closes the buffer;
 * returns how many, NULL when no buffer is active.
 */
Datum
emissions_commit(PG_FUNCTION_ARGS)
{
	check_not_parallel();
	if (!emissions_buffer_active())
		PG_RETURN_NULL();
	PG_RETURN_DATUM(count_datum(emissions_buffer_commit()));
}

/*
 * emissions_terminate() discards the pending events and closes the buffer;
 * returns how many it discarded, 0 when no buffer is active.
 */
Datum
emissions_terminate(PG_FUNCTION_ARGS)
{
	check_not_parallel();
	if (!emissions_buffer_active())
		PG_RETURN_INT32(0);
	PG_RETURN_DATUM(count_datum(emissions_buffer_terminate()));
}

/*
 * emissions_active() says whether this backend has an active buffer.
 */
Datum
emissions_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(emissions_buffer_active());
}

/*
 * emissions_buffer_status() describes this backend's buffer: whether it is
 * active, what is pending, and the memory and spill file it uses.
 */
Datum
emissions_buffer_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	BufferStatus status;
	Datum		values[5];
	bool		nulls[5] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	emissions_buffer_get_status(&status);
	values[0] = BoolGetDatum(status.active);
	values[1] = Int64GetDatum(status.pending_events);
	values[2] = Int64GetDatum(status.pending_bytes);
	values[3] = Int64GetDatum(status.memory_bytes);
	values[4] = Int64GetDatum(status.spilled_bytes);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
