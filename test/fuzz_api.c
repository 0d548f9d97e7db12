/*-------------------------------------------------------------------------
 *
 * fuzz_api.c
 *	  Throw random and adversarial calls at the whole SQL API and check that
 *	  each one succeeds or fails with a proper SQLSTATE, that the results the
 *	  contract fixes are right, and that nothing crashes.
 *
 * fuzz_buffer.c walks the buffer's state machine with valid and simply
 * invalid input and checks every delivered event against its model; this
 * program is about bad input, everywhere: every function of the install
 * script (the buffer functions, emissions_events and emissions_event,
 * emissions_wait_delivered, adapters, replay, stats, pending, watch and
 * unwatch, emissions_trigger through triggers created with random
 * arguments on tables with awkward names, columns and types, and the
 * emissions.* settings) gets NULLs, values of megabytes, malformed and
 * deeply nested JSON, invalid identifiers, names with quotes, dots,
 * control bytes and multibyte characters, invalid UTF-8, negative, zero
 * and extreme numbers and wrong argument types, in every buffer state
 * (none, open and empty, with events pending, closed after a hand-off,
 * read-only transaction, aborted transaction), at top level, in
 * savepoints that are rolled back or released, in PL/pgSQL exception
 * blocks, in prepared transactions, as a role without privileges, and
 * inside handler functions run by the delivery worker (function adapters
 * whose handler runs API calls carried by the event), with handler loops
 * that go past emissions.max_cascade_depth.
 *
 * To be fast, most calls travel many to a round trip: a statement runs a
 * list of calls through fuzz_try(), a PL/pgSQL function that EXECUTEs each
 * in an exception block (a subtransaction) and returns "ok <value>" or
 * "ERROR <sqlstate> <message>"; fuzz_group() runs a list of calls and then
 * raises, to roll them all back.  Other calls run at top level, several
 * statements to a query string inside a transaction block with
 * savepoints, or pipelined one statement per transaction.
 *
 * Checks:
 * - a delivery worker serves the test database;
 * - every call succeeds or fails with an ERROR whose SQLSTATE is not
 *	 internal (class XX) or a system error (class 58), and the backend
 *	 survives it all;
 * - where the contract fixes the result, it is right: start, emit, flush,
 *	 commit, terminate, active and buffer_status against a model of the
 *	 buffer (whose state the results of calls with unpredictable effects,
 *	 such as DML under random triggers, bring back in line), and the
 *	 SQLSTATE of each kind of bad input the contract and
 *	 docs/sql-reference.md list (rule 10, the Errors table: 22004, 22023, 25006, 25P02, 42501, 42704,
 *	 42710, 42809, 42883, 55P02, ...), for at least half of the calls;
 * - every API function was called in every buffer state;
 * - the events of type fz* that the model says were committed are all
 *	 delivered and no other (nothing rolled back, terminated or dropped):
 *	 as many, and the same multiset of types (most are numbered, unique),
 *	 so that one lost and one leaked cannot cancel out; a NULL payload is stored as JSON null and NULL metadata as {};
 * - handler loops stop after emissions.max_cascade_depth generations, and
 *	 so does a table adapter whose table emits through a trigger;
 * - the API calls run inside handlers met no internal error either;
 * - the delivery worker is still alive (the same process, or one
 *	 restarted after a clean exit), and the server log shows no process
 *	 terminated by a signal, no TRAP and no PANIC (no log found is a
 *	 failure).
 * Then the attacker's moves (hostile_moves): a role's shadowing operators
 * and functions first in its search_path while it calls every function of
 * the extension, events of tens of megabytes, terminations of the launcher
 * and the workers; see there.
 *
 * The connection comes from the environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE, a superuser); the server must preload the library.  The
 * program creates the database emissions_fuzz_api and the role
 * emissions_fuzz_api_role for itself and drops them at the end.  The log is
 * read from FUZZ_API_LOG, or PGHOST/server.log where test/lib.sh puts it.
 * FUZZ_API_CALLS sets the number of calls (100,000 by default),
 * FUZZ_API_SEED the seed (printed, so that a failure reproduces),
 * FUZZ_API_SLOW a factor for the waits at the end (for a server under
 * Valgrind).  It prints one "ok N - ..." or "not ok N - ..." line per group
 * of checks and exits 1 if any failed.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "tap_libpq.h"

#define TEST_DB "emissions_fuzz_api"
#define ROLE "emissions_fuzz_api_role"

#define DEFAULT_SEED 20261129
#define DEFAULT_CALLS 100000

#define MAX_SAVEPOINTS 8
#define MAX_SUB 400				/* calls in one batch, at most */
#define MAX_CHAINS 4096
#define MAX_EXAMPLES 3			/* failures shown per check */
#define PRECISE_SHARE 2			/* 1 call in this many, at least, has its
								 * result checked exactly */
#define TYPE_MAX 255			/* bytes of an event type */
#define NAME_MAX_BYTES 63		/* of an adapter or channel name */

#define lengthof(array) (sizeof(array) / sizeof((array)[0]))

/* Which part of the API a call exercises: the rows of the coverage table. */
typedef enum Fn
{
	F_START,
	F_EMIT,
	F_FLUSH,
	F_COMMIT,
	F_TERMINATE,
	F_ACTIVE,
	F_STATUS,
	F_EVENTS,
	F_EVENT,
	F_WAIT,
	F_ADD,
	F_DROP,
	F_REPLAY,
	F_WATCH,
	F_UNWATCH,
	F_DML,
	F_DDL,
	F_SET,
	F_STATS,
	F_RESET,
	F_PENDING,
	F_MISC,
	NUM_API_FNS,
	/* structure, not calls */
	F_BATCH = NUM_API_FNS,
	F_GROUP,
	F_SAVEPOINT,
	F_RELEASE,
	F_ROLLBACK_TO
} Fn;

static const char *const fn_names[NUM_API_FNS] = {
	"emissions_start", "emissions_emit", "emissions_flush",
	"emissions_commit", "emissions_terminate", "emissions_active",
	"emissions_buffer_status", "emissions_events", "emissions_event",
	"emissions_wait_delivered", "emissions_add_adapter",
	"emissions_drop_adapter", "emissions_replay", "emissions_watch",
	"emissions_unwatch", "DML under emissions_trigger",
	"CREATE/DROP TRIGGER emissions_trigger", "SET emissions.*",
	"emissions_stats", "emissions_stats_reset", "emissions_pending",
	"misuse (wrong types, direct calls)"
};

/* The buffer state a call meets: the columns of the coverage table. */
typedef enum State
{
	S_NONE,						/* no buffer */
	S_EMPTY,					/* open, nothing pending */
	S_PENDING,					/* open, events pending */
	S_CLOSED,					/* closed after a hand-off in this xact */
	S_READ_ONLY,				/* in a read-only transaction */
	S_ABORTED,					/* in a failed transaction */
	NUM_STATES,
	S_UNKNOWN = NUM_STATES		/* not known before the call */
} State;

static const char *const state_names[NUM_STATES] = {
	"no buffer", "open and empty", "events pending", "closed after hand-off",
	"read-only transaction", "aborted transaction"
};

/* Where a call runs, which decides what its error does. */
typedef enum Ctx
{
	CTX_WRAPPED,				/* in fuzz_try: an error rolls back alone */
	CTX_RAW,					/* top level in a transaction block */
	CTX_AUTOCOMMIT,				/* top level, a transaction of its own */
	CTX_HANDLER					/* run by a handler in the worker */
} Ctx;

/* What a call is expected to return, when known at generation. */
typedef enum Expect
{
	X_ANY,						/* any value, or an error of a proper class */
	X_VALUE,					/* exactly want */
	X_ERROR,					/* an error with SQLSTATE want */
	X_MODEL						/* what the buffer model says */
} Expect;

/* The event type of an emit, as far as the model cares. */
typedef enum TypeClass
{
	T_FZ,						/* valid, counted: starts with "fz" */
	T_OTHER,					/* valid, not counted */
	T_NULL,						/* SQL NULL: 22004 */
	T_BAD,						/* invalid: 22023 */
	T_ARG_ERROR,				/* the argument itself fails to evaluate */
	T_WRONG_TYPE				/* no such function: 42883 */
} TypeClass;

/* One call (or savepoint command, batch or group) and its expectation. */
typedef struct Op
{
	Fn			fn;
	char	   *sql;
	Expect		expect;
	char		want[16];
	bool		arg_error;		/* an argument may fail: 22xxx or 54xxx */
	TypeClass	type_class;		/* emits */
	bool		meta_bad;		/* emits: metadata not an object */
	int			emit_count;		/* emits: events one call appends */
	uint64_t	fz_hash;		/* emits of class T_FZ: type_hash(type) */
	int			chain;			/* emits: loop chain seeded, or -1 */
	int			set_auto;		/* SET emissions.auto_start: 0, 1, or -1 */
	int			savepoint;		/* savepoint commands: its number */
	bool		fail;			/* groups: raise at the end */
	struct Op  *sub;			/* batches and groups */
	int			nsub;
} Op;

/* How a call ended. */
typedef struct Outcome
{
	bool		executed;
	bool		ok;
	const char *value;			/* when ok; "NULL" for a null */
	char		state[6];		/* when not */
	const char *message;
} Outcome;

/* The session as the model sees it. */
typedef struct Model
{
	bool		in_block;		/* in BEGIN ... COMMIT */
	bool		aborted;
	bool		read_only;
	bool		as_role;
	bool		auto_start;
	bool		active;
	bool		active_known;
	long		pending;		/* all events pending, when total_known */
	bool		total_known;
	long		pending_fz;		/* fz events pending */
	long		handed_fz;		/* fz events handed off in this xact */
	uint64_t	pending_fz_sum; /* type_hash() sums of the same events */
	uint64_t	handed_fz_sum;
	bool		handed_any;		/* anything handed off in this xact */
	int			chain;			/* loop chain seeded in this xact, or -1 */
} Model;

/* A failed check's first examples. */
typedef struct Failures
{
	long		count;
	char		text[MAX_EXAMPLES][600];
} Failures;

static PGconn *conn;
static int	backend_pid;
static Model m;
static Model saved[MAX_SAVEPOINTS];
static int	saved_num[MAX_SAVEPOINTS];
static int	nsaved;
static int	next_savepoint;
static bool session_auto_start = false;
static long committed_fz = 0;
static uint64_t committed_fz_sum = 0;	/* of their types' type_hash() */
static long next_fz_serial = 0;	/* makes most fz types unique */
static char fz_type[TYPE_MAX + 1];	/* gen_type()'s last fz type */
static bool chain_committed[MAX_CHAINS];
static int	nchains = 0;
static bool can_prepare = false;
static int	next_gid = 0;

/* Counters. */
static long ncalls = 0;
static long nprecise = 0;
static long nnotices = 0;
static long coverage[NUM_API_FNS][NUM_STATES];
static long fn_calls[NUM_API_FNS];
static long nrounds = 0;
static long ntransactions = 0;
static long nprepared = 0;
static long nrollbacks_to = 0;
static long ngroups_failed = 0;
static long nhandler_events = 0;
static long nhuge = 0;
static Failures internal_failures;
static Failures precise_failures;

/* Names given out, each once. */
static int	next_adapter = 0;
static int	next_trigger = 0;
static int	next_channel = 0;

/* Waits are this many times longer (FUZZ_API_SLOW: under Valgrind, say). */
static int	slow = 1;

/*
 * Count server notices (dropped events, identifiers truncated, ...)
 * without showing them: there are thousands.
 */
static void
count_notice(void *arg, const char *message)
{
	nnotices++;
}

/* Remember a failure of a check, with up to MAX_EXAMPLES examples. */
static void
record(Failures *f, const char *fmt,...)
{
	va_list		ap;

	if (f->count < MAX_EXAMPLES)
	{
		va_start(ap, fmt);
		vsnprintf(f->text[f->count], sizeof(f->text[0]), fmt, ap);
		va_end(ap);
	}
	f->count++;
}

/* Show the examples of a failed check as TAP comments. */
static void
show_failures(const Failures *f)
{
	for (long i = 0; i < f->count && i < MAX_EXAMPLES; i++)
		printf("#   %s\n", f->text[i]);
	if (f->count > MAX_EXAMPLES)
		printf("#   ... %ld in all\n", f->count);
}


/*-------------------------------------------------------------------------
 * Strings
 *-------------------------------------------------------------------------
 */

/* A growable string. */
typedef struct Str
{
	char	   *s;
	size_t		len;
	size_t		cap;
} Str;

/* Make room for more bytes and a terminator. */
static void
str_reserve(Str *b, size_t more)
{
	if (b->s != NULL && b->len + more + 1 <= b->cap)
		return;
	if (b->cap == 0)
		b->cap = 256;
	while (b->len + more + 1 > b->cap)
		b->cap *= 2;
	b->s = realloc(b->s, b->cap);
	if (b->s == NULL)
		bail("out of memory");
}

