/*-------------------------------------------------------------------------
 *
 * fuzz_buffer.c
 *	  Prove, by a long random walk, that the buffer API does what a simple
 *	  model of the contract predicts.
 *
 * The driver issues random statements on one connection: BEGIN, COMMIT,
 * ROLLBACK, PREPARE TRANSACTION with a later COMMIT or ROLLBACK PREPARED,
 * SAVEPOINT, ROLLBACK TO SAVEPOINT, RELEASE SAVEPOINT, every function of the
 * buffer API with valid and invalid arguments, several calls in one
 * statement (some ending in an error), bulk emits, large payloads under a
 * small emissions.max_buffer_bytes (so buffers spill), PL/pgSQL blocks with
 * an EXCEPTION clause, and statements outside a transaction block.  It
 * keeps a model of the buffer (active or not, the events pending, the
 * events handed off, a full copy of both per savepoint) and checks that:
 *
 * - every result the server returns, and the transaction status after
 *	 every statement, is what the model predicts (rules 2, 3, 4 and 5 of the
 *	 contract, and the API table);
 * - every invalid input is an ERROR with its exact SQLSTATE (rule 10);
 * - at each checkpoint (every 500 operations, and at the end), once the
 *	 worker has delivered what was committed, the events delivered since
 *	 the previous checkpoint are exactly the model's: every committed event
 *	 once, with its type, payload and metadata intact, nothing rolled back,
 *	 terminated or dropped, and each transaction's events consecutive and
 *	 in emit order (rules 1, 2, 3, 4, 5, 6 and 8);
 * - the backend survives it all, and the test database can be dropped.
 *
 * The connection comes from the environment (PGHOST, PGPORT, PGUSER,
 * PGDATABASE); the server must preload the library and allow prepared
 * transactions.  The program creates the database emissions_fuzz for
 * itself and drops it at the end.  The seed is fixed unless FUZZ_SEED is
 * set, and printed, so that a failure reproduces; FUZZ_OPS sets the number
 * of operations.  It prints one "ok N - ..." or "not ok N - ..." line per
 * summary check and exits 1 if any failed.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

#include "tap_libpq.h"

#define TEST_DB "emissions_fuzz"

#define DELIVERED_SQL \
	"SELECT txid, payload->>'id', type, payload::text, metadata::text, id" \
	" FROM emissions_events($1, 2147483647)"

#define DEFAULT_SEED 20240607
#define DEFAULT_OPS 20000
#define CHECKPOINT_EVERY 500

#define TYPE_BULK 6				/* event_types[] of bulk emits */
#define TYPE_DO 7				/* and of emits in DO blocks */
#define META_OBJECT "{\"n\": [1, 2], \"src\": \"fuzz\"}"

#define MAX_SAVEPOINTS 12
#define MAX_PREPARED 3
#define MAX_BULK 40
#define SQL_MAX 65536
#define OUT_MAX 256

/* A growable list of event ids, in emit order. */
typedef struct IdList
{
	int		   *ids;
	int			n;
	int			cap;
} IdList;

/* What an event was emitted with, to check what is stored. */
typedef struct EventInfo
{
	char		type;			/* index into event_types */
	char		meta;			/* metadata: 0 empty, 1 the object */
	char		pad_char;		/* the payload's "pad" is pad_len of it */
	int			pad_len;
} EventInfo;

/* The buffer as the model sees it. */
typedef struct BufState
{
	bool		active;
	IdList		pending;		/* emitted, not handed off */
	IdList		handed;			/* handed off in this transaction */
} BufState;

/* A savepoint: its name's number and the buffer when it was taken. */
typedef struct Savepoint
{
	int			num;
	BufState	state;
} Savepoint;

/* A prepared transaction not yet committed or rolled back. */
typedef struct Prepared
{
	char		gid[32];
	IdList		ids;
} Prepared;

/* Kinds of operation, for the weights and the summary. */
typedef enum OpKind
{
	OP_BEGIN,
	OP_COMMIT,
	OP_ROLLBACK,
	OP_PREPARE,
	OP_RESOLVE,
	OP_SAVEPOINT,
	OP_ROLLBACK_TO,
	OP_RELEASE,
	OP_START,
	OP_EMIT,
	OP_BULK,
	OP_INVALID,
	OP_FLUSH,
	OP_BCOMMIT,
	OP_TERMINATE,
	OP_ACTIVE,
	OP_STATUS,
	OP_SET,
	OP_ERROR,
	OP_DO_CAUGHT,
	OP_DO_KEPT,
	OP_MULTI,
	OP_IN_ABORTED,
	NUM_OPS
} OpKind;

static const char *const op_names[NUM_OPS] = {
	"begin", "commit", "rollback", "prepare", "commit/rollback prepared",
	"savepoint", "rollback to", "release", "start", "emit", "bulk emit",
	"invalid emit", "flush", "emissions_commit", "terminate", "active",
	"buffer_status", "set", "other error", "do caught", "do kept",
	"multi-call", "in aborted"
};

/* The first failure of one kind: where, what was sent, expected and got. */
typedef struct Failure
{
	int			count;
	long		op;
	char		sql[400];
	char		expected[OUT_MAX];
	char		got[1000];
} Failure;

/* The model of the session. */
static struct
{
	bool		in_xact;
	bool		aborted;
	bool		long_xact;		/* ends less often than most */
	BufState	cur;
	Savepoint	sps[MAX_SAVEPOINTS];
	int			nsps;
	int			next_sp;
	Prepared	prepared[MAX_PREPARED];
	int			nprepared;
	int			next_gid;
	IdList	   *committed;		/* committed transactions' events */
	int			ncommitted;
	int			capcommitted;
	int			next_id;
} model;

static PGconn *conn;

