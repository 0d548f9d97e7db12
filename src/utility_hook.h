/*-------------------------------------------------------------------------
 *
 * utility_hook.h
 *	  Utility commands that need the delivery worker out of the way.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_UTILITY_HOOK_H
#define EMISSIONS_UTILITY_HOOK_H

extern void emissions_utility_hook_install(void);

#endif							/* EMISSIONS_UTILITY_HOOK_H */