/* Append n bytes of t. */
static void
str_addn(Str *b, const char *t, size_t n)
{
	str_reserve(b, n);
	memcpy(b->s + b->len, t, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Append t. */
static void
str_add(Str *b, const char *t)
{
	str_addn(b, t, strlen(t));
}

/* Append a formatted string. */
static void
str_addf(Str *b, const char *format,...)
{
	va_list		ap;
	int			n;

	va_start(ap, format);
	n = vsnprintf(NULL, 0, format, ap);
	va_end(ap);
	str_reserve(b, n);
	va_start(ap, format);
	vsnprintf(b->s + b->len, n + 1, format, ap);
	va_end(ap);
	b->len += n;
}

/* Append t as an SQL string literal (standard_conforming_strings on). */
static void
str_lit(Str *b, const char *t)
{
	str_add(b, "'");
	for (const char *c = t; *c; c++)
	{
		if (*c == '\'')
			str_add(b, "''");
		else
			str_addn(b, c, 1);
	}
	str_add(b, "'");
}

/* Append t as a JSON string. */
static void
str_json(Str *b, const char *t)
{
	str_add(b, "\"");
	for (const unsigned char *c = (const unsigned char *) t; *c; c++)
	{
		if (*c == '"' || *c == '\\')
			str_addf(b, "\\%c", *c);
		else if (*c < 0x20)
			str_addf(b, "\\u%04x", *c);
		else
			str_addn(b, (const char *) c, 1);
	}
	str_add(b, "\"");
}

/* Take the string (malloc'd) and leave b empty. */
static char *
str_take(Str *b)
{
	char	   *s = b->s ? b->s : strdup("");

	if (s == NULL)
		bail("out of memory");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

/* A malloc'd formatted string. */
static char *
fmt(const char *format,...)
{
	va_list		ap;
	int			n;
	char	   *s;

	va_start(ap, format);
	n = vsnprintf(NULL, 0, format, ap);
	va_end(ap);
	s = malloc(n + 1);
	if (s == NULL)
		bail("out of memory");
	va_start(ap, format);
	vsnprintf(s, n + 1, format, ap);
	va_end(ap);
	return s;
}

/* Start of a statement for messages: at most 160 bytes, one line. */
static const char *
brief(const char *sql)
{
	static char buf[200];
	size_t		n = 0;

	for (const char *c = sql; *c && n < 160; c++)
		buf[n++] = (*c == '\n' || *c == '\r' || *c == '\t') ? ' ' : *c;
	strcpy(buf + n, *sql && strlen(sql) > 160 ? "..." : "");
	return buf;
}

/*-------------------------------------------------------------------------
 * Random input
 *-------------------------------------------------------------------------
 */

/* Bytes of a valid event type. */
static const char type_chars[] =
"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";

/*
 * Pieces that are never part of a valid event type: quotes, separators,
 * control bytes next to NUL, multibyte characters (accented, CJK, emoji, a
 * right-to-left override, a combining accent), format directives, an
 * injection attempt, a backslash escape that is not one here.  None is
 * valid in an adapter's types either.
 */
static const char *const odd_pieces[] = {
	" ", "'", "\"", "\\", "/", "%", "$", "(", ")", ";", "+", "@", "#",
	"\x01", "\x02", "\x1f", "\x7f", "\t", "\n", "\r",
	"\xc3\xa9", "\xe5\x90\x8d", "\xf0\x9f\x98\x80", "\xe2\x80\xae",
	"e\xcc\x81", "%s%n", "'); DROP TABLE tb_plain; --", "\\x00", "\\0"
};

/* Append len random valid type bytes. */
static void
add_word(Str *b, int len)
{
	for (int i = 0; i < len; i++)
		str_addn(b, &type_chars[rnd(sizeof(type_chars) - 1)], 1);
}

/* Append valid bytes mixed with at least one odd piece. */
static void
add_odd(Str *b, int maxlen)
{
	int			n = 1 + rnd(3);

	for (int i = 0; i < n; i++)
	{
		add_word(b, rnd(maxlen / n + 1));
		str_add(b, odd_pieces[rnd(lengthof(odd_pieces))]);
	}
	if (rnd(2))
		add_word(b, rnd(4));
}

/*
 * A size: mostly up to 64 kB, one time in 40 megabytes (counted as huge).
 */
static long
random_size(void)
{
	static const long small[] = {0, 1, 255, 256, 8000, 8192, 65536};
	static const long huge[] = {1L << 20, 3L << 20, 8L << 20};

	if (rnd(40) == 0)
	{
		nhuge++;
		return huge[rnd(lengthof(huge))];
	}
	return small[rnd(lengthof(small))];
}

/*-------------------------------------------------------------------------
 * Generating calls
 *-------------------------------------------------------------------------
 */

/* What the generator knows (or guesses) about where a call will run. */
typedef struct Gen
{
	Ctx			ctx;
	bool		read_only;
	bool		as_role;
	bool		active_guess;
} Gen;

/* Start op as a call of fn, whose result is not known in advance. */
static void
op_init(Op *op, Fn fn)
{
	memset(op, 0, sizeof(Op));
	op->fn = fn;
	op->expect = X_ANY;
	op->chain = -1;
	op->set_auto = -1;
	op->emit_count = 1;
}

/* The call must return exactly value. */
static void
want_value(Op *op, const char *value)
{
	op->expect = X_VALUE;
	snprintf(op->want, sizeof(op->want), "%s", value);
}

/* The call must fail with exactly sqlstate. */
static void
want_error(Op *op, const char *sqlstate)
{
	op->expect = X_ERROR;
	snprintf(op->want, sizeof(op->want), "%s", sqlstate);
}

/* Free what op (and its sub-operations) allocated. */
static void
op_free(Op *op)
{
	for (int i = 0; i < op->nsub; i++)
		op_free(&op->sub[i]);
	free(op->sub);
	free(op->sql);
	op->sub = NULL;
	op->sql = NULL;
	op->nsub = 0;
}

/*
 * A 64-bit hash of an event type (FNV-1a, then splitmix64's finalizer):
 * the model and the check at the end sum it over events, each event once,
 * so that the delivered fz events are compared with the committed ones as
 * a multiset of types, not only counted.
 */
static uint64_t
type_hash(const char *type)
{
	uint64_t	h = UINT64_C(0xcbf29ce484222325);

	for (const unsigned char *c = (const unsigned char *) type; *c; c++)
		h = (h ^ *c) * UINT64_C(0x100000001b3);
	h = (h ^ (h >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	h = (h ^ (h >> 27)) * UINT64_C(0x94D049BB133111EB);
	return h ^ (h >> 31);
}

/*
 * Append an event type argument; return its class.  For T_FZ, fz_type is
 * set to the type the argument evaluates to; most are unique, numbered.  *null_payload or
 * *null_meta ask for a NULL payload or metadata (the types whose storage
 * is checked at the end).  *arg_state is the SQLSTATE of an argument that
 * cannot be evaluated.
 */
static TypeClass
gen_type(Str *b, const Gen *g, bool *null_payload, bool *null_meta,
		 char *arg_state)
{
	static const char *const seps[] = {".", "_", "-"};
	const char *prefix = g->ctx == CTX_HANDLER ? "hz" : "fz";
	static const int w[] = {40, 3, 3, 3, 2, 2, 4, 3, 12, 1, 1, 1, 2, 1, 3, 1,
	1, 1, 1};
	Str			t = {0};
	TypeClass	c = T_FZ;
	long		n;

	switch (choose(w, lengthof(w)))
	{
		case 0:
			str_add(&t, prefix);
			str_add(&t, seps[rnd(3)]);
			add_word(&t, rnd(21));
			str_addf(&t, ".%ld", ++next_fz_serial);
			break;
		case 1:
			str_addf(&t, "%s:null", prefix);
			*null_payload = true;
			break;
		case 2:
			str_addf(&t, "%s:nullmeta", prefix);
			*null_meta = true;
			break;
		case 3:
			str_add(&t, prefix);
			str_add(&t, ".");
			add_word(&t, TYPE_MAX - 3);
			break;
		case 4:
			str_add(&t, prefix);
			str_add(&t, ".");
			add_word(&t, TYPE_MAX - 2);
			c = T_BAD;
			break;
		case 5:
			n = random_size();
			str_addf(b, "'%s' || repeat('z', %ld)", prefix,
					 n < TYPE_MAX ? TYPE_MAX : n);
			return T_BAD;
		case 6:
			str_add(b, "NULL");
			return T_NULL;
		case 7:
			c = T_BAD;
			break;
		case 8:
			str_add(&t, prefix);
			add_odd(&t, 20);
			c = T_BAD;
			break;
		case 9:
			str_addf(b, "'%s' || chr(0)", prefix);
			strcpy(arg_state, "54000");
			return T_ARG_ERROR;
		case 10:
			if (g->ctx == CTX_RAW)
			{
				str_addf(b, "'%s' || chr(0)", prefix);
				strcpy(arg_state, "54000");
			}
			else
			{
				/* not in a multi-statement string: the lexer refuses it all */
				str_addf(b, "E'%s\\x00'", prefix);
				strcpy(arg_state, "22021");
			}
			return T_ARG_ERROR;
		case 11:
			if (g->ctx == CTX_RAW)
			{
				str_add(b, "convert_from('\\xe9'::bytea, 'LATIN1')");
				return T_BAD;
			}
			str_addf(b, "E'%s\\xff'", prefix);
			strcpy(arg_state, "22021");
			return T_ARG_ERROR;
		case 12:
			str_add(b, "42");
			return T_WRONG_TYPE;
		case 13:
			str_addf(b, "'%s.' || repeat(U&'\\00e9', 100)", prefix);
			return T_BAD;
		case 14:
			str_add(&t, "hz.");
			add_word(&t, rnd(10));
			c = T_OTHER;
			break;
		case 15:
			str_add(&t, "ad.x");
			c = T_OTHER;
			break;
		case 16:
			str_addf(b, "'%s.name'::name", prefix);
			snprintf(fz_type, sizeof(fz_type), "%s.name", prefix);
			return T_FZ;
		case 17:
			str_addf(b, "'%s.v12345'::varchar(4)", prefix);
			snprintf(fz_type, sizeof(fz_type), "%s.v", prefix);
			return T_FZ;
		default:
			str_addf(b, "upper('%s.up')", prefix);
			return T_OTHER;
	}
	str_lit(b, t.s ? t.s : "");
	if (c == T_FZ)
		snprintf(fz_type, sizeof(fz_type), "%s", t.s ? t.s : "");
	free(t.s);
	return c;
}

/* Valid JSON texts that are not objects. */
static const char *const json_non_objects[] = {
	"[1, 2, 3]", "\"str\"", "42", "null", "true", "false", "-0.0e-5", "[{}]",
	"\"\"", "\"\\u00e9\\ud83d\\ude00\"", "123456789012345678901234567890.5",
	"1e-400", "[[[[[[[[[[[]]]]]]]]]]]", "\"\\\"'\""
};

/* Texts that are not JSON, or not storable as jsonb. */
static const char *const json_malformed[] = {
	"{", "{\"a\":}", "[1,]", "nul", "{'a': 1}", "{\"a\" 1}", "\"\\u0000\"",
	"\"\\ud800\"", "1e1000000", "\"a\x01z\"", "", " ", "{\"a\":1}}", "[",
	"\"unterminated", "{\"a\":1,}", "01", "+1", "NaN", "Infinity",
	"{\"\\uZZZZ\": 1}", "\xc3\xa9", "{\"a\": 1} x", "[1] [2]"
};

/* Valid texts to mutate. */
static const char *const json_bases[] = {
	"{\"a\": 1, \"b\": [true, null, \"x\"]}", "[1, {\"c\": \"d\"}]",
	"{\"k\": {\"k\": {\"k\": \"v\"}}}", "\"plain\"", "{\"n\": -1.5e3}"
};

/*
 * Append a jsonb argument; *uncertain when it may fail to be evaluated
 * (malformed, nested too deep, out of range), *object whether it is
 * certainly a JSON object.
 */
static void
gen_json(Str *b, bool *uncertain, bool *object)
{
	static const int w[] = {6, 15, 10, 6, 1, 1, 2, 5, 4, 3, 2};
	static const char mutations[] = "{}[]\":,\\ 0az\x01";
	static const long depths[] = {1, 10, 100, 1000, 10000, 100000};
	Str			t = {0};
	long		n;
	int			k;

	*uncertain = false;
	*object = false;
	switch (choose(w, lengthof(w)))
	{
		case 0:
			str_add(b, "'{}'::jsonb");
			*object = true;
			return;
		case 1:
			str_addf(&t, "{\"k\": %d, \"s\": ", rnd(1000) - 500);
			{
				Str			word = {0};

				if (rnd(3) == 0)
					add_odd(&word, 10);
				else
					add_word(&word, rnd(12));
				str_json(&t, word.s ? word.s : "");
				free(word.s);
			}
			str_add(&t, "}");
			*object = true;
			break;
		case 2:
			str_add(&t, json_non_objects[rnd(lengthof(json_non_objects))]);
			break;
		case 3:
			str_add(&t, "{\"a\": {\"b\": [{\"c\": null}]}, \"d\": 1, \"d\": 2,"
					" \"\": \"\", \"\\u0001\": \"\\n\"}");
			*object = true;
			break;
		case 4:
			n = random_size();
			str_addf(b, "jsonb_build_object('big', repeat('x', %ld))", n);
			*object = true;
			return;
		case 5:
			n = random_size() / 64;
			str_addf(b, "(SELECT jsonb_build_object('h',"
					 " string_agg(md5(i::text), ''))"
					 " FROM generate_series(1, %ld) AS i)", n);
			*object = true;
			return;
		case 6:
			n = depths[rnd(lengthof(depths))];
			str_addf(b, "(repeat('[', %ld) || repeat(']', %ld))::jsonb", n, n);
			*uncertain = true;
			return;
		case 7:
			str_add(&t, json_malformed[rnd(lengthof(json_malformed))]);
			*uncertain = true;
			break;
		case 8:
			str_add(&t, json_bases[rnd(lengthof(json_bases))]);
			k = 1 + rnd(3);
			for (int i = 0; i < k; i++)
			{
				size_t		pos = rnd((int) t.len + 1);
				char		c = mutations[rnd(sizeof(mutations) - 1)];

				if (rnd(2) && pos < t.len)
					t.s[pos] = c;	/* replace */
				else
				{
					str_addn(&t, " ", 1);	/* insert */
					memmove(t.s + pos + 1, t.s + pos, t.len - pos - 1);
					t.s[pos] = c;
				}
			}
			*uncertain = true;
			break;
		case 9:
			add_odd(&t, 12);
			str_add(b, "to_jsonb(");
			str_lit(b, t.s);
			str_add(b, "::text)");
			free(t.s);
			return;
		default:
			add_odd(&t, 12);
			str_add(b, "jsonb_build_object(");
			str_lit(b, t.s);
			str_add(b, ", now(), 'n', 'NaN'::numeric)");
			free(t.s);
			*object = true;
			return;
	}
	str_lit(b, t.s ? t.s : "");
	str_add(b, "::jsonb");
	free(t.s);
}

static void gen_call(Op *op, const Gen *g);

/*
 * An emit of an event whose handler runs random API calls in the worker:
 * hx.catch (fz_catch records each call's outcome) or hx.raw (fz_raw lets
 * an error fail the delivery).
 */
static void
gen_handler_emit(Op *op)
{
	bool		raw = rnd(5) == 0;
	int			n = 1 + rnd(raw ? 2 : 6);
	Gen			hg = {CTX_HANDLER, false, false, true};
	Str			json = {0};
	Str			b = {0};

	str_add(&json, "{\"sql\": [");
	for (int i = 0; i < n; i++)
	{
		Op			sub;

		gen_call(&sub, &hg);
		if (i > 0)
			str_add(&json, ", ");
		str_json(&json, sub.sql);
		op_free(&sub);
	}
	str_add(&json, "]}");
	op->type_class = T_OTHER;
	str_addf(&b, "SELECT emissions_emit('%s', ", raw ? "hx.raw" : "hx.catch");
	str_lit(&b, json.s);
	str_add(&b, "::jsonb)::text");
	free(json.s);
	op->sql = str_take(&b);
	nhandler_events++;
}

/* emissions_emit(), alone or many times in one statement. */
static void
gen_emit(Op *op, const Gen *g)
{
	Str			b = {0};
	Str			type = {0};
	Str			payload = {0};
	Str			meta = {0};
	bool		null_payload = false;
	bool		null_meta = false;
	bool		uncertain;
	bool		object;
	bool		named = rnd(4) == 0;

	op_init(op, F_EMIT);
	op->expect = X_MODEL;
	if (g->ctx != CTX_HANDLER && rnd(100) < 4)
	{
		gen_handler_emit(op);
		return;
	}
	op->type_class = gen_type(&type, g, &null_payload, &null_meta, op->want);
	if (op->type_class == T_FZ)
		op->fz_hash = type_hash(fz_type);
	if (op->type_class == T_ARG_ERROR)
		op->arg_error = true;

	if (null_payload || rnd(100) < 5)
		str_add(&payload, "NULL");
	else if (rnd(100) >= 25)
	{
		gen_json(&payload, &uncertain, &object);
		op->arg_error |= uncertain;
	}
	if (null_meta || rnd(100) < 5)
		str_add(&meta, "NULL");
	else if (rnd(100) >= 45)
	{
		gen_json(&meta, &uncertain, &object);
		op->arg_error |= uncertain;
		op->meta_bad = !uncertain && !object;
	}

	if (rnd(100) < 5 && g->ctx != CTX_HANDLER && !null_payload)
	{
		/* many events from one call */
		op->emit_count = 1 + rnd(rnd(10) == 0 ? 500 : 50);
		str_add(&b, "SELECT bool_and(emissions_emit(");
		str_add(&b, type.s);
		str_add(&b, ", jsonb_build_object('i', g)");
		if (meta.s)
		{
			str_add(&b, ", ");
			str_add(&b, meta.s);
		}
		str_addf(&b, "))::text FROM generate_series(1, %d) AS g",
				 op->emit_count);
	}
	else if (named)
	{
		str_add(&b, "SELECT emissions_emit(type => ");
		str_add(&b, type.s);
		if (meta.s)
		{
			str_add(&b, ", metadata => ");
			str_add(&b, meta.s);
		}
		if (payload.s)
		{
			str_add(&b, ", payload => ");
			str_add(&b, payload.s);
		}
		str_add(&b, ")::text");
	}
	else
	{
		str_add(&b, "SELECT emissions_emit(");
		str_add(&b, type.s);
		if (payload.s || meta.s)
		{
			str_add(&b, ", ");
			str_add(&b, payload.s ? payload.s : "'{}'");
		}
		if (meta.s)
		{
			str_add(&b, ", ");
			str_add(&b, meta.s);
		}
		str_add(&b, ")::text");
	}
	op->sql = str_take(&b);
	free(type.s);
	free(payload.s);
	free(meta.s);
}

/* The buffer functions without arguments, and emissions_buffer_status. */
static void
gen_buffer_call(Op *op, Fn fn)
{
	op_init(op, fn);
	op->expect = X_MODEL;
	switch (fn)
	{
		case F_START:
			op->sql = strdup("SELECT emissions_start()::text");
			break;
		case F_FLUSH:
			/* several flushes in one statement: the first one counts */
			op->sql = strdup(rnd(8) ? "SELECT emissions_flush()::text" :
							 "SELECT emissions_flush()::text"
							 " FROM generate_series(1, 3)");
			break;
		case F_COMMIT:
			op->sql = strdup("SELECT emissions_commit()::text");
			break;
		case F_TERMINATE:
			op->sql = strdup("SELECT emissions_terminate()::text");
			break;
		case F_ACTIVE:
			op->sql = strdup("SELECT emissions_active()::text");
			break;
		default:
			op->sql = strdup("SELECT active::text || ' ' || pending_events"
							 " FROM emissions_buffer_status()");
			break;
	}
}

/* The name of an existing fuzz adapter, or of one that may exist. */
static void
add_fuzz_adapter_name(Str *b, const Gen *g)
{
	str_addf(b, "%s_%d", g->ctx == CTX_HANDLER ? "fh" : "fa",
			 rnd(next_adapter + 1));
}

/*
 * emissions_add_adapter(name, kind, target, types, options), with its
 * expected outcome where the arguments decide it: the checks run in the
 * order of adapter_admin.c (NULLs, name, types, options, kind and target,
 * rights, duplicate, read-only transaction).
 */
static void
gen_add(Op *op, const Gen *g)
{
	Str			name = {0};
	Str			target = {0};
	Str			b = {0};
	const char *kind;
	const char *types;
	const char *options;
	const char *verdict = "";	/* "" ok, "?" unknown, else a SQLSTATE */
	const char *target_verdict = "";
	bool		name_null = false;
	bool		target_null = false;
	bool		broad = false;
	bool		types_bad;
	size_t		len;
	long		n;
	static const char *const kinds[] = {
		"notify", "table", "function", NULL, "", "NOTIFY", "tabel"
	};
	static const int kind_w[] = {35, 30, 25, 3, 2, 2, 3};
	static const int name_w[] = {50, 4, 4, 3, 2, 10, 5, 2};
	static const int types_w[] = {10, 30, 10, 10, 4, 4, 2, 10, 3, 5, 2, 2};
	static const int options_w[] = {10, 20, 10, 4, 3, 4, 3, 3, 3, 2, 5, 3, 3,
	3, 2, 2};

	op_init(op, F_ADD);

	/* name */
	switch (choose(name_w, lengthof(name_w)))
	{
		case 0:
			str_addf(&name, "%s_%d", g->ctx == CTX_HANDLER ? "fh" : "fa",
					 ++next_adapter);
			break;
		case 1:
			name_null = true;
			break;
		case 2:
			break;
		case 3:
			while (name.len < NAME_MAX_BYTES + 1)
				str_add(&name, "n");
			break;
		case 4:
			str_addf(&name, "fa_%d_", ++next_adapter);
			while (name.len < NAME_MAX_BYTES)
				str_add(&name, "n");
			break;
		case 5:
			add_odd(&name, 12);
			str_addf(&name, "_%d", ++next_adapter);
			break;
		case 6:
			str_add(&name, "fz_catch");	/* a permanent adapter */
			break;
		default:
			n = random_size();
			str_addf(&name, "n%d_", ++next_adapter);
			while (name.len < (size_t) n)
				str_add(&name, "nnnnnnnnnnnnnnnn");
			break;
	}
	len = name.len;

	kind = kinds[choose(kind_w, lengthof(kind_w))];

	/* target, and what the kind makes of it */
	if (kind != NULL && strcmp(kind, "table") == 0)
	{
		static const char *const tables[] = {
			"sk_all", "public.sk_all", "\"sk_all\"", "sk_narrow",
			"sk_nocols", "no_such_table", "tb_view", "fz_seq", "a.b.c.d",
			"\"unterminated", NULL
		};
		static const char *const verdicts[] = {
			"", "", "", "", "", "42P01", "42809", "42809", "42601", "42602",
			"?"
		};
		static const int w[] = {30, 10, 5, 10, 5, 10, 5, 5, 3, 3, 10};
		int			k = choose(w, lengthof(w));

		if (tables[k])
			str_add(&target, tables[k]);
		else
			add_odd(&target, 20);
		target_verdict = verdicts[k];
		if (*target_verdict == '\0' && g->as_role)
			target_verdict = "42501";	/* no INSERT on sink tables */
	}
	else if (kind != NULL && strcmp(kind, "function") == 0)
	{
		static const char *const functions[] = {
			"fz_noop", "fz_noop(jsonb)", "public.fz_noop", "jsonb_typeof",
			"fz_noop(int)", "jsonb_each", "no_such_function", "fz_proc",
			"fz_noop(", NULL
		};
		static const char *const verdicts[] = {
			"", "", "", "", "42883", "42809", "42883", "?", "?", "?"
		};
		static const int w[] = {30, 10, 5, 5, 5, 5, 5, 5, 2, 10};
		int			k = choose(w, lengthof(w));

		if (functions[k])
			str_add(&target, functions[k]);
		else
			add_odd(&target, 20);
		target_verdict = verdicts[k];
		broad = k <= 2;			/* fz_noop may take every event */
	}
	else
	{
		static const int w[] = {60, 10, 10, 15, 5};

		switch (choose(w, lengthof(w)))
		{
			case 0:
				str_addf(&target, "ch_%d", next_channel++ % 50);
				break;
			case 1:
				break;
			case 2:
				while (target.len < NAME_MAX_BYTES + 1)
					str_add(&target, "c");
				break;
			case 3:
				add_odd(&target, 12);
				break;
			default:
				n = random_size();
				str_addf(&target, "c%ld", n);
				while (target.len < (size_t) n)
					str_add(&target, "cccccccccccccccc");
				break;
		}
		if (kind != NULL && strcmp(kind, "notify") == 0)
		{
			target_verdict = (target.len == 0 ||
							  target.len > NAME_MAX_BYTES) ? "22023" : "";
			broad = true;
		}
		else
			target_verdict = "22023";	/* unknown kind */
	}
	if (rnd(100) < 4)
		target_null = true;

	/* types */
	{
		static const char *const typelist[] = {
			NULL, "'ad.x'", "'ad.*'", "'ad.x,ad.y'", "''", "'a,,b'", "','",
			"'ad.x y'", "'*'", "'hz.*'",
			"repeat('ad.x,', 100000) || 'ad x'",
			"'ad.' || repeat('*', 1000)"
		};
		static const bool typebad[] = {
			false, false, false, false, true, true, true, true, false, false,
			true, false
		};
		int			k = choose(types_w, lengthof(types_w));

		types = typelist[k];
		types_bad = typebad[k];
	}
	/* only harmless adapters may take every event */
	if ((types == NULL || strcmp(types, "'*'") == 0) && !broad)
		types = "'ad.*'";

	/* options, and their verdict for this kind */
	{
		const char *ov = "";
		bool		is_notify = kind != NULL && strcmp(kind, "notify") == 0;

		switch (choose(options_w, lengthof(options_w)))
		{
			case 0:
				options = NULL;
				break;
			case 1:
				options = "'{}'";
				break;
			case 2:
				options = "'{\"max_attempts\": 3}'";
				break;
			case 3:
				options = "'{\"max_attempts\": 0}'";
				ov = "22023";
				break;
			case 4:
				options = "'{\"max_attempts\": -1}'";
				ov = "22023";
				break;
			case 5:
				options = "'{\"max_attempts\": 1.5}'";
				ov = "22023";
				break;
			case 6:
				options = "'{\"max_attempts\": 2.0}'";
				ov = "22023";
				break;
			case 7:
				options = "'{\"max_attempts\": 1e10}'";
				ov = "22003";
				break;
			case 8:
				options = "'{\"max_attempts\": \"3\"}'";
				ov = "22023";
				break;
			case 9:
				options = "'null'";
				ov = "22023";
				break;
			case 10:
				options = "'{\"omit_payload\": true}'";
				ov = is_notify ? "" : "22023";
				break;
			case 11:
				options = "'{\"omit_payload\": \"yes\"}'";
				ov = "22023";
				break;
			case 12:
				options = "'{\"bogus\": 1}'";
				ov = "22023";
				break;
			case 13:
				options = "'[]'";
				ov = "22023";
				break;
			case 14:
				options = "'{\"max_attempts\": null}'";
				ov = "22023";
				break;
			default:
				options = "'{'";
				ov = "?";
				op->arg_error = true;
				break;
		}

		/* the verdict, in the order of the checks */
		if (name_null || kind == NULL || target_null)
			verdict = "22004";
		else if (len == 0 || len > NAME_MAX_BYTES)
			verdict = "22023";
		else if (types_bad)
			verdict = "22023";
		else if (*ov)
			verdict = ov;
		else if (*target_verdict)
			verdict = target_verdict;
		else if (strcmp(name.s ? name.s : "", "fz_catch") == 0)
			verdict = "42710";
		else if (g->read_only)
			verdict = "25006";
		else
			verdict = "";
	}

	str_add(&b, "SELECT emissions_add_adapter(");
	if (name_null)
		str_add(&b, "NULL");
	else if (len > 1000)
		str_addf(&b, "repeat('n', %zu)", len);
	else
		str_lit(&b, name.s ? name.s : "");
	str_add(&b, ", ");
	if (kind)
		str_lit(&b, kind);
	else
		str_add(&b, "NULL");
	str_add(&b, ", ");
	if (target_null)
		str_add(&b, "NULL");
	else if (target.len > 1000)
		str_addf(&b, "repeat('c', %zu)", target.len);
	else
		str_lit(&b, target.s ? target.s : "");
	if (types || options)
	{
		str_add(&b, ", ");
		str_add(&b, types ? types : "NULL");
	}
	if (options)
	{
		str_add(&b, ", ");
		str_add(&b, options);
		str_add(&b, "::jsonb");
	}
	str_add(&b, ")::text");
	op->sql = str_take(&b);
	free(name.s);
	free(target.s);

	if (g->ctx == CTX_HANDLER || strcmp(verdict, "?") == 0)
		return;
	if (*verdict)
		want_error(op, verdict);
	else
		want_value(op, "");
}

/* emissions_drop_adapter(name). */
static void
gen_drop(Op *op, const Gen *g)
{
	Str			b = {0};
	Str			name = {0};

	op_init(op, F_DROP);
	switch (rnd(10))
	{
		case 0:
			op->sql = strdup("SELECT emissions_drop_adapter(NULL)::text");
			want_value(op, "NULL");
			return;
		case 1:
		case 2:
		case 3:
			str_add(&name, "nx_");
			add_word(&name, rnd(10));
			want_error(op, "42704");
			break;
		case 4:
			str_add(&name, "nx");
			add_odd(&name, 10);
			want_error(op, "42704");
			break;
		case 5:
			if (g->as_role)
			{
				str_add(&name, "fz_loop");
				want_error(op, "42501");
				break;
			}
			/* FALLTHROUGH */
		default:
			add_fuzz_adapter_name(&name, g);
			break;
	}
	str_add(&b, "SELECT emissions_drop_adapter(");
	str_lit(&b, name.s);
	str_add(&b, ")::text");
	free(name.s);
	op->sql = str_take(&b);
}

/* emissions_replay(id). */
static void
gen_replay(Op *op)
{
	static const char *const ids[] = {
		"NULL", "0", "-1", "-9223372036854775808", "9223372036854775807"
	};
	int			k = rnd(10);

	op_init(op, F_REPLAY);
	if (k < 5)
	{
		op->sql = fmt("SELECT emissions_replay(%s)::text", ids[k]);
		want_value(op, k == 0 ? "NULL" : "false");
	}
	else
		op->sql = fmt("SELECT emissions_replay(%d)::text", 1 + rnd(300));
}

/* emissions_events(after_id, max) and emissions_event(id). */
static void
gen_events(Op *op, Fn fn)
{
	static const char *const afters[] = {
		"NULL", "-9223372036854775808", "-1", "0",
		"(SELECT last_event_id - 5 FROM emissions_stats)",
		"9223372036854775807"
	};
	static const char *const maxes[] = {
		NULL, "NULL", "-1", "-2147483648", "0", "1", "10", "1000",
		"2147483647"
	};
	int			a = rnd(lengthof(afters));
	int			x = rnd(lengthof(maxes));

	op_init(op, fn);
	if (fn == F_EVENT)
	{
		a = rnd(lengthof(afters));
		op->sql = fmt("SELECT count(*)::text FROM emissions_event(%s)",
					  a == 4 ? "(SELECT last_event_id FROM emissions_stats)" :
					  afters[a]);
		if (a != 4)
			want_value(op, "0");
		return;
	}
	/* reading the whole log from the start is for the end checks */
	if ((a == 1 || a == 2 || a == 3) && x == 8)
		x = 7;
	if (maxes[x] == NULL)
		op->sql = fmt("SELECT count(*)::text FROM emissions_events(%s)",
					  afters[a]);
	else
		op->sql = fmt("SELECT count(*)::text FROM emissions_events(%s, %s)"
					  " WHERE payload IS NOT NULL OR payload IS NULL",
					  afters[a], maxes[x]);
	if (a == 0 || (maxes[x] && strcmp(maxes[x], "NULL") == 0))
		want_value(op, "0");
	else if (maxes[x] && maxes[x][0] == '-')
		want_error(op, "22023");
	else if ((maxes[x] && strcmp(maxes[x], "0") == 0) || a == 5)
		want_value(op, "0");
}

/* emissions_wait_delivered(timeout), briefly. */
static void
gen_wait(Op *op)
{
	static const char *const timeouts[] = {
		"NULL", "'0'", "'1 ms'", "'5 ms'", "'-1 day'", "'1000000 years'"
	};
	int			k = rnd(lengthof(timeouts));

	op_init(op, F_WAIT);
	op->sql = fmt("SELECT emissions_wait_delivered(%s)::text", timeouts[k]);
	if (k == 0)
		want_value(op, "NULL");
	else if (k == 5)
		want_error(op, "22008");
}

/* Tables whose changes fire emissions_trigger, with their DML. */
static const char *const watched_tables[] = {
	"tb_plain", "\"tb Weird \"\"Q\"\".x\"", "tb_wide", "tb_part", "tb_types",
	"tb_gen", "tb_view", "tb_part_low"
};

/* A text value for a row: short, odd, or up to megabytes. */
static void
add_text_value(Str *b)
{
	Str			t = {0};

	switch (rnd(6))
	{
		case 0:
			str_addf(b, "repeat('x', %ld)", random_size());
			return;
		case 1:
			str_add(b, "NULL");
			return;
		case 2:
			add_odd(&t, 10);
			break;
		default:
			add_word(&t, rnd(12));
			break;
	}
	str_lit(b, t.s ? t.s : "");
	free(t.s);
}

/* An INSERT, UPDATE, DELETE, MERGE or TRUNCATE on a watched table. */
static void
gen_dml(Op *op)
{
	Str			b = {0};
	int			k = rnd(12);

	op_init(op, F_DML);
	switch (rnd(8))
	{
		case 0:
			switch (k % 7)
			{
				case 0:
					str_add(&b, "INSERT INTO tb_plain (n, s, j, b) VALUES (");
					str_addf(&b, "%d, ", rnd(1000));
					add_text_value(&b);
					str_add(&b, ", '{\"a\": [1, 2]}', decode(repeat('ff', ");
					str_addf(&b, "%d), 'hex'))", rnd(5) ? rnd(100) : 100000);
					break;
				case 1:
					str_addf(&b, "INSERT INTO tb_plain (n, s)"
							 " SELECT g, md5(g::text)"
							 " FROM generate_series(1, %d) AS g",
							 1 + rnd(100));
					break;
				case 2:
					str_add(&b, "UPDATE tb_plain SET n = n + 1, s = ");
					add_text_value(&b);
					str_addf(&b, " WHERE id %% %d = %d", 2 + rnd(9), rnd(2));
					break;
				case 3:
					str_addf(&b, "DELETE FROM tb_plain WHERE id %% %d = 0",
							 2 + rnd(9));
					break;
				case 4:
					str_addf(&b, "INSERT INTO tb_plain (id, n) VALUES (%d, 1)"
							 " ON CONFLICT (id)"
							 " DO UPDATE SET n = tb_plain.n + 1",
							 1000000000 + rnd(20));
					break;
				case 5:
					str_addf(&b, "MERGE INTO tb_plain AS t"
							 " USING (SELECT 1000000000 + g AS id"
							 " FROM generate_series(1, %d) AS g) AS s"
							 " ON t.id = s.id"
							 " WHEN MATCHED AND t.n > 3 THEN DELETE"
							 " WHEN MATCHED THEN UPDATE SET n = t.n + 1"
							 " WHEN NOT MATCHED THEN"
							 " INSERT (id, n) VALUES (s.id, 0)",
							 1 + rnd(30));
					break;
				default:
					str_add(&b, "TRUNCATE tb_plain");
					break;
			}
			break;
		case 1:
			if (k < 6)
			{
				str_add(&b, "INSERT INTO \"tb Weird \"\"Q\"\".x\""
						" (\"Col \"\"Q\"\"\", \"\xc3\xbcn\xc3\xaf\", \"a.b\","
						" \" sp\") VALUES (");
				str_addf(&b, "%d, ", rnd(100));
				add_text_value(&b);
				str_add(&b, ", 'NaN', 'Infinity')");
			}
			else if (k < 10)
				str_addf(&b, "UPDATE \"tb Weird \"\"Q\"\".x\""
						 " SET \"a.b\" = %d", rnd(10));
			else
				str_add(&b, "DELETE FROM \"tb Weird \"\"Q\"\".x\"");
			break;
		case 2:
			if (k < 6)
				str_addf(&b, "INSERT INTO tb_wide (c1) SELECT g FROM"
						 " generate_series(1, %d) AS g", 1 + rnd(5));
			else if (k < 10)
				str_add(&b, "UPDATE tb_wide SET c7 = c7 + 1, c120 = c120 - 1");
			else
				str_add(&b, "DELETE FROM tb_wide");
			break;
		case 3:
			if (k < 6)
				str_addf(&b, "INSERT INTO tb_part VALUES (%d, 'p')", rnd(220));
			else if (k < 10)
				str_add(&b, "UPDATE tb_part SET k = (k + 100) % 200");
			else
				str_add(&b, "DELETE FROM tb_part WHERE k % 2 = 0");
			break;
		case 4:
			if (k < 8)
				str_addf(&b, "INSERT INTO tb_types (nu, f, ts, arr, comp, dom,"
						 " iv, js) VALUES ('NaN', '-Infinity', 'infinity',"
						 " ARRAY[1, NULL, 3], ROW(1, E'\\n')::fz_pair, %d,"
						 " '-1 year 2 us', '{\"dup\": 1, \"dup\": 2}')",
						 rnd(3) - 1);
			else
				str_add(&b, "DELETE FROM tb_types");
			break;
		case 5:
			if (k < 6)
				str_addf(&b, "INSERT INTO tb_gen (a, c) VALUES (%d, 'g')",
						 rnd(100));
			else if (k < 10)
				str_add(&b, "UPDATE tb_gen SET a = a + 1");
			else
				str_add(&b, "DELETE FROM tb_gen");
			break;
		case 6:
			if (k < 8)
				str_addf(&b, "INSERT INTO tb_view (n, s) VALUES (%d, 'v')",
						 rnd(100));
			else
				str_add(&b, "DELETE FROM tb_view WHERE n % 3 = 0");
			break;
		default:
			str_addf(&b, "INSERT INTO tb_part_low VALUES (%d, 'direct')",
					 rnd(150));
			break;
	}
	op->sql = str_take(&b);
}

/* A trigger argument: a prefix or an option, valid or not. */
static void
add_trigger_arg(Str *b, bool first)
{
	Str			t = {0};
	static const char *const options[] = {
		"columns=id,n", "columns=n", "columns=\"Col \"\"Q\"\"\"", "columns=",
		"columns=a,,b", "columns=no_such", "columns=ID", "skip_unchanged",
		"skip_unchanged=yes", "columns", "bogus", "=", "columns=a.b"
	};

	if (first)
	{
		switch (rnd(8))
		{
			case 0:
				break;
			case 1:
				str_add(&t, "tg.");
				add_word(&t, rnd(12));
				break;
			case 2:
				str_add(&t, "tg");
				add_odd(&t, 8);
				break;
			case 3:
				str_add(&t, "tg");
				add_word(&t, 300);
				break;
			case 4:
				str_add(b, "NULL");	/* an identifier, not SQL NULL */
				return;
			case 5:
				str_addf(b, "%d", rnd(100));
				return;
			default:
				str_add(&t, "tg_");
				add_word(&t, rnd(6));
				break;
		}
	}
	else if (rnd(5) == 0)
		add_odd(&t, 8);
	else
		str_add(&t, options[rnd(lengthof(options))]);
	str_lit(b, t.s ? t.s : "");
	free(t.s);
}

/* CREATE TRIGGER ... emissions_trigger(random arguments), or DROP TRIGGER. */
static void
gen_ddl(Op *op)
{
	static const char *const timings[] = {"AFTER", "BEFORE", "INSTEAD OF"};
	static const int timing_w[] = {80, 12, 8};
	static const char *const events[] = {
		"INSERT", "UPDATE", "DELETE", "INSERT OR UPDATE OR DELETE", "TRUNCATE",
		"UPDATE OF n"
	};
	static const int event_w[] = {20, 20, 15, 25, 5, 5};
	Str			b = {0};
	const char *table = watched_tables[rnd(lengthof(watched_tables))];
	int			e;
	bool		row;
	int			nargs;

	op_init(op, F_DDL);
	if (rnd(4) == 0)
	{
		op->sql = fmt("DROP TRIGGER IF EXISTS fzt_%d ON %s",
					  rnd(next_trigger + 1), table);
		return;
	}
	e = choose(event_w, lengthof(event_w));
	row = rnd(100) < 60;
	str_addf(&b, "CREATE TRIGGER fzt_%d %s %s ON %s", ++next_trigger,
			 timings[choose(timing_w, lengthof(timing_w))], events[e], table);
	if ((!row && rnd(10) < 7) || (row && rnd(10) == 0))
	{
		if (e == 0)
			str_add(&b, " REFERENCING NEW TABLE AS nt");
		else if (e == 1 || e == 5)
			str_add(&b, " REFERENCING NEW TABLE AS nt OLD TABLE AS ot");
		else if (e == 2)
			str_add(&b, " REFERENCING OLD TABLE AS ot");
		else
			str_add(&b, " REFERENCING NEW TABLE AS nt");
	}
	str_addf(&b, " FOR EACH %s EXECUTE FUNCTION emissions_trigger(",
			 row ? "ROW" : "STATEMENT");
	nargs = rnd(5);
	for (int i = 0; i < nargs; i++)
	{
		if (i > 0)
			str_add(&b, ", ");
		add_trigger_arg(&b, i == 0);
	}
	str_add(&b, ")");
	op->sql = str_take(&b);
}

/* emissions_watch() and emissions_unwatch() with random arguments. */
static void
gen_watch(Op *op, Fn fn)
{
	Str			b = {0};
	Str			t = {0};
	static const char *const columns[] = {
		"ARRAY['id']", "ARRAY['n', 's']", "ARRAY['no_col']",
		"ARRAY[NULL]::text[]", "'{}'::text[]", "ARRAY['Col \"Q\"']",
		"ARRAY['ID', 'id']", "NULL"
	};
	int			k = rnd(lengthof(watched_tables) + 2);

	op_init(op, fn);
	if (k == (int) lengthof(watched_tables))
		str_add(&t, "NULL");
	else if (k > (int) lengthof(watched_tables))
		str_add(&t, "'no_such_table'::regclass");
	else
	{
		str_lit(&t, watched_tables[k]);
		str_add(&t, "::regclass");
	}
	if (fn == F_UNWATCH)
	{
		op->sql = fmt("SELECT emissions_unwatch(%s)::text", t.s);
		if (strcmp(t.s, "NULL") == 0)
			want_value(op, "false");
		free(t.s);
		return;
	}
	str_addf(&b, "SELECT emissions_watch(%s", t.s);
	if (rnd(2))
	{
		str_add(&b, ", prefix => ");
		if (rnd(4) == 0)
			str_add(&b, "NULL");
		else
			add_trigger_arg(&b, true);
	}
	if (rnd(2))
		str_addf(&b, ", columns => %s", columns[rnd(lengthof(columns))]);
	if (rnd(3) == 0)
		str_addf(&b, ", skip_unchanged => %s", rnd(3) ? "true" : "NULL");
	if (rnd(2))
		str_addf(&b, ", statement_level => %s", rnd(3) ? "true" : "NULL");
	str_add(&b, ")::text");
	op->sql = str_take(&b);
	free(t.s);
}

/* SET LOCAL of an emissions.* setting, to a valid or invalid value. */
static void
gen_set(Op *op)
{
	static const char *const autos[] = {
		"on", "off", "true", "false", "yes", "no", "1", "0", "maybe", "2", ""
	};
	static const char *const levels[] = {
		"off", "debug", "log", "notice", "warning", "NOTICE", "loud", "error",
		""
	};
	static const char *const sizes[] = {
		"8kB", "8192", "64kB", "1MB", "8MB", "1GB", "1kB", "0", "-1", "3GB",
		"abc", "8 kB"
	};
	static const char *const sighup[] = {
		"notify_channel", "poll_interval", "batch_size", "max_attempts",
		"max_cascade_depth", "retention"
	};
	int			k;

	op_init(op, F_SET);
	switch (rnd(10))
	{
		case 0:
		case 1:
		case 2:
			k = rnd(lengthof(autos));
			if (k < 8)
			{
				/*
				 * Pairs of spellings of on and off; mostly off, for an open
				 * buffer everywhere would leave no emit to drop.
				 */
				op->set_auto = rnd(3) == 0;
				k = (k & ~1) + (op->set_auto ? 0 : 1);
				want_value(op, "done");
			}
			else
				want_error(op, "22023");
			op->sql = fmt("SET LOCAL emissions.auto_start = '%s'", autos[k]);
			break;
		case 3:
		case 4:
			k = rnd(lengthof(levels));
			op->sql = fmt("SET LOCAL emissions.log_dropped = '%s'", levels[k]);
			if (k < 6)
				want_value(op, "done");
			else
				want_error(op, "22023");
			break;
		case 5:
		case 6:
			k = rnd(lengthof(sizes));
			op->sql = fmt("SET LOCAL emissions.max_buffer_bytes = '%s'",
						  sizes[k]);
			if (k < 6)
				want_value(op, "done");
			else if (k < 11)
				want_error(op, "22023");
			break;
		case 7:
		case 8:
			op->sql = fmt("SET LOCAL emissions.%s = '1'",
						  sighup[rnd(lengthof(sighup))]);
			want_error(op, "55P02");
			break;
		default:
			op->sql = strdup("SET LOCAL emissions.no_such_setting = 1");
			want_error(op, "42602");
			break;
	}
}

/* Statistics, pending events, and calls that misuse the API. */
static void
gen_misc(Op *op, Fn fn, const Gen *g)
{
	static const char *const misuse[] = {
		"SELECT emissions_trigger()::text",
		"SELECT emissions_start(1)::text",
		"SELECT count(*)::text FROM emissions_events('x')",
		"SELECT emissions_wait_delivered('forever')::text",
		"SELECT emissions_add_adapter()::text",
		"SELECT emissions_launcher_wakeup()::text"
	};
	static const char *const misuse_states[] = {
		"39P01", "42883", "22P02", "22007", "42883", ""
	};
	int			k;

	op_init(op, fn);
	switch (fn)
	{
		case F_STATS:
			op->sql = strdup("SELECT count(*)::text FROM emissions_stats");
			want_value(op, "1");
			break;
		case F_RESET:
			op->sql = strdup("SELECT emissions_stats_reset()::text");
			if (g->as_role)
				want_error(op, "42501");
			else
				want_value(op, "");
			break;
		case F_PENDING:
			op->sql = strdup("SELECT count(*)::text FROM emissions_pending");
			if (g->as_role)
				want_error(op, "42501");
			break;
		default:
			k = rnd(lengthof(misuse));
			op->sql = strdup(misuse[k]);
			if (k == 5 && g->as_role)
				want_error(op, "42501");
			else if (*misuse_states[k])
				want_error(op, misuse_states[k]);
			else
				want_value(op, "");
			break;
	}
}

/* One call of a random part of the API, for context g. */
static void
gen_call(Op *op, const Gen *g)
{
	int			w[NUM_API_FNS] = {0};
	Fn			fn;

	w[F_START] = g->active_guess ? 5 : 14;
	w[F_EMIT] = 30;
	w[F_FLUSH] = 5;
	w[F_COMMIT] = 4;
	w[F_TERMINATE] = 4;
	w[F_ACTIVE] = 2;
	w[F_STATUS] = 2;
	w[F_EVENTS] = 3;
	w[F_EVENT] = 2;
	w[F_WAIT] = 2;
	w[F_ADD] = 6;
	w[F_DROP] = 3;
	w[F_REPLAY] = 2;
	w[F_WATCH] = 2;
	w[F_UNWATCH] = 2;
	w[F_DML] = g->active_guess ? 6 : 3;
	w[F_DDL] = 3;
	w[F_SET] = 4;
	w[F_STATS] = 1;
	w[F_RESET] = 1;
	w[F_PENDING] = 1;
	w[F_MISC] = 2;
	if (g->ctx == CTX_HANDLER)
		w[F_WATCH] = w[F_UNWATCH] = w[F_DDL] = w[F_RESET] = 0;

	fn = (Fn) choose(w, NUM_API_FNS);
	switch (fn)
	{
		case F_EMIT:
			gen_emit(op, g);
			break;
		case F_START:
		case F_FLUSH:
		case F_COMMIT:
		case F_TERMINATE:
		case F_ACTIVE:
		case F_STATUS:
			gen_buffer_call(op, fn);
			break;
		case F_EVENTS:
		case F_EVENT:
			gen_events(op, fn);
			break;
		case F_WAIT:
			gen_wait(op);
			break;
		case F_ADD:
			gen_add(op, g);
			break;
		case F_DROP:
			gen_drop(op, g);
			break;
		case F_REPLAY:
			gen_replay(op);
			break;
		case F_WATCH:
		case F_UNWATCH:
			gen_watch(op, fn);
			break;
		case F_DML:
			gen_dml(op);
			break;
		case F_DDL:
			gen_ddl(op);
			break;
		case F_SET:
			gen_set(op);
			break;
		default:
			gen_misc(op, fn, g);
			break;
	}
}

/* Update the generator's guess of whether a buffer is open after op. */
static void
guess(Gen *g, const Op *op)
{
	if (op->fn == F_START || op->fn == F_DML ||
		(op->fn == F_EMIT && m.auto_start))
		g->active_guess = true;
	else if (op->fn == F_COMMIT || op->fn == F_TERMINATE)
		g->active_guess = false;
}

/*
 * Append to ops (room for two more) a random call for g, and after a DML
 * statement a look at the buffer, whose state the triggers made unknown.
 * Returns how many were added.
 */
static int
gen_calls(Op *ops, Gen *g)
{
	gen_call(&ops[0], g);
	guess(g, &ops[0]);
	if (ops[0].fn != F_DML)
		return 1;
	gen_buffer_call(&ops[1], F_STATUS);
	return 2;
}

/*-------------------------------------------------------------------------
 * The model of the buffer, and checking outcomes against it
 *-------------------------------------------------------------------------
 */

/* Start a transaction in the model. */
static void
model_begin(bool block, bool read_only, bool as_role)
{
	memset(&m, 0, sizeof(Model));
	m.in_block = block;
	m.read_only = read_only;
	m.as_role = as_role;
	m.auto_start = session_auto_start;
	m.active_known = true;
	m.total_known = true;
	m.chain = -1;
	nsaved = 0;
}

/* End the model's transaction; committed says whether it committed. */
static void
model_end(bool committed)
{
	if (committed && !m.aborted)
	{
		/* what was handed off, and an open buffer's pending events */
		committed_fz += m.handed_fz + m.pending_fz;
		committed_fz_sum += m.handed_fz_sum + m.pending_fz_sum;
		if (m.chain >= 0)
			chain_committed[m.chain] = true;
	}
	model_begin(false, false, false);
}

/* The model contradicts itself: report it as a wrong result. */
static void
inconsistent(const Op *op, const char *what)
{
	nprecise++;
	record(&precise_failures, "%s: after this call %s", brief(op->sql), what);
}

/* The buffer is known to be closed, with nothing pending. */
static void
model_closed(const Op *op)
{
	if (m.pending_fz != 0)
		inconsistent(op, "the buffer is closed but the model had events"
					 " pending");
	m.active = false;
	m.active_known = true;
	m.pending = 0;
	m.total_known = true;
	m.pending_fz = 0;
	m.pending_fz_sum = 0;
}

/* The buffer state a call meets, for the coverage table. */
static State
classify(Ctx ctx)
{
	if (ctx == CTX_RAW && m.aborted)
		return S_ABORTED;
	if (m.read_only)
		return S_READ_ONLY;
	if (!m.active_known)
		return S_UNKNOWN;
	if (m.active)
	{
		if (m.pending_fz > 0 || (m.total_known && m.pending > 0))
			return S_PENDING;
		return m.total_known ? S_EMPTY : S_UNKNOWN;
	}
	return m.handed_any ? S_CLOSED : S_NONE;
}

/* Write n as the expected text of a count. */
static Expect
want_count(char *want, long n)
{
	sprintf(want, "%ld", n);
	return X_VALUE;
}

/*
 * What op must return in the model's state: X_ANY when it is not fixed;
 * the value or SQLSTATE goes to want.
 */
static Expect
expectation(const Op *op, Ctx ctx, char *want)
{
	if (ctx == CTX_RAW && m.aborted && op->fn != F_ROLLBACK_TO)
	{
		strcpy(want, "25P02");
		return X_ERROR;
	}
	switch (op->fn)
	{
		case F_SAVEPOINT:
		case F_RELEASE:
		case F_ROLLBACK_TO:
			strcpy(want, "done");
			return X_VALUE;
		case F_START:
			if (!m.active_known)
				return X_ANY;
			strcpy(want, m.active ? "false" : "true");
			return X_VALUE;
		case F_EMIT:
			if (op->type_class == T_WRONG_TYPE)
			{
				strcpy(want, "42883");
				return X_ERROR;
			}
			if (op->type_class == T_ARG_ERROR)
			{
				strcpy(want, op->want);
				return X_ERROR;
			}
			if (m.read_only)
				strcpy(want, "25006");
			else if (op->type_class == T_NULL)
				strcpy(want, "22004");
			else if (op->type_class == T_BAD || op->meta_bad)
				strcpy(want, "22023");
			else if ((m.active_known && m.active) || m.auto_start)
			{
				strcpy(want, "true");
				return X_VALUE;
			}
			else if (m.active_known)
			{
				strcpy(want, "false");
				return X_VALUE;
			}
			else
				return X_ANY;
			return X_ERROR;
		case F_FLUSH:
		case F_COMMIT:
			if (!m.active_known)
				return X_ANY;
			if (!m.active)
			{
				strcpy(want, "NULL");
				return X_VALUE;
			}
			return m.total_known ? want_count(want, m.pending) : X_ANY;
		case F_TERMINATE:
			if (!m.active_known)
				return X_ANY;
			if (!m.active)
				return want_count(want, 0);
			return m.total_known ? want_count(want, m.pending) : X_ANY;
		case F_ACTIVE:
			if (!m.active_known)
				return X_ANY;
			strcpy(want, m.active ? "true" : "false");
			return X_VALUE;
		case F_STATUS:
			if (!m.active_known || (m.active && !m.total_known))
				return X_ANY;
			sprintf(want, "%s %ld", m.active ? "true" : "false",
					m.active ? m.pending : 0);
			return X_VALUE;
		default:
			if (op->expect == X_ANY || op->expect == X_MODEL)
				return X_ANY;
			strcpy(want, op->want);
			return op->expect;
	}
}

/* Apply a call that succeeded to the model. */
static void
apply(const Op *op, Ctx ctx, const Outcome *o)
{
	const char *v = o->value;
	long		n;
	bool		opened;

	switch (op->fn)
	{
		case F_START:
			if (strcmp(v, "true") == 0)
			{
				if (m.pending_fz != 0)
					inconsistent(op, "a buffer opened with events pending");
				m.pending_fz = 0;
				m.pending_fz_sum = 0;
				m.pending = 0;
				m.total_known = true;
			}
			m.active = true;
			m.active_known = true;
			break;
		case F_EMIT:
			if (strcmp(v, "true") == 0)
			{
				opened = m.active_known && !m.active;
				m.active = true;
				m.active_known = true;
				if (opened)
				{
					m.pending = op->emit_count;
					m.total_known = true;
				}
				else if (m.total_known)
					m.pending += op->emit_count;
				if (op->type_class == T_FZ)
				{
					m.pending_fz += op->emit_count;
					m.pending_fz_sum += (uint64_t) op->emit_count * op->fz_hash;
				}
				if (op->chain >= 0)
					m.chain = op->chain;
			}
			else if (strcmp(v, "false") == 0)
				model_closed(op);
			break;
		case F_FLUSH:
		case F_COMMIT:
			if (strcmp(v, "NULL") == 0)
			{
				model_closed(op);
				break;
			}
			n = atol(v);
			if (n > 0)
				m.handed_any = true;
			if (n < m.pending_fz)
				inconsistent(op, "fewer events handed off than fz events"
							 " pending");
			m.handed_fz += m.pending_fz;
			m.handed_fz_sum += m.pending_fz_sum;
			m.pending_fz = 0;
			m.pending_fz_sum = 0;
			m.pending = 0;
			m.total_known = true;
			m.active = op->fn == F_FLUSH;
			m.active_known = true;
			break;
		case F_TERMINATE:
			m.pending_fz = 0;
			model_closed(op);
			break;
		case F_ACTIVE:
			if (strcmp(v, "true") == 0)
			{
				m.active = true;
				m.active_known = true;
			}
			else
				model_closed(op);
			break;
		case F_STATUS:
			if (strncmp(v, "true ", 5) == 0)
			{
				m.active = true;
				m.active_known = true;
				m.pending = atol(v + 5);
				m.total_known = true;
				if (m.pending < m.pending_fz)
					inconsistent(op, "fewer events pending than fz events");
			}
			else
				model_closed(op);
			break;
		case F_DML:
			/* the triggers may have opened a buffer and added events */
			if (!(m.active_known && m.active))
				m.active_known = false;
			m.total_known = false;
			break;
		case F_SET:
			if (op->set_auto >= 0 && ctx != CTX_AUTOCOMMIT)
				m.auto_start = op->set_auto;
			break;
		case F_SAVEPOINT:
			saved[nsaved] = m;
			saved_num[nsaved++] = op->savepoint;
			break;
		case F_RELEASE:
		case F_ROLLBACK_TO:
			for (int i = nsaved - 1; i >= 0; i--)
			{
				if (saved_num[i] != op->savepoint)
					continue;
				if (op->fn == F_RELEASE)
					nsaved = i;
				else
				{
					m = saved[i];
					nsaved = i + 1;
					nrollbacks_to++;
				}
				break;
			}
			break;
		default:
			break;
	}
}

/* Whether a SQLSTATE is a proper error: not internal, not a system error. */
static bool
proper_state(const char *state)
{
	return strlen(state) == 5 && strncmp(state, "XX", 2) != 0 &&
		strncmp(state, "58", 2) != 0 && strcmp(state, "?????") != 0;
}

static void verify(const Op *op, Ctx ctx, const Outcome *o);

/* Parse one fuzz_try() result. */
static void
parse_try(const char *r, Outcome *o)
{
	memset(o, 0, sizeof(Outcome));
	o->executed = true;
	if (strncmp(r, "ok ", 3) == 0)
	{
		o->ok = true;
		o->value = r + 3;
	}
	else if (strncmp(r, "ERROR ", 6) == 0 && strlen(r) >= 11)
	{
		memcpy(o->state, r + 6, 5);
		o->message = r[11] ? r + 12 : "";
	}
	else
	{
		strcpy(o->state, "?????");
		o->message = r;
	}
}

/*
 * Check the calls of a group against its result list (one "ok value" or
 * "ERROR state" per call, each ended by \x1f); when the group raised, its
 * calls were rolled back with it.
 */
static void
verify_group(const Op *op, const Outcome *o)
{
	Model		before = m;
	const char *list = NULL;
	int			i = 0;

	if (o->ok)
		list = o->value;
	else if (strcmp(o->state, "FZ001") == 0)
		list = o->message;
	nprecise++;
	if (o->ok == op->fail || list == NULL)
		record(&precise_failures, "group of %d calls (fail %d): %s %s",
			   op->nsub, op->fail, o->ok ? "ok" : o->state,
			   o->ok ? "" : brief(o->message ? o->message : ""));
	if (list == NULL)
		return;
	while (*list && i < op->nsub)
	{
		const char *end = strchr(list, '\x1f');
		char		piece[200];
		Outcome		so;

		if (end == NULL)
			break;
		snprintf(piece, sizeof(piece), "%.*s", (int) (end - list), list);
		parse_try(piece, &so);
		verify(&op->sub[i++], CTX_WRAPPED, &so);
		list = end + 1;
	}
	if (i != op->nsub)
	{
		nprecise++;
		record(&precise_failures, "group of %d calls returned %d results",
			   op->nsub, i);
	}
	if (!o->ok)
	{
		m = before;
		ngroups_failed++;
	}
}

/*
 * Check one outcome: a proper SQLSTATE if it failed, the result the model
 * or the generator expects, then apply it to the model.
 */
static void
verify(const Op *op, Ctx ctx, const Outcome *o)
{
	char		want[64];
	Expect		e;
	State		st;
	bool		was_aborted = m.aborted && ctx == CTX_RAW;

	if (!o->executed)
		return;
	if (op->fn < NUM_API_FNS)
	{
		ncalls++;
		fn_calls[op->fn]++;
		st = classify(ctx);
		if (st < NUM_STATES)
			coverage[op->fn][st]++;
	}
	if (!o->ok && !proper_state(o->state))
		record(&internal_failures, "%s: %s %s", brief(op->sql), o->state,
			   o->message ? o->message : "");

	if (op->fn == F_GROUP && !was_aborted)
	{
		verify_group(op, o);
		if (!o->ok && ctx == CTX_RAW)
			m.aborted = true;
		return;
	}

	e = expectation(op, ctx, want);
	if (e != X_ANY &&
		!(op->arg_error && !o->ok &&
		  (strncmp(o->state, "22", 2) == 0 ||
		   strncmp(o->state, "54", 2) == 0)))
	{
		bool		good;

		if (e == X_VALUE)
			good = o->ok && strcmp(o->value, want) == 0;
		else
			good = !o->ok && strcmp(o->state, want) == 0;
		nprecise++;
		if (!good)
			record(&precise_failures, "%s: expected %s %s, got %s %s",
				   brief(op->sql), e == X_VALUE ? "value" : "error", want,
				   o->ok ? "value" : o->state,
				   o->ok ? o->value : (o->message ? o->message : ""));
	}
	if (o->ok)
		apply(op, ctx, o);
	else if (ctx == CTX_RAW)
		m.aborted = true;
}

/*-------------------------------------------------------------------------
 * Running calls
 *-------------------------------------------------------------------------
 */

/* The outcome of a statement's result. */
static void
outcome_of(const PGresult *res, Outcome *o)
{
	const char *state;

	memset(o, 0, sizeof(Outcome));
	o->executed = true;
	switch (PQresultStatus(res))
	{
		case PGRES_COMMAND_OK:
			o->ok = true;
			o->value = "done";
			break;
		case PGRES_TUPLES_OK:
			o->ok = true;
			if (PQntuples(res) < 1 || PQnfields(res) < 1)
				o->value = "no row";
			else if (PQgetisnull(res, 0, 0))
				o->value = "NULL";
			else
				o->value = PQgetvalue(res, 0, 0);
			break;
		default:
			state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			snprintf(o->state, sizeof(o->state), "%s",
					 state ? state : "?????");
			o->message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			if (o->message == NULL)
				o->message = PQresultErrorMessage(res);
			break;
	}
}

/* The connection must still be there, to the same backend. */
static void
check_alive(const char *after)
{
	if (PQstatus(conn) != CONNECTION_OK || PQbackendPID(conn) != backend_pid)
	{
		printf("# the connection was lost after: %s\n", brief(after));
		report(false, "the backend survived every call (%ld calls)", ncalls);
		printf("#   %s", PQerrorMessage(conn));
		printf("1..%d\n", nchecks);
		exit(1);
	}
}

/* The SQL of a batch: each call through fuzz_try(), in order. */
static char *
batch_sql(const Op *subs, int n)
{
	Str			b = {0};

	str_add(&b, "SELECT fuzz_try(q) FROM unnest(ARRAY[");
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			str_add(&b, ", ");
		str_lit(&b, subs[i].sql);
	}
	str_add(&b, "]::text[]) WITH ORDINALITY AS t(q, i) ORDER BY i");
	return str_take(&b);
}

/* The SQL of a group: its calls through fuzz_try(), then maybe a raise. */
static char *
group_sql(const Op *subs, int n, bool fail)
{
	Str			b = {0};

	str_add(&b, "SELECT fuzz_group(ARRAY[");
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			str_add(&b, ", ");
		str_lit(&b, subs[i].sql);
	}
	str_addf(&b, "]::text[], %s)", fail ? "true" : "false");
	return str_take(&b);
}

/* Fill op as a group of n random calls for g; fail makes it raise. */
static void
gen_group(Op *op, Gen *g, int n, bool fail)
{
	Gen			inner = *g;

	op_init(op, F_GROUP);
	inner.ctx = CTX_WRAPPED;
	op->sub = calloc(n + 2, sizeof(Op));
	if (op->sub == NULL)
		bail("out of memory");
	while (op->nsub < n)
		op->nsub += gen_calls(&op->sub[op->nsub], &inner);
	op->fail = fail;
	op->sql = group_sql(op->sub, op->nsub, fail);
	if (!fail)
		g->active_guess = inner.active_guess;
}

/*
 * Fill op as a batch of about n calls for g (some of them groups), run
 * through fuzz_try() in one statement.
 */
static void
gen_batch(Op *op, Gen *g, int n)
{
	Gen			inner = *g;

	op_init(op, F_BATCH);
	inner.ctx = CTX_WRAPPED;
	if (n > MAX_SUB)
		n = MAX_SUB;
	op->sub = calloc(n + 2, sizeof(Op));
	if (op->sub == NULL)
		bail("out of memory");
	while (op->nsub < n)
	{
		if (rnd(100) < 3)
			gen_group(&op->sub[op->nsub++], &inner, 1 + rnd(8), rnd(2));
		else
			op->nsub += gen_calls(&op->sub[op->nsub], &inner);
	}
	op->sql = batch_sql(op->sub, op->nsub);
	g->active_guess = inner.active_guess;
}

/* Check the rows of a batch, one per call, against its calls. */
static void
verify_batch(const Op *op, const PGresult *res)
{
	int			rows = PQntuples(res);

	if (rows != op->nsub)
	{
		nprecise++;
		record(&precise_failures, "a batch of %d calls returned %d rows",
			   op->nsub, rows);
	}
	for (int i = 0; i < rows && i < op->nsub; i++)
	{
		Outcome		o;

		parse_try(PQgetvalue(res, i, 0), &o);
		verify(&op->sub[i], CTX_WRAPPED, &o);
	}
}

/*
 * Run ops as one query string of several statements at top level in ctx
 * (CTX_RAW or CTX_AUTOCOMMIT for a single statement) and check each: a
 * statement that fails skips the rest.  Returns false if one failed.
 */
static bool
run_statements(Op *ops, int n, Ctx ctx)
{
	Str			b = {0};
	PGresult   *res;
	int			i = 0;
	bool		failed = false;

	for (int k = 0; k < n; k++)
	{
		str_add(&b, ops[k].sql);
		str_add(&b, ";\n");
	}
	if (!PQsendQuery(conn, b.s))
		bail("send: %s", PQerrorMessage(conn));
	while ((res = PQgetResult(conn)) != NULL)
	{
		Outcome		o;

		outcome_of(res, &o);
		if (!o.ok)
			failed = true;
		if (i >= n)
		{
			/* an error at the implicit commit of the statements */
			if (!o.ok && !proper_state(o.state))
				record(&internal_failures, "commit: %s %s", o.state,
					   o.message);
			PQclear(res);
			continue;
		}
		if (ops[i].fn == F_BATCH && o.ok)
			verify_batch(&ops[i], res);
		else
		{
			if (ops[i].fn == F_BATCH && !proper_state(o.state))
				record(&internal_failures, "a batch: %s %s", o.state,
					   o.message);
			else if (ops[i].fn == F_BATCH)
			{
				nprecise++;
				record(&precise_failures, "a batch failed: %s %s", o.state,
					   o.message);
			}
			if (ops[i].fn != F_BATCH)
				verify(&ops[i], ctx, &o);
			else if (ctx == CTX_RAW)
				m.aborted = true;
		}
		i++;
		PQclear(res);
	}
	check_alive(b.s);
	free(b.s);
	return !failed;
}

/*
 * Run each op as a statement of its own in pipeline mode, a sync after
 * each, and check it in ctx: CTX_AUTOCOMMIT (each its own transaction) or
 * CTX_RAW (in a transaction block, which an error leaves aborted).
 */
static void
run_pipeline(Op *ops, int n, Ctx ctx)
{
	if (!PQenterPipelineMode(conn))
		bail("enter pipeline mode: %s", PQerrorMessage(conn));
	for (int i = 0; i < n; i++)
	{
		if (!PQsendQueryParams(conn, ops[i].sql, 0, NULL, NULL, NULL, NULL,
							   0) || !PQpipelineSync(conn))
			bail("send: %s", PQerrorMessage(conn));
	}
	for (int i = 0; i < n; i++)
	{
		PGresult   *res = PQgetResult(conn);
		PGresult   *extra;
		Outcome		o;

		if (res == NULL)
			bail("pipeline: no result for %s", brief(ops[i].sql));
		if (ctx == CTX_AUTOCOMMIT)
			model_begin(false, false, false);
		outcome_of(res, &o);
		verify(&ops[i], ctx, &o);
		if (ctx == CTX_AUTOCOMMIT)
			model_end(o.ok);
		PQclear(res);
		/* the end of this query's results, then its sync */
		while ((extra = PQgetResult(conn)) != NULL)
			PQclear(extra);
		extra = PQgetResult(conn);
		if (extra == NULL || PQresultStatus(extra) != PGRES_PIPELINE_SYNC)
			bail("pipeline: no sync after %s", brief(ops[i].sql));
		PQclear(extra);
		check_alive(ops[i].sql);
	}
	if (!PQexitPipelineMode(conn))
		bail("exit pipeline mode: %s", PQerrorMessage(conn));
}

/*-------------------------------------------------------------------------
 * Rounds
 *-------------------------------------------------------------------------
 */

/* One statement outside a transaction block: a batch of calls. */
static void
round_autocommit_batch(void)
{
	Gen			g = {CTX_WRAPPED, false, false, false};
	Op			batch;
	bool		ok;

	gen_batch(&batch, &g, 20 + rnd(200));
	model_begin(false, false, false);
	ok = run_statements(&batch, 1, CTX_AUTOCOMMIT);
	model_end(ok);
	op_free(&batch);
}

/* Calls in an aborted transaction: each is refused with 25P02. */
static void
run_aborted_calls(const Gen *g)
{
	Op			ops[12];
	Gen			raw = *g;
	int			n = 0;
	int			len = 1 + rnd(8);

	raw.ctx = CTX_RAW;
	while (n < len)
		n += gen_calls(&ops[n], &raw);
	run_pipeline(ops, n, CTX_RAW);
	for (int i = 0; i < n; i++)
		op_free(&ops[i]);
}

/* A savepoint command on savepoint number num. */
static void
savepoint_op(Op *op, Fn fn, int num)
{
	static const char *const verbs[] = {
		"SAVEPOINT s%d", "RELEASE SAVEPOINT s%d", "ROLLBACK TO SAVEPOINT s%d"
	};

	op_init(op, fn);
	op->savepoint = num;
	op->sql = fmt(verbs[fn - F_SAVEPOINT], num);
}

/*
 * One query string of statements at top level in the transaction: calls,
 * batches, groups, and savepoints set, released and rolled back to.
 */
static void
run_chunk(Gen *g)
{
	Op			ops[40];
	int			stack[MAX_SAVEPOINTS + 16];
	int			depth = nsaved;
	int			n = 0;
	int			len = 1 + rnd(12);

	memcpy(stack, saved_num, sizeof(int) * nsaved);
	g->active_guess = m.active_known ? m.active : true;
	while (n < len)
	{
		int			k = rnd(100);

		if (k < 15 && depth < MAX_SAVEPOINTS)
		{
			savepoint_op(&ops[n++], F_SAVEPOINT, ++next_savepoint);
			stack[depth++] = next_savepoint;
		}
		else if (k < 20 && depth > 0)
		{
			int			i = rnd(depth);

			savepoint_op(&ops[n++], F_RELEASE, stack[i]);
			depth = i;
		}
		else if (k < 28 && depth > 0)
		{
			int			i = rnd(depth);

			savepoint_op(&ops[n++], F_ROLLBACK_TO, stack[i]);
			depth = i + 1;
		}
		else if (k < 43)
			gen_batch(&ops[n++], g, 10 + rnd(140));
		else if (k < 48)
		{
			Gen			inner = *g;

			gen_group(&ops[n++], &inner, 2 + rnd(7), rnd(2));
		}
		else
			n += gen_calls(&ops[n], g);
	}
	run_statements(ops, n, CTX_RAW);
	for (int i = 0; i < n; i++)
		op_free(&ops[i]);
}

/* Roll back to a random savepoint of the transaction. */
static void
rollback_to_random(void)
{
	Op			op;

	savepoint_op(&op, F_ROLLBACK_TO, saved_num[rnd(nsaved)]);
	run_statements(&op, 1, CTX_RAW);
	op_free(&op);
}

/*
 * Run sql that ends the transaction; true if it did so with the tag
 * expected (COMMIT, ROLLBACK, ...).  An error must have a proper SQLSTATE.
 */
static bool
end_with(const char *sql, const char *tag)
{
	PGresult   *res = PQexec(conn, sql);
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
		strcmp(PQcmdStatus(res), tag) == 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		Outcome		o;

		outcome_of(res, &o);
		if (!proper_state(o.state))
			record(&internal_failures, "%s: %s %s", sql, o.state, o.message);
	}
	else if (!ok)
	{
		nprecise++;
		record(&precise_failures, "%s: tag %s, expected %s", sql,
			   PQcmdStatus(res), tag);
	}
	PQclear(res);
	check_alive(sql);
	return ok;
}

/* End the transaction: commit, roll back, prepare, or chain. */
static void
end_transaction(Gen *g)
{
	int			w = rnd(100);

	if (PQtransactionStatus(conn) == PQTRANS_IDLE)
		bail("the transaction ended by itself (model aborted %d)", m.aborted);
	if (m.aborted)
	{
		bool		commit = rnd(2);

		end_with(commit ? "COMMIT" : "ROLLBACK", "ROLLBACK");
		model_end(false);
	}
	else if (w < 55)
		model_end(end_with("COMMIT", "COMMIT"));
	else if (w < 75)
	{
		end_with("ROLLBACK", "ROLLBACK");
		model_end(false);
	}
	else if (w < 92 && can_prepare)
	{
		char		sql[64];
		int			gid = next_gid++;
		bool		commit = rnd(3) != 0;

		snprintf(sql, sizeof(sql), "PREPARE TRANSACTION 'fzapi_%d'", gid);
		if (end_with(sql, "PREPARE TRANSACTION"))
		{
			nprepared++;
			snprintf(sql, sizeof(sql), "%s PREPARED 'fzapi_%d'",
					 commit ? "COMMIT" : "ROLLBACK", gid);
			run(conn, sql);
			model_end(commit);
		}
		else
			model_end(false);
	}
	else
	{
		bool		ro = m.read_only;
		bool		chained;

		/* the chained transaction keeps the access mode, not the role */
		chained = end_with("COMMIT AND CHAIN", "COMMIT");

		model_end(chained);
		if (!chained)
		{
			if (PQtransactionStatus(conn) != PQTRANS_IDLE)
				end_with("ROLLBACK", "ROLLBACK");
			return;
		}
		model_begin(true, ro, false);
		g->as_role = false;
		run_chunk(g);
		if (m.aborted)
		{
			end_with("ROLLBACK", "ROLLBACK");
			model_end(false);
		}
		else
			model_end(end_with("COMMIT", "COMMIT"));
	}
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		bail("the transaction did not end");
}

/*
 * A transaction block (read-only, or as a role without privileges,
 * sometimes): chunks of statements, calls in the aborted state after an
 * error, rollbacks to savepoints, and an end.
 */
static void
round_transaction(void)
{
	static const char *const isolation[] = {
		"", " ISOLATION LEVEL REPEATABLE READ", " ISOLATION LEVEL SERIALIZABLE"
	};
	bool		ro = rnd(100) < 15;
	bool		role = !ro && rnd(100) < 10;
	int			chunks = 1 + rnd(4);
	char		begin[200];
	Gen			g = {CTX_RAW, ro, role, false};

	snprintf(begin, sizeof(begin), "BEGIN%s%s%s", isolation[rnd(3)],
			 ro ? " READ ONLY" : "", role ? "; SET LOCAL ROLE " ROLE : "");
	run(conn, begin);
	ntransactions++;
	model_begin(true, ro, role);
	for (int c = 0; c < chunks; c++)
	{
		if (m.aborted)
		{
			if (rnd(100) < 80)
				run_aborted_calls(&g);
			if (nsaved == 0 || rnd(100) >= 70)
				break;
			rollback_to_random();
		}
		run_chunk(&g);
	}
	if (m.aborted && rnd(2))
		run_aborted_calls(&g);
	end_transaction(&g);
}

/* A group that seeds a handler loop: open a buffer, emit generation 0. */
static void
seed_op(Op *op)
{
	op_init(op, F_GROUP);
	op->sub = calloc(2, sizeof(Op));
	if (op->sub == NULL)
		bail("out of memory");
	op->nsub = 2;
	gen_buffer_call(&op->sub[0], F_START);
	op_init(&op->sub[1], F_EMIT);
	op->sub[1].expect = X_MODEL;
	op->sub[1].type_class = T_OTHER;
	op->sub[1].chain = nchains++;
	op->sub[1].sql = fmt("SELECT emissions_emit('loop.tick',"
						 " '{\"chain\": %d, \"gen\": 0}')::text",
						 op->sub[1].chain);
	op->sql = group_sql(op->sub, 2, false);
}

/*
 * Statements each in a transaction of its own, pipelined: single calls,
 * DML under the triggers, groups that open a buffer first, loop seeds.
 */
static void
round_pipeline(void)
{
	Op			ops[80];
	Gen			g = {CTX_AUTOCOMMIT, false, false, false};
	int			n = 0;
	int			len = 5 + rnd(30);

	while (n < len)
	{
		int			k = rnd(100);

		if (k < 8 && nchains < MAX_CHAINS)
			seed_op(&ops[n++]);
		else if (k < 25)
		{
			Gen			inner = g;
			Op		   *op = &ops[n++];
			int			calls = 1 + rnd(5);

			/* a buffer first, so that what follows is stored */
			op_init(op, F_GROUP);
			op->sub = calloc(calls + 3, sizeof(Op));
			if (op->sub == NULL)
				bail("out of memory");
			gen_buffer_call(&op->sub[op->nsub++], F_START);
			inner.ctx = CTX_WRAPPED;
			inner.active_guess = true;
			while (op->nsub < calls + 1)
				op->nsub += gen_calls(&op->sub[op->nsub], &inner);
			op->fail = rnd(5) == 0;
			op->sql = group_sql(op->sub, op->nsub, op->fail);
		}
		else if (k < 35)
			gen_dml(&ops[n++]);
		else
			n += gen_calls(&ops[n], &g);
	}
	run_pipeline(ops, n, CTX_AUTOCOMMIT);
	for (int i = 0; i < n; i++)
		op_free(&ops[i]);
}

/*
 * The first round, the same every time: a loop seed, the events whose
 * storage is checked at the end, and calls for a handler, so that the end
 * checks mean something however few the calls.
 */
static void
round_first(void)
{
	Op			ops[2];
	Op		   *op = &ops[1];
	static const char *const emits[] = {
		"SELECT emissions_emit('fz:null', NULL)::text",
		"SELECT emissions_emit('fz:nullmeta', '{\"m\": 1}', NULL)::text",
		"SELECT emissions_emit('hx.catch', '{\"sql\": ["
		"\"SELECT emissions_active()::text\","
		" \"SELECT emissions_emit(''hz.first'')::text\","
		" \"SELECT emissions_emit(NULL)::text\"]}')::text"
	};

	seed_op(&ops[0]);
	op_init(op, F_GROUP);
	op->sub = calloc(1 + lengthof(emits), sizeof(Op));
	if (op->sub == NULL)
		bail("out of memory");
	gen_buffer_call(&op->sub[op->nsub++], F_START);
	for (int i = 0; i < (int) lengthof(emits); i++)
	{
		Op		   *e = &op->sub[op->nsub++];

		op_init(e, F_EMIT);
		e->expect = X_MODEL;
		e->type_class = i < 2 ? T_FZ : T_OTHER;
		e->fz_hash = type_hash(i == 0 ? "fz:null" : "fz:nullmeta");
		e->sql = strdup(emits[i]);
	}
	op->sql = group_sql(op->sub, op->nsub, false);
	run_pipeline(ops, 2, CTX_AUTOCOMMIT);
	op_free(&ops[0]);
	op_free(&ops[1]);
}

/* Change a session setting: auto_start (briefly on), log level, spill. */
static void
round_settings(void)
{
	static const char *const levels[] = {"off", "debug", "log", "notice"};
	static const char *const sizes[] = {"'8kB'", "'64kB'", "'8MB'"};
	char		sql[128];

	switch (rnd(4))
	{
		case 0:
			session_auto_start = !session_auto_start && rnd(3) == 0;
			snprintf(sql, sizeof(sql), "SET emissions.auto_start = %s",
					 session_auto_start ? "on" : "off");
			break;
		case 1:
			snprintf(sql, sizeof(sql), "SET emissions.log_dropped = %s",
					 levels[rnd(lengthof(levels))]);
			break;
		case 2:
			snprintf(sql, sizeof(sql), "SET emissions.max_buffer_bytes = %s",
					 sizes[rnd(lengthof(sizes))]);
			break;
		default:
			snprintf(sql, sizeof(sql), "RESET emissions.max_buffer_bytes");
			break;
	}
	run(conn, sql);
}

/*
 * Run sql, trying again when it is chosen as a deadlock's victim: it locks
 * tables the worker may be inserting into for table adapters, in another
 * order (the worker's side of such a deadlock is a failed delivery, retried
 * like any other).  Bail on any other error, or after ten deadlocks.
 */
static void
run_past_deadlocks(const char *sql)
{
	int			tries;

	for (tries = 1;; tries++)
	{
		PGresult   *res = PQexec(conn, sql);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (PQresultStatus(res) == PGRES_COMMAND_OK)
		{
			PQclear(res);
			return;
		}
		if (state == NULL || strcmp(state, "40P01") != 0 || tries == 10)
			bail("%s: %s", sql, PQerrorMessage(conn));
		PQclear(res);
	}
}

/*
 * Drop the triggers and adapters the calls created and empty the tables,
 * so that neither grows without bound.
 */
static void
maintenance(void)
{
	run(conn, "DO $$DECLARE r record; BEGIN"
		" FOR r IN SELECT t.tgname, t.tgrelid::regclass AS rel"
		" FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid"
		" WHERE NOT t.tgisinternal AND t.tgparentid = 0"
		" AND c.relname LIKE 'tb%'"
		" AND (t.tgname LIKE 'fzt\\_%' OR t.tgname LIKE 'emissions\\_events%')"
		" LOOP EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);"
		" END LOOP; END$$");
	run_past_deadlocks("TRUNCATE tb_plain, \"tb Weird \"\"Q\"\".x\", tb_wide,"
					   " tb_part, tb_types, tb_gen, sk_all, sk_narrow");
	run(conn, "SELECT count(emissions_drop_adapter(name))"
		" FROM emissions_adapters WHERE name NOT IN ('fz_catch', 'fz_raw',"
		" 'fz_loop', 'fz_notify', 'fz_sink', 'fz_noop')");
}

/*-------------------------------------------------------------------------
 * Setting up and the checks at the end
 *-------------------------------------------------------------------------
 */

/* What the calls work on, created once in the test database. */
static const char *const setup_sql[] = {
	"CREATE EXTENSION emissions",
	"CREATE FUNCTION fuzz_try(q text) RETURNS text LANGUAGE plpgsql AS $$"
	"DECLARE r text; BEGIN"
	" IF q ~* '^\\s*(SELECT|WITH|VALUES|TABLE)\\M' THEN"
	"  EXECUTE q INTO r; RETURN 'ok ' || coalesce(r, 'NULL'); END IF;"
	" EXECUTE q; RETURN 'ok done';"
	" EXCEPTION WHEN OTHERS THEN RETURN 'ERROR ' || SQLSTATE || ' ' ||"
	"  CASE WHEN SQLSTATE = 'FZ001' THEN SQLERRM ELSE left(SQLERRM, 300) END;"
	" END $$",
	"CREATE FUNCTION fuzz_group(qs text[], fail boolean) RETURNS text"
	" LANGUAGE plpgsql AS $$"
	"DECLARE q text; r text; results text := ''; BEGIN"
	" FOREACH q IN ARRAY qs LOOP r := fuzz_try(q);"
	"  results := results || CASE WHEN r LIKE 'ok %' THEN r"
	"   ELSE left(r, 11) END || E'\\x1f'; END LOOP;"
	" IF fail THEN RAISE EXCEPTION USING ERRCODE = 'FZ001',"
	"  MESSAGE = results; END IF;"
	" RETURN results; END $$",
	"CREATE TABLE sk_all (id bigint, type text, payload jsonb, metadata jsonb,"
	" emitted_at timestamptz, txid xid8, database text)",
	"CREATE TABLE sk_narrow (type text)",
	"CREATE TABLE sk_nocols (x int)",
	"CREATE SEQUENCE fz_seq",
	"CREATE TABLE handler_results (event_id bigint, sql text, result text)",
	"CREATE FUNCTION fz_noop(e jsonb) RETURNS void LANGUAGE plpgsql"
	" AS $$BEGIN END$$",
	"CREATE PROCEDURE fz_proc(e jsonb) LANGUAGE plpgsql AS $$BEGIN END$$",
	"CREATE FUNCTION fz_catch(e jsonb) RETURNS void LANGUAGE plpgsql"
	" SET search_path = public, pg_catalog AS $$DECLARE q text; BEGIN"
	" FOR q IN SELECT jsonb_array_elements_text(e->'payload'->'sql') LOOP"
	"  INSERT INTO handler_results"
	"  VALUES ((e->>'id')::bigint, q, fuzz_try(q));"
	" END LOOP; END $$",
	"CREATE FUNCTION fz_raw(e jsonb) RETURNS void LANGUAGE plpgsql"
	" SET search_path = public, pg_catalog AS $$DECLARE q text; BEGIN"
	" FOR q IN SELECT jsonb_array_elements_text(e->'payload'->'sql') LOOP"
	"  EXECUTE q; END LOOP; END $$",
	"CREATE FUNCTION fz_loop(e jsonb) RETURNS void LANGUAGE plpgsql"
	" SET search_path = public, pg_catalog AS $$BEGIN"
	" PERFORM emissions_emit('loop.tick', jsonb_build_object('chain',"
	" e->'payload'->'chain', 'gen', (e->'payload'->>'gen')::int + 1)); END $$",
	"CREATE TYPE fz_pair AS (a int, b text)",
	"CREATE DOMAIN fz_dom AS int CHECK (VALUE > 0)",
	"CREATE TABLE tb_plain (id bigserial PRIMARY KEY, n int, s text, j jsonb,"
	" b bytea, t timestamptz DEFAULT now())",
	"CREATE TABLE \"tb Weird \"\"Q\"\".x\" (\"Col \"\"Q\"\"\" int,"
	" \"\xc3\xbcn\xc3\xaf\" text, \"a.b\" numeric, \" sp\" float8)",
	"DO $$BEGIN EXECUTE 'CREATE TABLE tb_wide (id serial, ' ||"
	" (SELECT string_agg(format('c%s int DEFAULT 0', g), ', ')"
	" FROM generate_series(1, 120) AS g) || ')'; END$$",
	"CREATE TABLE tb_part (k int, v text) PARTITION BY RANGE (k)",
	"CREATE TABLE tb_part_low PARTITION OF tb_part"
	" FOR VALUES FROM (0) TO (100)",
	"CREATE TABLE tb_part_high PARTITION OF tb_part"
	" FOR VALUES FROM (100) TO (200)",
	"CREATE TABLE tb_types (id serial, nu numeric, f float8, ts timestamptz,"
	" arr int[], comp fz_pair, dom fz_dom, iv interval, js json)",
	"CREATE TABLE tb_gen (a int, b int GENERATED ALWAYS AS (a * 2) STORED,"
	" c text, d int)",
	"ALTER TABLE tb_gen DROP COLUMN d",
	"CREATE VIEW tb_view AS SELECT id, n, s FROM tb_plain",
	"SELECT emissions_add_adapter('fz_catch', 'function', 'fz_catch',"
	" 'hx.catch')",
	"SELECT emissions_add_adapter('fz_raw', 'function', 'fz_raw', 'hx.raw',"
	" '{\"max_attempts\": 2}')",
	"SELECT emissions_add_adapter('fz_loop', 'function', 'fz_loop',"
	" 'loop.tick')",
	"SELECT emissions_add_adapter('fz_notify', 'notify', 'fz_channel', 'fz*')",
	"SELECT emissions_add_adapter('fz_sink', 'table', 'sk_all', 'hz.*,hx.*')",
	"SELECT emissions_add_adapter('fz_noop', 'function', 'fz_noop', 'fz.x*')",
	"SET synchronous_commit = off",
	"SET emissions.log_dropped = off",
	NULL
};

/*
 * Path of the server log: FUZZ_API_LOG, or PGHOST/server.log; NULL if
 * there is none.
 */
static const char *
log_path(void)
{
	static char path[1024];
	const char *env = getenv("FUZZ_API_LOG");
	const char *host = getenv("PGHOST");
	struct stat st;

	if (env && *env)
		return stat(env, &st) == 0 ? env : NULL;
	if (host && *host == '/')
	{
		snprintf(path, sizeof(path), "%s/server.log", host);
		if (stat(path, &st) == 0)
			return path;
	}
	return NULL;
}

/* Size of file path, or 0. */
static long
file_size(const char *path)
{
	struct stat st;

	return (path && stat(path, &st) == 0) ? (long) st.st_size : 0;
}

/*
 * Lines of the server log from offset on that tell of a crash: a process
 * terminated by a signal, a failed assertion, a PANIC.  Prints them;
 * returns how many (1 if the log cannot be read).
 */
static int
log_crashes(const char *path, long offset)
{
	FILE	   *f = fopen(path, "r");
	char		line[4096];
	int			n = 0;

	if (f == NULL)
	{
		printf("# %s: %s\n", path, strerror(errno));
		return 1;				/* not read: not known to be clean */
	}
	fseek(f, offset, SEEK_SET);
	while (fgets(line, sizeof(line), f))
	{
		if (strstr(line, "terminated by signal") || strstr(line, "TRAP:") ||
			strstr(line, "PANIC:"))
		{
			if (n++ < 5)
				printf("#   %s", line);
		}
	}
	fclose(f);
	return n;
}

/* Count the lines of the log from offset on that contain text. */
static int
log_count(const char *path, long offset, const char *text)
{
	FILE	   *f = fopen(path, "r");
	char		line[4096];
	int			n = 0;

	if (f == NULL)
		return 0;
	fseek(f, offset, SEEK_SET);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, text))
			n++;
	fclose(f);
	return n;
}

