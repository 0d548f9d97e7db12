/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL versions emissions builds on.
 *
 * One source tree builds on PostgreSQL 15, 16, 17 and 18.  The code is
 * written against the newest server's API; where an older server lacks
 * something, this header supplies it, or the nearest thing it has.  This is
 * the only place that tests PG_VERSION_NUM: when a version stops being
 * supported, its branches here go and nothing else changes.
 *
 * - 16 renamed the per-object privilege and ownership checks
 *   (pg_proc_aclcheck, pg_database_ownercheck, ...) to object_aclcheck and
 *   object_ownercheck, taking the object's catalog; gave
 *   stringToQualifiedNameList an error-saving context (NULL: throw); made
 *   have_createdb_privilege public; added BufFileReadExact, which raises
 *   the error for a short read; and gave ExecInsertIndexTuples an
 *   onlySummarizing flag (false: every index, as before).
 * - 17 lets an extension name its wait events (WaitEventExtensionNew), so
 *   pg_stat_activity.wait_event says what an emissions process waits for
 *   instead of a bare "Extension".
 * - 18 lets a module declare its name and version (PG_MODULE_MAGIC_EXT),
 *   shown by pg_get_loaded_modules().
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_COMPAT_H
#define EMISSIONS_COMPAT_H

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_tablespace.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/buffile.h"
#include "utils/acl.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/wait_event.h"

#if PG_VERSION_NUM < 150000
#error "emissions needs PostgreSQL 15 or later"
#endif

/*
 * The module's magic block: name and version (the extension's
 * default_version, passed by the Makefile) from 18 on.
 */
#if PG_VERSION_NUM >= 180000
#define EMISSIONS_MODULE_MAGIC \
	PG_MODULE_MAGIC_EXT(.name = "emissions", .version = EMISSIONS_VERSION)
#else
#define EMISSIONS_MODULE_MAGIC PG_MODULE_MAGIC
#endif

#if PG_VERSION_NUM < 160000

#include "executor/executor.h"

/* Every index is maintained, as onlySummarizing = false does from 16. */
#define ExecInsertIndexTuples(resultRelInfo, slot, estate, update, noDupErr, \
							  specConflict, arbiterIndexes, onlySummarizing) \
	ExecInsertIndexTuples(resultRelInfo, slot, estate, update, noDupErr, \
						  specConflict, arbiterIndexes)

/* The error-saving context is new in 16; the call throws, as with NULL. */
#define stringToQualifiedNameList(string, escontext) \
	stringToQualifiedNameList(string)

/* object_aclcheck for the catalogs emissions checks privileges on. */
static inline AclResult
object_aclcheck(Oid classid, Oid objectid, Oid roleid, AclMode mode)
{
	switch (classid)
	{
		case ProcedureRelationId:
			return pg_proc_aclcheck(objectid, roleid, mode);
		case TableSpaceRelationId:
			return pg_tablespace_aclcheck(objectid, roleid, mode);
	}
	elog(ERROR, "unexpected catalog %u in object_aclcheck", classid);
	return ACLCHECK_NO_PRIV;	/* keep compiler quiet */
}

/* object_ownercheck for the catalogs emissions checks ownership of. */
static inline bool
object_ownercheck(Oid classid, Oid objectid, Oid roleid)
{
	if (classid == DatabaseRelationId)
		return pg_database_ownercheck(objectid, roleid);
	elog(ERROR, "unexpected catalog %u in object_ownercheck", classid);
	return false;				/* keep compiler quiet */
}

/*
 * Whether the current user may create databases: PostgreSQL's own function
 * is public from 16 on (and in late 15 minor releases only), so 15 gets
 * this copy of it, whatever its minor release.
 */
static inline bool
emissions_have_createdb_privilege(void)
{
	bool		result = false;
	HeapTuple	utup;

	if (superuser())
		return true;
	utup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	if (HeapTupleIsValid(utup))
	{
		result = ((Form_pg_authid) GETSTRUCT(utup))->rolcreatedb;
		ReleaseSysCache(utup);
	}
	return result;
}
#define have_createdb_privilege() emissions_have_createdb_privilege()

/* Read exactly size bytes from file, or raise an error. */
static inline void
BufFileReadExact(BufFile *file, void *ptr, size_t size)
{
	size_t		nread = BufFileRead(file, ptr, size);

	if (nread != size)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read from temporary file: read only %zu of %zu bytes",
						nread, size)));
}

#endif							/* PG_VERSION_NUM < 160000 */

/*
 * The wait event to report while waiting for what name says: named (shown
 * in pg_stat_activity.wait_event) from 17 on, the generic "Extension"
 * before.  *id caches the event's number in the calling process (start it
 * at 0).
 */
static inline uint32
emissions_wait_event(uint32 *id, const char *name)
{
#if PG_VERSION_NUM >= 170000
	if (*id == 0)
		*id = WaitEventExtensionNew(name);
	return *id;
#else
	return PG_WAIT_EXTENSION;
#endif
}

#endif							/* EMISSIONS_COMPAT_H */
