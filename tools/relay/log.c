/*-------------------------------------------------------------------------
 *
 * log.c
 *	  Messages on stderr with a timestamp, the stop signals, clocks and
 *	  the reconnection backoff of emissions_relay.
 *
 * Every message is one line, "YYYY-MM-DD HH:MM:SS.mmm UTC emissions_relay:
 * text" (libpq's multi-line messages folded into one), so that a service manager's journal and a plain log file read
 * alike.  SIGINT and SIGTERM only set relay_stop_requested: the loops
 * check it, acknowledge what was confirmed and return.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay.h"

/* Reconnection backoff, in milliseconds: from the first to the longest. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000

volatile sig_atomic_t relay_stop_requested = 0;

/* Write the line's prefix and the message to stderr. */
static void log_line(const char *fmt, va_list ap)
			__attribute__((format(printf, 1, 0)));

static void
log_line(const char *fmt, va_list ap)
{
	struct timespec now;
	struct tm	tm;
	char		stamp[32];
	char		text[4096];
	char	   *out = text;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	vsnprintf(text, sizeof(text), fmt, ap);
	/* One line: libpq's multi-line messages are folded, the end trimmed. */
	for (const char *in = text; *in; in++)
	{
		if (*in == '\n')
		{
			while (in[1] == '\t' || in[1] == ' ')
				in++;
			if (in[1] != '\0' && in[1] != '\n')
				*out++ = ' ';
		}
		else
			*out++ = *in;
	}
	*out = '\0';
	fprintf(stderr, "%s.%03ld UTC %s: %s\n", stamp, now.tv_nsec / 1000000L,
			PROGNAME, text);
	fflush(stderr);
}

/* Log a message. */
void
relay_log(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_line(fmt, ap);
	va_end(ap);
}

/* Log a message and exit with status 1 (a permanent failure). */
void
relay_fatal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_line(fmt, ap);
	va_end(ap);
	exit(1);
}

/* Ask the loops to stop (SIGINT, SIGTERM). */
static void
handle_stop_signal(int signo)
{
	(void) signo;
	relay_stop_requested = 1;
}

/*
 * Install the stop handlers (without SA_RESTART, so that a blocking call
 * returns EINTR and the loop sees the request) and ignore SIGPIPE: a
 * connection closed by its peer is an error return, not a death.
 */
void
relay_install_signal_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Milliseconds of a monotonic clock. */
int64_t
relay_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Sleep for ms milliseconds, or less when a stop is requested. */
void
relay_sleep_ms(int64_t ms)
{
	int64_t		until = relay_now_ms() + ms;

	while (!relay_stop_requested)
	{
		int64_t		left = until - relay_now_ms();
		struct timespec ts;

		if (left <= 0)
			break;
		/* In slices, so that a stop is seen within 100 ms. */
		if (left > 100)
			left = 100;
		ts.tv_sec = 0;
		ts.tv_nsec = (long) left * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/*
 * The next reconnection delay after current (0: the first), doubling from
 * 0.1 s up to 10 s.
 */
int64_t
relay_backoff_next(int64_t current)
{
	if (current <= 0)
		return BACKOFF_MIN_MS;
	return current * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : current * 2;
}
