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

extern void emissions_check_event_type(const char *type, int len);
extern bool emissions_open_buffer(void);

#endif							/* EMISSIONS_API_H */
