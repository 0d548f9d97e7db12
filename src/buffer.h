/*-------------------------------------------------------------------------
 *
 * buffer.h
 *	  The per-transaction event buffer.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_BUFFER_H
#define EMISSIONS_BUFFER_H

#include "utils/jsonb.h"

/* Whether events can be appended now, and if not, why. */
typedef enum BufferAvailability
{
	BUFFER_ACTIVE,				/* a buffer is open */
	BUFFER_NONE,				/* none is open; one may be opened */
	BUFFER_CASCADE_LIMIT		/* a handler past emissions.max_cascade_depth
								 * runs: none may be opened */
} BufferAvailability;

/* What emissions_buffer_status() reports. */
typedef struct BufferStatus
{
	bool		active;
	int64		pending_events;
	int64		pending_bytes;
	int64		memory_bytes;
	int64		spilled_bytes;
} BufferStatus;

extern void emissions_buffer_init(void);
extern bool emissions_buffer_active(void);
extern BufferAvailability emissions_buffer_availability(void);
extern bool emissions_buffer_start(void);
extern void emissions_buffer_append(const char *type, int type_len,
									const Jsonb *payload, const Jsonb *metadata);
extern int64 emissions_buffer_flush(void);
extern int64 emissions_buffer_commit(void);
extern int64 emissions_buffer_terminate(void);
extern void emissions_buffer_get_status(BufferStatus *status);
extern void emissions_buffer_count_dropped(int64 count);

/* Delivery worker: a buffer of its own for each handler invocation. */
extern void emissions_buffer_enter_handler(int depth, bool open);
extern void emissions_buffer_leave_handler(void);
extern void emissions_buffer_reset_handler(void);

#endif							/* EMISSIONS_BUFFER_H */
