/*-------------------------------------------------------------------------
 *
 * delivery.c
 *	  Prove, with a real LISTEN connection, that the delivery worker
 *	  announces every committed event once, in order, with its envelope.
 *
 * The Delivery section of the contract and its rules 6 and 7, seen from a
 * client: the envelope on channel emissions carries id, type, payload,
 * metadata, emitted_at (ISO 8601), txid and database; the events of one
 * transaction come in emit order with consecutive ids, and ids increase
 * strictly along the whole stream; a rolled-back transaction announces
 * nothing; a transaction that flushed early but commits late is announced
 * after the one that committed before it, not skipped, with higher ids; an
 * envelope of 8000 bytes or more comes without its payload, marked
 * "payload_omitted", and emissions_event(id) still has the payload; a
 * consumer that disconnects catches up with emissions_events(last_id) and
 * misses nothing and sees nothing twice; emissions.notify_channel moves the
 * default adapter to another channel, or turns it off when empty.  At the
 * end every event the listener saw is every event emissions_events()
 * reports (less those sent while the channel was off), in id order.
 *
 * The connection comes from the environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE); the server must preload the library.  The program creates
 * the database emissions_delivery for itself, with the extension in it,
 * and drops it at the end; it changes emissions.notify_channel with ALTER
 * SYSTEM and resets it on exit.  It prints one "ok N - ..." or "not ok N -
 * ..." line per check and exits 1 if any failed.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "tap_libpq.h"

#define TEST_DB "emissions_delivery"
#define OTHER_CHANNEL "emissions_delivery_other"

/* How long to wait for what must come, and for what must not. */
#define WAIT_MS 10000
#define QUIET_MS 300

#define MAX_ENVELOPES 64
#define MAX_STREAM 512

/* One notification: its channel, the id and type of its envelope, the JSON. */
typedef struct Envelope
{
	char		channel[64];
	long long	id;
	char		type[256];
	char	   *json;
} Envelope;

/* Every id the main listener received, in order of arrival. */
static PGconn *listener = NULL;
static long long stream[MAX_STREAM];
static int	nstream = 0;

/*
 * Receive one envelope on l within timeout_ms, parsed with the help of the
 * server on q; false when none came.  What the main listener receives is
 * also recorded in stream[].
 */
static bool
receive(PGconn *l, PGconn *q, Envelope *e, int timeout_ms)
{
	PGnotify   *n = wait_notify(l, timeout_ms);
	const char *id;

	if (n == NULL)
		return false;
	snprintf(e->channel, sizeof(e->channel), "%s", n->relname);
	e->json = strdup(n->extra);
	PQfreemem(n);
	id = value(q, "SELECT ($1::jsonb->>'id')::bigint", e->json);
	e->id = (id[0] >= '0' && id[0] <= '9') ? atoll(id) : -1;
	snprintf(e->type, sizeof(e->type), "%s",
			 value(q, "SELECT $1::jsonb->>'type'", e->json));
	if (l == listener && nstream < MAX_STREAM)
		stream[nstream++] = e->id;
	return true;
}

/*
 * Receive up to max envelopes on l: wait up to WAIT_MS for the expected
 * number, then QUIET_MS more for any that should not come.  Returns how
 * many arrived.
 */
static int
collect(PGconn *l, PGconn *q, Envelope *e, int max, int expected)
{
	double		deadline = now_ms() + WAIT_MS;
	int			n = 0;

	while (n < expected && n < max)
	{
		int			left = (int) (deadline - now_ms());

		if (left <= 0 || !receive(l, q, &e[n], left))
			return n;
		n++;
	}
	while (n < max && receive(l, q, &e[n], QUIET_MS))
		n++;
	return n;
}

/* Free the JSON text of n envelopes. */
static void
release(Envelope *e, int n)
{
	for (int i = 0; i < n; i++)
		free(e[i].json);
}

