/*-------------------------------------------------------------------------
 *
 * wakeup.h
 *	  Waking the delivery worker or the launcher once a transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_WAKEUP_H
#define EMISSIONS_WAKEUP_H

extern void emissions_wakeup_init(void);
extern void emissions_wake_worker_at_commit(void);
extern void emissions_wake_launcher_at_commit(void);

#endif							/* EMISSIONS_WAKEUP_H */