/* The delivery worker's pid, as emissions_stats shows it ("NULL": none). */
static void
worker_pid(char *buf, size_t size)
{
	snprintf(buf, size, "%s",
			 value(conn, "SELECT worker_pid FROM emissions_stats", NULL));
}

/*
 * Wait until the handler loops have settled: the loop.tick events stop
 * growing or reach the number expected.
 */
static void
wait_loops(long expected)
{
	char		last[64] = "";
	double		deadline = now_ms() + 30000 * slow;
	char		want[32];

	snprintf(want, sizeof(want), "%ld", expected);
	while (now_ms() < deadline)
	{
		const char *seen;

		value(conn, "SELECT emissions_wait_delivered('10s')", NULL);
		seen = value(conn, "SELECT count(*)"
					 " FROM emissions_events(0, 2147483647)"
					 " WHERE type = 'loop.tick'", NULL);
		if (strcmp(seen, want) == 0 || strcmp(seen, last) == 0)
			return;
		snprintf(last, sizeof(last), "%s", seen);
		usleep(1000 * 1000);
	}
}

/*
 * The sum of type_hash() over the delivered fz events, each event once
 * (0 if they cannot be read, which the count check shows).
 */
static uint64_t
delivered_fz_sum(void)
{
	PGresult   *res;
	uint64_t	sum = 0;

	res = PQexec(conn, "SELECT type, count(*)"
				 " FROM emissions_events(0, 2147483647)"
				 " WHERE type LIKE 'fz%' GROUP BY type");
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		for (int i = 0; i < PQntuples(res); i++)
			sum += (uint64_t) atoll(PQgetvalue(res, i, 1)) *
				type_hash(PQgetvalue(res, i, 0));
	else
		printf("# the delivered fz events: %s", PQerrorMessage(conn));
	PQclear(res);
	return sum;
}