/*
 * The types of n envelopes, comma-separated, in a static buffer.
 */
static const char *
types_of(const Envelope *e, int n)
{
	static char buf[4096];
	size_t		len = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && len < sizeof(buf) - 1; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "%s%s",
						i > 0 ? "," : "", e[i].type);
	return buf;
}

/*
 * "increasing" when the ids of n envelopes strictly increase, else the ids.
 */
static const char *
ids_increase(const Envelope *e, int n)
{
	static char buf[4096];
	size_t		len = 0;
	bool		good = true;

	for (int i = 0; i < n; i++)
		if (e[i].id <= 0 || (i > 0 && e[i].id <= e[i - 1].id))
			good = false;
	if (good)
		return "increasing";
	buf[0] = '\0';
	for (int i = 0; i < n && len < sizeof(buf) - 1; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "%s%lld",
						i > 0 ? "," : "", e[i].id);
	return buf;
}

/*
 * Run a JSON question about envelope e (sql takes it as $1) and return the
 * answer.
 */
static const char *
ask(PGconn *q, const char *sql, const Envelope *e)
{
	return value(q, sql, e->json);
}

/*
 * Set emissions.notify_channel cluster-wide (NULL: reset it) and wait until
 * a new session sees the new value, then give the worker a moment.
 */
static void
set_channel(PGconn *admin, const char *channel)
{
	char		sql[256];
	const char *want = channel ? channel : "emissions";

	if (channel)
		snprintf(sql, sizeof(sql),
				 "ALTER SYSTEM SET emissions.notify_channel = '%s'", channel);
	else
		snprintf(sql, sizeof(sql),
				 "ALTER SYSTEM RESET emissions.notify_channel");
	run(admin, sql);
	reload_and_wait(admin, TEST_DB, "emissions.notify_channel", want);
}

/* At exit, whatever happened: put the setting back. */
static void
reset_settings(void)
{
	static const char *const settings[] = {
		"emissions.notify_channel", NULL
	};

	reset_system(settings);
}

/*
 * Wait up to ten seconds for a delivery worker in the test database; return
 * how many there are.
 */
static const char *
wait_worker(PGconn *conn)
{
	const char *seen = "";

	for (int i = 0; i < 100; i++)
	{
		seen = value(conn, "SELECT count(*) FROM pg_stat_activity"
					 " WHERE backend_type = 'emissions delivery'"
					 " AND datname = current_database()", NULL);
		if (strcmp(seen, "0") != 0)
			break;
		usleep(100 * 1000);
	}
	return seen;
}

/*
 * Emit one event of type with the payload given as a SQL expression, in a
 * transaction of its own.
 */
static void
emit_alone(PGconn *conn, const char *type, const char *payload_sql)
{
	char		sql[512];

	snprintf(sql, sizeof(sql),
			 "SELECT emissions_start(), emissions_emit('%s', %s)",
			 type, payload_sql);
	run(conn, sql);
}

/*
 * Emit one event of type in the open transaction on conn, with payload
 * {"tx": tx, "seq": seq}.
 */
static void
emit_seq(PGconn *conn, const char *type, const char *tx, int seq)
{
	char		sql[512];

	snprintf(sql, sizeof(sql),
			 "SELECT emissions_emit('%s', jsonb_build_object('tx', '%s',"
			 " 'seq', %d))", type, tx, seq);
	run(conn, sql);
}

/*
 * The "tx" and "seq" of each envelope's payload, as "a1,a2,b1", in a static
 * buffer.
 */
static const char *
labels_of(PGconn *q, const Envelope *e, int n)
{
	static char buf[4096];
	size_t		len = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && len < sizeof(buf) - 1; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? "," : "",
						ask(q, "SELECT concat($1::jsonb->'payload'->>'tx',"
							" $1::jsonb->'payload'->>'seq')", &e[i]));
	return buf;
}

