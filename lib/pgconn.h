/*
 * pgconn: PostgreSQL connections as tally opens them. A connection belongs
 * to one thread. Settings come from DATABASE_URL, or from libpq's own PG*
 * variables (PGHOST, PGPASSWORD, PGSSLMODE, ...) when it is empty; libpq
 * reads those itself, so passwords never pass through tally's config.
 */
#ifndef TALLY_PGCONN_H
#define TALLY_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>

/*
 * Connects once. conninfo may be NULL or empty (libpq's defaults and PG*
 * variables). Returns the connection, or NULL and logs libpq's reason (which
 * never contains the password).
 */
PGconn *pgconn_open(const char *conninfo, const char *application_name)
    __attribute__((warn_unused_result));

/*
 * Connects, retrying with exponential backoff and jitter (100 ms doubling to
 * max_backoff_ms) until it succeeds or a stop is requested (sig.h), then
 * returns NULL.
 */
PGconn *pgconn_open_retry(const char *conninfo, const char *application_name,
    long max_backoff_ms) __attribute__((warn_unused_result));

/* Closes; accepts NULL. */
void pgconn_close(PGconn *pg);

/* Runs sql that returns no rows. Returns 0, or -1 and logs the error with
 * what (a short description of the statement). */
int pgconn_exec(PGconn *pg, const char *sql, const char *what)
    __attribute__((warn_unused_result));

/* True if the connection is lost (a reconnect is needed). */
bool pgconn_broken(PGconn *pg);

/* A random duration in [ms/2, ms], for backoff with jitter. */
long pgconn_jitter_ms(long ms);

#endif