/* Id of the last event delivered before the current checkpoint period. */
static char delivered_mark[32] = "0";
static long op_number;
static long op_counts[NUM_OPS];
static bool stopped = false;
static long nvalues = 0;
static long ninvalid = 0;
static long ncheckpoints = 0;
static long nevents_checked = 0;
static Failure value_failure;
static Failure invalid_failure;
static Failure checkpoint_failure;
static char last_error[600];
static long nnotices = 0;
static int *owner = NULL;		/* per id: committed transaction, or -1 */
static EventInfo *events = NULL;	/* per id: what it was emitted with */
static int	owner_cap = 0;
static char type255[256];		/* the longest valid type */
static char type256[257];		/* one byte too long */

/* The valid event types; the first six are chosen at random. */
static const char *const event_types[] = {
	"fuzz.a", "order.created", "billing:invoice-v2", "X", "a_b-c.d:e",
	type255, "fuzz.bulk", "fuzz.do"
};

/*
 * Show the first few server notices as TAP comments and count the rest;
 * with emissions.log_dropped off there should be none.
 */
static void
count_notice(void *arg, const char *message)
{
	if (nnotices++ < 5)
		printf("# notice: %s", message);
}

/* Append id to list. */
static void
idlist_add(IdList *list, int id)
{
	if (list->n == list->cap)
	{
		list->cap = list->cap ? list->cap * 2 : 16;
		list->ids = realloc(list->ids, list->cap * sizeof(int));
		if (list->ids == NULL)
			bail("out of memory");
	}
	list->ids[list->n++] = id;
}

/* Append every id of src to list. */
static void
idlist_add_all(IdList *list, const IdList *src)
{
	for (int i = 0; i < src->n; i++)
		idlist_add(list, src->ids[i]);
}

/* Make dst a copy of src, reusing dst's memory. */
static void
idlist_copy(IdList *dst, const IdList *src)
{
	dst->n = 0;
	idlist_add_all(dst, src);
}

/* Free list's memory and empty it. */
static void
idlist_free(IdList *list)
{
	free(list->ids);
	list->ids = NULL;
	list->n = list->cap = 0;
}

/* Make dst a copy of src, reusing dst's memory. */
static void
bufstate_copy(BufState *dst, const BufState *src)
{
	dst->active = src->active;
	idlist_copy(&dst->pending, &src->pending);
	idlist_copy(&dst->handed, &src->handed);
}

/* A fresh event id, with room for it in the owner and event maps. */
static int
new_id(void)
{
	int			id = model.next_id++;

	if (id >= owner_cap)
	{
		int			old = owner_cap;

		owner_cap = owner_cap ? owner_cap * 2 : 65536;
		while (owner_cap <= id)
			owner_cap *= 2;
		owner = realloc(owner, owner_cap * sizeof(int));
		events = realloc(events, owner_cap * sizeof(EventInfo));
		if (owner == NULL || events == NULL)
			bail("out of memory");
		for (int i = old; i < owner_cap; i++)
			owner[i] = -1;
	}
	memset(&events[id], 0, sizeof(EventInfo));
	return id;
}

/* Record the events of a transaction that committed, if it has any. */
static void
model_committed(const IdList *ids)
{
	IdList	   *t;

	if (ids->n == 0)
		return;
	if (model.ncommitted == model.capcommitted)
	{
		model.capcommitted = model.capcommitted ? model.capcommitted * 2 : 64;
		model.committed = realloc(model.committed,
								  model.capcommitted * sizeof(IdList));
		if (model.committed == NULL)
			bail("out of memory");
	}
	t = &model.committed[model.ncommitted++];
	memset(t, 0, sizeof(IdList));
	idlist_copy(t, ids);
}

/*
 * The events a transaction stores if it commits now: those handed off,
 * then those pending (an active buffer is committed implicitly).
 */
static void
model_outcome(IdList *ids)
{
	ids->n = 0;
	idlist_add_all(ids, &model.cur.handed);
	if (model.cur.active)
		idlist_add_all(ids, &model.cur.pending);
}

/* Forget the transaction: no buffer, no savepoints, not in a block. */
static void
model_end_xact(void)
{
	model.in_xact = false;
	model.aborted = false;
	model.cur.active = false;
	model.cur.pending.n = 0;
	model.cur.handed.n = 0;
	while (model.nsps > 0)
	{
		Savepoint  *sp = &model.sps[--model.nsps];

		idlist_free(&sp->state.pending);
		idlist_free(&sp->state.handed);
	}
}

/* Commit the model's transaction. */
static void
model_commit(void)
{
	IdList		ids = {0};

	model_outcome(&ids);
	model_committed(&ids);
	idlist_free(&ids);
	model_end_xact();
}

/* Drop savepoints from index keep upwards. */
static void
model_pop_savepoints(int keep)
{
	while (model.nsps > keep)
	{
		Savepoint  *sp = &model.sps[--model.nsps];

		idlist_free(&sp->state.pending);
		idlist_free(&sp->state.handed);
	}
}

/* emissions_start() in the model; returns the expected result. */
static const char *
model_start(void)
{
	if (model.cur.active)
		return "f";
	model.cur.active = true;
	return "t";
}

/* emissions_emit() of a valid event id; returns the expected result. */
static const char *
model_emit(int id)
{
	if (!model.cur.active)
		return "f";
	idlist_add(&model.cur.pending, id);
	return "t";
}

/* emissions_flush() in the model; the expected result goes to out. */
static void
model_flush(char *out)
{
	if (!model.cur.active)
	{
		strcpy(out, "NULL");
		return;
	}
	sprintf(out, "%d", model.cur.pending.n);
	idlist_add_all(&model.cur.handed, &model.cur.pending);
	model.cur.pending.n = 0;
}

/* emissions_commit() in the model; the expected result goes to out. */
static void
model_bcommit(char *out)
{
	model_flush(out);
	model.cur.active = false;
}

/* emissions_terminate() in the model; the expected result goes to out. */
static void
model_terminate(char *out)
{
	sprintf(out, "%d", model.cur.active ? model.cur.pending.n : 0);
	model.cur.active = false;
	model.cur.pending.n = 0;
}

