/*-------------------------------------------------------------------------
 *
 * extension.c
 *	  Finding the extension's objects in the current database.
 *
 * The extension is not relocatable but may be created in any schema, so
 * its tables are found through pg_extension: the schema it lives in, then
 * the table by name there.  Every lookup reads the catalogs (through the
 * syscache and the pg_extension index), which is cheap; callers on hot
 * paths cache what they find and forget it on invalidation.
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
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "extension.h"

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
Oid
emissions_extension_schema(void)
{
	Oid			schema;

	if (!emissions_extension_lookup(&schema, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"emissions\" is not installed in database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errhint("Run CREATE EXTENSION emissions.")));
	return schema;
}

/*
 * OID of the extension's table relname; raises an error when missing.
 */
Oid
emissions_extension_relid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, emissions_extension_schema());

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
	return quote_qualified_identifier(get_namespace_name(emissions_extension_schema()),
									  relname);
}