/*
 * "consecutive" when envelopes with the same label letter (first character
 * of the "tx" label) that follow each other have ids one apart, else the
 * first pair that does not.
 */
static const char *
consecutive(const Envelope *e, int n, const char *labels)
{
	static char buf[128];
	const char *l = labels;

	for (int i = 1; i < n; i++)
	{
		const char *prev = l;

		l = strchr(l, ',');
		if (l == NULL)
			break;
		l++;
		if (prev[0] == l[0] && e[i].id != e[i - 1].id + 1)
		{
			snprintf(buf, sizeof(buf), "%lld then %lld", e[i - 1].id,
					 e[i].id);
			return buf;
		}
	}
	return "consecutive";
}

/*
 * The envelope: every field, with the right value and JSON type.
 */
static void
test_envelope(PGconn *p, PGconn *q)
{
	Envelope	e[MAX_ENVELOPES];
	char		txid[64];
	char		idtext[32];
	char		expected[128];
	int			n;

	run(p, "BEGIN");
	run(p, "SELECT emissions_start()");
	run(p, "SELECT emissions_emit('delivery.envelope',"
		" '{\"n\": 1, \"s\": \"x\"}', '{\"source\": \"delivery.c\"}')");
	snprintf(txid, sizeof(txid), "%s",
			 value(p, "SELECT pg_current_xact_id()::text", NULL));
	run(p, "COMMIT");

	n = collect(listener, q, e, MAX_ENVELOPES, 1);
	check("a committed event is announced once", "delivery.envelope",
		  types_of(e, n));
	if (n < 1)
		return;
	check("on channel emissions", "emissions", e[0].channel);
	check("the envelope has exactly the documented fields",
		  "database,emitted_at,id,metadata,payload,txid,type",
		  ask(q, "SELECT string_agg(k, ',' ORDER BY k)"
			  " FROM jsonb_object_keys($1::jsonb) AS k", &e[0]));
	check("id is a positive JSON number", "number true",
		  ask(q, "SELECT jsonb_typeof($1::jsonb->'id') || ' ' ||"
			  " (($1::jsonb->>'id')::bigint > 0)", &e[0]));
	check("type is the emitted type", "delivery.envelope", e[0].type);
	check("payload is the emitted JSON", "t",
		  ask(q, "SELECT $1::jsonb->'payload' ="
			  " '{\"n\": 1, \"s\": \"x\"}'::jsonb", &e[0]));
	check("metadata is an object with the emitted keys", "object true",
		  ask(q, "SELECT jsonb_typeof($1::jsonb->'metadata') || ' ' ||"
			  " ($1::jsonb->'metadata' @> '{\"source\": \"delivery.c\"}')",
			  &e[0]));
	check("emitted_at is an ISO 8601 timestamp", "t",
		  ask(q, "SELECT $1::jsonb->>'emitted_at' ~"
			  " '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d'", &e[0]));
	check("emitted_at is the emit time, within the last minute", "t",
		  ask(q, "SELECT ($1::jsonb->>'emitted_at')::timestamptz"
			  " BETWEEN clock_timestamp() - interval '1 minute'"
			  " AND clock_timestamp()", &e[0]));
	check("txid is a JSON number", "number",
		  ask(q, "SELECT jsonb_typeof($1::jsonb->'txid')", &e[0]));
	check("txid is the emitting transaction's", txid,
		  ask(q, "SELECT $1::jsonb->>'txid'", &e[0]));
	check("database is the emitting database", TEST_DB,
		  ask(q, "SELECT $1::jsonb->>'database'", &e[0]));

	snprintf(idtext, sizeof(idtext), "%lld", e[0].id);
	snprintf(expected, sizeof(expected),
			 "delivery.envelope {\"n\": 1, \"s\": \"x\"} %s t", txid);
	check("emissions_event(id) returns the event, marked delivered", expected,
		  value(q, "SELECT concat_ws(' ', type, payload, txid,"
				" delivered_at IS NOT NULL)"
				" FROM emissions_event($1::bigint)", idtext));
	release(e, n);
}

