/*-------------------------------------------------------------------------
 *
 * progress.c
 *	  --progress: every few seconds, one line with the relay's rate and
 *	  how far its subscription is behind.
 *
 * "relayed 152034 events (30406/s), position 1520340, lag 12 events": the
 * rate counts events confirmed by the target (or passed over by --types)
 * since the last line; the lag is the last delivered event's id
 * (emissions_stats) less the subscription's position, an upper bound on
 * the events still to relay (ids can skip numbers).
 *
 *-------------------------------------------------------------------------
 */
#include "relay.h"

/* Seconds between two progress lines. */
#define PROGRESS_INTERVAL_MS 5000

static int64_t last_report_ms;
static long long total_events;
static long long events_at_last_report;

/* Start the clock of the first report. */
void
progress_init(void)
{
	last_report_ms = relay_now_ms();
}

/* Count events confirmed (or skipped) since the last call. */
void
progress_count(long long events)
{
	total_events += events;
}

/* Print the progress line when --progress is on and it is time. */
void
progress_maybe_report(Source *src, long long position)
{
	int64_t		now = relay_now_ms();
	long long	last = 0;
	double		seconds;

	if (!opts.progress || now - last_report_ms < PROGRESS_INTERVAL_MS)
		return;
	seconds = (now - last_report_ms) / 1000.0;
	if (src == NULL || source_last_event(src, &last) != SOURCE_OK)
		last = position;
	relay_log("relayed %lld events (%.0f/s), position %lld, lag %lld events",
			  total_events, (total_events - events_at_last_report) / seconds,
			  position, last > position ? last - position : 0);
	events_at_last_report = total_events;
	last_report_ms = now;
}
