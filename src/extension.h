/*-------------------------------------------------------------------------
 *
 * extension.h
 *	  Finding the extension's objects in the current database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_EXTENSION_H
#define EMISSIONS_EXTENSION_H

extern bool emissions_extension_lookup(Oid *schema, Oid *owner);
extern Oid	emissions_extension_relid(const char *relname);
extern char *emissions_qualified_name(const char *relname);
extern void emissions_execute_as_owner(const char *sql, int nargs,
									   Oid *argtypes, Datum *args,
									   const char *nulls, bool read_only,
									   int expected);

#endif							/* EMISSIONS_EXTENSION_H */
