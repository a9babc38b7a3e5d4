/*
 * store.c - one statement per batch: upsert by sequence, tally deltas,
 * notify.
 */
#define _POSIX_C_SOURCE 200809L
#include "store.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "buf.h"
#include "log.h"
#include "pgconn.h"
#include "schema.h"
#include "sig.h"

#define STORE_STATEMENT "tally_apply"

/*
 * The batch arrives as five parallel arrays holding one cast per (poll,
 * voter), the highest seq, sorted by (poll, voter) (batch_latest): ON
 * CONFLICT may touch a row only once per statement, and a fixed lock order
 * keeps concurrent batches from deadlocking (when they do, the batch is
 * retried). In DO UPDATE, v.* is the latest committed version of the row,
 * read after its row lock, so prev_option = v.option is exact even while
 * other processors commit on the same rows; an insert returns prev_option
 * NULL. Tally deltas are +1 for the new option and -1 for the old one.
 * $6 is the creation time of the stream the batch was fetched from: the
 * batch writes only if vote_stream still records that stream, and its row
 * lock (FOR SHARE, taken before any vote row, as in store_stream_use)
 * holds a switch to a recreated stream off until COMMIT, while a batch
 * that comes after the switch finds no row and writes nothing. The third
 * column says which happened. 0 checks nothing (benchmarks only).
 */
static const char store_sql[] =
    "WITH cur AS ("
    " SELECT 1 FROM vote_stream WHERE created_ns = $6 FOR SHARE"
    "), up AS ("
    " INSERT INTO votes AS v (poll, voter, option, seq, prev_option,"
    "  cast_at)"
    " SELECT poll, voter, option, seq, NULL,"
    "  CASE WHEN cast_ms > 0 THEN to_timestamp(cast_ms::float8 / 1000) END"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],"
    "  $5::bigint[]) AS t(poll, voter, option, seq, cast_ms)"
    " WHERE $6 = 0 OR EXISTS (SELECT 1 FROM cur)"
    " ON CONFLICT (poll, voter) DO UPDATE SET prev_option = v.option,"
    "  option = EXCLUDED.option, seq = EXCLUDED.seq,"
    "  cast_at = EXCLUDED.cast_at, updated_at = now()"
    " WHERE v.seq < EXCLUDED.seq"
    " RETURNING v.poll, v.option, v.prev_option"
    "), delta AS ("
    " SELECT poll, option, sum(d) AS d FROM ("
    "  SELECT poll, option, 1 AS d FROM up"
    "  UNION ALL"
    "  SELECT poll, prev_option, -1 FROM up WHERE prev_option IS NOT NULL"
    " ) x GROUP BY poll, option HAVING sum(d) <> 0"
    "), tal AS ("
    " INSERT INTO tallies AS t (poll, option, votes)"
    " SELECT poll, option, d FROM delta ORDER BY poll, option"
    " ON CONFLICT (poll, option) DO UPDATE SET votes = t.votes +"
    "  EXCLUDED.votes"
    " RETURNING t.poll"
    ")"
    " SELECT (SELECT count(*) FROM up),"
    "  (SELECT count(*) FROM (SELECT pg_notify('tally_changed', poll)"
    "   FROM (SELECT DISTINCT poll FROM tal) p) n),"
    "  $6 = 0 OR EXISTS (SELECT 1 FROM cur)";

/* Type oids of the binary array parameters (pg_type.h). */
#define STORE_OID_TEXT 25
#define STORE_OID_INT8 20
#define STORE_OID_TEXT_ARRAY 1009
#define STORE_OID_INT8_ARRAY 1016

/* Serialises store_stream_use across processors and tallyctl ("tallys"). */
#define STORE_STREAM_LOCK_KEY 0x74616c6c7973LL

struct store {
	char *conninfo;
	char *application_name;
	metrics_counter *pg_errors; /* borrowed, may be NULL */
	PGconn *pg;
	struct buf arr[5]; /* the array parameters, reused between batches */
	int64_t stream_ns; /* store_set_stream; 0: no check */
	const struct store_cast **latest; /* batch_latest's output */
	size_t latest_cap;
};

struct store *
store_new(const char *conninfo, const char *application_name,
    metrics_counter *pg_errors)
{
	struct store *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->conninfo = strdup(conninfo != NULL ? conninfo : "");
	s->application_name = strdup(application_name);
	s->pg_errors = pg_errors;
	for (size_t i = 0; i < 5; i++)
		buf_init(&s->arr[i]);
	if (s->conninfo == NULL || s->application_name == NULL) {
		store_free(s);
		return NULL;
	}
	return s;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	pgconn_close(s->pg);
	for (size_t i = 0; i < 5; i++)
		buf_fini(&s->arr[i]);
	free(s->latest);
	free(s->conninfo);
	free(s->application_name);
	free(s);
}

