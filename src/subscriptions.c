/*-------------------------------------------------------------------------
 *
 * subscriptions.c
 *	  Durable consumers: named positions in the delivered stream.
 *
 * A subscription is a row of emissions_subscription_positions: a name, the
 * owning role, and a position, the id of the last event its consumer
 * acknowledged.  emissions_read() returns the delivered events after the
 * position, from the event log (emissions_event_log_read: one range scan of
 * the log's index, whatever the log's length), without moving it;
 * emissions_ack() moves it forward, never back, and never past the last
 * delivered event.
 *
 * The functions run as their caller (they are not SECURITY DEFINER), so
 * that the caller can be checked against the owner: only a member of the
 * owning role, or a superuser, reads, acknowledges or drops a
 * subscription.  The table is read and written as the extension's owner
 * (emissions_execute_as_owner), with every value passed as a parameter.
 *
 * Retention: the delivery worker asks emissions_subscriptions_release()
 * before it truncates a log partition.  A subscription that has not
 * acknowledged every event of the partition holds it, until the partition
 * was closed emissions.max_retention ago; then the partition goes all the
 * same, and each subscription that had not acknowledged its events is
 * marked overrun (lost_to: the highest id it lost) and the loss is logged.
 * emissions_read() on an overrun subscription fails, naming the lost ids,
 * until an acknowledgement moves its position past them.  A subscription
 * that is overrun holds nothing.  Without subscriptions, or on a database
 * whose extension is still at version 0.1 (no table), nothing is held.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "event_log.h"
#include "extension.h"
#include "settings.h"
#include "storage.h"
#include "subscriptions.h"

PG_FUNCTION_INFO_V1(emissions_subscribe);
PG_FUNCTION_INFO_V1(emissions_unsubscribe);
PG_FUNCTION_INFO_V1(emissions_read);
PG_FUNCTION_INFO_V1(emissions_ack);

#define SUBSCRIPTIONS_TABLE "emissions_subscription_positions"

/* A subscription as the table holds it. */
typedef struct Subscription
{
	Oid			owner;
	int64		position;		/* last acknowledged id */
	int64		lost_to;		/* overrun: highest id lost; else 0 */
} Subscription;

/* Whether sub is overrun: it has not acknowledged events it lost. */
static bool
is_overrun(const Subscription *sub)
{
	return sub->position < sub->lost_to;
}

/* The subscription name, NULL-checked and of a sane length. */
static char *
subscription_name(FunctionCallInfo fcinfo)
{
	char	   *name;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subscription name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subscription name must be 1 to %d bytes long",
						NAMEDATALEN - 1)));
	return name;
}

/*
 * Find subscription name into *sub; false if there is none.  With
 * must_own, raise an error unless the caller may act for its owner.
 * SPI connected.
 */
static bool
find_subscription(const char *name, bool must_own, Subscription *sub)
{
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(name);
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		lost_to;

	emissions_execute_as_owner(psprintf("SELECT owner::pg_catalog.oid, position, lost_to"
										" FROM %s WHERE name OPERATOR(pg_catalog.=) $1",
										emissions_qualified_name(SUBSCRIPTIONS_TABLE)),
							   1, &argtype, &arg, NULL, true, SPI_OK_SELECT);
	if (SPI_processed != 1)
		return false;
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	sub->owner = DatumGetObjectId(SPI_getbinval(tuple, desc, 1, &isnull));
	sub->position = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
	lost_to = SPI_getbinval(tuple, desc, 3, &isnull);
	sub->lost_to = isnull ? 0 : DatumGetInt64(lost_to);
	if (must_own && !has_privs_of_role(GetUserId(), sub->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of subscription \"%s\"", name),
				 errhint("Only members of the role that created it, and superusers, may read, acknowledge or drop it.")));
	return true;
}

/* Like find_subscription, must_own, but an error when there is none. */
static void
get_own_subscription(const char *name, Subscription *sub)
{
	if (!find_subscription(name, true, sub))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("subscription \"%s\" does not exist", name)));
}

/*
 * Raise an error if the events after after_id are no longer all kept: the
 * log was truncated past after_id and its oldest kept event is not the
 * next one.  0 asks for the oldest event kept, whatever went before it,
 * as with emissions_events(0).  SPI connected.
 */