/* The check of the handler loops: each committed chain ran depth+1 times. */
static void
check_loops(int depth)
{
	long		committed = 0;
	long		right = 0;
	char		gens[4096];
	size_t		len = 0;
	PGresult   *res;

	for (int c = 0; c < nchains; c++)
		committed += chain_committed[c];
	for (int d = 0; d <= depth && len < sizeof(gens) - 16; d++)
		len += snprintf(gens + len, sizeof(gens) - len, "%s%d",
						d ? "," : "", d);
	wait_loops(committed * (depth + 1));

	res = PQexec(conn, "SELECT (payload->>'chain')::int,"
				 " string_agg(payload->>'gen', ','"
				 "  ORDER BY (payload->>'gen')::int)"
				 " FROM emissions_events(0, 2147483647)"
				 " WHERE type = 'loop.tick' GROUP BY 1 ORDER BY 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		bail("read the loops: %s", PQerrorMessage(conn));
	for (int i = 0; i < PQntuples(res); i++)
	{
		int			c = atoi(PQgetvalue(res, i, 0));
		const char *seen = PQgetvalue(res, i, 1);

		if (c >= 0 && c < nchains && chain_committed[c] &&
			strcmp(seen, gens) == 0)
			right++;
		else if (right + 5 > i)
			printf("#   chain %d (committed %d): generations %s\n", c,
				   c >= 0 && c < nchains ? chain_committed[c] : -1, seen);
	}
	report(right == committed && PQntuples(res) == committed && committed > 0,
		   "each of %ld handler loops stopped after max_cascade_depth (%d):"
		   " generations %s, once each", committed, depth,
		   depth <= 8 ? gens : "0..");
	PQclear(res);
}

/*
 * A table adapter whose table emits through emissions_watch() triggers
 * feeds itself: the cascade must stop at max_cascade_depth too.
 */
static void
check_table_loop(int depth)
{
	char		want[32];
	char		last[64] = "";
	const char *seen = "";
	double		deadline = now_ms() + 20000 * slow;

	run(conn, "CREATE TABLE tb_loop (id bigint, type text, payload jsonb)");
	run(conn, "SELECT emissions_watch('tb_loop', 'tloop')");
	run(conn, "SELECT emissions_add_adapter('fz_tloop', 'table', 'tb_loop',"
		" 'tloop,tloop.*')");
	run(conn, "SELECT emissions_start(), emissions_emit('tloop')");
	snprintf(want, sizeof(want), "%d", depth + 1);
	while (now_ms() < deadline)
	{
		value(conn, "SELECT emissions_wait_delivered('5s')", NULL);
		seen = value(conn, "SELECT count(*) FROM tb_loop", NULL);
		if (atol(seen) > depth + 1 || strcmp(seen, last) == 0)
			break;
		snprintf(last, sizeof(last), "%s", seen);
		usleep(1000 * 1000);
	}
	/* stop a loop that did not stop by itself */
	run(conn, "SELECT emissions_drop_adapter('fz_tloop')");
	check("a table adapter fed by a trigger on its own table stops after"
		  " max_cascade_depth generations", want, seen);
}

/* The calls run inside handlers met no internal error either. */
static void
check_handlers(void)
{
	PGresult   *res;
	long		calls;
	long		bad;
	long		bad_deliveries;

	res = PQexec(conn, "SELECT count(*),"
				 " count(*) FILTER (WHERE result ~ '^ERROR (XX|58)'),"
				 " (SELECT count(*) FROM emissions_failed_deliveries"
				 "  WHERE sqlstate ~ '^(XX|58)')"
				 " FROM handler_results");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		bail("read the handler results: %s", PQerrorMessage(conn));
	calls = atol(PQgetvalue(res, 0, 0));
	bad = atol(PQgetvalue(res, 0, 1));
	bad_deliveries = atol(PQgetvalue(res, 0, 2));
	PQclear(res);
	report(calls > 0 && bad == 0 && bad_deliveries == 0,
		   "%ld API calls run by handlers in the worker: no internal error,"
		   " and no failed delivery with one", calls);
	if (bad > 0 || bad_deliveries > 0)
	{
		res = PQexec(conn, "(SELECT left(sql, 150) || ': ' ||"
					 " left(result, 200) FROM handler_results"
					 " WHERE result ~ '^ERROR (XX|58)' LIMIT 3)"
					 " UNION ALL (SELECT adapter || ': ' || sqlstate || ' ' ||"
					 " message"
					 " FROM emissions_failed_deliveries"
					 " WHERE sqlstate ~ '^(XX|58)' LIMIT 3)");
		for (int i = 0; i < PQntuples(res); i++)
			printf("#   %s\n", PQgetvalue(res, i, 0));
		PQclear(res);
	}
}

/*
 * The attacker's moves, in a database of their own (so that the model of
 * the fuzzing above is not disturbed): an ordinary role that owns a schema
 * puts in it an operator for every comparison on the types the extension's
 * SQL uses (and ->>, ->, +, -, ||, ~~), functions and aggregates named like
 * the ones it calls, and puts the schema first in its search_path, before
 * pg_catalog.  Each of them, run as anyone but that role, warns, records
 * who it ran as and tries to make the role a superuser.  Then the role
 * makes random calls of every SQL function of the extension, in autocommit
 * and in transaction blocks with savepoints; its adapters (a table it
 * owns, a handler with that search_path which calls the API in the
 * worker, a failing handler) run meanwhile.  Checked: the role never
 * became superuser, its code never ran as another role (not in a backend,
 * not in the worker: the server log), the trap was live (it ran as the
 * role itself), no call met an internal error, and what was committed is
 * delivered.  Then: events of tens of megabytes, terminations of the
 * launcher and of the delivery workers, after which delivery goes on with
 * exactly one worker per database and every event delivered once, and
 * handlers that outlast emissions.adapter_timeout.
 */
#define HOSTILE_DB "emissions_fuzz_hostile"
#define HOSTILE_ROLE "emissions_fuzz_hostile_role"
#define HOSTILE_TRAP "hostile trap sprung as"
#define HOSTILE_CALLS 600
#define HOSTILE_TERMINATIONS 4

static long hostile_traps_seen = 0;

/* Count the trap's warnings (shown), drop other notices. */
static void
hostile_notice(void *arg, const char *message)
{
	if (strstr(message, HOSTILE_TRAP) && hostile_traps_seen++ < MAX_EXAMPLES)
		printf("# %s", message);
}

static const char *const hostile_setup_sql[] = {
	"SET client_min_messages = warning",
	"CREATE EXTENSION emissions",
	"CREATE SCHEMA hmal AUTHORIZATION " HOSTILE_ROLE,
	"CREATE TABLE hostile_ran (who name, what text)",
	"GRANT INSERT ON hostile_ran TO PUBLIC",
	"SET ROLE " HOSTILE_ROLE,
	"CREATE FUNCTION hmal.sprung(what text) RETURNS void LANGUAGE plpgsql"
	" SET search_path = pg_catalog AS $$"
	" BEGIN"
	"  IF current_user OPERATOR(pg_catalog.<>) '" HOSTILE_ROLE "' THEN"
	"   RAISE WARNING '" HOSTILE_TRAP " % (%)', current_user, what;"
	"   INSERT INTO public.hostile_ran VALUES (current_user, what);"
	"   ALTER ROLE " HOSTILE_ROLE " SUPERUSER;"
	"  ELSE"
	"   PERFORM pg_catalog.set_config('hostile.live', 'yes', false);"
	"  END IF;"
	" END $$",
	/* a shadow of every comparison on these types */
	"DO $$"
	" DECLARE t text; o text; n integer := 0;"
	" BEGIN"
	"  FOREACH t IN ARRAY ARRAY['text', 'bigint', 'integer', 'smallint',"
	"   'oid', 'name', 'regrole', 'regclass', 'regproc', 'jsonb', 'boolean',"
	"   'timestamptz', 'interval', 'xid8', 'bytea', 'numeric', '\"char\"']"
	"  LOOP"
	"   FOREACH o IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>=']"
	"   LOOP"
	"    n := n + 1;"
	"    EXECUTE format('CREATE FUNCTION hmal.op%s(a %s, b %s) RETURNS boolean"
	"     LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ BEGIN"
	"     PERFORM hmal.sprung(%L); RETURN a OPERATOR(pg_catalog.%s) b;"
	"     END $f$', n, t, t, o || ' ' || t, o);"
	"    EXECUTE format('CREATE OPERATOR hmal.%s (LEFTARG = %s,"
	"     RIGHTARG = %s, FUNCTION = hmal.op%s)', o, t, t, n);"
	"   END LOOP;"
	"  END LOOP;"
	" END $$",
	/* and of other operators, functions and aggregates it might use */
	"DO $$"
	" DECLARE s record;"
	" BEGIN"
	"  FOR s IN SELECT * FROM (VALUES"
	"   ('arrow_text', '->>', 'jsonb', 'text', 'text'),"
	"   ('arrow', '->', 'jsonb', 'text', 'jsonb'),"
	"   ('plus4', '+', 'integer', 'integer', 'integer'),"
	"   ('plus8', '+', 'bigint', 'bigint', 'bigint'),"
	"   ('minus8', '-', 'bigint', 'bigint', 'bigint'),"
	"   ('plus_time', '+', 'timestamptz', 'interval', 'timestamptz'),"
	"   ('minus_time', '-', 'timestamptz', 'timestamptz', 'interval'),"
	"   ('concat', '||', 'text', 'text', 'text'),"
	"   ('like', '~~', 'text', 'text', 'boolean')) AS v(fn, op, l, r, res)"
	"  LOOP"
	"   EXECUTE format('CREATE FUNCTION hmal.%s(a %s, b %s) RETURNS %s"
	"    LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ BEGIN"
	"    PERFORM hmal.sprung(%L); RETURN a OPERATOR(pg_catalog.%s) b;"
	"    END $f$', s.fn, s.l, s.r, s.res, s.op, s.op);"
	"   EXECUTE format('CREATE OPERATOR hmal.%s (LEFTARG = %s,"
	"    RIGHTARG = %s, FUNCTION = hmal.%s)', s.op, s.l, s.r, s.fn);"
	"  END LOOP;"
	" END $$",
	"CREATE FUNCTION hmal.now() RETURNS timestamptz LANGUAGE plpgsql"
	" SET search_path = pg_catalog AS"
	" $$ BEGIN PERFORM hmal.sprung('now()'); RETURN now(); END $$",
	"CREATE FUNCTION hmal.clock_timestamp() RETURNS timestamptz"
	" LANGUAGE plpgsql SET search_path = pg_catalog AS $$ BEGIN"
	" PERFORM hmal.sprung('clock_timestamp()'); RETURN clock_timestamp();"
	" END $$",
	"CREATE FUNCTION hmal.pg_has_role(r oid, p text) RETURNS boolean"
	" LANGUAGE plpgsql SET search_path = pg_catalog AS $$ BEGIN"
	" PERFORM hmal.sprung('pg_has_role()'); RETURN pg_has_role(r, p); END $$",
	"CREATE FUNCTION hmal.format(f text, VARIADIC a text[]) RETURNS text"
	" LANGUAGE plpgsql SET search_path = pg_catalog AS $$ BEGIN"
	" PERFORM hmal.sprung('format()'); RETURN format(f, VARIADIC a); END $$",
	"CREATE FUNCTION hmal.quote_literal(t text) RETURNS text"
	" LANGUAGE plpgsql SET search_path = pg_catalog AS $$ BEGIN"
	" PERFORM hmal.sprung('quote_literal()'); RETURN quote_literal(t); END $$",
	"CREATE FUNCTION hmal.quote_ident(t text) RETURNS text"
	" LANGUAGE plpgsql SET search_path = pg_catalog AS $$ BEGIN"
	" PERFORM hmal.sprung('quote_ident()'); RETURN quote_ident(t); END $$",
	"CREATE FUNCTION hmal.upper(t text) RETURNS text"
	" LANGUAGE plpgsql SET search_path = pg_catalog AS $$ BEGIN"
	" PERFORM hmal.sprung('upper()'); RETURN upper(t); END $$",
	"CREATE FUNCTION hmal.make_interval(secs double precision)"
	" RETURNS interval LANGUAGE plpgsql SET search_path = pg_catalog AS $$"
	" BEGIN PERFORM hmal.sprung('make_interval()');"
	" RETURN make_interval(secs => secs); END $$",
	"CREATE FUNCTION hmal.jsonb_populate_record(r anyelement, j jsonb)"
	" RETURNS anyelement LANGUAGE plpgsql SET search_path = pg_catalog AS $$"
	" BEGIN PERFORM hmal.sprung('jsonb_populate_record()');"
	" RETURN jsonb_populate_record(r, j); END $$",
	"CREATE FUNCTION hmal.max_step(s bigint, v bigint) RETURNS bigint"
	" LANGUAGE plpgsql SET search_path = pg_catalog AS $$ BEGIN"
	" PERFORM hmal.sprung('max()'); RETURN greatest(s, v); END $$",
	"CREATE AGGREGATE hmal.max(bigint) (SFUNC = hmal.max_step, STYPE = bigint)",
	"CREATE FUNCTION hmal.min_step(s timestamptz, v timestamptz)"
	" RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog AS $$"
	" BEGIN PERFORM hmal.sprung('min()'); RETURN least(s, v); END $$",
	"CREATE AGGREGATE hmal.min(timestamptz) (SFUNC = hmal.min_step,"
	" STYPE = timestamptz)",
	/* the role's own objects, for its adapters and triggers */
	"CREATE TABLE hmal.sink (id bigint, type text, payload jsonb)",
	"CREATE TABLE hmal.watched (id integer, label text)",
	"CREATE FUNCTION hmal.handler(e jsonb) RETURNS void LANGUAGE plpgsql"
	" SET search_path = hmal, pg_catalog, public AS $$"
	" BEGIN"
	"  PERFORM emissions_emit('hostile.cascade', e->'payload');"
	"  PERFORM count(*) FROM emissions_events((e->>'id')::bigint - 3, 5);"
	"  PERFORM count(*) FROM emissions_event((e->>'id')::bigint);"
	"  PERFORM count(*) FROM emissions_adapters WHERE name = 'x';"
	" END $$",
	"CREATE FUNCTION hmal.failing(e jsonb) RETURNS void LANGUAGE plpgsql AS"
	" $$ BEGIN RAISE EXCEPTION 'the hostile handler fails'; END $$",
	"RESET ROLE",
	"RESET client_min_messages",
	NULL
};

/* SQLSTATE of sql's error, or "ok". */
static const char *
hostile_sqlstate(PGconn *c, const char *sql)
{
	static char buf[8];
	PGresult   *res = PQexec(c, sql);

	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
		PQresultStatus(res) == PGRES_TUPLES_OK)
		snprintf(buf, sizeof(buf), "ok");
	else
		snprintf(buf, sizeof(buf), "%s",
				 PQresultErrorField(res, PG_DIAG_SQLSTATE) ?
				 PQresultErrorField(res, PG_DIAG_SQLSTATE) : "none");
	PQclear(res);
	return buf;
}

