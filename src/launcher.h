/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The launcher: one delivery worker per database with the extension.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_LAUNCHER_H
#define EMISSIONS_LAUNCHER_H

extern void emissions_launcher_register(void);
extern PGDLLEXPORT void emissions_launcher_main(Datum main_arg);

#endif							/* EMISSIONS_LAUNCHER_H */
