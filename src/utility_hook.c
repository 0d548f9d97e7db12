/*-------------------------------------------------------------------------
 *
 * utility_hook.c
 *	  Utility commands that need the delivery worker out of the way.
 *
 * DROP DATABASE, ALTER DATABASE ... RENAME and ... SET TABLESPACE, and
 * CREATE DATABASE from a template all fail while another session is
 * connected to the database concerned, and a delivery worker is such a
 * session.  Before running them the hook holds the database off in the
 * registry (the launcher starts no worker for it for a while, and a worker
 * already starting cannot attach), stops every worker it has with SIGTERM
 * and waits for them to exit.  If the command then fails, the launcher
 * starts the worker again once the hold expires.  CREATE DATABASE needs
 * the template's worker gone only while it copies: once it has run, or
 * failed, the hold ends and the worker is back within about a second.
 *
 * Stopping a worker stops delivery for everyone in that database, so the
 * hook does it only when the command will pass PostgreSQL's own checks,
 * made the same way before the hook runs them: the caller owns the
 * database (a superuser owns every one) and meets the command's other
 * conditions, or, for CREATE DATABASE, may create databases and may copy
 * the template (it is marked datistemplate, or the caller owns it).  A
 * command PostgreSQL will refuse leaves the worker alone.
 *
 * COMMIT PREPARED commits events that no producing backend announced (it
 * prepared instead), so it wakes the worker itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_tablespace_d.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/tablespace.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/syscache.h"

#include "compat.h"
#include "registry.h"
#include "utility_hook.h"
#include "wakeup.h"

/* How long a database's worker is held off. */
#define HOLD_MS				10000

/* How long to wait for the worker to exit. */
#define STOP_TIMEOUT_MS		5000

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* What a backend reports while it waits for workers to exit. */
static uint32 wait_event = 0;

/*
 * Hold database dbid off and stop every delivery worker it has, waiting
 * for them to exit; returns dbid.  The caller has checked that the command
 * at hand will pass PostgreSQL's checks.
 */
static Oid
stop_workers(Oid dbid)
{
	pid_t	   *pids;
	int			n = emissions_registry_hold_workers(dbid, HOLD_MS, &pids);
	int			waited = 0;
	int			i;

	for (i = 0; i < n; i++)
		(void) kill(pids[i], SIGTERM);
	for (i = 0; i < n; i++)
	{
		while (emissions_registry_worker_running(dbid, pids[i]) &&
			   waited < STOP_TIMEOUT_MS)
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 10,
							 emissions_wait_event(&wait_event, "EmissionsWorkerStop"));
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			waited += 10;
		}
	}
	return dbid;
}

/*
 * Look database dbname up: its OID (InvalidOid when there is none), and
 * whether it is a template and its tablespace (either pointer may be NULL).
 */
static Oid
database_info(const char *dbname, bool *istemplate, Oid *tablespace)
{
	Oid			dbid = get_database_oid(dbname, true);
	HeapTuple	tuple;
	Form_pg_database db;

	if (!OidIsValid(dbid))
		return InvalidOid;
	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dbid));
	if (!HeapTupleIsValid(tuple))
		return InvalidOid;		/* dropped meanwhile */
	db = (Form_pg_database) GETSTRUCT(tuple);
	if (istemplate)
		*istemplate = db->datistemplate;
	if (tablespace)
		*tablespace = db->dattablespace;
	ReleaseSysCache(tuple);
	return dbid;
}

/* Whether the current user owns database dbid (superusers own all). */
static bool
owns_database(Oid dbid)
{
	return object_ownercheck(DatabaseRelationId, dbid, GetUserId());
}

/* Value of option name of a statement's options, or NULL. */
static const char *
option_value(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, name) == 0 && opt->arg != NULL)
			return defGetString(opt);
	}
	return NULL;
}

/*
 * DROP DATABASE: dropdb() requires the owner, and refuses a template and
 * the current database.
 */
static void
before_drop(DropdbStmt *stmt)
{
	bool		istemplate;
	Oid			dbid = database_info(stmt->dbname, &istemplate, NULL);

	if (OidIsValid(dbid) && owns_database(dbid) && !istemplate &&
		dbid != MyDatabaseId)
		(void) stop_workers(dbid);
}

/*
 * CREATE DATABASE: createdb() requires the CREATEDB attribute, membership
 * in the new owner, a template the caller may copy (marked datistemplate,
 * or owned by the caller) and a name not taken.  The template is what
 * must have no other session.  Returns the template held off, or
 * InvalidOid.
 */
static Oid
before_create(CreatedbStmt *stmt)
{
	const char *template = option_value(stmt->options, "template");
	const char *owner = option_value(stmt->options, "owner");
	bool		istemplate;
	Oid			dbid;

	if (!have_createdb_privilege())
		return InvalidOid;
	if (owner != NULL &&
		!is_member_of_role(GetUserId(), get_role_oid(owner, true)))
		return InvalidOid;
	if (OidIsValid(get_database_oid(stmt->dbname, true)))
		return InvalidOid;
	dbid = database_info(template ? template : "template1", &istemplate, NULL);
	if (OidIsValid(dbid) && (istemplate || owns_database(dbid)))
		return stop_workers(dbid);
	return InvalidOid;
}

