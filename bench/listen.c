/*
 * bench/listen.c: LISTEN on some channels from several connections and
 * consume every notification, counting them (bench/fanout.sh's listeners).
 *
 * Usage: listen [-d CONNINFO] [-n CONNECTIONS] [-q QUIET_MS] [-r READY_FILE]
 *               CHANNEL...
 *
 * Opens CONNECTIONS (8) connections to the database named by the PG*
 * environment (or -d CONNINFO), LISTENs on every CHANNEL on each, creates
 * READY_FILE once all are listening, then reads notifications as they come
 * (select() over all sockets, PQconsumeInput, PQnotifies), so that no
 * listener lags and the server's notification queue never fills.  On
 * SIGTERM or SIGINT it keeps reading until no notification has come for
 * QUIET_MS (500) and then prints, per channel, a tab-separated line:
 *
 *   channel total min_per_connection max_per_connection out_of_order
 *
 * out_of_order counts, over all connections, the emissions envelopes
 * (payloads that begin with {"id": N) whose id was not above the previous
 * one the same connection got on the same channel: ids must increase
 * strictly in delivery order.
 *
 * Exits 1 on a connection error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_CONNS 64
#define MAX_CHANNELS 8

static volatile sig_atomic_t stopping = 0;

static void
on_signal(int sig)
{
	(void) sig;
	stopping = 1;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int
main(int argc, char **argv)
{
	const char *conninfo = "";
	const char *ready = NULL;
	int			nconns = 8,
				nchannels,
				opt,
				i,
				c;
	long		quiet_ms = 500;
	PGconn	   *conns[MAX_CONNS];
	long		counts[MAX_CONNS][MAX_CHANNELS];
	long long	last_id[MAX_CONNS][MAX_CHANNELS];
	long		disorder[MAX_CHANNELS];
	char	  **channels;
	double		last = 0;
	struct sigaction sa;

	while ((opt = getopt(argc, argv, "d:n:q:r:")) != -1)
	{
		switch (opt)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'n':
				nconns = atoi(optarg);
				break;
			case 'q':
				quiet_ms = atol(optarg);
				break;
			case 'r':
				ready = optarg;
				break;
			default:
				goto usage;
		}
	}
	nchannels = argc - optind;
	channels = argv + optind;
	if (nconns < 1 || nconns > MAX_CONNS || nchannels < 1 ||
		nchannels > MAX_CHANNELS)
		goto usage;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	memset(counts, 0, sizeof(counts));
	memset(last_id, 0, sizeof(last_id));
	memset(disorder, 0, sizeof(disorder));

	for (i = 0; i < nconns; i++)
	{
		conns[i] = PQconnectdb(conninfo);
		if (PQstatus(conns[i]) != CONNECTION_OK)
		{
			fprintf(stderr, "listen: connection %d: %s", i,
					PQerrorMessage(conns[i]));
			return 1;
		}
		for (c = 0; c < nchannels; c++)
		{
			char	   *ident = PQescapeIdentifier(conns[i], channels[c],
												   strlen(channels[c]));
			char		sql[200];
			PGresult   *res;

			snprintf(sql, sizeof(sql), "LISTEN %s", ident);
			PQfreemem(ident);
			res = PQexec(conns[i], sql);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
			{
				fprintf(stderr, "listen: %s: %s", sql, PQerrorMessage(conns[i]));
				return 1;
			}
			PQclear(res);
		}
	}
	if (ready)
	{
		FILE	   *f = fopen(ready, "w");

		if (f == NULL)
		{
			perror(ready);
			return 1;
		}
		fclose(f);
	}

	for (;;)
	{
		fd_set		rfds;
		struct timeval tv = {0, 100 * 1000};
		int			maxfd = -1;
		int			n;

		if (stopping)
		{
			if (last == 0)
				last = now_ms();
			if (now_ms() - last >= quiet_ms)
				break;
		}
		FD_ZERO(&rfds);
		for (i = 0; i < nconns; i++)
		{
			int			fd = PQsocket(conns[i]);

			FD_SET(fd, &rfds);
			if (fd > maxfd)
				maxfd = fd;
		}
		n = select(maxfd + 1, &rfds, NULL, NULL, &tv);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			perror("listen: select");
			return 1;
		}
		for (i = 0; i < nconns && n > 0; i++)
		{
			PGnotify   *nt;

			if (!FD_ISSET(PQsocket(conns[i]), &rfds))
				continue;
			if (!PQconsumeInput(conns[i]))
			{
				fprintf(stderr, "listen: connection %d: %s", i,
						PQerrorMessage(conns[i]));
				return 1;
			}
			while ((nt = PQnotifies(conns[i])) != NULL)
			{
				for (c = 0; c < nchannels; c++)
					if (strcmp(nt->relname, channels[c]) == 0)
					{
						counts[i][c]++;
						if (strncmp(nt->extra, "{\"id\": ", 7) == 0)
						{
							long long	id = strtoll(nt->extra + 7, NULL, 10);

							if (id <= last_id[i][c])
								disorder[c]++;
							last_id[i][c] = id;
						}
					}
				PQfreemem(nt);
				last = now_ms();
			}
		}
	}

	for (c = 0; c < nchannels; c++)
	{
		long		total = 0,
					min = counts[0][c],
					max = counts[0][c];

		for (i = 0; i < nconns; i++)
		{
			total += counts[i][c];
			if (counts[i][c] < min)
				min = counts[i][c];
			if (counts[i][c] > max)
				max = counts[i][c];
		}
		printf("%s\t%ld\t%ld\t%ld\t%ld\n", channels[c], total, min, max,
			   disorder[c]);
	}
	for (i = 0; i < nconns; i++)
		PQfinish(conns[i]);
	return 0;

usage:
	fprintf(stderr, "usage: listen [-d CONNINFO] [-n CONNECTIONS] [-q QUIET_MS]"
			" [-r READY_FILE] CHANNEL...\n");
	return 2;
}