/*
 * Run sql and describe its outcome in out: the first row's values joined
 * by "|" ("NULL" for a null), a command's tag, or "ERROR " and the
 * SQLSTATE (the message goes to last_error).
 */
static void
run_sql(const char *sql, char *out)
{
	PGresult   *res = PQexec(conn, sql);
	const char *state;

	out[0] = '\0';
	last_error[0] = '\0';
	switch (PQresultStatus(res))
	{
		case PGRES_TUPLES_OK:
			if (PQntuples(res) < 1)
			{
				strcpy(out, "no row");
				break;
			}
			for (int i = 0; i < PQnfields(res); i++)
			{
				size_t		len = strlen(out);

				snprintf(out + len, OUT_MAX - len, "%s%s", i ? "|" : "",
						 PQgetisnull(res, 0, i) ? "NULL" :
						 PQgetvalue(res, 0, i));
			}
			break;
		case PGRES_COMMAND_OK:
			snprintf(out, OUT_MAX, "%s", PQcmdStatus(res));
			break;
		default:
			state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			snprintf(out, OUT_MAX, "ERROR %s", state ? state : "?????");
			snprintf(last_error, sizeof(last_error), "%s",
					 PQerrorMessage(conn));
			last_error[strcspn(last_error, "\n")] = '\0';
			break;
	}
	PQclear(res);
}

/* Remember the first failure of a kind. */
static void
record_failure(Failure *f, const char *sql, const char *expected,
			   const char *got)
{
	if (f->count++ > 0)
		return;
	f->op = op_number;
	snprintf(f->sql, sizeof(f->sql), "%.300s%s", sql,
			 strlen(sql) > 300 ? "..." : "");
	snprintf(f->expected, sizeof(f->expected), "%.100s%s", expected,
			 strlen(expected) > 100 ? "..." : "");
	snprintf(f->got, sizeof(f->got), "%.100s%s%s%.600s", got,
			 strlen(got) > 100 ? "..." : "", last_error[0] ? ": " : "",
			 last_error);
}

/* The transaction status the model expects the server to report. */
static PGTransactionStatusType
model_xact_status(void)
{
	if (!model.in_xact)
		return PQTRANS_IDLE;
	return model.aborted ? PQTRANS_INERROR : PQTRANS_INTRANS;
}

/*
 * Run sql, whose expected outcome (already applied to the model) is
 * expected, and compare; then compare the transaction status.  invalid
 * marks a call with invalid input, whose SQLSTATE is checked on its own.
 * A result the model did not predict stops the run: the model would no
 * longer describe the server.
 */
static void
step(const char *sql, const char *expected, bool invalid)
{
	char		got[OUT_MAX];
	PGTransactionStatusType status;
	static const char *const status_names[] = {
		"idle", "active", "in transaction", "in failed transaction",
		"unknown"
	};

	run_sql(sql, got);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		record_failure(&value_failure, sql, expected, got);
		stopped = true;
		return;
	}
	if (invalid)
	{
		ninvalid++;
		if (strcmp(got, expected) != 0)
			record_failure(&invalid_failure, sql, expected, got);
		if (strncmp(got, "ERROR ", 6) != 0)
		{
			stopped = true;
			return;
		}
	}
	else
	{
		nvalues++;
		if (strcmp(got, expected) != 0)
		{
			record_failure(&value_failure, sql, expected, got);
			stopped = true;
			return;
		}
	}
	status = PQtransactionStatus(conn);
	if (status != model_xact_status())
	{
		char		what[OUT_MAX];

		snprintf(what, sizeof(what), "%s (transaction status)",
				 status_names[model_xact_status()]);
		last_error[0] = '\0';
		record_failure(&value_failure, sql, what,
					   status <= PQTRANS_UNKNOWN ? status_names[status] :
					   "?");
		stopped = true;
	}
}

/*
 * Append to sql the arguments of a valid emissions_emit call for event id,
 * and remember them: a random type (sometimes the longest allowed), a
 * payload carrying the id (large now and then: a few kB), and metadata in
 * one of its forms (omitted, NULL, empty, an object).
 */
static void
emit_args(char *sql, int id)
{
	size_t		len = strlen(sql);
	EventInfo  *ev = &events[id];
	int			meta = rnd(4);
	static const char *const metas[] = {
		"", ", NULL", ", '{}'", ", '" META_OBJECT "'"
	};

	ev->type = rnd(6);
	ev->meta = meta == 3;
	len += snprintf(sql + len, SQL_MAX - len, "'%s', '{\"id\": %d",
					event_types[(int) ev->type], id);
	if (rnd(12) == 0)
	{
		int			pad = 1000 + rnd(5000);

		/* room for the pad and the rest of the statement */
		if (len + pad + 1024 < SQL_MAX)
		{
			len += snprintf(sql + len, SQL_MAX - len, ", \"pad\": \"");
			memset(sql + len, 'p', pad);
			len += pad;
			sql[len++] = '"';
			sql[len] = '\0';
			ev->pad_char = 'p';
			ev->pad_len = pad;
		}
	}
	snprintf(sql + len, SQL_MAX - len, "}'%s", metas[meta]);
}

/* Append text to sql. */
static void
append(char *sql, const char *fmt,...)
{
	size_t		len = strlen(sql);
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(sql + len, SQL_MAX - len, fmt, ap);
	va_end(ap);
}

/* SELECT emissions_emit(valid arguments) for a new id. */
static void
op_emit(char *sql)
{
	int			id = new_id();

	strcpy(sql, "SELECT emissions_emit(");
	emit_args(sql, id);
	append(sql, ")");
	step(sql, model_emit(id), false);
}

