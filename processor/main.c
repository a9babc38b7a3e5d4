/*
 * tally-processor - the durable pull consumer that stores votes in
 * PostgreSQL: read config, connect NATS, make the store, serve health and
 * metrics, run the worker until SIGTERM, tear down in reverse.
 */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "consumer.h"
#include "endpoints.h"
#include "log.h"
#include "natsconn.h"
#include "sig.h"
#include "store.h"
#include "worker.h"

struct processor_config {
	char *bind_addr;
	long bind_port;
	char *log_level;
	struct natsconn_settings nats;
	char *database_url;
	long batch_max;
	long fetch_wait_ms;
	long fetch_interval_ms;
	long batch_linger_ms;
	long ack_wait_s;
	long max_ack_pending;
	long max_deliver;
	long max_backoff_ms;
	long lag_refresh_ms;
	long store_connections;
};

#define F(x) offsetof(struct processor_config, x)
static const struct config_entry processor_table[] = {
	{"BIND_ADDR", CONFIG_STR, F(bind_addr), "127.0.0.1", 0, 0, 0,
	    "address of the health/metrics port"},
	{"BIND_PORT", CONFIG_INT, F(bind_port), "8082", 1, 65535, 0,
	    "port of /healthz, /readyz and /metrics"},
	{"LOG_LEVEL", CONFIG_STR, F(log_level), "info", 0, 0, 0,
	    "debug, info, warn or error"},
	NATSCONN_CONFIG_ENTRIES(struct processor_config, nats),
	{"DATABASE_URL", CONFIG_STR, F(database_url), NULL, 0, 0,
	    CONFIG_SECRET, "libpq connection string; empty: PG* variables"},
	{"BATCH_MAX", CONFIG_INT, F(batch_max), "1000", 1, 10000, 0,
	    "most votes per transaction"},
	{"FETCH_WAIT_MS", CONFIG_INT, F(fetch_wait_ms), "100", 1, 60000, 0,
	    "lifetime of one pull request at the server, in ms"},
	{"FETCH_INTERVAL_MS", CONFIG_INT, F(fetch_interval_ms), "20", 0, 1000,
	    0, "least ms between pull requests that found the stream drained "
	    "(votes come in bursts); 0: one request open, votes as stored"},
	{"BATCH_LINGER_MS", CONFIG_INT, F(batch_linger_ms), "20", 0, 1000, 0,
	    "longest wait for a batch to fill after its first vote, in ms"},
	{"ACK_WAIT_S", CONFIG_INT, F(ack_wait_s), "30", 1, 3600, 0,
	    "consumer AckWait: redelivery after this many s without ack"},
	{"MAX_ACK_PENDING", CONFIG_INT, F(max_ack_pending), "20000", 1,
	    10000000, 0, "consumer MaxAckPending (all processors together)"},
	{"MAX_DELIVER", CONFIG_INT, F(max_deliver), "-1", -1, 1000000, 0,
	    "consumer MaxDeliver; -1 unlimited (see docs/PROCESSOR.md)"},
	{"MAX_BACKOFF_MS", CONFIG_INT, F(max_backoff_ms), "5000", 100,
	    600000, 0, "ceiling of reconnect and retry backoff, in ms"},
	{"LAG_REFRESH_MS", CONFIG_INT, F(lag_refresh_ms), "2000", 100,
	    600000, 0, "how often consumer lag is read, in ms"},
	{"STORE_CONNECTIONS", CONFIG_INT, F(store_connections), "2", 1,
	    WORKER_STORES_MAX, 0, "PostgreSQL connections applying batches "
	    "in parallel"},
};
#undef F
#define PROCESSOR_TABLE_N (sizeof(processor_table) / sizeof(processor_table[0]))