static void
check_kept_after(int64 after_id)
{
	LogExtent	extent;

	emissions_storage_log_extent(&extent);
	if (after_id == 0 || after_id >= extent.truncated_id)
		return;
	if (!extent.empty && extent.first_id <= after_id + 1)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("events after id " INT64_FORMAT " are no longer kept",
					after_id),
			 errdetail("Delivered events up to id " INT64_FORMAT " may have been removed after emissions.retention.",
					   extent.empty ? extent.truncated_id : extent.first_id - 1),
			 errhint("Subscribe after a later id, after 0 for the oldest event kept, or with NULL for new events only.")));
}

/*
 * Raise an error unless id is at most the last delivered event's; what
 * (the action refused) and hint make the message.
 */
static void
check_delivered(int64 id, const char *what, const char *name,
				const char *hint)
{
	int64		last_id = emissions_storage_log_last_id();

	if (id > last_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot %s event " INT64_FORMAT " for subscription \"%s\"",
						what, id, name),
				 errdetail("The last delivered event is " INT64_FORMAT ".",
						   last_id),
				 errhint("%s", hint)));
}

/*
 * emissions_subscribe(name, after_id): create a subscription owned by the
 * caller, at after_id or, when NULL, at the last delivered event; returns
 * the position.
 */
Datum
emissions_subscribe(PG_FUNCTION_ARGS)
{
	char	   *name = subscription_name(fcinfo);
	Oid			argtypes[] = {TEXTOID, OIDOID, INT8OID};
	Datum		args[3];
	int64		position;

	SPI_connect();
	if (PG_ARGISNULL(1))
		position = emissions_storage_log_last_id();
	else
	{
		position = PG_GETARG_INT64(1);
		if (position < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("after_id must not be negative")));
		check_delivered(position, "subscribe after", name,
						"Subscribe with after_id NULL to start after the last delivered event.");
		check_kept_after(position);
	}

	args[0] = CStringGetTextDatum(name);
	args[1] = ObjectIdGetDatum(GetUserId());
	args[2] = Int64GetDatum(position);
	emissions_execute_as_owner(psprintf("INSERT INTO %s (name, owner, position)"
										" VALUES ($1, $2, $3)"
										" ON CONFLICT (name) DO NOTHING",
										emissions_qualified_name(SUBSCRIPTIONS_TABLE)),
							   3, argtypes, args, NULL, false, SPI_OK_INSERT);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("subscription \"%s\" already exists", name)));
	SPI_finish();
	PG_RETURN_INT64(position);
}

/*
 * emissions_unsubscribe(name): drop a subscription; false if there was
 * none.
 */
Datum
emissions_unsubscribe(PG_FUNCTION_ARGS)
{
	char	   *name = subscription_name(fcinfo);
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(name);
	Subscription sub;

	SPI_connect();
	if (!find_subscription(name, true, &sub))
	{
		SPI_finish();
		PG_RETURN_BOOL(false);
	}
	emissions_execute_as_owner(psprintf("DELETE FROM %s WHERE name OPERATOR(pg_catalog.=) $1",
										emissions_qualified_name(SUBSCRIPTIONS_TABLE)),
							   1, &argtype, &arg, NULL, false, SPI_OK_DELETE);
	SPI_finish();
	PG_RETURN_BOOL(true);
}

/*
 * emissions_read(name, max): the next events after the subscription's
 * position, in id order, at most max; the position does not move.
 */
Datum
emissions_read(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = subscription_name(fcinfo);
	int32		max = PG_GETARG_INT32(1);
	Subscription sub;

	if (max < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must not be negative")));
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	get_own_subscription(name, &sub);
	if (is_overrun(&sub))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("subscription \"%s\" lost events " INT64_FORMAT " to " INT64_FORMAT,
						name, sub.position + 1, sub.lost_to),
				 errdetail("They were removed unacknowledged once emissions.max_retention had passed."),
				 errhint("Acknowledge the gap to go on after it, with SELECT emissions_ack(%s, " INT64_FORMAT "), or drop the subscription and subscribe again.",
						 quote_literal_cstr(name), sub.lost_to)));
	emissions_event_log_read(rsinfo, sub.position, max);
	SPI_finish();
	return (Datum) 0;
}

/*
 * emissions_ack(name, id): the consumer is done with every event up to id;
 * the position moves to id unless it is already further.  Returns the
 * position.
 */