/*
 * ALTER DATABASE ... RENAME: RenameDatabase() requires the owner with the
 * CREATEDB attribute, a new name not taken, and not the current database.
 */
static void
before_rename(RenameStmt *stmt)
{
	Oid			dbid = database_info(stmt->subname, NULL, NULL);

	if (OidIsValid(dbid) && owns_database(dbid) && have_createdb_privilege() &&
		dbid != MyDatabaseId &&
		!OidIsValid(get_database_oid(stmt->newname, true)))
		(void) stop_workers(dbid);
}

/*
 * ALTER DATABASE ... SET TABLESPACE: movedb() requires the owner, CREATE on
 * the new tablespace, which must not be pg_global nor the current one, and
 * not the current database.
 */
static void
before_move(AlterDatabaseStmt *stmt)
{
	const char *name = option_value(stmt->options, "tablespace");
	Oid			current = InvalidOid;
	Oid			dbid;
	Oid			spcid;

	if (name == NULL)
		return;
	dbid = database_info(stmt->dbname, NULL, &current);
	spcid = get_tablespace_oid(name, true);
	if (OidIsValid(dbid) && OidIsValid(spcid) && owns_database(dbid) &&
		dbid != MyDatabaseId && spcid != current &&
		spcid != GLOBALTABLESPACE_OID &&
		object_aclcheck(TableSpaceRelationId, spcid, GetUserId(),
						ACL_CREATE) == ACLCHECK_OK)
		(void) stop_workers(dbid);
}

/*
 * Whether stmt creates a type (base, composite, enum, range or domain) in
 * this session's temporary schema.  Types there are found before
 * pg_catalog's, so code run as a security-restricted operation (adapter
 * code in the delivery worker's one session) could plant one for the next
 * owner's code.  PostgreSQL refuses this itself only in some releases
 * (Debian's 15.20 and 17.12 do, Debian unstable's 18.6 does not), so
 * emissions refuses it on every version.
 */
static bool
creates_temp_type(Node *stmt)
{
	List	   *names;
	char	   *name;

	switch (nodeTag(stmt))
	{
		case T_CreateDomainStmt:
			names = ((CreateDomainStmt *) stmt)->domainname;
			break;
		case T_CreateEnumStmt:
			names = ((CreateEnumStmt *) stmt)->typeName;
			break;
		case T_CreateRangeStmt:
			names = ((CreateRangeStmt *) stmt)->typeName;
			break;
		case T_DefineStmt:
			if (((DefineStmt *) stmt)->kind != OBJECT_TYPE)
				return false;
			names = ((DefineStmt *) stmt)->defnames;
			break;
		case T_CompositeTypeStmt:
			return isTempNamespace(RangeVarGetCreationNamespace(((CompositeTypeStmt *) stmt)->typevar));
		default:
			return false;
	}
	return isTempNamespace(QualifiedNameGetCreationNamespace(names, &name));
}

/* Run the command: the next hook, or PostgreSQL's own. */
static void
run_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			ProcessUtilityContext context, ParamListInfo params,
			QueryEnvironment *queryEnv, DestReceiver *dest,
			QueryCompletion *qc)
{
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

static void
emissions_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
						 bool readOnlyTree, ProcessUtilityContext context,
						 ParamListInfo params, QueryEnvironment *queryEnv,
						 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			copied = InvalidOid;

	if (InSecurityRestrictedOperation() && creates_temp_type(parsetree))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot create a type in a temporary schema within security-restricted operation"),
				 errdetail("A type in the temporary schema would be found before pg_catalog's by later code in this session.")));

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			before_drop((DropdbStmt *) parsetree);
			break;
		case T_CreatedbStmt:
			copied = before_create((CreatedbStmt *) parsetree);
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				before_rename((RenameStmt *) parsetree);
			break;
		case T_AlterDatabaseStmt:
			before_move((AlterDatabaseStmt *) parsetree);
			break;
		case T_TransactionStmt:
			if (((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
				emissions_wake_worker_at_commit();
			break;
		default:
			break;
	}

	if (!OidIsValid(copied))
	{
		run_utility(pstmt, queryString, readOnlyTree, context, params,
					queryEnv, dest, qc);
		return;
	}
	/* The template's worker may come back once the copy is over. */
	PG_TRY();
	{
		run_utility(pstmt, queryString, readOnlyTree, context, params,
					queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		emissions_registry_release_hold(copied);
	}
	PG_END_TRY();
}

/*
 * Install the hook; called from _PG_init when preloaded.
 */
void
emissions_utility_hook_install(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = emissions_ProcessUtility;
}
