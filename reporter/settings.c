/*
 * settings.c - the reporter's config table (docs/CONTRACTS.md, REPORTER.md).
 */
#include <stddef.h>

#include "reporter.h"

#define STR(field) CONFIG_STR, offsetof(struct reporter_config, field)
#define INT(field) CONFIG_INT, offsetof(struct reporter_config, field)

const struct config_entry reporter_config_table[] = {
	{ "BIND_ADDR", STR(bind_addr), "127.0.0.1", 0, 0, 0,
	    "IPv4 address to listen on (0.0.0.0 in containers)" },
	{ "BIND_PORT", INT(bind_port), "8081", 1, 65535, 0,
	    "TCP port to listen on" },
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
	{ "HTTP_THREADS", INT(http_threads), "1", 1, 64, 0,
	    "HTTP event-loop threads (1: one epoll thread)" },
	{ "MAX_CONNECTIONS", INT(http_max_connections), "20000", 16,
	    1000000, 0,
	    "open HTTP connections (event streams included); the file "
	    "limit is raised to fit" },
	{ "CONNECTION_TIMEOUT_S", INT(http_timeout_s), "60", 1, 3600, 0,
	    "idle or stalled connection timeout, in s (parked streams are "
	    "exempt)" },
	{ "MAX_HEADER_BYTES", INT(http_connection_bytes), "8192", 4096,
	    1048576, 0,
	    "memory per connection for request headers and the answer's "
	    "send buffer, in bytes (event streams are most of the memory)" },
	{ "MAX_BACKOFF_MS", INT(pg_max_backoff_ms), "5000", 100, 600000, 0,
	    "PostgreSQL reconnect backoff cap, in ms" },
	{ "DRAIN_TIMEOUT_MS", INT(shutdown_grace_ms), "3000", 0, 600000, 0,
	    "on SIGTERM, how long to let event streams close, in ms" },
};

const size_t reporter_config_table_n =
    sizeof(reporter_config_table) / sizeof(reporter_config_table[0]);