/* A random call of one of the extension's SQL functions. */
static char *
hostile_call(void)
{
	int			n = rnd(6);
	const char *kinds = "ntfx";

	switch (rnd(27))
	{
		case 0:
			return fmt("SELECT emissions_start()");
		case 1:
		case 2:
			return fmt("SELECT emissions_emit('hostile.call%d', '{\"n\": %d}',"
					   " '{\"m\": 1}')", rnd(3), rnd(1000));
		case 3:
			return fmt("SELECT emissions_flush()");
		case 4:
			return fmt("SELECT emissions_commit()");
		case 5:
			return fmt("SELECT emissions_terminate()");
		case 6:
			return fmt("SELECT emissions_active()");
		case 7:
			return fmt("SELECT * FROM emissions_buffer_status()");
		case 8:
			return fmt("SELECT count(*) FROM emissions_pending_events()");
		case 9:
			return fmt("SELECT count(*) FROM emissions_events(%d, %d)",
					   rnd(60) - 5, rnd(20));
		case 10:
			return fmt("SELECT count(*) FROM emissions_event(%d)",
					   rnd(60) - 5);
		case 11:
			return fmt("SELECT emissions_wait_delivered('0.2s')");
		case 12:
			return fmt("SELECT emissions_add_adapter('hostile_n%d', 'notify',"
					   " 'hostile_channel', 'hostile.*',"
					   " '{\"omit_payload\": %s}')", n,
					   rnd(2) ? "true" : "false");
		case 13:
			return fmt("SELECT emissions_add_adapter('hostile_t%d', 'table',"
					   " 'hmal.sink', 'hostile.call*')", n);
		case 14:
			return fmt("SELECT emissions_add_adapter('hostile_f%d', 'function',"
					   " 'hmal.handler', 'hostile.call*',"
					   " '{\"max_attempts\": 2}')", n);
		case 15:
			return fmt("SELECT emissions_add_adapter('hostile_x%d', 'function',"
					   " 'hmal.failing(jsonb)', 'hostile.call1',"
					   " '{\"max_attempts\": 1}')", n);
		case 16:
			return fmt("SELECT emissions_drop_adapter('hostile_%c%d')",
					   kinds[rnd(4)], n);
		case 17:
			return fmt("SELECT emissions_replay(id) FROM emissions_dead_letters"
					   " ORDER BY id DESC LIMIT %d", 1 + rnd(3));
		case 18:
			return fmt("SELECT emissions_replay(%d)", rnd(100) - 10);
		case 19:
			return fmt("SELECT * FROM emissions_stats_counters()");
		case 20:
			return fmt("SELECT * FROM emissions_stats");
		case 21:
			return fmt("SELECT emissions_stats_reset()");
		case 22:
			return fmt("SELECT emissions_watch('hmal.watched', %s)",
					   rnd(2) ? "'hostile.w'" :
					   "'hostile.ws', ARRAY['id'], true, true");
		case 23:
			return fmt("SELECT emissions_unwatch('hmal.watched')");
		case 24:
			if (rnd(3) == 0)
				return fmt("DELETE FROM hmal.watched WHERE id < %d", rnd(100));
			if (rnd(2) == 0)
				return fmt("UPDATE hmal.watched SET label = label || 'x'");
			return fmt("INSERT INTO hmal.watched VALUES (%d, 'x')", rnd(100));
		case 25:
			return fmt("SELECT emissions_launcher_wakeup()");
		default:
			return fmt("SELECT count(*) FROM emissions_dead_letters,"
					   " emissions_adapters");
	}
}