/* Many emits in one statement, sometimes with large payloads. */
static void
op_bulk(char *sql)
{
	int			k = 1 + rnd(MAX_BULK);
	int			first = model.next_id;
	bool		pad = rnd(4) == 0;
	char		expected[32];

	for (int i = 0; i < k; i++)
	{
		int			id = new_id();

		events[id].type = TYPE_BULK;
		events[id].pad_char = pad ? 'b' : 0;
		events[id].pad_len = pad ? 1500 : 0;
		(void) model_emit(id);
	}
	sprintf(expected, "%d", model.cur.active ? k : 0);
	sprintf(sql, "SELECT count(*) FILTER (WHERE emissions_emit('fuzz.bulk',"
			" jsonb_build_object('id', g%s))) FROM generate_series(%d, %d)"
			" AS g", pad ? ", 'pad', repeat('b', 1500)" : "",
			first, first + k - 1);
	step(sql, expected, false);
}

/*
 * An emissions_emit call with invalid input: its SQLSTATE is checked, and
 * inside a transaction block the transaction is aborted.
 */
static void
op_invalid(char *sql)
{
	int			id = new_id();
	const char *expected = "ERROR 22023";

	switch (rnd(9))
	{
		case 0:
			sprintf(sql, "SELECT emissions_emit(NULL, '{\"id\": %d}')", id);
			expected = "ERROR 22004";
			break;
		case 1:
			sprintf(sql, "SELECT emissions_emit('', '{\"id\": %d}')", id);
			break;
		case 2:
			sprintf(sql, "SELECT emissions_emit('has space', '{\"id\": %d}')",
					id);
			break;
		case 3:
			sprintf(sql, "SELECT emissions_emit('%s', '{\"id\": %d}')",
					type256, id);
			break;
		case 4:
			sprintf(sql, "SELECT emissions_emit('fuzz.a', '{\"id\": %d}',"
					" '[]')", id);
			break;
		case 5:
			sprintf(sql, "SELECT emissions_emit('fuzz.a', '{\"id\": %d}',"
					" 'null')", id);
			break;
		case 6:
			sprintf(sql, "SELECT emissions_emit('fuzz.a', '{\"id\": %d}',"
					" '\"text\"')", id);
			break;
		case 7:
			sprintf(sql, "SELECT emissions_emit('semi;colon',"
					" '{\"id\": %d}')", id);
			break;
		default:
			sprintf(sql, "SELECT emissions_emit('caf\xc3\xa9',"
					" '{\"id\": %d}')", id);
			break;
	}
	if (model.in_xact)
		model.aborted = true;
	step(sql, expected, true);
}

/* BEGIN: a transaction block starts, with no buffer. */
static void
op_begin(char *sql)
{
	strcpy(sql, "BEGIN");
	model.in_xact = true;
	model.long_xact = rnd(4) == 0;
	step(sql, "BEGIN", false);
}

/*
 * COMMIT: the active buffer is committed implicitly and every event handed
 * off is stored.  In a failed transaction COMMIT rolls back.
 */
static void
op_commit(char *sql)
{
	strcpy(sql, "COMMIT");
	if (model.aborted)
	{
		model_end_xact();
		step(sql, "ROLLBACK", false);
		return;
	}
	model_commit();
	step(sql, "COMMIT", false);
}

/* ROLLBACK: nothing of the transaction is stored. */
static void
op_rollback(char *sql)
{
	strcpy(sql, "ROLLBACK");
	model_end_xact();
	step(sql, "ROLLBACK", false);
}

/*
 * PREPARE TRANSACTION: the buffer is committed into the prepared
 * transaction, whose events wait for COMMIT or ROLLBACK PREPARED.
 */
static void
op_prepare(char *sql)
{
	Prepared   *p = &model.prepared[model.nprepared++];

	snprintf(p->gid, sizeof(p->gid), "fuzz_g%d", ++model.next_gid);
	model_outcome(&p->ids);
	model_end_xact();
	sprintf(sql, "PREPARE TRANSACTION '%s'", p->gid);
	step(sql, "PREPARE TRANSACTION", false);
}

/* COMMIT PREPARED or ROLLBACK PREPARED of a random prepared transaction. */
static void
op_resolve(char *sql)
{
	int			i = rnd(model.nprepared);
	Prepared   *p = &model.prepared[i];
	bool		commit = rnd(3) != 0;
	Prepared	tmp;

	sprintf(sql, "%s PREPARED '%s'", commit ? "COMMIT" : "ROLLBACK",
			p->gid);
	if (commit)
		model_committed(&p->ids);
	/* keep the array dense: swap the last entry into this one's place */
	tmp = *p;
	*p = model.prepared[--model.nprepared];
	model.prepared[model.nprepared] = tmp;
	step(sql, commit ? "COMMIT PREPARED" : "ROLLBACK PREPARED", false);
}

/*
 * SAVEPOINT: remember a full copy of the buffer.  Now and then the name of
 * an open savepoint is used again, which then hides the older one.
 */
static void
op_savepoint(char *sql)
{
	int			reuse = model.nsps > 0 && rnd(5) == 0 ?
		model.sps[rnd(model.nsps)].num : 0;
	Savepoint  *sp = &model.sps[model.nsps++];

	memset(sp, 0, sizeof(Savepoint));
	sp->num = reuse ? reuse : ++model.next_sp;
	bufstate_copy(&sp->state, &model.cur);
	sprintf(sql, "SAVEPOINT s%d", sp->num);
	step(sql, "SAVEPOINT", false);
}

/*
 * A random open savepoint's index; of those sharing its name, the newest,
 * which is the one a name refers to.
 */
static int
random_savepoint(void)
{
	int			i = rnd(model.nsps);

	for (int j = model.nsps - 1; j > i; j--)
		if (model.sps[j].num == model.sps[i].num)
			return j;
	return i;
}

/*
 * ROLLBACK TO SAVEPOINT: the buffer is exactly as it was at the savepoint,
 * which stays; those above it are gone.  It also ends a failed state.
 */
static void
op_rollback_to(char *sql)
{
	int			i = random_savepoint();

	sprintf(sql, "ROLLBACK TO SAVEPOINT s%d", model.sps[i].num);
	bufstate_copy(&model.cur, &model.sps[i].state);
	model_pop_savepoints(i + 1);
	model.aborted = false;
	step(sql, "ROLLBACK", false);
}

