/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  The storage layer's foundations: the partitions of the outbox and of
 *	  the event log, and writing a row through the table access method.
 *
 * The outbox and the log are each partitioned in three (storage_rotation.c
 * says why).  Their partitions' OIDs are looked up through pg_extension (the
 * extension may live in any schema), cached, and forgotten on a relcache
 * invalidation of any of them, as DROP EXTENSION and ALTER TABLE send.
 *
 * Every partition must be a heap table: the storage layer keeps row
 * positions (TIDs) between transactions, compares them with the number of
 * blocks, bounds records by the size of a heap page and rotates partitions
 * by their size in blocks.  A partition whose access method is not served
 * by PostgreSQL's heap handler (heap itself, or another name for it, as a
 * 0.1 install under default_table_access_method may have made) is refused,
 * with an error that says how to fix it, when the cache is filled.
 *
 * Rows are written the way PostgreSQL writes its own internal tables: a
 * tuple slot handed to the table access method (table_tuple_insert), then
 * the table's indexes maintained by the executor (ExecInsertIndexTuples),
 * never through SQL: no user trigger, rule or row security policy runs
 * while a transaction commits or the worker delivers, and producers need no
 * privilege on the tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "compat.h"
#include "extension.h"
#include "storage.h"

/* Base names of the partitioned tables, by StoreTable. */
static const char *const table_names[] = {"emissions_outbox", "emissions_log"};

static Oid	partition_cache[lengthof(table_names)][STORE_PARTITIONS];

/* A table opened for inserting rows, with its indexes. */
/*
 * Rows a writer holds back before it writes them together
 * (emissions_storage_writer_add), and the most bytes they may take.
 */
#define WRITER_BUFFERED_ROWS	256
#define WRITER_BUFFERED_BYTES	(1024 * 1024)

struct TableWriter
{
	Relation	rel;
	TupleTableSlot *slot;
	EState	   *estate;			/* NULL when the table has no index */
	ResultRelInfo *result_rel;
	MemoryContext cxt;			/* where the writer lives, and its slots */
	TupleTableSlot **buffered;	/* rows held back, each in a slot of its own */
	int			nbuffered;
	Size		buffered_bytes;
};

/* Forget the cached OIDs when a partition (or everything) is invalidated. */
static void
partitions_relcache_callback(Datum arg, Oid relid)
{
	int			t;
	int			i;

	for (t = 0; t < lengthof(table_names); t++)
		for (i = 0; i < STORE_PARTITIONS; i++)
			if (!OidIsValid(relid) || relid == partition_cache[t][i])
				memset(partition_cache[t], 0, sizeof(partition_cache[t]));
}

/*
 * Register the cache invalidation callback; called once from _PG_init.
 */
void
emissions_storage_init(void)
{
	CacheRegisterRelcacheCallback(partitions_relcache_callback, (Datum) 0);
}

/*
 * Raise the error that says the extension is not installed in this
 * database: the one place that words it.
 */
void
emissions_storage_report_not_installed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension \"emissions\" is not installed in database \"%s\"",
					get_database_name(MyDatabaseId)),
			 errhint("Run CREATE EXTENSION emissions.")));
}

/*
 * Refuse the partition name (relid) unless its access method is heap's: one
 * whose handler is heap_tableam_handler (a copy of heap made with CREATE
 * ACCESS METHOD stores the same tuples, so a 0.1 table made with one is
 * used as it is until the upgrade to 0.2 declares it heap).
 */
static void
check_heap(Oid relid, const char *name, Oid schema)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			relam;
	Oid			handler = InvalidOid;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	relam = ((Form_pg_class) GETSTRUCT(tuple))->relam;
	ReleaseSysCache(tuple);
	tuple = SearchSysCache1(AMOID, ObjectIdGetDatum(relam));
	if (HeapTupleIsValid(tuple))
	{
		handler = ((Form_pg_am) GETSTRUCT(tuple))->amhandler;
		ReleaseSysCache(tuple);
	}
	if (handler != F_HEAP_TABLEAM_HANDLER)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("emissions table \"%s\" does not use the heap access method",
						name),
				 errdetail("It uses \"%s\"; emissions keeps heap row positions and page sizes in it.",
						   get_am_name(relam)),
				 errhint("Run ALTER TABLE %s SET ACCESS METHOD heap.",
						 quote_qualified_identifier(get_namespace_name(schema),
													name))));
}

/* Fill the cache of table's partitions; false if not installed. */
static bool
load_partitions(StoreTable table)
{
	Oid			schema;
	int			i;

	if (!emissions_extension_lookup(&schema, NULL))
		return false;
	for (i = 0; i < STORE_PARTITIONS; i++)
	{
		char		name[NAMEDATALEN];
		Oid			relid;

		snprintf(name, sizeof(name), "%s_%d", table_names[table], i);
		relid = get_relname_relid(name, schema);
		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("emissions partition \"%s\" is missing", name),
					 errhint("Recreate the extension with DROP EXTENSION and CREATE EXTENSION.")));
		check_heap(relid, name, schema);
		partition_cache[table][i] = relid;
	}
	return true;
}

/*
 * Whether the extension is installed in this database (its outbox found
 * and usable; an error if a partition is missing or not a heap table).
 */
bool
emissions_storage_installed(void)
{
	return emissions_storage_known() || load_partitions(STORE_OUTBOX);
}

/*
 * Whether the outbox's partitions are cached: nothing has invalidated them
 * since they were last looked up, so the extension has been neither dropped
 * nor created again meanwhile (either drops or makes the partitions).
 */
bool
emissions_storage_known(void)
{
	return OidIsValid(partition_cache[STORE_OUTBOX][STORE_PARTITIONS - 1]);
}

