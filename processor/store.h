/*
 * store: applies batches of votes to PostgreSQL with an exactly-once effect.
 *
 * A batch is one statement, hence one transaction: within it the highest
 * stream sequence per (poll, voter) wins; a row is replaced only by a
 * higher sequence; tallies move by exact deltas; and pg_notify queues one
 * 'tally_changed' per poll whose tally moved, which PostgreSQL delivers at
 * COMMIT. Applying the same batch twice, in any order or concurrently with
 * other batches, leaves the same rows: that is what makes redelivery,
 * replay and several processors harmless.
 *
 * A recreated stream VOTES numbers its casts from 1 again, so sequences
 * order casts only within one stream: vote_stream records which stream
 * the stored sequences come from (its creation time), store_stream_use
 * moves the database to a recreated stream (every stored row then ranks
 * before all of its casts), and each batch names the stream it was
 * fetched from (store_set_stream) and writes nothing if that stream is
 * no longer the recorded one.
 *
 * A store owns one connection and belongs to one thread.
 */
#ifndef TALLY_PROCESSOR_STORE_H
#define TALLY_PROCESSOR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "vote.h"

/* One vote and the stream sequence that carried it. */
struct store_cast {
	struct vote vote;
	uint64_t seq;
};

struct store_result {
	uint64_t rows_changed;  /* votes rows inserted or replaced */
	uint64_t polls_changed; /* polls notified */
};

struct store;

/* store_apply's results. */
enum {
	STORE_FAILED = -1, /* not committed (logged); retry */
	STORE_OK = 0,      /* committed */
	STORE_STALE = 1,   /* committed nothing: the batch's stream is no
	                    * longer the recorded one (it was recreated) */
};

/* store_stream_use's results. */
enum store_stream {
	STORE_STREAM_FAILED,   /* PostgreSQL error (logged) */
	STORE_STREAM_SAME,     /* already the recorded stream */
	STORE_STREAM_RECORDED, /* none was recorded; now this one */
	STORE_STREAM_SWITCHED, /* another was recorded: this one replaced it,
	                        * and every stored row's seq is now 0 */
	STORE_STREAM_GONE,     /* another was recorded and this one is no
	                        * longer the stream that exists: look again */
};

/*
 * Makes a store (no connection yet). conninfo (may be NULL: libpq's PG*
 * variables) and application_name are copied. pg_errors, if not NULL, is
 * incremented on every failed statement or connection loss; it is borrowed.
 */
struct store *store_new(const char *conninfo, const char *application_name,
    metrics_counter *pg_errors) __attribute__((warn_unused_result));
void store_free(struct store *s);

/*
 * Connects if not connected, retrying with backoff and jitter (up to
 * max_backoff_ms) until it works or a stop is requested; then applies the
 * schema migrations and prepares the statement. Returns 0, or -1 when a
 * stop was requested first.
 */
int store_connect(struct store *s, long max_backoff_ms)
    __attribute__((warn_unused_result));

/*
 * Checks the connection with a trivial query, or makes one attempt to
 * connect if there is none (no waiting). Returns 0 if PostgreSQL answers,
 * else -1 (a broken connection is dropped for the next attempt).
 */
int store_ping(struct store *s) __attribute__((warn_unused_result));

/* True while the connection is usable (for /readyz). */
bool store_connected(const struct store *s);

/*
 * Names the stream (its jsStreamInfo.Created, ns) that the casts of the
 * next store_apply calls were fetched from. 0, the initial value, checks
 * nothing: for benchmarks on a database no processor uses.
 */
void store_set_stream(struct store *s, int64_t created_ns);

/*
 * Makes the stream created at created_ns the one the database's votes
 * come from, under a lock shared by every processor and tallyctl: nothing
 * to do if it is recorded already; recorded if none is (a new or upgraded
 * database: its rows are taken to be this stream's); if another is,
 * current(arg, &now_ns) is asked (lock held) for the Created of the stream
 * that exists now, and only if it is created_ns does this one replace the
 * other, in one transaction that sets seq = 0 on every stored vote (all
 * of them predate it) and logs a warning with the count. Call it before
 * consuming from the stream, so that no batch of it can come before it is
 * recorded. Needs a connection (store_connect or store_ping first).
 */
enum store_stream store_stream_use(struct store *s, int64_t created_ns,
    int (*current)(void *arg, int64_t *now_ns), void *arg)
    __attribute__((warn_unused_result));

/*
 * Applies n casts (any order, repeats allowed) in one transaction, if the
 * stream set by store_set_stream is still the recorded one. Returns
 * STORE_OK; STORE_STALE when it is not (nothing written: the stream was
 * recreated since the casts were fetched); or STORE_FAILED after logging
 * why: nothing of the batch is then committed and the connection is
 * dropped if it broke (store_connect mends it).
 */
int store_apply(struct store *s, const struct store_cast *casts, size_t n,
    struct store_result *res) __attribute__((warn_unused_result));

/*
 * store_apply until it succeeds or finds the batch stale: on failure,
 * calls waiting(arg) (if not NULL; e.g. to tell NATS the batch is still in
 * progress), backs off with jitter, reconnects as needed and tries again.
 * Never gives up on its own: returns STORE_OK, STORE_STALE, or
 * STORE_FAILED only when a stop is requested before the batch could
 * commit.
 */
int store_apply_retry(struct store *s, const struct store_cast *casts,
    size_t n, struct store_result *res, long max_backoff_ms,
    void (*waiting)(void *), void *arg) __attribute__((warn_unused_result));

/*
 * Empties votes and tallies (a full rebuild follows) and, unless no
 * stream was set (store_set_stream), records that stream as the one the
 * votes come from, whatever was recorded: one transaction. Returns 0 or
 * -1.
 */
int store_reset(struct store *s) __attribute__((warn_unused_result));

#endif
