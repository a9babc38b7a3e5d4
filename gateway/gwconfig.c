/*
 * gwconfig.c - the gateway's config table. docs/CONTRACTS.md lists the
 * shared variables; the rest are the gateway's own (docs/API.md).
 */
#include <stddef.h>

#include "config.h"
#include "gateway.h"
#include "httpd.h"
#include "log.h"
#include "natsconn.h"

#define E(name, type, field, def, lo, hi, flags, help) \
	{name, type, offsetof(struct gw_config, field), def, lo, hi, flags, \
	    help}

static const struct config_entry gw_table[] = {
	HTTPD_CONFIG_LISTEN_ENTRIES(struct gw_config, "8080"),
	E("LOG_LEVEL", CONFIG_STR, log_level, "info", 0, 0, 0,
	    "debug, info (one access-log line per request), warn or error"),
	HTTPD_CONFIG_THREADS(struct gw_config, http_threads, "2",
	    "HTTP event-loop threads, each serving its share of the "
	    "connections"),
	HTTPD_CONFIG_MAX_CONNECTIONS(struct gw_config, max_connections,
	    "20000", 1, "open client connections; more are refused"),
	E("MAX_CONNECTIONS_PER_IP", CONFIG_INT, max_connections_per_ip, "0", 0,
	    1000000, 0, "open connections per client address; more are "
	    "closed at once; 0: no limit (behind a proxy, every client has the "
	    "proxy's address)"),
	HTTPD_CONFIG_MAX_HEADER_BYTES(struct gw_config, max_header_bytes,
	    "16384", "memory per connection for the request line and "
	    "headers, in bytes (over: 414 for a long request line, 431 for "
	    "the headers)"),
	HTTPD_CONFIG_CONNECTION_TIMEOUT_S(struct gw_config,
	    connection_timeout_s, "30", "an idle connection, or one whose "
	    "request (line, headers and body) is not all in this many seconds "
	    "after the connection or its previous answer (slowloris), is "
	    "closed"),
	E("MAX_BODY_BYTES", CONFIG_INT, max_body_bytes, "4096", 64, 1048576, 0,
	    "largest vote body, in bytes (over: 413)"),
	NATSCONN_CONFIG_ENTRIES(struct gw_config, nats),
	E("PUBLISH_TIMEOUT_MS", CONFIG_INT, publish_timeout_ms, "2000", 50,
	    60000, 0, "wait this long for a PubAck, then answer 503"),
	E("MAX_IN_FLIGHT", CONFIG_INT, max_in_flight, "8192", 1, 1000000, 0,
	    "votes waiting for Redis or a PubAck; beyond it: 503"),
	E("REDIS_HOST", CONFIG_STR, redis_host, "127.0.0.1", 0, 0, 0,
	    "Redis host (dedup, idempotency, /visits)"),
	E("REDIS_PORT", CONFIG_INT, redis_port, "6379", 1, 65535, 0,
	    "Redis port"),
	E("REDIS_PASSWORD", CONFIG_STR, redis_password, "", 0, 0,
	    CONFIG_SECRET, "Redis AUTH password"),
	E("REDIS_TIMEOUT_MS", CONFIG_INT, redis_timeout_ms, "500", 10, 60000,
	    0, "Redis connect and command timeout"),
	E("REDIS_BATCH_MAX", CONFIG_INT, redis_batch_max, "512", 1, 65536, 0,
	    "jobs per pipelined Redis batch"),
	E("DEDUP_TTL_S", CONFIG_INT, dedup_ttl_s, "604800", 60, 31536000, 0,
	    "how long Redis remembers a voter's current option"),
	E("IDEMPOTENCY_TTL_S", CONFIG_INT, idempotency_ttl_s, "86400", 60,
	    31536000, 0, "how long an Idempotency-Key's answer is kept"),
	E("DEDUP_FAIL_CLOSED", CONFIG_BOOL, dedup_fail_closed, "false", 0, 0,
	    0, "Redis down: answer 503 instead of accepting without dedup"),
	E("POLLS_FILE", CONFIG_STR, polls_file, "", 0, 0, 0,
	    "JSON poll definitions; empty: one poll from OPTION_A/OPTION_B"),
	E("OPTION_A", CONFIG_STR, option_a, "Cats", 0, 0, 0,
	    "label of the default poll's option a"),
	E("OPTION_B", CONFIG_STR, option_b, "Dogs", 0, 0, 0,
	    "label of the default poll's option b"),
	E("DRAIN_TIMEOUT_MS", CONFIG_INT, drain_timeout_ms, "10000", 0,
	    600000, 0, "on SIGTERM, wait this long for votes in flight"),
	E("RATE_LIMIT_PER_S", CONFIG_INT, rate_limit_per_s, "0", 0, 1000000,
	    0, "vote requests per second per client address; 0: no limit"),
	E("RATE_LIMIT_BURST", CONFIG_INT, rate_limit_burst, "20", 1, 1000000,
	    0, "requests a client may send at once above the rate"),
};

#define GW_TABLE_N (sizeof(gw_table) / sizeof(gw_table[0]))

int
gwconfig_load(struct gw_config *cfg, int argc, char **argv, FILE *out,
    FILE *err)
{
	enum log_level level;

	switch (config_load(gw_table, GW_TABLE_N, cfg, argc, argv,
	    "tally-gateway: the vote page, the vote API, dedup in Redis and "
	    "JetStream publishing", out, err)) {
	case CONFIG_OK:
		break;
	case CONFIG_HELP:
		return 1;
	case CONFIG_INVALID:
		return -1;
	}
	if (log_level_parse(cfg->log_level, &level) != 0) {
		fprintf(err, "LOG_LEVEL: \"%s\" is not debug, info, warn or "
		    "error\n", cfg->log_level);
		return -1;
	}
	return 0;
}

void
gwconfig_fini(struct gw_config *cfg)
{
	config_fini(gw_table, GW_TABLE_N, cfg);
}