/* RELEASE SAVEPOINT: the savepoint and those above go, the buffer stays. */
static void
op_release(char *sql)
{
	int			i = random_savepoint();

	sprintf(sql, "RELEASE SAVEPOINT s%d", model.sps[i].num);
	model_pop_savepoints(i);
	step(sql, "RELEASE", false);
}

/* One buffer API call without arguments, the model predicting its result. */
static void
op_call(char *sql, OpKind kind)
{
	char		expected[OUT_MAX];

	switch (kind)
	{
		case OP_START:
			strcpy(sql, "SELECT emissions_start()");
			strcpy(expected, model_start());
			break;
		case OP_FLUSH:
			strcpy(sql, "SELECT emissions_flush()");
			model_flush(expected);
			break;
		case OP_BCOMMIT:
			strcpy(sql, "SELECT emissions_commit()");
			model_bcommit(expected);
			break;
		case OP_TERMINATE:
			strcpy(sql, "SELECT emissions_terminate()");
			model_terminate(expected);
			break;
		case OP_ACTIVE:
			strcpy(sql, "SELECT emissions_active()");
			strcpy(expected, model.cur.active ? "t" : "f");
			break;
		default:
			strcpy(sql, "SELECT active, pending_events"
				   " FROM emissions_buffer_status()");
			sprintf(expected, "%s|%d", model.cur.active ? "t" : "f",
					model.cur.active ? model.cur.pending.n : 0);
			break;
	}
	step(sql, expected, false);
}

/* Change the spill threshold, so that buffers spill now and then. */
static void
op_set(char *sql)
{
	switch (rnd(4))
	{
		case 0:
		case 1:
			strcpy(sql, "SET emissions.max_buffer_bytes = '8kB'");
			break;
		case 2:
			strcpy(sql, "SET emissions.max_buffer_bytes = '64kB'");
			break;
		default:
			strcpy(sql, "RESET emissions.max_buffer_bytes");
			step(sql, "RESET", false);
			return;
	}
	step(sql, "SET", false);
}

/*
 * Append to sql one to five buffer function calls, for a target list
 * (evaluated left to right), applying each to the model; their expected
 * results, joined by "|", go to expected.
 */
static void
random_calls(char *sql, char *expected)
{
	int			ncalls = 1 + rnd(5);

	expected[0] = '\0';
	for (int i = 0; i < ncalls; i++)
	{
		char		result[OUT_MAX];
		int			call = (i == 0 && rnd(10) < 7) ? 0 : rnd(7);

		if (i > 0)
		{
			append(sql, ", ");
			strcat(expected, "|");
		}
		switch (call)
		{
			case 0:
				append(sql, "emissions_start()");
				strcpy(result, model_start());
				break;
			case 1:
			case 2:
				{
					int			id = new_id();

					append(sql, "emissions_emit(");
					emit_args(sql, id);
					append(sql, ")");
					strcpy(result, model_emit(id));
					break;
				}
			case 3:
				append(sql, "emissions_flush()");
				model_flush(result);
				break;
			case 4:
				append(sql, "emissions_commit()");
				model_bcommit(result);
				break;
			case 5:
				append(sql, "emissions_terminate()");
				model_terminate(result);
				break;
			default:
				append(sql, "emissions_active()");
				strcpy(result, model.cur.active ? "t" : "f");
				break;
		}
		strcat(expected, result);
	}
}

/*
 * A statement calling several buffer functions.  Outside a transaction
 * block it is a transaction of its own, so its buffer is committed when
 * it ends.
 */
static void
op_multi(char *sql)
{
	char		expected[OUT_MAX];
	bool		autocommit = !model.in_xact;

	strcpy(sql, "SELECT ");
	model.in_xact = true;		/* the statement's own transaction */
	random_calls(sql, expected);
	if (autocommit)
		model_commit();
	step(sql, expected, false);
}

/*
 * An error that is not the buffer's, after some buffer calls in the same
 * statement: in a transaction block it aborts the transaction, whatever
 * the calls did (only a rollback, to a savepoint or of all, ends that);
 * alone it takes the statement's buffer with it.
 */
static void
op_error(char *sql)
{
	char		ignored[OUT_MAX];
	bool		autocommit = !model.in_xact;

	strcpy(sql, "SELECT ");
	model.in_xact = true;
	if (autocommit || rnd(2) == 0)
	{
		random_calls(sql, ignored);
		append(sql, ", ");
	}
	append(sql, "emissions_active()::int / 0");
	model.aborted = true;
	if (autocommit)
		model_end_xact();
	step(sql, "ERROR 22012", false);
}

/*
 * A PL/pgSQL block that catches its own error: whatever it did to the
 * buffer (start, emit, flush, commit, terminate) is undone.
 */
static void
op_do_caught(char *sql)
{
	int			a = new_id();
	int			b = new_id();

	sprintf(sql, "DO $$BEGIN PERFORM emissions_start();"
			" PERFORM emissions_emit('fuzz.gone', '{\"id\": %d}');"
			" PERFORM emissions_%s();"
			" PERFORM emissions_emit('fuzz.gone', '{\"id\": %d}');"
			" PERFORM emissions_%s();"
			" PERFORM emissions_active()::int / 0;"
			" EXCEPTION WHEN division_by_zero THEN NULL; END$$",
			a, rnd(2) ? "flush" : "commit", b,
			rnd(2) ? "terminate" : "flush");
	step(sql, "DO", false);
}

/*
 * A PL/pgSQL block with an EXCEPTION clause that does not fire: its
 * subtransaction commits and the parent keeps what it did.
 */
