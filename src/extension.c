/*-------------------------------------------------------------------------
 *
 * extension.c
 *	  Finding the extension's objects in the current database.
 *
 * The extension is not relocatable but may be created in any schema, so
 * its tables are found through pg_extension: the schema it lives in, then
 * the table by name there.  Every lookup reads the catalogs (through the
 * syscache and the pg_extension index), which is cheap; the storage layer
 * caches the partitions it looks up for every hand-off and delivery
 * (storage.c).
 *
 * Functions that run as their caller but must read or write the
 * extension's tables, which PUBLIC may not, run their statements as the
 * extension's owner with emissions_execute_as_owner().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "extension.h"
#include "storage.h"

/*
 * Find the emissions extension in this database: false if it is not
 * installed, else its schema and owner (either pointer may be NULL).
 */
bool
emissions_extension_lookup(Oid *schema, Oid *owner)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("emissions"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_extension ext = (Form_pg_extension) GETSTRUCT(tuple);

		found = true;
		if (schema)
			*schema = ext->extnamespace;
		if (owner)
			*owner = ext->extowner;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Schema of the extension; raises an error when it is not installed here.
 */
static Oid
extension_schema(void)
{
	Oid			schema = InvalidOid;

	if (!emissions_extension_lookup(&schema, NULL))
		emissions_storage_report_not_installed();
	return schema;
}

/*
 * OID of the extension's table relname; raises an error when missing.
 */
Oid
emissions_extension_relid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, extension_schema());

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("emissions table \"%s\" is missing", relname),
				 errhint("Recreate the extension with DROP EXTENSION and CREATE EXTENSION.")));
	return relid;
}

/*
 * "schema.relname" of one of the extension's objects, quoted for SQL.
 */
char *
emissions_qualified_name(const char *relname)
{
	return quote_qualified_identifier(get_namespace_name(extension_schema()),
									  relname);
}

/*
 * Run sql with args as the extension's owner, through SPI (connected by
 * the caller); fails unless SPI answers expected.
 *
 * The caller may be anyone, and the owner is a superuser: nothing the
 * caller can define may run here.  As in PostgreSQL's ri_triggers.c, sql
 * names every table, function, type and operator with its schema
 * (OPERATOR(pg_catalog.=)); on top of that, search_path is pinned to
 * pg_catalog, pg_temp for the statement (functions and operators are never
 * looked up in pg_temp), and the statement runs as a security-restricted
 * operation.  Errors undo both the user and the setting with the
 * (sub)transaction.
 */
void
emissions_execute_as_owner(const char *sql, int nargs, Oid *argtypes,
						   Datum *args, const char *nulls, bool read_only,
						   int expected)
{
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	int			rc;

	if (!emissions_extension_lookup(NULL, &owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"emissions\" is not installed in database \"%s\"",
						get_database_name(MyDatabaseId))));
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	rc = SPI_execute_with_args(sql, nargs, argtypes, args, nulls, read_only,
							   0);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (rc != expected)
		elog(ERROR, "emissions: \"%s\" failed: %s", sql,
			 SPI_result_code_string(rc));
}
