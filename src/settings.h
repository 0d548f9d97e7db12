/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The emissions.* configuration parameters.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_SETTINGS_H
#define EMISSIONS_SETTINGS_H

/* Values of emissions.log_dropped; "off" means no message at all. */
#define EMISSIONS_LOG_DROPPED_OFF	0

extern int	emissions_log_dropped;
extern bool emissions_auto_start;
extern int	emissions_max_buffer_bytes;
extern char *emissions_notify_channel;
extern int	emissions_poll_interval_ms;
extern int	emissions_batch_size;
extern int	emissions_coalesce_delay_ms;
extern int	emissions_max_attempts;
extern int	emissions_max_cascade_depth;
extern int	emissions_adapter_timeout_ms;
extern int	emissions_retention_s;
extern int	emissions_max_retention_s;
extern int	emissions_max_workers;
extern int	emissions_max_stats_databases;

extern void emissions_define_settings(void);

#endif							/* EMISSIONS_SETTINGS_H */
