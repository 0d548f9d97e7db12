/*-------------------------------------------------------------------------
 *
 * adapter_admin.c
 *	  emissions_add_adapter(), emissions_drop_adapter(), emissions_replay().
 *
 * These run as the caller (they are not SECURITY DEFINER), so that the
 * caller's rights can be checked: INSERT on an adapter's table, EXECUTE on
 * its function; only an adapter's owner (or a member of the owning role,
 * or a superuser) may drop it or replay its dead letters.  The caller
 * becomes the adapter's owner, as whom the worker will run it.  The rows
 * themselves are then written as the extension's owner, for the tables are
 * not writable by PUBLIC, with every value passed as a parameter.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "adapters.h"
#include "compat.h"
#include "extension.h"
#include "wakeup.h"

PG_FUNCTION_INFO_V1(emissions_add_adapter);
PG_FUNCTION_INFO_V1(emissions_drop_adapter);
PG_FUNCTION_INFO_V1(emissions_replay);

/* Raise an error unless types is a comma-separated list of globs. */
static void
check_types(const char *types)
{
	const char *c;
	bool		empty = true;

	for (c = types;; c++)
	{
		if (*c == ',' || *c == '\0')
		{
			if (empty)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid adapter types \"%s\"", types),
						 errdetail("An entry of the comma-separated list is empty."),
						 errhint("Write event types or globs such as 'order.*', separated by commas.")));
			if (*c == '\0')
				return;
			empty = true;
			continue;
		}
		empty = false;
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			(*c >= '0' && *c <= '9') || *c == '_' || *c == '.' || *c == ':' ||
			*c == '-' || *c == '*')
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid adapter types \"%s\"", types),
				 errdetail("Character \"%c\" cannot appear in an event type or glob.", *c),
				 errhint("Use event type characters, \"*\" for any run of them, and commas between globs.")));
	}
}

/* Raise an error unless options is an object of known, valid options. */
static void
check_options(Jsonb *options, const char *kind)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("adapter options must be a JSON object")));

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (strcmp(key, "max_attempts") == 0)
		{
			/*
			 * The worker reads the option back as text cast to integer, so
			 * a fraction (or 2.0) would stop delivery in the database: only
			 * a number written without a fractional part will do.
			 */
			if (v.type != jbvNumeric ||
				DatumGetInt32(DirectFunctionCall1(numeric_int4,
												  NumericGetDatum(v.val.numeric))) < 1 ||
				DatumGetInt32(DirectFunctionCall1(numeric_scale,
												  NumericGetDatum(v.val.numeric))) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("adapter option \"max_attempts\" must be a positive integer")));
		}
		else if (strcmp(key, "omit_payload") == 0 && strcmp(kind, "notify") == 0)
		{
			if (v.type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("adapter option \"omit_payload\" must be true or false")));
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\" for a %s adapter", key, kind),
					 errhint("Adapters know \"max_attempts\"; notify adapters also \"omit_payload\".")));
	}
}

/*
 * Resolve and check a table target; returns its OID, *name its quoted
 * qualified name, which is what the adapter keeps (names survive a dump and
 * restore; OIDs do not).
 */
static Oid
table_target(const char *target, char **name)
{
	RangeVar   *rv = makeRangeVarFromNameList(stringToQualifiedNameList(target, NULL));
	Oid			relid = RangeVarGetRelid(rv, AccessShareLock, false);
	char		relkind = get_rel_relkind(relid);
	AclResult	aclresult;
	HeapTuple	tuple;
	Oid			owner;

	*name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									   get_rel_name(relid));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", *name)));
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", *name),
				 errdetail("A table adapter inserts as its creator, who needs INSERT on the table.")));
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	emissions_adapter_check_target_owner(*name, owner, GetUserId());
	return relid;
}

/* Resolve and check a function target; returns its OID, *name its
 * qualified signature. */
static Oid
function_target(const char *target, char **name)
{
	Oid			fn;
	Oid			argtype = JSONBOID;
	HeapTuple	tuple;
	Form_pg_proc proc;
	AclResult	aclresult;
	Oid			owner;

	if (strchr(target, '(') != NULL)
		fn = DatumGetObjectId(DirectFunctionCall1(regprocedurein,
												  CStringGetDatum(target)));
	else
		fn = LookupFuncName(stringToQualifiedNameList(target, NULL), 1, &argtype,
							false);

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", fn);
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	*name = format_procedure_qualified(fn);
	if (proc->prokind != PROKIND_FUNCTION || proc->proretset ||
		proc->pronargs != 1 || proc->proargtypes.values[0] != JSONBOID)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s cannot be a handler", *name),
				 errdetail("A handler is a function taking one jsonb argument and returning a single value, or void.")));
	owner = proc->proowner;
	ReleaseSysCache(tuple);

	aclresult = object_aclcheck(ProcedureRelationId, fn, GetUserId(),
								ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", *name),
				 errdetail("A function adapter runs as its creator, who needs EXECUTE on the function.")));
	emissions_adapter_check_target_owner(*name, owner, GetUserId());
	return fn;
}

/*
 * Have the delivery worker read the adapters again once this transaction
 * commits (it caches them until a relcache invalidation of their table).
 */
