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
 * Applies n casts (any order, repeats allowed) in one transaction. Returns
 * 0, or -1 after logging why; nothing of the batch is then committed and
 * the connection is dropped if it broke (store_connect mends it).
 */
int store_apply(struct store *s, const struct store_cast *casts, size_t n,
    struct store_result *res) __attribute__((warn_unused_result));

/*
 * store_apply until it succeeds: on failure, calls waiting(arg) (if not
 * NULL; e.g. to tell NATS the batch is still in progress), backs off with
 * jitter, reconnects as needed and tries again. Never gives up on its own:
 * returns -1 only when a stop is requested before the batch could commit.
 */
int store_apply_retry(struct store *s, const struct store_cast *casts,
    size_t n, struct store_result *res, long max_backoff_ms,
    void (*waiting)(void *), void *arg) __attribute__((warn_unused_result));

/* Empties votes and tallies (a full rebuild follows). Returns 0 or -1. */
int store_reset(struct store *s) __attribute__((warn_unused_result));

#endif