int
main(int argc, char **argv)
{
	struct processor_config cfg = {0};
	/* Static: nats.c's thread may still answer a dead-letter copy
	 * (touching dl and w's counter) while the process exits. */
	static struct worker w;
	static struct deadletter dl;
	jsOptions jso;
	struct store *stores[WORKER_STORES_MAX] = {0};
	struct store *bind_store = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	struct httpd *httpd = NULL;
	enum log_level level;
	int status = 1;

	switch (config_load(processor_table, PROCESSOR_TABLE_N, &cfg, argc,
	    argv, "tally-processor: stores votes from stream VOTES in "
	    "PostgreSQL", stdout, stderr)) {
	case CONFIG_OK:
		break;
	case CONFIG_HELP:
		status = 0;
		goto out;
	default:
		status = CONFIG_EXIT_INVALID;
		goto out;
	}
	if (log_level_parse(cfg.log_level, &level) != 0) {
		fprintf(stderr, "LOG_LEVEL: \"%s\" is not debug, info, warn "
		    "or error\n", cfg.log_level);
		status = CONFIG_EXIT_INVALID;
		goto out;
	}
	log_init("processor", level);
	sig_init();
	/* While PostgreSQL is away the held votes are kept in progress once
	 * per retry: a retry slower than AckWait would let them be
	 * redelivered to another processor meanwhile. */
	if (cfg.max_backoff_ms > cfg.ack_wait_s * 1000 / 2) {
		log_warn("MAX_BACKOFF_MS %ld is not below half of ACK_WAIT_S "
		    "(%ld s); retrying every %ld ms at most", cfg.max_backoff_ms,
		    cfg.ack_wait_s, cfg.ack_wait_s * 1000 / 2);
		cfg.max_backoff_ms = cfg.ack_wait_s * 1000 / 2;
	}

	struct natsconn_config ncfg = natsconn_config_of(&cfg.nats,
	    "tally-processor");
	struct consumer_config ccfg = {
		.durable = "processor", .ack_wait_s = cfg.ack_wait_s,
		.max_ack_pending = cfg.max_ack_pending,
		.max_deliver = cfg.max_deliver,
		.stream_replicas = cfg.nats.stream_replicas,
	};
	struct worker_config wcfg = {
		.batch_max = cfg.batch_max, .fetch_wait_ms = cfg.fetch_wait_ms,
		.fetch_interval_ms = cfg.fetch_interval_ms,
		.max_backoff_ms = cfg.max_backoff_ms,
		.lag_refresh_ms = cfg.lag_refresh_ms,
		.replicas = cfg.nats.stream_replicas,
		.stores = cfg.store_connections,
		.linger_ms = cfg.batch_linger_ms,
	};

	/* The counter lives in w, which worker_init clears: same address. */
	deadletter_init(&dl, &w.m.deadletter_failed);
	jsOptions_Init(&jso);
	deadletter_options(&dl, &jso);
	if (natsconn_open(&ncfg, &jso, &nc, &js) != 0)
		goto out;
	for (long i = 0; i < cfg.store_connections; i++)
		if ((stores[i] = store_new(cfg.database_url,
		    "tally-processor", &w.m.pg_errors)) == NULL)
			goto out;
	/* The fetch thread's own connection, for the stream check at each
	 * binding (rare; it connects on first use). */
	if ((bind_store = store_new(cfg.database_url, "tally-processor",
	    &w.m.pg_errors)) == NULL)
		goto out;
	if (worker_init(&w, &wcfg, nc, js, &dl, &ccfg, stores,
	    bind_store) != 0)
		goto out;
	if ((httpd = endpoints_start(cfg.bind_addr, cfg.bind_port, &w)) == NULL)
		goto out;
	log_info("listening on %s:%ld; batches of up to %ld, lingering "
	    "%ld ms; pull requests of %ld ms; %ld store connections",
	    cfg.bind_addr, cfg.bind_port, cfg.batch_max, cfg.batch_linger_ms,
	    cfg.fetch_wait_ms, cfg.store_connections);
	if (worker_run(&w) != 0)
		goto out;
	log_info("stopped; in-flight batches committed and acked");
	status = 0;
out:
	httpd_stop(httpd);
	worker_fini(&w);
	if (nc != NULL)
		(void)deadletter_wait(&dl, 2000);
	for (size_t i = 0; i < WORKER_STORES_MAX; i++)
		store_free(stores[i]);
	store_free(bind_store);
	natsconn_close(nc, js, 2000);
	config_fini(processor_table, PROCESSOR_TABLE_N, &cfg);
	return status;
}
