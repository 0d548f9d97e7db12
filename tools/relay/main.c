/*-------------------------------------------------------------------------
 *
 * main.c
 *	  emissions_relay: follows a subscription of the emissions extension
 *	  and hands every event to NATS JetStream or to an HTTP webhook,
 *	  acknowledging an event only once the target confirmed it.
 *
 *	  emissions_relay -d CONNINFO --subscription NAME --to URL [OPTION]...
 *
 * This file reads the command line, refuses what cannot work before
 * anything is sent, connects to PostgreSQL and hands over to the target
 * named by the URL's scheme (nats_target.c, http_target.c).  Exit status:
 * 0 after SIGINT or SIGTERM (what was confirmed is acknowledged first),
 * 1 on a permanent failure or a usage error, with a message on stderr.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

RelayOptions opts = {
	.channel = "emissions",
	.format = FORMAT_ENVELOPE,
	.page = 5000,
	.max_in_flight = 16384,
	.batch = 1,
	.parallel = 1,
	.timeout_ms = 10000,
	.max_attempts = 5,
	.duplicate_window_s = 120,
};

/* Print the usage text to stdout. */
static void
usage(void)
{
	printf("%s follows a subscription of the emissions extension and\n"
		   "publishes every event to NATS JetStream or posts it to an HTTP\n"
		   "webhook, acknowledging an event only after the target confirmed\n"
		   "it: a restart, a crash or an outage loses nothing.\n\n", PROGNAME);
	printf("Usage:\n  %s -d CONNINFO --subscription NAME --to URL [OPTION]...\n\n",
		   PROGNAME);
	printf("Where from and where to:\n"
		   "  -d, --dbname=CONNINFO     database name or libpq connection string\n"
		   "                            (passwords: PGPASSWORD or ~/.pgpass)\n"
		   "  -s, --subscription=NAME   the subscription to follow (emissions_subscribe)\n"
		   "  -t, --to=URL              nats://[USER:PASS@|TOKEN@]HOST:PORT/SUBJECT\n"
		   "                            (tls://... for TLS), or http(s)://...\n"
		   "      --to-file=FILE        read the URL from FILE (keeps credentials\n"
		   "                            off the command line); or set\n"
		   "                            EMISSIONS_RELAY_TO in the environment\n"
		   "  -c, --channel=NAME        LISTEN channel that wakes it (default: emissions)\n\n");
	printf("What is sent:\n"
		   "  -f, --format=FORMAT       envelope (default) or cloudevents\n"
		   "      --source=URI          CloudEvents source (default: /emissions/DATABASE)\n"
		   "      --types=GLOB,...      forward only these types (\"order.*\"); the\n"
		   "                            others are acknowledged without being sent\n\n");
	printf("NATS JetStream (each event to SUBJECT.<type>, Nats-Msg-Id DATABASE:ID):\n"
		   "      --stream=NAME         stream (default: the subject upper-cased,\n"
		   "                            dots as underscores)\n"
		   "      --create-stream       create the stream when missing\n"
		   "      --duplicate-window=S  its duplicate window, seconds (default: 120)\n"
		   "      --max-in-flight=N     unconfirmed publishes at most (default: 16384)\n"
		   "      --nats-creds=FILE     credentials file (JWT and NKey seed)\n"
		   "      --nats-ca=FILE        CA certificates to trust (PEM); implies TLS\n"
		   "      --nats-cert=FILE      client certificate (PEM), with --nats-key=FILE\n\n");
	printf("HTTP webhooks (POST, one request at a time, in id order):\n"
		   "      --batch=N             up to N events per request, as a JSON array\n"
		   "      --parallel=N          up to N requests at once (default: 1); the\n"
		   "                            receiver may then get events out of id order\n"
		   "      --header-file=FILE    extra \"Name: value\" headers (Authorization...)\n"
		   "      --secret-file=FILE    sign bodies with HMAC-SHA256 (Emissions-Signature)\n"
		   "      --secret-env=VAR      ... with the secret in environment variable VAR\n"
		   "      --max-attempts=N      tries of a request the receiver refuses\n"
		   "                            (4xx but 408 and 429; default: 5)\n"
		   "      --dead-letter=FILE    then append the events to FILE and go on,\n"
		   "                            instead of stopping\n\n");
	printf("Running:\n"
		   "      --page=N              events read per query (default: 5000)\n"
		   "      --timeout=SECONDS     longest wait for a confirmation (default: 10)\n"
		   "      --progress            log rate and lag every 5 seconds\n"
		   "      --help                show this help, then exit\n\n"
		   "SIGINT or SIGTERM ends it with status 0 after acknowledging what was\n"
		   "confirmed; a permanent failure ends it with status 1 and a message.\n");
}