static void
op_do_kept(char *sql)
{
	bool		start = rnd(2);
	int			a = new_id();
	int			b = new_id();
	char		ignored[OUT_MAX];

	sprintf(sql, "DO $$BEGIN %s"
			" PERFORM emissions_emit('fuzz.do', '{\"id\": %d}');"
			" PERFORM emissions_flush();"
			" PERFORM emissions_emit('fuzz.do', '{\"id\": %d}');"
			" EXCEPTION WHEN division_by_zero THEN NULL; END$$",
			start ? "PERFORM emissions_start();" : "", a, b);
	events[a].type = events[b].type = TYPE_DO;
	if (start)
		(void) model_start();
	(void) model_emit(a);
	model_flush(ignored);
	(void) model_emit(b);
	step(sql, "DO", false);
}

/* Any statement but ROLLBACK in a failed transaction is refused. */
static void
op_in_aborted(char *sql)
{
	switch (rnd(3))
	{
		case 0:
			strcpy(sql, "SELECT emissions_active()");
			break;
		case 1:
			strcpy(sql, "SELECT emissions_emit('fuzz.a')");
			break;
		default:
			strcpy(sql, "SELECT emissions_flush()");
			break;
	}
	step(sql, "ERROR 25P02", false);
}

/* Run one operation of the given kind. */
static void
run_op(OpKind kind)
{
	static char sql[SQL_MAX];

	op_number++;
	op_counts[kind]++;
	sql[0] = '\0';
	switch (kind)
	{
		case OP_BEGIN:
			op_begin(sql);
			break;
		case OP_COMMIT:
			op_commit(sql);
			break;
		case OP_ROLLBACK:
			op_rollback(sql);
			break;
		case OP_PREPARE:
			op_prepare(sql);
			break;
		case OP_RESOLVE:
			op_resolve(sql);
			break;
		case OP_SAVEPOINT:
			op_savepoint(sql);
			break;
		case OP_ROLLBACK_TO:
			op_rollback_to(sql);
			break;
		case OP_RELEASE:
			op_release(sql);
			break;
		case OP_EMIT:
			op_emit(sql);
			break;
		case OP_BULK:
			op_bulk(sql);
			break;
		case OP_INVALID:
			op_invalid(sql);
			break;
		case OP_START:
		case OP_FLUSH:
		case OP_BCOMMIT:
		case OP_TERMINATE:
		case OP_ACTIVE:
		case OP_STATUS:
			op_call(sql, kind);
			break;
		case OP_SET:
			op_set(sql);
			break;
		case OP_ERROR:
			op_error(sql);
			break;
		case OP_DO_CAUGHT:
			op_do_caught(sql);
			break;
		case OP_DO_KEPT:
			op_do_kept(sql);
			break;
		case OP_MULTI:
			op_multi(sql);
			break;
		case OP_IN_ABORTED:
			op_in_aborted(sql);
			break;
		case NUM_OPS:
			break;
	}
}

/*
 * Choose the next operation from the model's state; when winding down
 * (before a checkpoint), only those that end transactions.
 */
static OpKind
choose_op(bool winding_down)
{
	int			w[NUM_OPS] = {0};
	bool		sp_room = model.nsps < MAX_SAVEPOINTS;
	bool		prep_room = model.nprepared < MAX_PREPARED;

	if (!model.in_xact)
	{
		w[OP_RESOLVE] = model.nprepared > 0 ? 8 : 0;
		if (!winding_down)
		{
			w[OP_BEGIN] = 30;
			w[OP_MULTI] = 12;
			w[OP_INVALID] = 2;
			w[OP_SET] = 2;
			w[OP_ERROR] = 1;
		}
	}
	else if (model.aborted)
	{
		w[OP_ROLLBACK] = 3;
		w[OP_COMMIT] = 1;
		if (!winding_down)
		{
			w[OP_ROLLBACK_TO] = model.nsps > 0 ? 6 : 0;
			w[OP_IN_ABORTED] = 1;
		}
	}
	else if (winding_down)
	{
		w[OP_COMMIT] = 3;
		w[OP_ROLLBACK] = 1;
		w[OP_PREPARE] = prep_room ? 1 : 0;
	}
	else
	{
		/* a long transaction ends at a fifth of the usual rate */
		bool		may_end = !model.long_xact || rnd(5) == 0;

		w[OP_COMMIT] = may_end ? 5 : 0;
		w[OP_ROLLBACK] = may_end ? 2 : 0;
		w[OP_PREPARE] = may_end && prep_room ? 2 : 0;
		w[OP_SAVEPOINT] = sp_room ? 6 : 0;
		w[OP_ROLLBACK_TO] = model.nsps > 0 ? 4 : 0;
		w[OP_RELEASE] = model.nsps > 0 ? 3 : 0;
		w[OP_START] = model.cur.active ? 3 : 25;
		w[OP_EMIT] = 40;
		w[OP_BULK] = 4;
		w[OP_INVALID] = 3;
		w[OP_FLUSH] = 5;
		w[OP_BCOMMIT] = 3;
		w[OP_TERMINATE] = 3;
		w[OP_ACTIVE] = 2;
		w[OP_STATUS] = 2;
		w[OP_SET] = 1;
		w[OP_ERROR] = 1;
		w[OP_DO_CAUGHT] = 1;
		w[OP_DO_KEPT] = 1;
		w[OP_MULTI] = 3;
	}
	return (OpKind) choose(w, NUM_OPS);
}

/* Whether a checkpoint can run: no transaction, nothing prepared. */
static bool
quiescent(void)
{
	return !model.in_xact && model.nprepared == 0;
}

/* Write up to a dozen ids of list into buf, for a message. */
static void
format_ids(char *buf, size_t size, const int *ids, int n)
{
	size_t		len = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && i < 12 && len < size; i++)
		len += snprintf(buf + len, size - len, "%s%d", i ? "," : "[",
						ids[i]);
	if (len < size)
		snprintf(buf + len, size - len, "%s%s (%d events)",
				 n > 12 ? ",..." : "", n ? "]" : "[]", n);
}