static void
store_error(struct store *s)
{
	if (s->pg_errors != NULL)
		metrics_inc(s->pg_errors);
}

/* Drops a broken connection so that store_connect makes a new one. */
static void
store_check_broken(struct store *s)
{
	if (s->pg != NULL && pgconn_broken(s->pg)) {
		log_warn("postgres: connection lost; will reconnect");
		pgconn_close(s->pg);
		s->pg = NULL;
	}
}

static const Oid store_types[6] = {STORE_OID_TEXT_ARRAY,
    STORE_OID_TEXT_ARRAY, STORE_OID_TEXT_ARRAY, STORE_OID_INT8_ARRAY,
    STORE_OID_INT8_ARRAY, STORE_OID_INT8};

/* One attempt: connect, migrate, prepare. Returns 0, or -1 (logged). */
static int
store_open(struct store *s, PGconn *pg)
{
	PGresult *res = NULL;

	if (pg == NULL)
		return -1;
	s->pg = pg;
	if (schema_migrate(s->pg) < 0)
		goto fail;
	res = PQprepare(s->pg, STORE_STATEMENT, store_sql, 6, store_types);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_warn("postgres: prepare: %s", PQerrorMessage(s->pg));
		goto fail;
	}
	PQclear(res);
	log_info("postgres: connected; schema at version %d",
	    schema_latest_version());
	return 0;
fail:
	PQclear(res);
	store_error(s);
	pgconn_close(s->pg);
	s->pg = NULL;
	return -1;
}

int
store_connect(struct store *s, long max_backoff_ms)
{
	long backoff_ms = 100;

	while (s->pg == NULL) {
		PGconn *pg = pgconn_open_retry(s->conninfo,
		    s->application_name, max_backoff_ms);

		if (pg == NULL)
			return -1; /* stop requested */
		if (store_open(s, pg) == 0)
			return 0;
		if (sig_sleep_ms(pgconn_jitter_ms(backoff_ms)))
			return -1;
		backoff_ms = backoff_ms * 2 < max_backoff_ms ? backoff_ms * 2 :
		    max_backoff_ms;
	}
	return 0;
}

int
store_ping(struct store *s)
{
	PGresult *r;
	int rc;

	if (s->pg == NULL) {
		PGconn *pg = pgconn_open(s->conninfo, s->application_name);

		if (pg == NULL) {
			store_error(s);
			return -1;
		}
		return store_open(s, pg);
	}
	r = PQexec(s->pg, "SELECT 1");
	rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
	PQclear(r);
	if (rc != 0) {
		store_error(s);
		store_check_broken(s);
	}
	return rc;
}

bool
store_connected(const struct store *s)
{
	return s->pg != NULL && !pgconn_broken(s->pg);
}

static void
store_put_u32(struct buf *b, uint32_t v)
{
	uint32_t be = htonl(v);

	buf_append(b, &be, 4);
}

/* Starts a one-dimensional binary array of n elements of type oid (the
 * wire format of array_send): no text parsing on the server. */
static void
store_array_begin(struct buf *b, Oid oid, size_t n)
{
	b->len = 0;
	b->failed = 0;
	store_put_u32(b, 1);           /* dimensions */
	store_put_u32(b, 0);           /* no NULL elements */
	store_put_u32(b, oid);         /* element type */
	store_put_u32(b, (uint32_t)n); /* length */
	store_put_u32(b, 1);           /* lower bound */
}

static void
store_array_text(struct buf *b, const char *s)
{
	size_t len = strlen(s);

	store_put_u32(b, (uint32_t)len);
	buf_append(b, s, len);
}

static void
store_array_int8(struct buf *b, int64_t v)
{
	uint64_t u = (uint64_t)v;

	store_put_u32(b, 8);
	store_put_u32(b, (uint32_t)(u >> 32));
	store_put_u32(b, (uint32_t)u);
}

int
store_apply(struct store *s, const struct store_cast *casts, size_t n,
    struct store_result *res)
{
	static const int formats[6] = {1, 1, 1, 1, 1, 1};
	const char *params[6];
	int lengths[6];
	uint32_t stream_be[2];
	PGresult *r;
	size_t m;
	int rc = STORE_FAILED;

