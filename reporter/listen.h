/*
 * listen: the thread that keeps the tally cache fresh. It owns one
 * PostgreSQL connection, LISTENs on tally_changed and, for each notified
 * poll, re-reads that poll's rows of the tallies table (O(options); the
 * votes table is never read). A full reload of every poll runs at start,
 * after each reconnect and every safety_poll_ms, so a change made without
 * NOTIFY (or a notification lost with a connection) shows up anyway.
 *
 * The tallies table belongs to the processor, which creates it; until it
 * exists every poll reads as zero votes and the listener is not ready.
 */
#ifndef TALLY_REPORTER_LISTEN_H
#define TALLY_REPORTER_LISTEN_H

#include <stdbool.h>

#include "polls.h"
#include "reporter.h"
#include "sse.h"
#include "tallies.h"

struct listener_config {
	const char *conninfo;     /* libpq string; NULL or "": PG* variables */
	long safety_poll_ms;
	long max_backoff_ms;      /* reconnect backoff cap */
};

struct listener;

/* Everything is borrowed and must outlive the listener (cfg's strings
 * too). Returns NULL when out of memory. */
struct listener *listener_new(const struct listener_config *cfg,
    const struct polls *polls, struct tallies *t, struct sse_hub *hub,
    struct reporter_metrics *m) __attribute__((warn_unused_result));

/* Starts the thread. Returns 0, or -1 and logs why. */
int listener_start(struct listener *l) __attribute__((warn_unused_result));

/* True while connected to PostgreSQL and the tallies table was readable at
 * the last query. */
bool listener_ready(struct listener *l);
/* Why not ready, for /readyz: "ok", "postgres unreachable" or
 * "tallies table missing". */
const char *listener_state(struct listener *l);

/* Stops and joins the thread (within about 200 ms, or the connect timeout
 * if it is connecting), then frees. Accepts NULL. */
void listener_free(struct listener *l);

#endif