/*
 * OIDs of the partitions of table into parts[]; raises an error when the
 * extension is not installed here.
 */
void
emissions_storage_partitions(StoreTable table, Oid *parts)
{
	if (!OidIsValid(partition_cache[table][STORE_PARTITIONS - 1]) &&
		!load_partitions(table))
		emissions_storage_report_not_installed();
	memcpy(parts, partition_cache[table], sizeof(partition_cache[table]));
}

/*
 * Open relid for inserting rows with emissions_storage_writer_insert; it stays
 * locked (RowExclusiveLock) until the transaction ends, so that no
 * TRUNCATE passes the rows.  Allocates in the current memory context.
 */
TableWriter *
emissions_storage_writer_open(Oid relid)
{
	TableWriter *writer = palloc0(sizeof(TableWriter));

	writer->cxt = CurrentMemoryContext;
	writer->rel = table_open(relid, RowExclusiveLock);
	writer->slot = table_slot_create(writer->rel, NULL);
	if (writer->rel->rd_rel->relhasindex)
	{
		writer->estate = CreateExecutorState();
		writer->result_rel = makeNode(ResultRelInfo);
		InitResultRelInfo(writer->result_rel, writer->rel, 1, NULL, 0);
		ExecOpenIndices(writer->result_rel, false);
	}
	return writer;
}

/* Raise an error unless the writer's table has natts columns. */
static void
check_columns(TableWriter *writer, int natts)
{
	if (RelationGetDescr(writer->rel)->natts != natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("emissions table \"%s\" has %d columns instead of %d",
						RelationGetRelationName(writer->rel),
						RelationGetDescr(writer->rel)->natts, natts),
				 errhint("Recreate the extension with DROP EXTENSION and CREATE EXTENSION.")));
}

/* Insert the index entries of the row in slot, if the table has indexes. */
static void
insert_index_entries(TableWriter *writer, TupleTableSlot *slot)
{
	if (writer->estate != NULL && writer->result_rel->ri_NumIndices > 0)
	{
		List	   *recheck;

		recheck = ExecInsertIndexTuples(writer->result_rel, slot,
										writer->estate, false, false, NULL,
										NIL, false);
		list_free(recheck);
		ResetPerTupleExprContext(writer->estate);
	}
}

/*
 * Insert one row, values[0..natts) in the table's column order (no
 * NULLs), and its index entries; returns where the row went.
 */
ItemPointerData
emissions_storage_writer_insert(TableWriter *writer, Datum *values, int natts)
{
	TupleTableSlot *slot = writer->slot;

	check_columns(writer, natts);
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * natts);
	memset(slot->tts_isnull, 0, sizeof(bool) * natts);
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(writer->rel, slot, GetCurrentCommandId(true), 0, NULL);
	insert_index_entries(writer, slot);
	return slot->tts_tid;
}

/*
 * Add one row, values[0..natts) in the table's column order (no NULLs),
 * about width bytes, to those the writer holds back; they are written
 * together, with one WAL record per page instead of one per row, when
 * enough are held back, at emissions_storage_writer_flush() and at the
 * latest at emissions_storage_writer_close().  The values are copied: the
 * caller may free them (or reset their memory context) at once.
 */
void
emissions_storage_writer_add(TableWriter *writer, Datum *values, int natts,
							 Size width)
{
	TupleTableSlot *slot;

	check_columns(writer, natts);
	/* The slots outlive the caller's memory context: the writer's own. */
	if (writer->buffered == NULL)
		writer->buffered = MemoryContextAllocZero(writer->cxt,
												  sizeof(TupleTableSlot *) *
												  WRITER_BUFFERED_ROWS);
	if (writer->buffered[writer->nbuffered] == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(writer->cxt);

		writer->buffered[writer->nbuffered] =
			table_slot_create(writer->rel, NULL);
		MemoryContextSwitchTo(oldcxt);
	}
	slot = writer->buffered[writer->nbuffered];
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * natts);
	memset(slot->tts_isnull, 0, sizeof(bool) * natts);
	ExecStoreVirtualTuple(slot);
	ExecMaterializeSlot(slot);
	writer->nbuffered++;
	writer->buffered_bytes += width;
	if (writer->nbuffered == WRITER_BUFFERED_ROWS ||
		writer->buffered_bytes >= WRITER_BUFFERED_BYTES)
		emissions_storage_writer_flush(writer);
}

/* Write the rows emissions_storage_writer_add held back, with their index entries. */
void
emissions_storage_writer_flush(TableWriter *writer)
{
	int			i;

	if (writer->nbuffered == 0)
		return;
	table_multi_insert(writer->rel, writer->buffered, writer->nbuffered,
					   GetCurrentCommandId(true), 0, NULL);
	for (i = 0; i < writer->nbuffered; i++)
	{
		insert_index_entries(writer, writer->buffered[i]);
		ExecClearTuple(writer->buffered[i]);
	}
	writer->nbuffered = 0;
	writer->buffered_bytes = 0;
}

/*
 * Write what is held back, then close what emissions_storage_writer_open
 * opened, keeping the table's lock.
 */
void
emissions_storage_writer_close(TableWriter *writer)
{
	int			i;

	emissions_storage_writer_flush(writer);
	if (writer->buffered != NULL)
	{
		for (i = 0; i < WRITER_BUFFERED_ROWS && writer->buffered[i]; i++)
			ExecDropSingleTupleTableSlot(writer->buffered[i]);
		pfree(writer->buffered);
	}
	if (writer->estate != NULL)
	{
		ExecCloseIndices(writer->result_rel);
		FreeExecutorState(writer->estate);
	}
	ExecDropSingleTupleTableSlot(writer->slot);
	table_close(writer->rel, NoLock);
	pfree(writer);
}
