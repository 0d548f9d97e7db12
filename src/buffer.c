/*-------------------------------------------------------------------------
 *
 * buffer.c
 *	  The per-transaction event buffer and its transaction callbacks.
 *
 * A backend has at most one buffer, tied to the current top-level
 * transaction.  Emitted events are encoded into an EventStream (memory that
 * spills to a temporary file).  The buffer's state is a handful of numbers:
 * whether it is active, and the log offsets and event counts where the
 * pending (not yet handed-off) events start and end.  Emitting appends;
 * handing off (flush, commit) writes [start, end) to the outbox table in the
 * current (sub)transaction and moves start to end; terminate moves start to
 * end without writing.
 *
 * Savepoints: the first time the state changes inside a subtransaction, the
 * state as it was is pushed on a stack, tagged with the subtransaction's id
 * (as async.c keeps a pending list per subtransaction, but copying only the
 * numbers).  A subtransaction abort pops that copy and cuts the stream back
 * to its end: events emitted since are gone, a buffer opened since is closed,
 * and events flushed since are pending again, while the outbox rows of that
 * flush vanish with the aborted subtransaction.  A subtransaction commit
 * hands its copy to the parent, unless the parent has its own.
 *
 * Handlers: the delivery worker gives each handler invocation a buffer of
 * its own (enter_handler opens it, leave_handler hands it off; for a table
 * adapter's insert the table's triggers open it if they emit), and marks
 * what it hands off with the cascade depth; past emissions.max_cascade_depth
 * no buffer can be opened, so the handler's events are dropped.
 *
 * Transaction end: PRE_COMMIT and PRE_PREPARE hand off what is pending and
 * close the spill file; COMMIT, PREPARE and ABORT only account and forget.
 * The transaction's counters (buffers, events emitted, dropped, persisted)
 * are kept here and handed to emissions_stats_publish() at its end.
 * All memory lives in a child of TopTransactionContext, so after an abort the
 * static pointers are reset rather than freed, and the spill file is closed
 * by the transaction's resource owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "buffer.h"
#include "event_format.h"
#include "event_stream.h"
#include "outbox.h"
#include "settings.h"
#include "stats.h"
#include "wakeup.h"

typedef struct BufferState
{
	bool		active;
	uint64		start_off;		/* log offset of the first pending event */
	uint64		end_off;		/* log offset past the last event */
	int64		start_count;	/* events before start_off */
	int64		end_count;		/* events before end_off */
	int64		handed_off_events;	/* in this transaction, so far */
	int64		handed_off_batches;
} BufferState;

/* The state as it was when a subtransaction first changed it. */
typedef struct SavedState
{
	SubTransactionId subid;
	BufferState state;
	struct SavedState *next;
} SavedState;

/* NULL when the buffer has not been touched in this transaction. */
static MemoryContext buffer_cxt = NULL;
static EventStream stream;
static BufferState current;
static SavedState *saved = NULL;
static int32 batch_number;		/* batches handed off in this transaction */
static int32 record_number;		/* outbox rows written in this transaction */

/* What this transaction did, published to the counters when it ends. */
static EmissionsCounters xact_counts;

/*
 * Cascade generation of the handler running (0: none), which every batch
 * handed off carries; past emissions.max_cascade_depth no buffer may open.
 */
static int	handler_depth = 0;
static bool cascade_blocked = false;

/* Create the transaction's buffer memory on first use. */
static void
touch(void)
{
	if (buffer_cxt != NULL)
		return;

	emissions_stats_attach();
	buffer_cxt = AllocSetContextCreate(TopTransactionContext,
									   "emissions buffer",
									   ALLOCSET_DEFAULT_SIZES);
	emissions_event_stream_init(&stream, buffer_cxt);
	memset(&current, 0, sizeof(BufferState));
	saved = NULL;
	batch_number = 0;
	record_number = 0;
}

/*
 * Remember the state before the current subtransaction first changes it.
 */
static void
save_state(void)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	SavedState *entry;

	if (subid == TopSubTransactionId ||
		(saved != NULL && saved->subid == subid))
		return;

	entry = MemoryContextAlloc(buffer_cxt, sizeof(SavedState));
	entry->subid = subid;
	entry->state = current;
	entry->next = saved;
	saved = entry;
}

