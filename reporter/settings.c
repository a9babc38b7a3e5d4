/*
 * settings.c - the reporter's config table (docs/CONTRACTS.md, REPORTER.md).
 */
#include <stddef.h>

#include "httpd.h"
#include "reporter.h"

#define STR(field) CONFIG_STR, offsetof(struct reporter_config, field)
#define INT(field) CONFIG_INT, offsetof(struct reporter_config, field)

const struct config_entry reporter_config_table[] = {
	HTTPD_CONFIG_LISTEN_ENTRIES(struct reporter_config, "8081"),
	{ "LOG_LEVEL", STR(log_level), "info", 0, 0, 0,
	    "debug, info, warn or error" },
	{ "DATABASE_URL", STR(database_url), NULL, 0, 0, CONFIG_SECRET,
	    "libpq connection string; empty: libpq's PG* variables" },
	{ "POLLS_FILE", STR(polls_file), NULL, 0, 0, 0,
	    "JSON poll definitions; empty: one poll from OPTION_A/OPTION_B" },
	{ "OPTION_A", STR(option_a), "Cats", 0, 0, 0,
	    "label of the default poll's option a" },
	{ "OPTION_B", STR(option_b), "Dogs", 0, 0, 0,
	    "label of the default poll's option b" },
	{ "SAFETY_POLL_MS", INT(safety_poll_ms), "5000", 100, 3600000, 0,
	    "full reload of every tally, in ms, even without NOTIFY" },
	{ "SSE_HEARTBEAT_MS", INT(sse_heartbeat_ms), "15000", 50, 3600000, 0,
	    "\": ping\" comment to every event stream, in ms" },
	{ "SSE_MIN_INTERVAL_MS", INT(sse_min_interval_ms), "100", 0, 60000, 0,
	    "per poll, at most one update per this many ms (10/s)" },
	HTTPD_CONFIG_THREADS(struct reporter_config, http_threads, "1",
	    "HTTP event-loop threads (1: one epoll thread)"),
	/* 16: the floor reporter_raise_nofile lowers it to. */
	HTTPD_CONFIG_MAX_CONNECTIONS(struct reporter_config,
	    http_max_connections, "20000", 16,
	    "open HTTP connections (event streams included); the file "
	    "limit is raised to fit"),
	HTTPD_CONFIG_CONNECTION_TIMEOUT_S(struct reporter_config,
	    http_timeout_s, "60", "idle or stalled connection timeout, in s "
	    "(parked streams are exempt)"),
	HTTPD_CONFIG_MAX_HEADER_BYTES(struct reporter_config,
	    http_connection_bytes, "8192",
	    "memory per connection for request headers and the answer's "
	    "send buffer, in bytes (event streams are most of the memory)"),
	{ "MAX_BACKOFF_MS", INT(pg_max_backoff_ms), "5000", 100, 600000, 0,
	    "PostgreSQL reconnect backoff cap, in ms" },
	{ "DRAIN_TIMEOUT_MS", INT(shutdown_grace_ms), "3000", 0, 600000, 0,
	    "on SIGTERM, how long to let event streams close, in ms" },
};

const size_t reporter_config_table_n =
    sizeof(reporter_config_table) / sizeof(reporter_config_table[0]);
