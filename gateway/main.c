/*
 * tally-gateway: the vote page and the vote API. Validates a vote, asks
 * Redis whether it changes anything, publishes it to JetStream and answers
 * only after the PubAck. See docs/API.md.
 *
 * main is the table of contents: settings, then the modules in dependency
 * order (metrics, polls, Redis, NATS, the watchdog, HTTP), run until
 * SIGTERM, drain, and tear down in reverse.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dedup.h"
#include "gateway.h"
#include "httpd.h"
#include "log.h"
#include "natsconn.h"
#include "publish.h"
#include "ratelimit.h"
#include "routes.h"
#include "sig.h"
#include "watchdog.h"

/*
 * Stops taking votes and waits up to DRAIN_TIMEOUT_MS for every suspended
 * request to be resumed. Returns how many were still waiting (0: all were
 * answered). Giving up is not a failure: each of those votes is in the
 * stream or not whatever this process does now, and its client, cut off,
 * retries (with its Idempotency-Key, to be sure of one vote).
 */
static long
gateway_drain(struct gateway *gw)
{
	long n;

	atomic_store(&gw->draining, true);
	httpd_quiesce(gw->httpd);
	n = sig_wait_drained(&gw->suspended, gw->cfg.drain_timeout_ms);
	if (n > 0)
		log_warn("drain: %ld requests still waiting for Redis or a "
		    "PubAck after %ld ms; exiting anyway", n,
		    gw->cfg.drain_timeout_ms);
	return n;
}

/* The stream thread learnt which stream VOTES is: Redis's voter keys must
 * be about that one. */
static void
main_on_stream(int64_t created, void *cls)
{
	dedup_stream(cls, created);
}

int
main(int argc, char **argv)
{
	struct gateway gw;
	struct dedup_config dc;
	struct publish_config pc;
	struct natsconn_config nc;
	struct httpd_config hc;
	enum log_level level = LOG_LEVEL_INFO;
	int status = CONFIG_EXIT_INVALID, r;

	memset(&gw, 0, sizeof(gw));
	sig_init();
	r = gwconfig_load(&gw.cfg, argc, argv, stdout, stderr);
	if (r != 0) {
		status = r > 0 ? 0 : CONFIG_EXIT_INVALID;
		goto out;
	}
	if (log_level_parse(gw.cfg.log_level, &level) != 0)
		level = LOG_LEVEL_INFO; /* checked by gwconfig_load */
	log_init("gateway", level);
	gw.access_log = log_enabled(LOG_LEVEL_INFO);
	gwmetrics_init(&gw.metrics);

	gw.polls = polls_load(gw.cfg.polls_file, gw.cfg.option_a,
	    gw.cfg.option_b, stderr);
	if (gw.polls == NULL)
		goto out;
	status = 1;
	if (gethostname(gw.hostname, sizeof(gw.hostname) - 1) != 0)
		snprintf(gw.hostname, sizeof(gw.hostname), "unknown");
	if (routes_init(&gw) != 0)
		goto out;
	if (gw.cfg.rate_limit_per_s > 0 && (gw.rl = ratelimit_new(
	    gw.cfg.rate_limit_per_s, gw.cfg.rate_limit_burst)) == NULL)
		goto out;

	dc = (struct dedup_config){
		.host = gw.cfg.redis_host, .port = gw.cfg.redis_port,
		.password = gw.cfg.redis_password,
		.timeout_ms = gw.cfg.redis_timeout_ms,
		.ttl_s = gw.cfg.dedup_ttl_s,
		.idem_ttl_s = gw.cfg.idempotency_ttl_s,
		.queue_max = gw.cfg.max_in_flight + 1024,
		.batch_max = gw.cfg.redis_batch_max,
		.backlog_max = 100000,
		.fail_closed = gw.cfg.dedup_fail_closed,
	};
	if ((gw.dedup = dedup_new(&dc, &gw.metrics)) == NULL)
		goto out;

	nc = natsconn_config_of(&gw.cfg.nats, "tally-gateway");
	pc = (struct publish_config){
		.max_pending = gw.cfg.max_in_flight,
		.timeout_ms = gw.cfg.publish_timeout_ms,
		.on_stream = main_on_stream,
		.on_stream_cls = gw.dedup,
	};
	if ((gw.pub = publish_open(&pc, &nc, &gw.metrics)) == NULL) {
		status = CONFIG_EXIT_INVALID;
		goto out;
	}

	if ((gw.wd = watchdog_new(gw.cfg.connection_timeout_s * 1000,
	    &gw.metrics.connections_cut)) == NULL)
		goto out;
	hc = (struct httpd_config){
		.addr = gw.cfg.bind_addr, .port = gw.cfg.bind_port,
		.threads = gw.cfg.http_threads,
		.max_connections = gw.cfg.max_connections,
		.max_connections_per_ip = gw.cfg.max_connections_per_ip,
		.max_header_bytes = gw.cfg.max_header_bytes,
		.connection_timeout_s = gw.cfg.connection_timeout_s,
		.notify_connection = watchdog_notify, .notify_cls = gw.wd,
	};
	if ((gw.httpd = httpd_start(&hc, routes_handle, routes_completed,
	    &gw)) == NULL)
		goto out;
	log_info("listening on http://%s:%ld (%ld HTTP threads, %zu polls)",
	    gw.cfg.bind_addr, gw.cfg.bind_port, gw.cfg.http_threads,
	    polls_count(gw.polls));

	while (!sig_sleep_ms(1000))
		;
	log_info("stopping: draining votes in flight");
	if (gateway_drain(&gw) > 0) {
		/* MHD cannot stop with suspended connections, and its loops,
		 * Redis and NATS would go on calling into what the teardown
		 * frees: leave at once. Those votes may still be acked: the
		 * stream, not their answer, is the truth. Logs are written
		 * unbuffered, so nothing is lost. */
		_exit(0);
	}
	status = 0; /* drained: every vote in flight was answered */
out:
	httpd_stop(gw.httpd);
	watchdog_free(gw.wd);
	publish_close(gw.pub, gw.cfg.publish_timeout_ms);
	dedup_free(gw.dedup);
	ratelimit_free(gw.rl);
	routes_fini(&gw);
	polls_free(gw.polls);
	gwconfig_fini(&gw.cfg);
	/* --help also ends with status 0; only a drained daemon "stopped". */
	if (status == 0 && gw.httpd != NULL)
		log_info("stopped");
	return status;
}