/*
 * Order: emit order within a transaction, consecutive ids per transaction,
 * commit order across transactions, ids strictly increasing.
 */
static void
test_order(PGconn *a, PGconn *b, PGconn *q)
{
	Envelope	e[MAX_ENVELOPES];
	const char *labels;
	int			n;

	/* A and B interleave their emits; A commits, then B. */
	run(a, "BEGIN");
	run(a, "SELECT emissions_start()");
	run(b, "BEGIN");
	run(b, "SELECT emissions_start()");
	for (int i = 1; i <= 3; i++)
	{
		emit_seq(a, "delivery.order", "a", i);
		emit_seq(b, "delivery.order", "b", i);
	}
	run(a, "COMMIT");
	run(b, "COMMIT");

	/* Then three transactions of two events each, c, d and e, from A. */
	for (int t = 0; t < 3; t++)
	{
		char		tx[2] = {'c' + t, '\0'};

		run(a, "BEGIN");
		run(a, "SELECT emissions_start()");
		emit_seq(a, "delivery.order", tx, 1);
		emit_seq(a, "delivery.order", tx, 2);
		run(a, "COMMIT");
	}

	n = collect(listener, q, e, MAX_ENVELOPES, 12);
	labels = labels_of(q, e, n);
	check("each transaction's events arrive together, in emit order,"
		  " transactions in commit order",
		  "a1,a2,a3,b1,b2,b3,c1,c2,d1,d2,e1,e2", labels);
	check("ids strictly increase", "increasing", ids_increase(e, n));
	check("the events of one transaction have consecutive ids",
		  "consecutive", consecutive(e, n, labels));
	release(e, n);
}

/*
 * A rolled-back transaction, flushed or not, and one that failed, announce
 * nothing.
 */
static void
test_rollback(PGconn *a, PGconn *b, PGconn *q)
{
	Envelope	e[MAX_ENVELOPES];
	int			n;

	run(a, "BEGIN");
	run(a, "SELECT emissions_start()");
	run(a, "SELECT emissions_emit('delivery.rolled_back.flushed')");
	check("a flush before the rollback hands off one event", "1",
		  value(a, "SELECT emissions_flush()", NULL));
	run(a, "SELECT emissions_emit('delivery.rolled_back.buffered')");
	run(a, "ROLLBACK");

	run(a, "BEGIN");
	run(a, "SELECT emissions_start()");
	run(a, "SELECT emissions_emit('delivery.rolled_back.error')");
	check("a flush in a transaction that then fails hands off one event",
		  "1", value(a, "SELECT emissions_flush()", NULL));
	(void) command(a, "SELECT 1/0");	/* the transaction fails */
	run(a, "ROLLBACK");

	/* A marker committed after them: once it is announced, they had time. */
	emit_alone(b, "delivery.marker", "'{}'");
	n = collect(listener, q, e, MAX_ENVELOPES, 1);
	check("the rolled-back transactions announce nothing, the next one"
		  " is announced", "delivery.marker", types_of(e, n));
	check("and emissions_events() does not have them", "0",
		  value(q, "SELECT count(*) FROM emissions_events(0, 100000)"
				" WHERE type LIKE 'delivery.rolled_back%'", NULL));
	release(e, n);
}

/*
 * A transaction that flushed first but commits after another is delivered
 * after it, with higher ids, not skipped.
 */