static void
adapters_changed(void)
{
	CacheInvalidateRelcacheByRelid(emissions_extension_relid("emissions_adapters"));
}

/* Owner of the adapter name, or InvalidOid if there is none. */
static Oid
adapter_owner(const char *name)
{
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(name);
	Oid			owner = InvalidOid;

	emissions_execute_as_owner(psprintf("SELECT owner::pg_catalog.oid FROM %s"
							  " WHERE name OPERATOR(pg_catalog.=) $1",
							  emissions_qualified_name("emissions_adapters")),
					 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		bool		isnull;

		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1,
											   &isnull));
	}
	return owner;
}

/*
 * emissions_add_adapter(name, kind, target, types, options)
 */
Datum
emissions_add_adapter(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *kind;
	char	   *target;
	char	   *types;
	Jsonb	   *options;
	char	   *target_name;
	Oid			argtypes[] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID,
	OIDOID};
	Datum		args[6];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("adapter name, kind and target must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	target = text_to_cstring(PG_GETARG_TEXT_PP(2));
	types = PG_ARGISNULL(3) ? "*" : text_to_cstring(PG_GETARG_TEXT_PP(3));
	options = PG_ARGISNULL(4) ?
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"))) :
		PG_GETARG_JSONB_P(4);

	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("adapter name must be 1 to %d bytes long",
						NAMEDATALEN - 1)));
	check_types(types);
	check_options(options, kind);

	if (strcmp(kind, "notify") == 0)
	{
		if (target[0] == '\0' || strlen(target) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("channel name must be 1 to %d bytes long",
							NAMEDATALEN - 1)));
		target_name = target;
	}
	else if (strcmp(kind, "table") == 0)
		(void) table_target(target, &target_name);
	else if (strcmp(kind, "function") == 0)
		(void) function_target(target, &target_name);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown adapter kind \"%s\"", kind),
				 errhint("The kinds are notify, table and function.")));

	SPI_connect();
	if (OidIsValid(adapter_owner(name)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("adapter \"%s\" already exists", name)));
	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(kind);
	args[2] = CStringGetTextDatum(target_name);
	args[3] = CStringGetTextDatum(types);
	args[4] = JsonbPGetDatum(options);
	args[5] = ObjectIdGetDatum(GetUserId());
	emissions_execute_as_owner(psprintf("INSERT INTO %s (name, kind, target, types, options, owner)"
							  " VALUES ($1, $2, $3, $4, $5, $6)",
							  emissions_qualified_name("emissions_adapters")),
					 6, argtypes, args, NULL, false, SPI_OK_INSERT);
	SPI_finish();
	adapters_changed();
	PG_RETURN_VOID();
}

/* Raise an error unless the current user may act for role owner. */
static void
check_owner(Oid owner, const char *what, const char *name)
{
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of adapter \"%s\" to %s", name, what)));
}

/*
 * emissions_drop_adapter(name): remove an adapter, with its retries and
 * dead letters.
 */
Datum
emissions_drop_adapter(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(name);
	Oid			owner;

	SPI_connect();
	owner = adapter_owner(name);
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("adapter \"%s\" does not exist", name)));
	check_owner(owner, "drop it", name);
	emissions_execute_as_owner(psprintf("DELETE FROM %s WHERE adapter OPERATOR(pg_catalog.=) $1",
							  emissions_qualified_name("emissions_failed_deliveries")),
					 1, &argtype, &arg, NULL, false, SPI_OK_DELETE);
	emissions_execute_as_owner(psprintf("DELETE FROM %s WHERE name OPERATOR(pg_catalog.=) $1",
							  emissions_qualified_name("emissions_adapters")),
					 1, &argtype, &arg, NULL, false, SPI_OK_DELETE);
	SPI_finish();
	adapters_changed();
	PG_RETURN_BOOL(true);
}

/*
 * emissions_replay(id): give a dead letter a new series of tries; false if
 * there is no such dead letter (or it is not the caller's to see).
 */
Datum
emissions_replay(PG_FUNCTION_ARGS)
{
	Oid			argtype = INT8OID;
	Datum		arg = PG_GETARG_DATUM(0);
	bool		isnull;
	Oid			owner;

	SPI_connect();
	emissions_execute_as_owner(psprintf("SELECT adapter_owner FROM %s"
							  " WHERE id OPERATOR(pg_catalog.=) $1"
							  " AND next_attempt_at IS NULL",
							  emissions_qualified_name("emissions_failed_deliveries")),
					 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	if (SPI_processed != 1)
	{
		SPI_finish();
		PG_RETURN_BOOL(false);
	}
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	if (!has_privs_of_role(GetUserId(), owner))
	{
		SPI_finish();
		PG_RETURN_BOOL(false);
	}
	emissions_execute_as_owner(psprintf("UPDATE %s SET attempts = 0,"
							  " next_attempt_at = pg_catalog.now()"
							  " WHERE id OPERATOR(pg_catalog.=) $1",
							  emissions_qualified_name("emissions_failed_deliveries")),
					 1, &argtype, &arg, NULL, false, SPI_OK_UPDATE);
	SPI_finish();
	emissions_wake_worker_at_commit();
	PG_RETURN_BOOL(true);
}