/* Run one hostile call; count it, and an internal error as a failure. */
static void
hostile_run(PGconn *c, const char *sql, long *calls, Failures *internal)
{
	PGresult   *res = PQexec(c, sql);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	(*calls)++;
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK &&
		(state == NULL || strncmp(state, "XX", 2) == 0 ||
		 strncmp(state, "58", 2) == 0))
		record(internal, "%s: %s %s", brief(sql), state ? state : "none",
			   PQerrorMessage(c));
	PQclear(res);
}

/* Terminate the backends of backend_type type; how many were signalled. */
static int
hostile_terminate(PGconn *admin, const char *type)
{
	const char *n = value(admin, "SELECT count(pg_terminate_backend(pid))"
						  " FROM pg_stat_activity WHERE backend_type = $1",
						  type);

	if (atoi(n) < 1)
		printf("# no %s to terminate: %s\n", type, n);
	return atoi(n);
}

/*
 * The most delivery workers any one database has now.  A worker still
 * starting has no database yet (PostgreSQL 18 lists it with a NULL datid;
 * earlier versions do not list it): it is not counted.
 */
static int
hostile_most_workers(PGconn *admin)
{
	return atoi(value(admin, "SELECT COALESCE(max(n), 0) FROM"
					  " (SELECT count(*) AS n FROM pg_stat_activity"
					  "  WHERE backend_type = 'emissions delivery'"
					  "  AND datid IS NOT NULL GROUP BY datid) AS w", NULL));
}