/* Record a checkpoint difference (the first one is shown at the end). */
static void
checkpoint_differs(const char *what, const int *want, int nwant,
				   const int *seen, int nseen)
{
	char		expected[OUT_MAX];
	char		got[OUT_MAX];

	format_ids(expected, sizeof(expected), want, nwant);
	format_ids(got, sizeof(got), seen, nseen);
	snprintf(last_error, sizeof(last_error), "%s", what);
	record_failure(&checkpoint_failure, DELIVERED_SQL, expected, got);
}

/*
 * Whether row of a DELIVERED_SQL result holds event id as it was emitted:
 * its type, its payload and its metadata, byte for byte as jsonb prints
 * them (a spilled event must come back intact).  Records a difference.
 */
static bool
event_intact(const PGresult *res, int row, int id)
{
	const EventInfo *ev = &events[id];
	static char payload[8192];
	int			len;
	const char *want[3];
	const char *field[3] = {"type", "payload", "metadata"};

	len = snprintf(payload, sizeof(payload), "{\"id\": %d", id);
	if (ev->pad_len > 0)
	{
		len += snprintf(payload + len, sizeof(payload) - len,
						", \"pad\": \"");
		memset(payload + len, ev->pad_char, ev->pad_len);
		len += ev->pad_len;
		payload[len++] = '"';
	}
	snprintf(payload + len, sizeof(payload) - len, "}");
	want[0] = event_types[(int) ev->type];
	want[1] = payload;
	want[2] = ev->meta ? META_OBJECT : "{}";

	for (int i = 0; i < 3; i++)
	{
		const char *got = PQgetvalue(res, row, i + 2);

		if (PQgetisnull(res, row, i + 2) || strcmp(got, want[i]) != 0)
		{
			snprintf(last_error, sizeof(last_error),
					 "event %d (txid %s) has another %s (%d bytes, %d"
					 " expected)", id, PQgetvalue(res, row, 0), field[i],
					 (int) strlen(got), (int) strlen(want[i]));
			record_failure(&checkpoint_failure, DELIVERED_SQL, want[i], got);
			return false;
		}
	}
	return true;
}

/*
 * Compare the events delivered since the last checkpoint with the model's
 * committed ones: the rows of each transaction (consecutive ids, one txid)
 * must be exactly the events of one committed transaction of the model, in
 * emit order, each intact, and every such transaction must be there once.
 * Then move the mark past them and empty the model's list, so that each
 * checkpoint is small.
 */
static void
checkpoint(void)
{
	const char *params[1] = {delivered_mark};
	PGresult   *res;
	int			nrows;
	int		   *seen;
	bool	   *matched;
	bool		ok = true;

	res = PQexec(conn, "SELECT emissions_wait_delivered('60s')");
	if (PQresultStatus(res) != PGRES_TUPLES_OK ||
		strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		snprintf(last_error, sizeof(last_error), "%s", PQerrorMessage(conn));
		record_failure(&checkpoint_failure, "emissions_wait_delivered()",
					   "t", PQresultStatus(res) == PGRES_TUPLES_OK ?
					   PQgetvalue(res, 0, 0) : "ERROR");
		PQclear(res);
		stopped = true;
		return;
	}
	PQclear(res);

	res = PQexecParams(conn, DELIVERED_SQL, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(last_error, sizeof(last_error), "%s", PQerrorMessage(conn));
		record_failure(&checkpoint_failure, DELIVERED_SQL, "rows", "ERROR");
		PQclear(res);
		stopped = true;
		return;
	}
	ncheckpoints++;
	nrows = PQntuples(res);
	seen = calloc(nrows + 1, sizeof(int));
	matched = calloc(model.ncommitted + 1, sizeof(bool));
	if (seen == NULL || matched == NULL)
		bail("out of memory");
	for (int t = 0; t < model.ncommitted; t++)
		for (int j = 0; j < model.committed[t].n; j++)
			owner[model.committed[t].ids[j]] = t;

	for (int g = 0; g < nrows && ok;)
	{
		const char *txid = PQgetvalue(res, g, 0);
		int			m = 0;
		int			t;
		char		what[200];

		/* the rows of one transaction: consecutive in id order */
		for (; g + m < nrows && strcmp(PQgetvalue(res, g + m, 0), txid) == 0;
			 m++)
		{
			const char *idtext = PQgetvalue(res, g + m, 1);
			char	   *end;
			long		id = strtol(idtext, &end, 10);

			if (PQgetisnull(res, g + m, 1) || *end != '\0' || id < 0 ||
				id >= model.next_id)
				id = -1;
			seen[m] = (int) id;
		}
		t = seen[0] >= 0 ? owner[seen[0]] : -1;
		if (t < 0)
		{
			snprintf(what, sizeof(what), "transaction %s has an event the"
					 " model did not commit", txid);
			checkpoint_differs(what, NULL, 0, seen, m);
			ok = false;
		}
		else if (matched[t] || m != model.committed[t].n ||
				 memcmp(seen, model.committed[t].ids, m * sizeof(int)) != 0)
		{
			const IdList *want = &model.committed[t];
			int			k = 0;

			while (k < m && k < want->n && seen[k] == want->ids[k])
				k++;
			snprintf(what, sizeof(what), "transaction %s: events differ%s"
					 " from position %d (expected %d, got %d)", txid,
					 matched[t] ? " (seen twice)" : "", k,
					 k < want->n ? want->ids[k] : -1,
					 k < m ? seen[k] : -1);
			checkpoint_differs(what, model.committed[t].ids,
							   model.committed[t].n, seen, m);
			ok = false;
		}
		else
		{
			matched[t] = true;
			for (int j = 0; j < m && ok; j++)
				ok = event_intact(res, g + j, seen[j]);
		}
		g += m;
	}
	for (int t = 0; t < model.ncommitted && ok; t++)
	{
		if (!matched[t])
		{
			checkpoint_differs("a committed transaction's events are"
							   " missing", model.committed[t].ids,
							   model.committed[t].n, NULL, 0);
			ok = false;
		}
	}
	nevents_checked += nrows;
	if (nrows > 0)
		snprintf(delivered_mark, sizeof(delivered_mark), "%s",
				 PQgetvalue(res, nrows - 1, 5));
	PQclear(res);
	free(seen);
	free(matched);

	for (int t = 0; t < model.ncommitted; t++)
	{
		for (int j = 0; j < model.committed[t].n; j++)
			owner[model.committed[t].ids[j]] = -1;
		idlist_free(&model.committed[t]);
	}
	model.ncommitted = 0;
}