/*
 * When nothing is pending and no savepoint can bring old events back, let
 * the stream start over so that its memory and file are reused.
 */
static void
recycle_stream(void)
{
	if (saved == NULL && current.start_off == current.end_off)
	{
		emissions_event_stream_truncate(&stream, 0);
		current.start_off = current.end_off = 0;
	}
}

/*
 * Whether this backend has an active buffer.
 */
bool
emissions_buffer_active(void)
{
	return buffer_cxt != NULL && current.active;
}

/*
 * Open the buffer; false if one is already active, or if a handler past
 * the cascade limit is running.
 */
bool
emissions_buffer_start(void)
{
	if (cascade_blocked)
		return false;
	touch();
	if (current.active)
		return false;

	save_state();
	current.active = true;
	xact_counts.buffers_started++;
	return true;
}

/*
 * Append one validated event to the active buffer.
 */
void
emissions_buffer_append(const char *type, int type_len, const Jsonb *payload,
						const Jsonb *metadata)
{
	char		header[EVENT_HEADER_BYTES];
	const void *parts[4];
	Size		lens[4];
	Size		total = emissions_event_encoded_size(type_len, payload, metadata);
	bool		was_spilled = (stream.file != NULL);

	Assert(emissions_buffer_active());
	save_state();

	emissions_event_encode_header(header, (uint32) total, GetCurrentTimestamp(),
								  type_len);
	parts[0] = header;
	lens[0] = EVENT_HEADER_BYTES;
	parts[1] = type;
	lens[1] = type_len;
	parts[2] = payload;
	lens[2] = VARSIZE(payload);
	parts[3] = metadata;
	lens[3] = VARSIZE(metadata);
	emissions_event_stream_append(&stream, parts, lens, 4,
								  (Size) emissions_max_buffer_bytes);

	current.end_off = event_stream_end(&stream);
	current.end_count++;
	xact_counts.events_emitted++;
	if (!was_spilled && stream.file != NULL)
		xact_counts.buffers_spilled++;
}

/* Write the pending events to the outbox as one batch; returns how many. */
static int64
hand_off(void)
{
	int64		count = current.end_count - current.start_count;

	save_state();
	if (count > 0)
	{
		OutboxBatch batch;

		batch.stream = &stream;
		batch.from = current.start_off;
		batch.to = current.end_off;
		batch.nevents = count;
		batch.number = ++batch_number;
		batch.depth = (int16) handler_depth;
		emissions_outbox_write(&batch, &record_number);
		emissions_wake_worker_at_commit();
		current.handed_off_events += count;
		current.handed_off_batches++;
	}
	current.start_off = current.end_off;
	current.start_count = current.end_count;
	recycle_stream();
	return count;
}

/*
 * Hand the pending events off as one batch and keep the buffer open.
 */
int64
emissions_buffer_flush(void)
{
	Assert(emissions_buffer_active());
	return hand_off();
}

/*
 * Hand the pending events off and close the buffer.
 */
int64
emissions_buffer_commit(void)
{
	int64		count;

	Assert(emissions_buffer_active());
	count = hand_off();
	current.active = false;
	xact_counts.buffers_committed++;
	return count;
}

/*
 * Discard the pending events and close the buffer; returns how many.
 */
int64
emissions_buffer_terminate(void)
{
	int64		count;

	Assert(emissions_buffer_active());
	save_state();
	count = current.end_count - current.start_count;
	current.start_off = current.end_off;
	current.start_count = current.end_count;
	current.active = false;
	xact_counts.buffers_terminated++;
	recycle_stream();
	return count;
}

/*
 * Describe the buffer, for emissions_buffer_status().
 */
void
emissions_buffer_get_status(BufferStatus *status)
{
	memset(status, 0, sizeof(BufferStatus));
	if (buffer_cxt == NULL)
		return;

	status->active = current.active;
	status->pending_events = current.end_count - current.start_count;
	status->pending_bytes = current.end_off - current.start_off;
	status->memory_bytes = MemoryContextMemAllocated(buffer_cxt, true);
	status->spilled_bytes = stream.spilled_bytes;
}