/*
 * The hostile role's handlers that outlast emissions.adapter_timeout (set
 * to 1 s here): one sleeps, one waits on a lock another session of the
 * role holds; each is cancelled and becomes a dead letter (57014).  A
 * third catches each cancellation and sleeps again, 30 times: cancelled
 * again every 100 ms, it gives up within seconds.  An event committed
 * after them is delivered meanwhile, once, long before the 90 s the three
 * would take.  Skipped on a server without the setting.
 */
static void
hostile_slow_handlers(PGconn *admin, PGconn *su)
{
	static const char *const adapters[][2] = {
		{"hostile_sleep", "hmal.sleeper"},
		{"hostile_lock", "hmal.locker"},
		{"hostile_stubborn", "hmal.stubborn"}
	};
	PGconn	   *c;
	PGconn	   *holder;
	double		start;
	double		elapsed;

	if (strcmp(value(su, "SELECT current_setting('emissions.adapter_timeout',"
					 " true) IS NOT NULL", NULL), "t") != 0)
	{
		report(true, "slow handlers are cancelled # SKIP no"
			   " emissions.adapter_timeout");
		return;
	}
	run(admin, "ALTER SYSTEM SET emissions.adapter_timeout = '1s'");
	reload_and_wait(admin, HOSTILE_DB, "emissions.adapter_timeout", "1s");
	c = connect_to(HOSTILE_DB, hostile_notice);
	run(c, "SET ROLE " HOSTILE_ROLE);
	run(c, "CREATE TABLE hmal.locked (x integer)");
	run(c, "CREATE FUNCTION hmal.sleeper(e jsonb) RETURNS void LANGUAGE sql"
		" AS 'SELECT pg_catalog.pg_sleep(30)'");
	run(c, "CREATE FUNCTION hmal.locker(e jsonb) RETURNS void"
		" LANGUAGE plpgsql AS $$ BEGIN"
		" LOCK TABLE hmal.locked IN ACCESS EXCLUSIVE MODE; END $$");
	run(c, "CREATE FUNCTION hmal.stubborn(e jsonb) RETURNS void"
		" LANGUAGE plpgsql AS $$ BEGIN"
		" FOR i IN 1..30 LOOP"
		"  BEGIN PERFORM pg_catalog.pg_sleep(1);"
		"  EXCEPTION WHEN query_canceled THEN NULL; END;"
		" END LOOP; END $$");
	for (int i = 0; i < (int) lengthof(adapters); i++)
	{
		char		sql[256];

		snprintf(sql, sizeof(sql), "SELECT emissions_add_adapter('%s',"
				 " 'function', '%s', 'hostile.slow', '{\"max_attempts\": 1}')",
				 adapters[i][0], adapters[i][1]);
		run(c, sql);
	}
	holder = connect_to(HOSTILE_DB, hostile_notice);
	run(holder, "SET ROLE " HOSTILE_ROLE);
	run(holder, "BEGIN");
	run(holder, "LOCK TABLE hmal.locked IN ACCESS EXCLUSIVE MODE");

	start = now_ms();
	run(c, "SELECT emissions_start(), emissions_emit('hostile.slow')");
	run(c, "SELECT emissions_start(), emissions_emit('hostile.quick')");
	check("an event after handlers that outlast emissions.adapter_timeout"
		  " is delivered", "t",
		  value(c, "SELECT emissions_wait_delivered('60s')", NULL));
	elapsed = (now_ms() - start) / 1000;
	report(elapsed < 20 * slow, "it is delivered in %.1f s past three"
		   " handlers of 30 s each (less than 20 s)", elapsed);
	check("a handler that sleeps or waits on a lock past"
		  " emissions.adapter_timeout is cancelled and becomes a dead letter",
		  "hostile_lock:57014,hostile_sleep:57014",
		  wait_for(su, "SELECT string_agg(adapter || ':' || sqlstate, ','"
				   " ORDER BY adapter) FROM emissions_dead_letters"
				   " WHERE type = 'hostile.slow'", NULL,
				   "hostile_lock:57014,hostile_sleep:57014", 30000 * slow));
	check("the event after them is delivered once", "1",
		  value(su, "SELECT count(*) FROM emissions_events(0, 2147483647)"
				" WHERE type = 'hostile.quick'", NULL));
	run(holder, "ROLLBACK");
	PQfinish(holder);
	for (int i = 0; i < (int) lengthof(adapters); i++)
	{
		char		sql[128];

		snprintf(sql, sizeof(sql), "SELECT emissions_drop_adapter('%s')",
				 adapters[i][0]);
		run(c, sql);
	}
	PQfinish(c);
	run(admin, "ALTER SYSTEM RESET emissions.adapter_timeout");
	reload_and_wait(admin, HOSTILE_DB, "emissions.adapter_timeout", "30s");
}

