/*-------------------------------------------------------------------------
 *
 * api.h
 *	  Input checks and buffer opening shared by the SQL-callable functions
 *	  and the trigger function.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_API_H
#define EMISSIONS_API_H

#include "buffer.h"

extern void emissions_check_event_type(const char *type, int len);
extern bool emissions_open_buffer(void);
extern BufferAvailability emissions_ensure_buffer(void);
extern void emissions_note_dropped(const char *type, int type_len, int64 count,
								   BufferAvailability why);

#endif							/* EMISSIONS_API_H */