	memset(res, 0, sizeof(*res));
	if (n == 0)
		return 0;
	if (s->pg == NULL)
		return -1;
	if (n > s->latest_cap) {
		const struct store_cast **p = realloc(s->latest,
		    n * sizeof(*p));

		if (p == NULL) {
			log_error("store: out of memory for a batch of %zu", n);
			return -1;
		}
		s->latest = p;
		s->latest_cap = n;
	}
	m = batch_latest(casts, n, s->latest);
	store_array_begin(&s->arr[0], STORE_OID_TEXT, m);
	store_array_begin(&s->arr[1], STORE_OID_TEXT, m);
	store_array_begin(&s->arr[2], STORE_OID_TEXT, m);
	store_array_begin(&s->arr[3], STORE_OID_INT8, m);
	store_array_begin(&s->arr[4], STORE_OID_INT8, m);
	for (size_t i = 0; i < m; i++) {
		const struct store_cast *c = s->latest[i];

		store_array_text(&s->arr[0], c->vote.poll);
		store_array_text(&s->arr[1], c->vote.voter);
		store_array_text(&s->arr[2], c->vote.option);
		store_array_int8(&s->arr[3], (int64_t)c->seq);
		store_array_int8(&s->arr[4], c->vote.cast_unix_ms);
	}
	for (size_t i = 0; i < 5; i++) {
		if (s->arr[i].failed) {
			log_error("store: out of memory building a batch");
			return -1;
		}
		params[i] = s->arr[i].data;
		lengths[i] = (int)s->arr[i].len;
	}
	stream_be[0] = htonl((uint32_t)((uint64_t)s->stream_ns >> 32));
	stream_be[1] = htonl((uint32_t)(uint64_t)s->stream_ns);
	params[5] = (const char *)stream_be;
	lengths[5] = 8;
	r = PQexecPrepared(s->pg, STORE_STATEMENT, 6, params, lengths, formats,
	    0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		res->rows_changed = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
		res->polls_changed = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
		rc = PQgetvalue(r, 0, 2)[0] == 't' ? STORE_OK : STORE_STALE;
	} else {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		/* 40001/40P01: concurrent batches met; retrying is the fix. */
		log_warn("postgres: apply batch of %zu (sqlstate %s): %s", n,
		    state != NULL ? state : "none", PQerrorMessage(s->pg));
		store_error(s);
		store_check_broken(s);
	}
	PQclear(r);
	return rc;
}

int
store_apply_retry(struct store *s, const struct store_cast *casts, size_t n,
    struct store_result *res, long max_backoff_ms, void (*waiting)(void *),
    void *arg)
{
	long backoff_ms = 50;

	for (;;) {
		int rc;

		/* One connection attempt per round (store_ping opens one when
		 * there is none), so that waiting runs however long
		 * PostgreSQL stays away: it holds the batch's messages off
		 * redelivery (InProgress) past AckWait. */
		if ((s->pg != NULL || store_ping(s) == 0) &&
		    (rc = store_apply(s, casts, n, res)) != STORE_FAILED)
			return rc;
		if (waiting != NULL)
			waiting(arg);
		if (sig_sleep_ms(pgconn_jitter_ms(backoff_ms)))
			return STORE_FAILED;
		backoff_ms = backoff_ms * 2 < max_backoff_ms ? backoff_ms * 2 :
		    max_backoff_ms;
	}
}

void
store_set_stream(struct store *s, int64_t created_ns)
{
	s->stream_ns = created_ns;
}

/* Runs sql with text parameters (may be NULL) and returns its result, or
 * NULL after logging what failed (the result is cleared). */
static PGresult *
store_query(struct store *s, const char *sql, int nparams,
    const char *const *params, ExecStatusType want, const char *what)
{
	PGresult *r = PQexecParams(s->pg, sql, nparams, NULL, params, NULL,
	    NULL, 0);

	if (PQresultStatus(r) != want) {
		log_warn("postgres: %s: %s", what, PQerrorMessage(s->pg));
		PQclear(r);
		store_error(s);
		return NULL;
	}
	return r;
}