/* Parse an integer option between min and max, or exit with status 1. */
static int
parse_int(const char *name, const char *value, int min, int max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
		relay_fatal("invalid value for --%s: \"%s\" (from %d to %d)", name,
					value, min, max);
	return (int) v;
}

/* Split "a,b,c" into a NULL-terminated array of globs. */
static char **
parse_types(const char *value)
{
	char	   *copy = strdup(value);
	char	  **globs = calloc(strlen(value) + 2, sizeof(char *));
	char	   *save = NULL;
	int			n = 0;

	if (copy == NULL || globs == NULL)
		relay_fatal("out of memory");
	for (char *g = strtok_r(copy, ",", &save); g; g = strtok_r(NULL, ",", &save))
	{
		for (const char *c = g; *c; c++)
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
						"0123456789_.:-*", *c))
				relay_fatal("invalid --types glob \"%s\": use event type "
							"characters and \"*\"", g);
		globs[n++] = g;
	}
	if (n == 0)
		relay_fatal("--types needs at least one glob");
	return globs;
}

/* Whether url starts with one of the schemes (without "://"). */
static bool
has_scheme(const char *url, const char *scheme)
{
	size_t		n = strlen(scheme);

	return strncmp(url, scheme, n) == 0 && strncmp(url + n, "://", 3) == 0;
}

