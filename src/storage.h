/*-------------------------------------------------------------------------
 *
 * storage.h
 *	  The storage layer: the one owner of the outbox, the event log and the
 *	  state table.
 *
 * Producers (outbox.c), the delivery worker (delivery*.c), the catch-up
 * readers (event_log.c), emissions_pending_events() and
 * emissions_wait_delivered() reach the extension's tables only through
 * these functions.  The files behind them:
 *
 *	 storage.c			partitions and their cache, the heap check, the
 *						"not installed" error, writing a row through the
 *						table access method
 *	 storage_outbox.c	outbox rows: writing, scanning the committed ones,
 *						fetching and deleting them by position
 *	 storage_log.c		the event log: copying delivered rows in, reading
 *						them back by id
 *	 storage_state.c	the state table: loading it, reserving ids
 *	 storage_rotation.c	rotating and truncating partitions
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_STORAGE_H
#define EMISSIONS_STORAGE_H

#include "access/transam.h"
#include "datatype/timestamp.h"
#include "storage/itemptr.h"
#include "storage/lockdefs.h"
#include "utils/snapshot.h"

/* Partitions of the outbox and of the event log. */
#define STORE_PARTITIONS		3

/*
 * A record holds whole events up to this many bytes, so that it fits in a
 * heap page and is never moved out of line; a single larger event gets a
 * record of its own.
 */
#define OUTBOX_RECORD_MAX_BYTES 8000

/* The extension's partitioned tables. */
typedef enum StoreTable
{
	STORE_OUTBOX,				/* emissions_outbox_0 .. _2 */
	STORE_LOG					/* emissions_log_0 .. _2 */
} StoreTable;

/*
 * What the worker keeps of the storage between passes: ids and current
 * partitions.  Loaded by emissions_storage_load_state, changed only by the
 * storage layer's functions.
 */
typedef struct StoreState
{
	int64		next_id;		/* id of the next event delivered */
	int64		reserved_id;	/* ids up to here are durably reserved */
	int			outbox_part;	/* partition producers write to */
	int			log_part;		/* partition delivered events go to */
	TimestampTz log_part_since;
	TimestampTz log_closed_at[STORE_PARTITIONS];	/* 0: holds nothing */
} StoreState;

/* One outbox row, without its data: where it is and what it holds. */
typedef struct OutboxRow
{
	int			part;			/* partition */
	ItemPointerData tid;
	FullTransactionId txid;		/* emitting transaction */
	int32		seq;			/* row number in it: emit order */
	int32		batch;			/* hand-off number in it */
	int32		events;
	int16		depth;			/* cascade generation of its events */
} OutboxRow;

/* One outbox record to write: encoded events of one batch. */
typedef struct OutboxRecord
{
	int32		seq;
	int32		batch;
	int32		events;
	int16		depth;
	TimestampTz emitted_at;		/* of its first event */
	bytea	   *data;			/* OUTBOX_RECORD_VERSION, then the events */
} OutboxRecord;

/* Called for each row a scan finds; data is NULL unless asked for. */
typedef void (*OutboxRowCallback) (const OutboxRow *row, bytea *data,
								   void *arg);

/*
 * Called for each log row read: its first id, transaction, delivery time
 * and data; returns false to stop reading.
 */
typedef bool (*LogRowCallback) (int64 first_id, FullTransactionId txid,
								TimestampTz delivered_at, bytea *data,
								void *arg);

/* What the event log keeps. */
typedef struct LogExtent
{
	int64		truncated_id;	/* highest id of the last truncation */
	bool		empty;
	int64		first_id;		/* the oldest event kept (0: empty) */
	int64		last_id;		/* the last delivered event */
} LogExtent;

/* The outbox partition producers write to, opened for a batch. */
typedef struct OutboxWriter OutboxWriter;

/* The outbox partitions opened for fetching or deleting rows by position. */
typedef struct OutboxAccess OutboxAccess;

/* The current log partition opened for appending delivered rows. */
typedef struct LogWriter LogWriter;

/* storage.c */
extern void emissions_storage_init(void);
extern bool emissions_storage_installed(void);
extern bool emissions_storage_known(void);
extern void emissions_storage_partitions(StoreTable table, Oid *parts);
extern void emissions_storage_report_not_installed(void);

/* storage_outbox.c: producers */
extern OutboxWriter *emissions_storage_outbox_begin_write(void);
extern void emissions_storage_outbox_write(OutboxWriter *writer,
										   const OutboxRecord *record);
extern void emissions_storage_outbox_end_write(OutboxWriter *writer);

/* storage_outbox.c: readers and the worker */
extern void emissions_storage_outbox_scan(Snapshot snapshot, bool with_data,
										  OutboxRowCallback callback, void *arg);
extern void emissions_storage_outbox_scan_from(Snapshot snapshot, const BlockNumber *from,
											   Oid *files, bool with_data,
											   OutboxRowCallback callback, void *arg);
extern int	emissions_storage_outbox_rows(Snapshot snapshot, OutboxRow **rows);
extern int	emissions_storage_outbox_rows_from(Snapshot snapshot, const BlockNumber *from,
											   Oid *files, OutboxRow **rows);
extern OutboxAccess *emissions_storage_outbox_open(LOCKMODE lockmode);
extern bool emissions_storage_outbox_fetch(OutboxAccess *access, const OutboxRow *row,
										   Snapshot snapshot, bytea **data,
										   bytea **stored);
extern void emissions_storage_outbox_delete(OutboxAccess *access, const OutboxRow *row);
extern void emissions_storage_outbox_close(OutboxAccess *access);

/* storage_log.c */
extern LogWriter *emissions_storage_log_open(const StoreState *state);
extern void emissions_storage_log_append(LogWriter *writer, int64 first_id,
										 int64 last_id, FullTransactionId txid,
										 TimestampTz delivered_at, bytea *stored);
extern void emissions_storage_log_flush(LogWriter *writer);
extern void emissions_storage_log_close(LogWriter *writer);
extern void emissions_storage_log_read(int64 after_id, int64 max_events,
									   LogRowCallback callback, void *arg);
extern void emissions_storage_log_extent(LogExtent *extent);
extern int64 emissions_storage_log_last_id(void);
extern bool emissions_storage_log_partition_range(Oid partition, int64 *first_id,
												  int64 *last_id);

/* storage_state.c */
extern void emissions_storage_load_state(StoreState *state);
extern void emissions_storage_reserve_ids(StoreState *state, int64 count);
extern void emissions_storage_check_reserved(const StoreState *state, int64 last_id);
extern void emissions_storage_ids_used(StoreState *state, int64 next_id);

/* storage_rotation.c */
extern void emissions_storage_maintain(StoreState *state, TimestampTz now);

/* Within the storage layer. */
typedef struct TableWriter TableWriter;
extern TableWriter *emissions_storage_writer_open(Oid relid);
extern ItemPointerData emissions_storage_writer_insert(TableWriter *writer,
													   Datum *values, int natts);
extern void emissions_storage_writer_add(TableWriter *writer, Datum *values,
										 int natts, Size width);
extern void emissions_storage_writer_flush(TableWriter *writer);
extern void emissions_storage_writer_close(TableWriter *writer);
extern void emissions_storage_save_log_state(const StoreState *state);

#endif							/* EMISSIONS_STORAGE_H */