static void
test_late_commit(PGconn *a, PGconn *b, PGconn *q)
{
	Envelope	e[MAX_ENVELOPES];
	Envelope	late[MAX_ENVELOPES];
	int			n;
	int			nlate;
	char		order[64];

	run(a, "BEGIN");
	run(a, "SELECT emissions_start()");
	emit_seq(a, "delivery.late.a", "a", 1);
	emit_seq(a, "delivery.late.a", "a", 2);
	check("A flushes two events and stays open", "2",
		  value(a, "SELECT emissions_flush()", NULL));

	run(b, "BEGIN");
	run(b, "SELECT emissions_start()");
	emit_seq(b, "delivery.late.b", "b", 1);
	run(b, "COMMIT");
	check("B's event is delivered while A is still open", "t",
		  value(b, "SELECT emissions_wait_delivered('20s')", NULL));
	n = collect(listener, q, e, MAX_ENVELOPES, 1);
	check("B's event is announced, A's are not yet", "delivery.late.b",
		  types_of(e, n));

	emit_seq(a, "delivery.late.a", "a", 3);
	run(a, "COMMIT");
	nlate = collect(listener, q, late, MAX_ENVELOPES, 3);
	check("A's events are announced once it commits, none skipped",
		  "a1,a2,a3", labels_of(q, late, nlate));
	if (n == 1 && nlate >= 1)
	{
		snprintf(order, sizeof(order), "%s",
				 late[0].id > e[0].id ? "after B" : "not after B");
		check("with ids after B's", "after B", order);
	}
	check("A's ids strictly increase", "increasing",
		  ids_increase(late, nlate));
	check("A's ids are consecutive", "consecutive",
		  consecutive(late, nlate, labels_of(q, late, nlate)));
	check("emissions_events() has each of A's events once", "3 3",
		  value(q, "SELECT count(*) || ' ' || count(DISTINCT id)"
				" FROM emissions_events(0, 100000)"
				" WHERE type = 'delivery.late.a'", NULL));
	release(e, n);
	release(late, nlate);
}

/*
 * An envelope of 8000 bytes or more goes out without its payload, marked;
 * a smaller one keeps it.
 */
static void
test_oversize(PGconn *p, PGconn *q)
{
	Envelope	e[MAX_ENVELOPES];
	char		idtext[32];
	char		len[32];
	int			n;

	run(p, "BEGIN");
	run(p, "SELECT emissions_start()");
	run(p, "SELECT emissions_emit('delivery.big.omitted',"
		" jsonb_build_object('big', repeat('x', 9000)))");
	run(p, "SELECT emissions_emit('delivery.big.kept',"
		" jsonb_build_object('big', repeat('y', 7000)))");
	run(p, "COMMIT");

	n = collect(listener, q, e, MAX_ENVELOPES, 2);
	check("both large events are announced",
		  "delivery.big.omitted,delivery.big.kept", types_of(e, n));
	if (n < 2)
	{
		release(e, n);
		return;
	}
	snprintf(len, sizeof(len), "%s",
			 strlen(e[0].json) < 8000 ? "under 8000" : "too long");
	check("the oversized envelope fits in a NOTIFY", "under 8000", len);
	check("it has \"payload_omitted\": true and no payload", "true false",
		  ask(q, "SELECT ($1::jsonb->'payload_omitted')::text || ' ' ||"
			  " ($1::jsonb ? 'payload')", &e[0]));
	check("and keeps the other fields",
		  "database,emitted_at,id,metadata,payload_omitted,txid,type",
		  ask(q, "SELECT string_agg(k, ',' ORDER BY k)"
			  " FROM jsonb_object_keys($1::jsonb) AS k", &e[0]));
	snprintf(idtext, sizeof(idtext), "%lld", e[0].id);
	check("emissions_event(id) returns the full payload", "9000",
		  value(q, "SELECT length(payload->>'big')"
				" FROM emissions_event($1::bigint)", idtext));
	check("an envelope under the limit keeps its payload", "7000 false",
		  ask(q, "SELECT length($1::jsonb->'payload'->>'big') || ' ' ||"
			  " ($1::jsonb ? 'payload_omitted')", &e[1]));
	release(e, n);
}

/*
 * A consumer that disconnects, LISTENs again and reads emissions_events()
 * from its last id misses nothing and sees nothing twice.
 */
