/*
 * gateway: the daemon's settings and its one context struct, passed
 * explicitly to every handler (no globals).
 */
#ifndef TALLY_GATEWAY_GATEWAY_H
#define TALLY_GATEWAY_GATEWAY_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gwmetrics.h"
#include "natsconn.h"
#include "polls.h"

struct dedup;
struct publisher;
struct ratelimit;
struct watchdog;

/* Filled by gwconfig_load from the table in gwconfig.c. */
struct gw_config {
	char *bind_addr;
	long bind_port;
	char *log_level;
	long http_threads;
	long max_connections;
	long max_connections_per_ip;
	long max_header_bytes;
	long connection_timeout_s;
	long max_body_bytes;
	struct natsconn_settings nats;
	long publish_timeout_ms;
	long max_in_flight;
	char *redis_host;
	long redis_port;
	char *redis_password;
	long redis_timeout_ms;
	long redis_batch_max;
	long dedup_ttl_s;
	long idempotency_ttl_s;
	bool dedup_fail_closed;
	char *polls_file;
	char *option_a;
	char *option_b;
	long drain_timeout_ms;
	long rate_limit_per_s;
	long rate_limit_burst;
};

struct gateway {
	struct gw_config cfg;
	struct polls *polls;        /* immutable after start */
	char *polls_json;           /* GET /api/v1/polls body, made once */
	char hostname[256];         /* "Processed by container ID ..." */
	bool access_log;            /* LOG_LEVEL allows info lines */
	struct gw_metrics metrics;
	struct dedup *dedup;
	struct publisher *pub;
	struct ratelimit *rl;       /* NULL: no rate limit */
	struct watchdog *wd;        /* receive deadlines (slowloris) */
	struct httpd *httpd;
	_Atomic bool draining;      /* SIGTERM: refuse new votes */
	_Atomic long suspended;     /* vote requests suspended and not yet
				     * answered (freed after their answer) */
};

/*
 * Reads the settings (defaults, environment, flags). Returns 0 to run, 1
 * after --help (exit 0), or -1 after writing why to err (exit 78).
 */
int gwconfig_load(struct gw_config *cfg, int argc, char **argv, FILE *out,
    FILE *err) __attribute__((warn_unused_result));
void gwconfig_fini(struct gw_config *cfg);

#endif