/*
 * The attacker's moves (see above); admin is a superuser's connection to
 * the environment's database.
 */
static void
hostile_moves(PGconn *admin, const char *log, long log_offset)
{
	PGconn	   *su;
	PGconn	   *c;
	Failures	internal = {0};
	long		calls = 0;
	long		emitted = 0;
	double		deadline;
	int			max_workers = 0;
	char		want[64];

	run(admin, "SET client_min_messages = warning");
	run(admin, "DROP DATABASE IF EXISTS " HOSTILE_DB " WITH (FORCE)");
	run(admin, "DROP ROLE IF EXISTS " HOSTILE_ROLE);
	run(admin, "CREATE ROLE " HOSTILE_ROLE " NOLOGIN");
	run(admin, "CREATE DATABASE " HOSTILE_DB);
	run(admin, "RESET client_min_messages");
	su = connect_to(HOSTILE_DB, hostile_notice);
	for (int i = 0; hostile_setup_sql[i] != NULL; i++)
		run(su, hostile_setup_sql[i]);
	check("a delivery worker serves the attacker's database", "t",
		  wait_for(su, "SELECT worker_pid IS NOT NULL FROM emissions_stats",
				   NULL, "t", 20000 * slow));

	/* A superuser cannot make the role's function or table a target. */
	check("a superuser's adapter on a hostile role's function is refused",
		  "42501", hostile_sqlstate(su, "SELECT emissions_add_adapter("
									"'hostile_su', 'function', 'hmal.handler')"));
	check("a superuser's adapter on a hostile role's table is refused",
		  "42501", hostile_sqlstate(su, "SELECT emissions_add_adapter("
									"'hostile_su', 'table', 'hmal.sink')"));

	/* The role's session: its schema first. */
	c = connect_to(HOSTILE_DB, hostile_notice);
	run(c, "SET ROLE " HOSTILE_ROLE);
	run(c, "SET search_path = hmal, pg_catalog, public");
	run(c, "SET client_min_messages = warning");
	while (calls < HOSTILE_CALLS)
	{
		if (rnd(3) == 0)
		{
			int			k = 1 + rnd(8);

			run(c, "BEGIN");
			for (int i = 0; i < k; i++)
			{
				char	   *sql = hostile_call();

				run(c, "SAVEPOINT hostile");
				hostile_run(c, sql, &calls, &internal);
				run(c, PQtransactionStatus(c) == PQTRANS_INERROR ?
					"ROLLBACK TO SAVEPOINT hostile" :
					"RELEASE SAVEPOINT hostile");
				free(sql);
			}
			run(c, rnd(4) == 0 ? "ROLLBACK" : "COMMIT");
		}
		else
		{
			char	   *sql = hostile_call();

			hostile_run(c, sql, &calls, &internal);
			free(sql);
		}
	}
	run(c, "SELECT emissions_start(), emissions_emit('hostile.mark')");
	check("the hostile role's events are delivered", "t",
		  value(c, "SELECT emissions_wait_delivered('60s')", NULL));
	report(internal.count == 0, "all %ld hostile calls succeeded or failed"
		   " with a proper SQLSTATE (no class XX or 58)", calls);
	show_failures(&internal);
	/* the trap was set: as the role itself, its operator is the one used */
	check("the hostile role's shadowing operators are live in its session",
		  "yes", value(c, "SELECT CASE WHEN 'a'::text = 'a'::text"
					   " THEN current_setting('hostile.live', true) END",
					   NULL));
	check("the hostile role never became superuser", "f",
		  value(su, "SELECT rolsuper FROM pg_roles"
				" WHERE rolname = '" HOSTILE_ROLE "'", NULL));
	check("the hostile role's code never ran as another role (recorded)",
		  "0", value(su, "SELECT count(*) FROM hostile_ran", NULL));
	report(hostile_traps_seen == 0 &&
		   (log == NULL || log_count(log, log_offset, HOSTILE_TRAP) == 0),
		   "the hostile role's code never ran as another role (no warning"
		   " in a session or in the server log)");

	/*
	 * Events of tens of megabytes, one of them all control characters (its
	 * JSON text six times its jsonb), then a small one: each is delivered
	 * once.
	 */
	run(c, "SELECT emissions_start(), emissions_emit('hostile.big',"
		" jsonb_build_object('s', repeat('x', 24000000)))");
	run(c, "SELECT emissions_start(), emissions_emit('hostile.big',"
		" jsonb_build_object('s', repeat(chr(1), 4000000)))");
	run(c, "SELECT emissions_start(), emissions_emit('hostile.after')");
	check("events of tens of megabytes are delivered", "t",
		  value(c, "SELECT emissions_wait_delivered('120s')", NULL));
	check("each event of tens of megabytes, and the next one, is delivered"
		  " once", "2 1",
		  value(su, "SELECT count(*) FILTER (WHERE type = 'hostile.big')"
				" || ' ' || count(*) FILTER (WHERE type = 'hostile.after')"
				" FROM emissions_events(0, 2147483647)", NULL));
	PQfinish(c);

	/*
	 * Terminate the launcher and the workers, in turn, committing events
	 * all along; after each termination wait until the launcher and this
	 * database's worker are back, sampling the workers of every database.
	 */
	for (int round = 0; round < HOSTILE_TERMINATIONS; round++)
	{
		const char *type = round % 2 == 0 ? "emissions launcher" :
		"emissions delivery";
		bool		back = false;
		int			most;

		run(su, "SELECT emissions_start(), emissions_emit('hostile.term')");
		emitted++;
		(void) hostile_terminate(admin, type);
		deadline = now_ms() + 40000 * slow;
		while (!back && now_ms() < deadline)
		{
			usleep(100 * 1000);
			most = hostile_most_workers(admin);
			max_workers = most > max_workers ? most : max_workers;
			run(su, "SELECT emissions_start(), emissions_emit('hostile.term')");
			emitted++;
			back = strcmp(value(admin, "SELECT count(*) FILTER (WHERE"
								" backend_type = 'emissions launcher') || ' '"
								" || count(*) FILTER (WHERE backend_type ="
								" 'emissions delivery' AND datname = $1)"
								" FROM pg_stat_activity", HOSTILE_DB),
						  "1 1") == 0;
		}
		report(back, "the launcher and the worker are back after the %s"
			   " was terminated (round %d)", type, round + 1);
	}
	check("delivery goes on after the launcher and the workers are"
		  " terminated", "t",
		  value(su, "SELECT emissions_wait_delivered('60s')", NULL));
	deadline = now_ms() + 5000;
	while (now_ms() < deadline)
	{
		int			most = hostile_most_workers(admin);

		max_workers = most > max_workers ? most : max_workers;
		usleep(100 * 1000);
	}
	report(max_workers == 1, "at most one delivery worker per database at"
		   " any time around the terminations (most seen: %d)", max_workers);
	check("the launcher is back", "1",
		  wait_for(admin, "SELECT count(*) FROM pg_stat_activity"
				   " WHERE backend_type = 'emissions launcher'", NULL, "1",
				   20000 * slow));
	snprintf(want, sizeof(want), "%ld %ld true", emitted, emitted);
	check("every event committed around the terminations is delivered"
		  " once, under ids given once", want,
		  value(su, "SELECT count(*) FILTER (WHERE type = 'hostile.term')"
				" || ' ' || count(DISTINCT id) FILTER"
				"  (WHERE type = 'hostile.term')"
				" || ' ' || (count(*) = count(DISTINCT id))"
				" FROM emissions_events(0, 2147483647)", NULL));
	hostile_slow_handlers(admin, su);
	PQfinish(su);
	run(admin, "DROP DATABASE " HOSTILE_DB " WITH (FORCE)");
	run(admin, "DROP ROLE " HOSTILE_ROLE);
}

/*
 * Roll back the prepared transactions a run that was interrupted left in
 * the test database: they would keep it from being dropped.
 */
static void
clear_leftovers(PGconn *admin)
{
	PGresult   *res;

	res = PQexec(admin, "SELECT gid FROM pg_prepared_xacts"
				 " WHERE database = '" TEST_DB "'");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
	{
		PGconn	   *c = connect_to(TEST_DB, count_notice);

		for (int i = 0; i < PQntuples(res); i++)
		{
			char		sql[256];

			snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s'",
					 PQgetvalue(res, i, 0));
			run(c, sql);
		}
		PQfinish(c);
	}
	PQclear(res);
}

/* The table of calls per function and buffer state, as TAP comments. */
static long
show_coverage(void)
{
	long		empty = 0;

	printf("# calls per function and buffer state:\n");
	for (int s = 0; s < NUM_STATES; s++)
		printf("#   column %d: %s\n", s + 1, state_names[s]);
	for (int f = 0; f < NUM_API_FNS; f++)
	{
		printf("#   %-38s", fn_names[f]);
		for (int s = 0; s < NUM_STATES; s++)
		{
			printf(" %6ld", coverage[f][s]);
			if (coverage[f][s] == 0)
				empty++;
		}
		printf("\n");
	}
	return empty;
}

int
main(void)
{
	PGconn	   *admin;
	unsigned long long seed = env_number("FUZZ_API_SEED", DEFAULT_SEED);
	long		target = (long) env_number("FUZZ_API_CALLS", DEFAULT_CALLS);
	const char *log = log_path();
	long		log_offset = file_size(log);
	char		pid_before[32];
	char		pid_after[32];
	int			depth;
	double		t0;
	double		t1;
	long		empty;
	const char *seen;
	double		round_ms[4] = {0};
	long		round_calls[4] = {0};

	slow = (int) env_number("FUZZ_API_SLOW", 1);
	printf("# seed %llu, %ld calls\n", seed, target);
	rng_state = seed;

	/* A database and a role of our own. */
	admin = connect_to(NULL, count_notice);
	run(admin, "SET client_min_messages = warning");
	clear_leftovers(admin);
	run(admin, "DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
	run(admin, "DROP ROLE IF EXISTS " ROLE);
	run(admin, "CREATE ROLE " ROLE " NOLOGIN");
	run(admin, "CREATE DATABASE " TEST_DB);
	conn = connect_to(TEST_DB, count_notice);
	backend_pid = PQbackendPID(conn);
	for (int i = 0; setup_sql[i] != NULL; i++)
		run(conn, setup_sql[i]);
	can_prepare =
		atoi(value(conn, "SHOW max_prepared_transactions", NULL)) > 0;
	depth = atoi(value(conn, "SHOW emissions.max_cascade_depth", NULL));
	check("a delivery worker serves the test database", "t",
		  wait_for(conn, "SELECT worker_pid IS NOT NULL FROM emissions_stats",
				   NULL, "t", 20000 * slow));
	worker_pid(pid_before, sizeof(pid_before));
	printf("# delivery worker %s, max_cascade_depth %d, prepared"
		   " transactions %s, server log %s\n", pid_before, depth,
		   can_prepare ? "on" : "off", log ? log : "not found");

	t0 = now_ms();
	round_first();
	while (ncalls < target)
	{
		int			k = rnd(100);
		int			kind = k < 45 ? 0 : k < 85 ? 1 : k < 97 ? 2 : 3;
		long		calls = ncalls;
		double		start = now_ms();

		if (kind == 0)
			round_autocommit_batch();
		else if (kind == 1)
			round_transaction();
		else if (kind == 2)
			round_pipeline();
		else
			round_settings();
		if (++nrounds % 25 == 0)
			maintenance();
		round_ms[kind] += now_ms() - start;
		round_calls[kind] += ncalls - calls;
	}
	t1 = now_ms();
	printf("# time by round: batches %.1f s (%ld calls), transaction blocks"
		   " %.1f s (%ld), pipelines %.1f s (%ld), settings %.1f s\n",
		   round_ms[0] / 1000, round_calls[0], round_ms[1] / 1000,
		   round_calls[1], round_ms[2] / 1000, round_calls[2],
		   round_ms[3] / 1000);
	maintenance();
	run(conn, "RESET emissions.auto_start");
	run(conn, "RESET emissions.max_buffer_bytes");
	session_auto_start = false;

	printf("# %ld calls in %.1f s: %ld rounds, %ld transaction blocks"
		   " (%ld prepared), %ld rollbacks to a savepoint, %ld groups rolled"
		   " back, %ld huge values, %ld handler events, %ld loop seeds,"
		   " %ld notices\n", ncalls, (t1 - t0) / 1000, nrounds, ntransactions,
		   nprepared, nrollbacks_to, ngroups_failed, nhuge, nhandler_events,
		   (long) nchains, nnotices);

	/* every call: a proper SQLSTATE, the backend alive */
	report(internal_failures.count == 0,
		   "all %ld calls succeeded or failed with a proper SQLSTATE (no class"
		   " XX or 58)", ncalls);
	show_failures(&internal_failures);
	report(precise_failures.count == 0,
		   "all %ld results the contract fixes were right (buffer functions"
		   " against the model, SQLSTATEs of bad input)", nprecise);
	show_failures(&precise_failures);
	report(nprecise >= ncalls / PRECISE_SHARE,
		   "and they are many: %ld of %ld calls had their result checked"
		   " exactly (at least 1 in %d must be)", nprecise, ncalls,
		   PRECISE_SHARE);
	empty = show_coverage();
	if (ncalls >= 50000)
		report(empty == 0, "every API function was called in every buffer"
			   " state (%d functions, %d states)", NUM_API_FNS, NUM_STATES);
	else
		printf("# %ld cells of the table empty (checked from 50000 calls)\n",
			   empty);
	check_alive("the last call");
	report(atoi(value(conn, "SELECT pg_backend_pid()", NULL)) == backend_pid,
		   "the backend survived every call");

	/* delivery */
	{
		char		sql[128];

		snprintf(sql, sizeof(sql), "SELECT emissions_wait_delivered('%d s')",
				 120 * slow);
		check("everything committed is delivered", "t",
			  value(conn, sql, NULL));
	}
	{
		char		want[32];

		snprintf(want, sizeof(want), "%ld", committed_fz);
		seen = value(conn, "SELECT count(*)"
					 " FROM emissions_events(0, 2147483647)"
					 " WHERE type LIKE 'fz%'", NULL);
		check("the fz events the model committed are delivered, and no other"
			  " (nothing rolled back, terminated or dropped)", want, seen);
		report(delivered_fz_sum() == committed_fz_sum,
			   "and they are the same events: their types, as a multiset,"
			   " are those the model committed");
	}
	seen = value(conn, "SELECT count(*) FILTER (WHERE type = 'fz:null') > 0"
				 " AND count(*) FILTER (WHERE type = 'fz:nullmeta') > 0"
				 " AND bool_and(payload = 'null'::jsonb)"
				 "  FILTER (WHERE type = 'fz:null')"
				 " AND bool_and(metadata = '{}'::jsonb)"
				 "  FILTER (WHERE type = 'fz:nullmeta')"
				 " FROM emissions_events(0, 2147483647)", NULL);
	check("a NULL payload is stored as JSON null, NULL metadata as {}", "t",
		  seen);
	check_loops(depth);
	check_handlers();
	check_table_loop(depth);

	/* the worker and the server */
	worker_pid(pid_after, sizeof(pid_after));
	if (strcmp(pid_after, pid_before) != 0)
		printf("# the delivery worker was %s, is %s; %d worker exits in the"
			   " log\n", pid_before, pid_after,
			   log ? log_count(log, log_offset,
							   "\"emissions delivery\" (PID") : -1);
	report(strcmp(pid_after, "NULL") != 0 &&
		   (strcmp(pid_after, pid_before) == 0 ||
			(log && log_count(log, log_offset, "terminated by signal") == 0)),
		   "the delivery worker is alive (%s)",
		   strcmp(pid_after, pid_before) == 0 ? "the same process" :
		   "restarted after a clean exit");
	if (log)
		report(log_crashes(log, log_offset) == 0,
			   "the server log shows no process terminated by a signal, no"
			   " TRAP and no PANIC");
	else
		report(false, "the server log shows no crash: no log found (set"
			   " FUZZ_API_LOG)");

	/* the attacker's moves, in a database of their own */
	hostile_moves(admin, log, log_offset);

	/* clean up; the extension must not keep the database busy */
	PQfinish(conn);
	check("the test database is dropped", "done",
		  command(admin, "DROP DATABASE " TEST_DB));
	run(admin, "DROP ROLE " ROLE);
	PQfinish(admin);
	printf("1..%d\n", nchecks);
	return nfailed > 0 ? 1 : 0;
}