/*
 * Roll back the prepared transactions left in the test database, by a run
 * that stopped or a previous one interrupted: they would keep it from being
 * dropped.
 */
static void
clear_leftovers(PGconn *admin)
{
	PGresult   *res;
	PGconn	   *c;

	res = PQexec(admin, "SELECT gid FROM pg_prepared_xacts"
				 " WHERE database = '" TEST_DB "'");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
	{
		c = connect_to(TEST_DB, count_notice);
		for (int i = 0; i < PQntuples(res); i++)
		{
			char	   *gid = PQescapeLiteral(c, PQgetvalue(res, i, 0),
											  strlen(PQgetvalue(res, i, 0)));
			char		sql[256];

			snprintf(sql, sizeof(sql), "ROLLBACK PREPARED %s", gid);
			PQfreemem(gid);
			run(c, sql);
		}
		PQfinish(c);
	}
	PQclear(res);
}

/* Report the first failure of a kind as TAP comments. */
static void
show_failure(const Failure *f)
{
	if (f->count == 0)
		return;
	printf("#   %d mismatch%s; the first, at operation %ld:\n", f->count,
		   f->count > 1 ? "es" : "", f->op);
	printf("#   sql: %s\n#   expected: %s\n#   got: %s\n", f->sql,
		   f->expected, f->got);
}

int
main(void)
{
	PGconn	   *admin;
	PGresult   *res;
	unsigned long long seed = env_number("FUZZ_SEED", DEFAULT_SEED);
	long		nops = (long) env_number("FUZZ_OPS", DEFAULT_OPS);
	int			pid;
	bool		alive;
	struct timespec t0;
	struct timespec t1;
	char		line[1024];
	size_t		len = 0;

	printf("# seed %llu, %ld operations\n", seed, nops);
	rng_state = seed;
	memset(type255, 'y', 255);
	memset(type256, 'z', 256);

	/* A database of our own. */
	admin = connect_to(NULL, count_notice);
	run(admin, "SET client_min_messages = warning");
	clear_leftovers(admin);
	run(admin, "DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
	run(admin, "CREATE DATABASE " TEST_DB);
	conn = connect_to(TEST_DB, count_notice);
	run(conn, "CREATE EXTENSION emissions");
	run(conn, "SET emissions.log_dropped = off");
	pid = PQbackendPID(conn);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 1; i <= nops && !stopped; i++)
	{
		bool		want = (i % CHECKPOINT_EVERY) == 0;

		/* wind down to a state where committed events can be compared */
		while (want && !quiescent() && !stopped)
			run_op(choose_op(true));
		if (want && !stopped)
			checkpoint();
		if (!stopped)
			run_op(choose_op(false));
	}
	while (!quiescent() && !stopped)
		run_op(choose_op(true));
	if (!stopped)
		checkpoint();
	clock_gettime(CLOCK_MONOTONIC, &t1);

	if (stopped)
	{
		printf("# stopped at operation %ld\n", op_number);
		/* let the database go: end the transaction and prepared ones */
		if (PQstatus(conn) == CONNECTION_OK &&
			PQtransactionStatus(conn) != PQTRANS_IDLE)
			PQclear(PQexec(conn, "ROLLBACK"));
		clear_leftovers(admin);
	}

	printf("# %ld operations in %.1f s:", op_number,
		   (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (int k = 0; k < NUM_OPS; k++)
	{
		len += snprintf(line + len, sizeof(line) - len, "%s %s %ld",
						k ? "," : "", op_names[k], op_counts[k]);
	}
	printf("%s\n", line);
	if (nnotices > 0)
		printf("# %ld server notices\n", nnotices);
	res = PQexec(conn, "SELECT buffers_spilled, bytes_spilled,"
				 " events_emitted, events_dropped FROM emissions_stats");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		printf("# buffers spilled %s (%s bytes), events emitted %s,"
			   " dropped %s\n", PQgetvalue(res, 0, 0),
			   PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
			   PQgetvalue(res, 0, 3));
	PQclear(res);

	report(value_failure.count == 0,
		   "all %ld return values and transaction states matched the model",
		   nvalues);
	show_failure(&value_failure);
	report(invalid_failure.count == 0,
		   "every one of %ld invalid inputs got its SQLSTATE", ninvalid);
	show_failure(&invalid_failure);
	report(checkpoint_failure.count == 0 && ncheckpoints > 0,
		   "committed events matched the model at all %ld checkpoints"
		   " (%ld events)", ncheckpoints, nevents_checked);
	show_failure(&checkpoint_failure);

	res = PQexec(conn, "SELECT pg_backend_pid()");
	alive = PQstatus(conn) == CONNECTION_OK &&
		PQresultStatus(res) == PGRES_TUPLES_OK &&
		atoi(PQgetvalue(res, 0, 0)) == pid;
	PQclear(res);
	report(alive, "no operation crashed the backend");
	if (!alive)
		printf("#   %s", PQerrorMessage(conn));

	/* Clean up; the extension must not keep the database busy. */
	PQfinish(conn);
	res = PQexec(admin, "DROP DATABASE " TEST_DB);
	report(PQresultStatus(res) == PGRES_COMMAND_OK,
		   "the test database is dropped");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		printf("#   %s", PQerrorMessage(admin));
	PQclear(res);
	PQfinish(admin);

	printf("1..%d\n", nchecks);
	return nfailed > 0 ? 1 : 0;
}