Datum
emissions_ack(PG_FUNCTION_ARGS)
{
	char	   *name = subscription_name(fcinfo);
	int64		id = PG_GETARG_INT64(1);
	Oid			argtypes[] = {TEXTOID, INT8OID};
	Datum		args[2];
	Subscription sub;
	bool		isnull;
	int64		position;

	SPI_connect();
	get_own_subscription(name, &sub);
	if (id <= sub.position)
	{
		SPI_finish();
		PG_RETURN_INT64(sub.position);
	}
	check_delivered(id, "acknowledge", name,
					"Acknowledge the ids that emissions_read() returned.");
	args[0] = CStringGetTextDatum(name);
	args[1] = Int64GetDatum(id);
	/* An acknowledgement past what it lost ends the overrun. */
	emissions_execute_as_owner(psprintf("UPDATE %s SET"
										" position = GREATEST(position, $2),"
										" lost_to = CASE WHEN lost_to OPERATOR(pg_catalog.>) $2"
										" THEN lost_to END,"
										" acked_at = pg_catalog.now()"
										" WHERE name OPERATOR(pg_catalog.=) $1"
										" RETURNING position",
										emissions_qualified_name(SUBSCRIPTIONS_TABLE)),
							   2, argtypes, args, NULL, false,
							   SPI_OK_UPDATE_RETURNING);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("subscription \"%s\" does not exist", name)));
	position = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(position);
}

/* Number of subscriptions, not overrun, that have not acknowledged last_id. */
static int64
holding_subscriptions(const char *table, int64 last_id)
{
	Oid			argtype = INT8OID;
	Datum		arg = Int64GetDatum(last_id);
	bool		isnull;

	if (SPI_execute_with_args(psprintf("SELECT pg_catalog.count(*) FROM %s"
									   " WHERE position OPERATOR(pg_catalog.<) $1"
									   " AND NOT COALESCE(position OPERATOR(pg_catalog.<) lost_to, false)",
									   table),
							  1, &argtype, &arg, NULL, true, 0) !=
		SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the subscriptions");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Mark overrun the subscriptions that have not acknowledged the events up
 * to last_id, about to be removed, and log what each loses.
 */
static void
mark_overrun(const char *table, int64 first_id, int64 last_id)
{
	Oid			argtype = INT8OID;
	Datum		arg = Int64GetDatum(last_id);
	uint64		r;

	if (SPI_execute_with_args(psprintf("UPDATE %s SET lost_to = $1"
									   " WHERE position OPERATOR(pg_catalog.<) $1"
									   " AND COALESCE(lost_to, 0) OPERATOR(pg_catalog.<) $1"
									   " RETURNING name, position",
									   table),
							  1, &argtype, &arg, NULL, false, 0) !=
		SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not mark subscriptions overrun");
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[r];
		bool		isnull;
		char	   *name = TextDatumGetCString(SPI_getbinval(tuple,
															 SPI_tuptable->tupdesc,
															 1, &isnull));
		int64		position = DatumGetInt64(SPI_getbinval(tuple,
														   SPI_tuptable->tupdesc,
														   2, &isnull));

		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("emissions subscription \"%s\" lost events " INT64_FORMAT " to " INT64_FORMAT,
						name, Max(position + 1, first_id), last_id),
				 errdetail("They were delivered more than emissions.max_retention (%d s) ago and not acknowledged.",
						   emissions_max_retention_s),
				 errhint("emissions_read() on the subscription fails until the gap is acknowledged.")));
	}
}

/*
 * Whether the log partition partition, whose newest event was delivered at
 * closed_at, may be truncated now as far as subscriptions go: true when
 * none that is not overrun still needs its events, or when
 * emissions.max_retention has passed since closed_at (the subscriptions
 * that needed them are then marked overrun).  Called by the delivery
 * worker just before the truncation, SPI connected, in its maintenance
 * transaction; works on a database whose extension is still at 0.1.
 */
bool
emissions_subscriptions_release(Oid partition, TimestampTz closed_at,
								TimestampTz now)
{
	Oid			schema;
	char	   *table;
	int64		first_id;
	int64		last_id;

	if (!emissions_extension_lookup(&schema, NULL) ||
		!OidIsValid(get_relname_relid(SUBSCRIPTIONS_TABLE, schema)))
		return true;
	table = quote_qualified_identifier(get_namespace_name(schema),
									   SUBSCRIPTIONS_TABLE);
	if (!emissions_storage_log_partition_range(partition, &first_id, &last_id))
		return true;
	if (holding_subscriptions(table, last_id) > 0 &&
		(emissions_max_retention_s == 0 ||
		 closed_at > TimestampTzPlusMilliseconds(now,
												 -1000L * (int64) emissions_max_retention_s)))
		return false;
	mark_overrun(table, first_id, last_id);
	return true;
}