int
main(int argc, char **argv)
{
	enum
	{
		OPT_TO_FILE = 256, OPT_SOURCE, OPT_TYPES, OPT_STREAM,
		OPT_CREATE_STREAM, OPT_DUP_WINDOW, OPT_IN_FLIGHT, OPT_CREDS, OPT_CA,
		OPT_CERT, OPT_KEY, OPT_BATCH, OPT_HEADER_FILE, OPT_SECRET_FILE,
		OPT_SECRET_ENV, OPT_MAX_ATTEMPTS, OPT_DEAD_LETTER, OPT_PAGE,
		OPT_TIMEOUT, OPT_PROGRESS, OPT_HELP, OPT_PARALLEL
	};
	static const struct option long_options[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"subscription", required_argument, NULL, 's'},
		{"to", required_argument, NULL, 't'},
		{"to-file", required_argument, NULL, OPT_TO_FILE},
		{"channel", required_argument, NULL, 'c'},
		{"format", required_argument, NULL, 'f'},
		{"source", required_argument, NULL, OPT_SOURCE},
		{"types", required_argument, NULL, OPT_TYPES},
		{"stream", required_argument, NULL, OPT_STREAM},
		{"create-stream", no_argument, NULL, OPT_CREATE_STREAM},
		{"duplicate-window", required_argument, NULL, OPT_DUP_WINDOW},
		{"max-in-flight", required_argument, NULL, OPT_IN_FLIGHT},
		{"nats-creds", required_argument, NULL, OPT_CREDS},
		{"nats-ca", required_argument, NULL, OPT_CA},
		{"nats-cert", required_argument, NULL, OPT_CERT},
		{"nats-key", required_argument, NULL, OPT_KEY},
		{"batch", required_argument, NULL, OPT_BATCH},
		{"parallel", required_argument, NULL, OPT_PARALLEL},
		{"header-file", required_argument, NULL, OPT_HEADER_FILE},
		{"secret-file", required_argument, NULL, OPT_SECRET_FILE},
		{"secret-env", required_argument, NULL, OPT_SECRET_ENV},
		{"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
		{"dead-letter", required_argument, NULL, OPT_DEAD_LETTER},
		{"page", required_argument, NULL, OPT_PAGE},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"progress", no_argument, NULL, OPT_PROGRESS},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0}
	};
	const char *to_file = NULL;
	bool		to_nats;
	FormatContext ctx;
	Source	   *src;
	Buf			source_uri = {0};
	int			c;
	int			status;

	while ((c = getopt_long(argc, argv, "d:s:t:c:f:", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				opts.conninfo = optarg;
				break;
			case 's':
				opts.subscription = optarg;
				break;
			case 't':
				opts.to = optarg;
				break;
			case OPT_TO_FILE:
				to_file = optarg;
				break;
			case 'c':
				if (*optarg == '\0')
					relay_fatal("the channel name must not be empty");
				opts.channel = optarg;
				break;
			case 'f':
				if (strcmp(optarg, "envelope") == 0)
					opts.format = FORMAT_ENVELOPE;
				else if (strcmp(optarg, "cloudevents") == 0)
					opts.format = FORMAT_CLOUDEVENTS;
				else
					relay_fatal("invalid --format \"%s\": envelope or "
								"cloudevents", optarg);
				break;
			case OPT_SOURCE:
				opts.source = optarg;
				break;
			case OPT_TYPES:
				opts.types = parse_types(optarg);
				break;
			case OPT_STREAM:
				opts.stream = optarg;
				break;
			case OPT_CREATE_STREAM:
				opts.create_stream = true;
				break;
			case OPT_DUP_WINDOW:
				opts.duplicate_window_s = parse_int("duplicate-window", optarg,
													1, 7 * 24 * 3600);
				break;
			case OPT_IN_FLIGHT:
				opts.max_in_flight = parse_int("max-in-flight", optarg, 1,
											   1000000);
				break;
			case OPT_CREDS:
				opts.nats_creds = optarg;
				break;
			case OPT_CA:
				opts.nats_ca = optarg;
				break;
			case OPT_CERT:
				opts.nats_cert = optarg;
				break;
			case OPT_KEY:
				opts.nats_key = optarg;
				break;
			case OPT_BATCH:
				opts.batch = parse_int("batch", optarg, 1, 100000);
				break;
			case OPT_PARALLEL:
				opts.parallel = parse_int("parallel", optarg, 1, 64);
				break;
			case OPT_HEADER_FILE:
				opts.header_file = optarg;
				break;
			case OPT_SECRET_FILE:
				opts.secret_file = optarg;
				break;
			case OPT_SECRET_ENV:
				opts.secret_env = optarg;
				break;
			case OPT_MAX_ATTEMPTS:
				opts.max_attempts = parse_int("max-attempts", optarg, 1, 1000);
				break;
			case OPT_DEAD_LETTER:
				opts.dead_letter = optarg;
				break;
			case OPT_PAGE:
				opts.page = parse_int("page", optarg, 1, 100000);
				break;
			case OPT_TIMEOUT:
				opts.timeout_ms = parse_int("timeout", optarg, 1, 3600) * 1000;
				break;
			case OPT_PROGRESS:
				opts.progress = true;
				break;
			case OPT_HELP:
				usage();
				return 0;
			default:
				fprintf(stderr, "Try \"%s --help\" for more information.\n",
						PROGNAME);
				return 1;
		}
	}
	if (optind < argc)
		relay_fatal("too many command-line arguments (first is \"%s\")",
					argv[optind]);

	/* The target: --to, --to-file or the environment, exactly one. */
	if ((opts.to != NULL) + (to_file != NULL) > 1)
		relay_fatal("give --to or --to-file, not both");
	if (to_file)
	{
		opts.to = relay_read_file(to_file, NULL);
		opts.to[strcspn(opts.to, "\r\n")] = '\0';
	}
	else if (opts.to == NULL && getenv("EMISSIONS_RELAY_TO"))
		opts.to = getenv("EMISSIONS_RELAY_TO");
	if (opts.to == NULL || opts.to[0] == '\0')
		relay_fatal("no target: give --to URL (or --to-file, or "
					"EMISSIONS_RELAY_TO)");
	if (opts.subscription == NULL || opts.subscription[0] == '\0')
		relay_fatal("no subscription: give --subscription NAME (created with "
					"emissions_subscribe)");
	to_nats = has_scheme(opts.to, "nats") || has_scheme(opts.to, "tls");
	if (!to_nats && !has_scheme(opts.to, "http") &&
		!has_scheme(opts.to, "https"))
		relay_fatal("unsupported target \"%s\": nats://, tls://, http:// or "
					"https://", opts.to);

	/* Options of the other target are refused, not silently ignored. */
	if (to_nats && opts.parallel != 1)
		relay_fatal("--parallel is for HTTP targets: a NATS relay already "
					"keeps up to --max-in-flight publishes unconfirmed, in "
					"id order");
	if (to_nats && (opts.batch != 1 || opts.header_file || opts.secret_file ||
					opts.secret_env || opts.dead_letter))
		relay_fatal("--batch, --header-file, --secret-file, --secret-env and "
					"--dead-letter are for HTTP targets");
	if (!to_nats && (opts.stream || opts.create_stream || opts.nats_creds ||
					 opts.nats_ca || opts.nats_cert || opts.nats_key))
		relay_fatal("--stream, --create-stream, --nats-creds, --nats-ca, "
					"--nats-cert and --nats-key are for NATS targets");
	if (opts.secret_file && opts.secret_env)
		relay_fatal("give --secret-file or --secret-env, not both");
	if ((opts.nats_cert != NULL) != (opts.nats_key != NULL))
		relay_fatal("--nats-cert and --nats-key go together");

	relay_install_signal_handlers();
	src = source_connect();
	if (src == NULL)
		return 1;
	ctx.database = strdup(source_database(src));
	if (opts.source)
		ctx.source = opts.source;
	else
	{
		buf_printf(&source_uri, "/emissions/%s", ctx.database);
		ctx.source = source_uri.data;
	}
	progress_init();
	status = to_nats ? nats_relay_run(&src, &ctx) : http_relay_run(&src, &ctx);
	source_close(src);
	return status;
}