enum store_stream
store_stream_use(struct store *s, int64_t created_ns,
    int (*current)(void *, int64_t *), void *arg)
{
	char created[24], lock[80];
	const char *params[1] = {created};
	enum store_stream rc = STORE_STREAM_FAILED;
	PGresult *r = NULL;
	int64_t recorded = 0, now_ns = 0;
	bool found;

	if (s->pg == NULL)
		return STORE_STREAM_FAILED;
	snprintf(created, sizeof(created), "%" PRId64, created_ns);
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)",
	    (long long)STORE_STREAM_LOCK_KEY);
	if (pgconn_exec(s->pg, "BEGIN", "begin stream check") != 0)
		goto fail;
	/* Every processor binding, and tallyctl replay, queue here: the
	 * first to see a new stream switches, the others find it done. */
	if (pgconn_exec(s->pg, lock, "take the stream lock") != 0)
		goto fail;
	if ((r = store_query(s, "SELECT created_ns FROM vote_stream", 0, NULL,
	    PGRES_TUPLES_OK, "read vote_stream")) == NULL)
		goto fail;
	if ((found = PQntuples(r) == 1))
		recorded = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	r = NULL;
	if (found && recorded == created_ns) {
		rc = STORE_STREAM_SAME;
	} else if (!found) {
		/* A new database, or one from before migration 2: its rows
		 * are taken to come from this stream. */
		if ((r = store_query(s, "INSERT INTO vote_stream (created_ns) "
		    "VALUES ($1)", 1, params, PGRES_COMMAND_OK,
		    "record the stream")) == NULL)
			goto fail;
		rc = STORE_STREAM_RECORDED;
	} else {
		/* Only the stream that exists now may take over (never one
		 * seen before it was deleted): asked while holding the lock,
		 * so no other binding can record a newer one meanwhile. */
		if (current(arg, &now_ns) != 0 || now_ns != created_ns) {
			rc = STORE_STREAM_GONE;
			goto rollback;
		}
		/* The row lock first, as batches take it: in-flight batches
		 * of the old stream commit before, later ones find no row. */
		if ((r = store_query(s, "UPDATE vote_stream SET created_ns = $1,"
		    " recorded_at = now()", 1, params, PGRES_COMMAND_OK,
		    "record the recreated stream")) == NULL)
			goto fail;
		PQclear(r);
		/* Every stored cast predates the new stream: any of its casts
		 * (sequence 1 on) is newer. */
		if ((r = store_query(s, "UPDATE votes SET seq = 0 WHERE seq <> 0",
		    0, NULL, PGRES_COMMAND_OK, "reset sequences")) == NULL)
			goto fail;
		log_warn("stream %s was recreated (created %" PRId64 ", was %"
		    PRId64 "): %s stored votes now rank before all of its "
		    "casts (seq set to 0)", "VOTES", created_ns, recorded,
		    PQcmdTuples(r));
		rc = STORE_STREAM_SWITCHED;
	}
	PQclear(r);
	r = NULL;
	if (pgconn_exec(s->pg, "COMMIT", "commit stream check") != 0)
		goto fail;
	return rc;
rollback:
	if (pgconn_exec(s->pg, "ROLLBACK", "roll back stream check") != 0)
		goto fail;
	return rc;
fail:
	PQclear(r);
	if (!pgconn_broken(s->pg) &&
	    pgconn_exec(s->pg, "ROLLBACK", "roll back stream check") != 0)
		log_warn("postgres: rollback failed");
	store_check_broken(s);
	return STORE_STREAM_FAILED;
}

int
store_reset(struct store *s)
{
	char created[24], lock[80];
	const char *params[1] = {created};
	PGresult *r;

	if (s->pg == NULL)
		return -1;
	if (s->stream_ns == 0)
		return pgconn_exec(s->pg, "TRUNCATE votes, tallies",
		    "reset votes and tallies");
	snprintf(created, sizeof(created), "%" PRId64, s->stream_ns);
	if (pgconn_exec(s->pg, "BEGIN", "begin reset") != 0)
		return -1;
	/* The same lock as store_stream_use: no switch in between. */
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)",
	    (long long)STORE_STREAM_LOCK_KEY);
	if (pgconn_exec(s->pg, lock, "take the stream lock") != 0)
		goto fail;
	r = store_query(s, "INSERT INTO vote_stream (created_ns) VALUES ($1) "
	    "ON CONFLICT (id) DO UPDATE SET created_ns = EXCLUDED.created_ns, "
	    "recorded_at = now()", 1, params, PGRES_COMMAND_OK,
	    "record the stream");
	if (r == NULL)
		goto fail;
	PQclear(r);
	if (pgconn_exec(s->pg, "TRUNCATE votes, tallies",
	    "reset votes and tallies") != 0 ||
	    pgconn_exec(s->pg, "COMMIT", "commit reset") != 0)
		goto fail;
	return 0;
fail:
	if (!pgconn_broken(s->pg) &&
	    pgconn_exec(s->pg, "ROLLBACK", "roll back reset") != 0)
		log_warn("postgres: rollback failed");
	store_check_broken(s);
	return -1;
}