/*
 * Before the delivery worker runs adapter code for an event of cascade
 * depth depth - 1: what that code emits will carry depth, and nothing can
 * be emitted past emissions.max_cascade_depth.  A handler function gets a
 * fresh buffer at once (open); a table adapter's insert gets one only when
 * a trigger on the table emits (emissions_trigger() opens one).  No buffer
 * may be active.
 */
void
emissions_buffer_enter_handler(int depth, bool open)
{
	Assert(!emissions_buffer_active());
	handler_depth = depth;
	cascade_blocked = (depth > emissions_max_cascade_depth);
	if (open && !cascade_blocked)
		emissions_buffer_start();
}

/*
 * After a handler returned: hand off what its buffer holds and close it.
 */
void
emissions_buffer_leave_handler(void)
{
	if (emissions_buffer_active())
		emissions_buffer_commit();
	emissions_buffer_reset_handler();
}

/*
 * Leave handler mode; after an error, the subtransaction's abort has
 * already closed the handler's buffer.
 */
void
emissions_buffer_reset_handler(void)
{
	handler_depth = 0;
	cascade_blocked = false;
}

/*
 * Whether events can be appended now; if not, whether a buffer may be
 * opened or a handler past the cascade limit forbids it.
 */
BufferAvailability
emissions_buffer_availability(void)
{
	if (emissions_buffer_active())
		return BUFFER_ACTIVE;
	return cascade_blocked ? BUFFER_CASCADE_LIMIT : BUFFER_NONE;
}

/*
 * Count count events that no buffer took (dropped), with the transaction's
 * other counts.
 */
void
emissions_buffer_count_dropped(int64 count)
{
	xact_counts.events_dropped += count;
}

/* Account for the transaction's outcome, publish counters, forget all. */
static void
finish_transaction(bool committed)
{
	if (buffer_cxt != NULL)
	{
		EmissionsCounters *counts = &xact_counts;

		if (committed)
		{
			counts->events_persisted += current.handed_off_events;
			counts->batches_persisted += current.handed_off_batches;
		}
		else if (current.active)
			counts->buffers_terminated++;
		/* Every event emitted in this transaction is persisted or gone. */
		counts->events_discarded = counts->events_emitted -
			(committed ? current.handed_off_events : 0);
		counts->bytes_spilled += stream.spilled_bytes;
	}
	emissions_stats_publish(&xact_counts);
	memset(&xact_counts, 0, sizeof(EmissionsCounters));

	/* The memory went with TopTransactionContext. */
	buffer_cxt = NULL;
	saved = NULL;
	memset(&current, 0, sizeof(BufferState));
}

/*
 * Transaction callback: persist at PRE_COMMIT/PRE_PREPARE, only clean up
 * afterwards.
 */
static void
buffer_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (buffer_cxt == NULL)
				break;
			if (current.active)
				emissions_buffer_commit();
			emissions_event_stream_close(&stream);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			finish_transaction(true);
			break;
		case XACT_EVENT_ABORT:
			finish_transaction(false);
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* Parallel workers never have a buffer. */
			break;
	}
}

/*
 * Subtransaction callback: restore the saved state on abort, hand it to the
 * parent on commit.
 */
static void
buffer_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	SavedState *entry = saved;

	if (buffer_cxt == NULL || entry == NULL || entry->subid != mySubid)
		return;

	switch (event)
	{
		case SUBXACT_EVENT_ABORT_SUB:
			current = entry->state;
			emissions_event_stream_truncate(&stream, current.end_off);
			saved = entry->next;
			pfree(entry);
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			if (parentSubid == TopSubTransactionId ||
				(entry->next != NULL && entry->next->subid == parentSubid))
			{
				/* The parent needs no copy, or keeps its older one. */
				saved = entry->next;
				pfree(entry);
			}
			else
				entry->subid = parentSubid;
			break;
		case SUBXACT_EVENT_START_SUB:
		case SUBXACT_EVENT_PRE_COMMIT_SUB:
			break;
	}
}

/*
 * Register the transaction callbacks; called once from _PG_init.
 */
void
emissions_buffer_init(void)
{
	RegisterXactCallback(buffer_xact_callback, NULL);
	RegisterSubXactCallback(buffer_subxact_callback, NULL);
}
