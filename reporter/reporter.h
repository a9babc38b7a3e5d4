/*
 * reporter: the daemon's configuration, counters and context, shared by its
 * modules. One struct reporter per process, built by main.c and passed
 * explicitly; no module keeps a global.
 */
#ifndef TALLY_REPORTER_H
#define TALLY_REPORTER_H

#include <stdatomic.h>
#include <stddef.h>

#include "config.h"
#include "metrics.h"

struct reporter_config {
	char *bind_addr;
	long bind_port;
	char *log_level;
	char *database_url;      /* secret: a URL may carry a password */
	char *polls_file;
	char *option_a;
	char *option_b;
	long safety_poll_ms;     /* full reload of every tally, even without NOTIFY */
	long sse_heartbeat_ms;   /* ": ping" comment to every SSE client */
	long sse_min_interval_ms;/* per poll: at most one update per interval */
	long http_threads;
	long http_max_connections;
	long http_timeout_s;
	long http_connection_bytes; /* MHD's memory pool per connection */
	long pg_max_backoff_ms;
	long shutdown_grace_ms;  /* how long SIGTERM waits for SSE streams to end */
};

extern const struct config_entry reporter_config_table[];
extern const size_t reporter_config_table_n;

struct reporter_metrics {
	metrics_counter http_requests;
	metrics_counter sse_connects;      /* streams opened, ever */
	metrics_counter sse_events;        /* tally events written to clients */
	metrics_counter sse_heartbeats;    /* ": ping" comments written */
	metrics_counter sse_broadcasts;    /* tally changes fanned out */
	metrics_counter notifications;     /* NOTIFY tally_changed received */
	metrics_counter poll_reloads;      /* one poll re-read after a NOTIFY */
	metrics_counter safety_polls;      /* full reloads on the timer */
	metrics_counter pg_errors;         /* failed queries or lost connections */
	metrics_counter pg_connects;       /* successful (re)connections */
	metrics_counter connections_cut;   /* requests too slow to arrive */
	_Atomic long sse_clients;          /* streams open now */
};

struct polls;
struct tallies;
struct sse_hub;
struct listener;

/* Everything the HTTP handlers need; every pointer is owned by main.c. */
struct reporter {
	const struct reporter_config *cfg;
	const struct polls *polls;
	struct tallies *tallies;
	struct sse_hub *hub;
	struct listener *listener;
	struct reporter_metrics *metrics;
};

#endif