static void
test_catch_up(PGconn *p, PGconn *q)
{
	Envelope	e[MAX_ENVELOPES];
	Envelope	followed[MAX_ENVELOPES];
	PGconn	   *consumer;
	PGresult   *res;
	char		last[32];
	char		seen[4096];
	size_t		len = 0;
	long long	max_read = 0;
	bool		read_in_order = true;
	int			n;
	int			nfollowed;
	const char *param;

	consumer = connect_to(TEST_DB, show_notice);
	run(consumer, "LISTEN emissions");
	emit_alone(p, "delivery.catchup.before", "'{}'");
	n = collect(consumer, q, e, 1, 1);
	check("the consumer receives an event before it disconnects",
		  "delivery.catchup.before", types_of(e, n));
	snprintf(last, sizeof(last), "%lld", n == 1 ? e[0].id : 0);
	release(e, n);
	PQfinish(consumer);

	/* While it is away: three transactions of two events. */
	for (int t = 1; t <= 3; t++)
	{
		run(p, "BEGIN");
		run(p, "SELECT emissions_start()");
		emit_seq(p, "delivery.catchup.missed", "m", 2 * t - 1);
		emit_seq(p, "delivery.catchup.missed", "m", 2 * t);
		run(p, "COMMIT");
	}
	delivered(p);

	/* It comes back: LISTEN first, then read what it missed. */
	consumer = connect_to(TEST_DB, show_notice);
	run(consumer, "LISTEN emissions");
	emit_alone(p, "delivery.catchup.during", "'{}'");
	delivered(p);

	param = last;
	res = PQexecParams(consumer,
					   "SELECT id, type, payload->>'seq'"
					   " FROM emissions_events($1::bigint)",
					   1, NULL, &param, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		bail("emissions_events: %s", PQerrorMessage(consumer));
	seen[0] = '\0';
	for (int i = 0; i < PQntuples(res); i++)
	{
		long long	id = atoll(PQgetvalue(res, i, 0));

		if (id <= max_read)
			read_in_order = false;
		max_read = id;
		len += snprintf(seen + len, sizeof(seen) - len, "%s%s%s",
						len ? "," : "", PQgetvalue(res, i, 1),
						PQgetvalue(res, i, 2));
	}
	PQclear(res);
	check("emissions_events(last_id) returns what was missed, once each",
		  "delivery.catchup.missed1,delivery.catchup.missed2,"
		  "delivery.catchup.missed3,delivery.catchup.missed4,"
		  "delivery.catchup.missed5,delivery.catchup.missed6,"
		  "delivery.catchup.during", seen);
	check("in id order", "true", read_in_order ? "true" : "false");
	check("emissions_events(last_id, 2) returns the first two",
		  "delivery.catchup.missed:1,2",
		  value(consumer, "SELECT min(type) || ':' ||"
				" string_agg(payload->>'seq', ',' ORDER BY id)"
				" FROM emissions_events($1::bigint, 2)", last));

	/* Then it follows the channel, skipping ids it has already read. */
	emit_alone(p, "delivery.catchup.after", "'{}'");
	nfollowed = collect(consumer, q, followed, MAX_ENVELOPES, 2);
	check("the channel announced what came after the LISTEN",
		  "delivery.catchup.during,delivery.catchup.after",
		  types_of(followed, nfollowed));
	for (int i = 0; i < nfollowed; i++)
		if (followed[i].id > max_read)
			len += snprintf(seen + len, sizeof(seen) - len, ",%s",
							followed[i].type);
	check("read plus followed: nothing missed, nothing twice",
		  "delivery.catchup.missed1,delivery.catchup.missed2,"
		  "delivery.catchup.missed3,delivery.catchup.missed4,"
		  "delivery.catchup.missed5,delivery.catchup.missed6,"
		  "delivery.catchup.during,delivery.catchup.after", seen);
	release(followed, nfollowed);
	PQfinish(consumer);

	/* The main listener saw all nine. */
	n = collect(listener, q, e, MAX_ENVELOPES, 9);
	snprintf(seen, sizeof(seen), "%d %s", n, ids_increase(e, n));
	check("the main listener saw all nine, in id order", "9 increasing",
		  seen);
	release(e, n);
}

/*
 * emissions.notify_channel: the default adapter uses exactly the channel
 * set, none when it is empty, and emissions again when reset.
 */
static void
test_channel(PGconn *admin, PGconn *p, PGconn *q)
{
	Envelope	e[MAX_ENVELOPES];
	int			n;

	set_channel(admin, OTHER_CHANNEL);
	emit_alone(p, "delivery.channel.other", "'{}'");
	n = collect(listener, q, e, MAX_ENVELOPES, 1);
	check("with notify_channel set, the event is announced once",
		  "delivery.channel.other", types_of(e, n));
	check("on that channel only", OTHER_CHANNEL, n == 1 ? e[0].channel : "");
	release(e, n);

	set_channel(admin, "");
	emit_alone(p, "delivery.channel.none", "'{}'");
	delivered(p);
	n = 0;
	while (n < MAX_ENVELOPES && receive(listener, q, &e[n], 1000))
		n++;
	check("with notify_channel empty, nothing is announced", "",
		  types_of(e, n));
	check("but the event is delivered", "1",
		  value(q, "SELECT count(*) FROM emissions_events(0, 100000)"
				" WHERE type = 'delivery.channel.none'"
				" AND delivered_at IS NOT NULL", NULL));
	release(e, n);

	set_channel(admin, NULL);
	emit_alone(p, "delivery.channel.back", "'{}'");
	n = collect(listener, q, e, MAX_ENVELOPES, 1);
	check("reset, the event is announced once", "delivery.channel.back",
		  types_of(e, n));
	check("on channel emissions", "emissions", n == 1 ? e[0].channel : "");
	release(e, n);
}

int
main(void)
{
	PGconn	   *admin;
	PGconn	   *p;
	PGconn	   *p2;
	PGconn	   *q;
	char	   *all;
	size_t		len = 0;
	size_t		size = MAX_STREAM * 24 + 1;

	admin = connect_to(NULL, show_notice);
	run(admin, "DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
	run(admin, "CREATE DATABASE " TEST_DB);
	atexit(reset_settings);
	p = connect_to(TEST_DB, show_notice);
	run(p, "CREATE EXTENSION emissions");
	p2 = connect_to(TEST_DB, show_notice);
	q = connect_to(TEST_DB, show_notice);
	check("a delivery worker serves the new database", "1", wait_worker(q));

	listener = connect_to(TEST_DB, show_notice);
	run(listener, "LISTEN emissions");
	run(listener, "LISTEN " OTHER_CHANNEL);

	test_envelope(p, q);
	test_order(p, p2, q);
	test_rollback(p, p2, q);
	test_late_commit(p, p2, q);
	test_oversize(p, q);
	test_catch_up(p, q);
	test_channel(admin, p, q);

	/* The whole stream: every delivered event, once, in id order. */
	all = malloc(size);
	all[0] = '\0';
	for (int i = 0; i < nstream; i++)
		len += snprintf(all + len, size - len, "%s%lld", i ? "," : "",
						stream[i]);
	check("the listener saw every delivered event once, in id order",
		  value(q, "SELECT string_agg(id::text, ',' ORDER BY id)"
				" FROM emissions_events(0, 100000)"
				" WHERE type <> 'delivery.channel.none'", NULL), all);
	free(all);

	PQfinish(p);
	PQfinish(p2);
	PQfinish(q);
	PQfinish(listener);
	check("the test database is dropped", "done",
		  command(admin, "DROP DATABASE " TEST_DB));
	PQfinish(admin);
	printf("1..%d\n", nchecks);
	return nfailed > 0 ? 1 : 0;
}
