/*-------------------------------------------------------------------------
 *
 * utility_hook.c
 *	  Utility commands that need the delivery worker out of the way.
 *
 * DROP DATABASE, ALTER DATABASE ... RENAME and ... SET TABLESPACE, and
 * CREATE DATABASE from a template all fail while another session is
 * connected to the database concerned, and a delivery worker is such a
 * session.  Before running them, for a caller entitled to, the hook holds
 * the database off in the registry (the launcher starts no worker for it
 * for a while), stops its worker with SIGTERM and waits for it to exit.
 * If the command then fails, the launcher starts the worker again once the
 * hold expires.
 *
 * COMMIT PREPARED commits events that no producing backend announced (it
 * prepared instead), so it wakes the worker itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
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

/* Whether the current user has the CREATEDB attribute. */
static bool
may_create_databases(void)
{
	HeapTuple	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	bool		result = false;

	if (HeapTupleIsValid(tuple))
	{
		result = ((Form_pg_authid) GETSTRUCT(tuple))->rolcreatedb;
		ReleaseSysCache(tuple);
	}
	return result;
}

/*
 * Stop the delivery worker of database dbname, if it has one and the
 * caller may run the command at hand (owner, or CREATEDB for a template).
 */
static void
stop_worker(const char *dbname, bool as_template)
{
	Oid			dbid = get_database_oid(dbname, true);
	pid_t		pid;
	int			waited = 0;

	if (!OidIsValid(dbid))
		return;
	if (!superuser() &&
		!(as_template ? may_create_databases() :
		  object_ownercheck(DatabaseRelationId, dbid, GetUserId())))
		return;

	pid = emissions_registry_hold_worker(dbid, HOLD_MS);
	if (pid == 0)
		return;
	if (kill(pid, SIGTERM) != 0)
		return;
	while (emissions_registry_worker_pid(dbid) == pid && waited < STOP_TIMEOUT_MS)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10,
						 emissions_wait_event(&wait_event, "EmissionsWorkerStop"));
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited += 10;
	}
}

/* Name of the template of a CREATE DATABASE. */
static const char *
template_of(CreatedbStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
			return defGetString(opt);
	}
	return "template1";
}

/* Whether an ALTER DATABASE moves the database to another tablespace. */
static bool
moves_tablespace(AlterDatabaseStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "tablespace") == 0)
			return true;
	}
	return false;
}

static void
emissions_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
						 bool readOnlyTree, ProcessUtilityContext context,
						 ParamListInfo params, QueryEnvironment *queryEnv,
						 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			stop_worker(((DropdbStmt *) parsetree)->dbname, false);
			break;
		case T_CreatedbStmt:
			stop_worker(template_of((CreatedbStmt *) parsetree), true);
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				stop_worker(((RenameStmt *) parsetree)->subname, false);
			break;
		case T_AlterDatabaseStmt:
			if (moves_tablespace((AlterDatabaseStmt *) parsetree))
				stop_worker(((AlterDatabaseStmt *) parsetree)->dbname, false);
			break;
		case T_TransactionStmt:
			if (((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
				emissions_wake_worker_at_commit();
			break;
		default:
			break;
	}

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
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
