/*
 * tally-reporter: tally API, Server-Sent Events and the results page.
 *
 * main is the table of contents: read the configuration, set the modules
 * up in dependency order (polls → tallies → SSE hub → listener → HTTP),
 * wait for SIGTERM, then tear down in reverse: stop accepting, end the
 * event streams so clients reconnect elsewhere, stop the rest, exit 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "httpd.h"
#include "listen.h"
#include "log.h"
#include "polls.h"
#include "reporter.h"
#include "routes.h"
#include "sig.h"
#include "sse.h"
#include "tallies.h"
#include "watchdog.h"

/* File descriptors needed besides connections: listen socket, epoll,
 * PostgreSQL, logs, eventfds. */
#define REPORTER_SPARE_FDS 64

/*
 * Raises the soft open-file limit to the hard one: each event stream is a
 * socket, and 10,000 watchers need more than the usual 1024. Lowers
 * max_connections (and says so) if the hard limit cannot fit them.
 */
static void
reporter_raise_nofile(long *max_connections)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)*max_connections + REPORTER_SPARE_FDS > rl.rlim_cur) {
		long fit = (long)rl.rlim_cur - REPORTER_SPARE_FDS;

		log_warn("open-file limit %lu allows only %ld connections "
		    "(MAX_CONNECTIONS=%ld)", (unsigned long)rl.rlim_cur,
		    fit, *max_connections);
		*max_connections = fit > 16 ? fit : 16;
	}
}

int
main(int argc, char **argv)
{
	struct reporter_config cfg;
	struct reporter_metrics metrics;
	struct reporter r;
	struct polls *polls = NULL;
	struct tallies *tallies = NULL;
	struct sse_hub *hub = NULL;
	struct listener *listener = NULL;
	struct httpd *d = NULL;
	struct watchdog *wd = NULL;
	struct httpd_config hc;
	struct listener_config lc;
	enum log_level level;
	int status = 1;

	memset(&cfg, 0, sizeof(cfg));
	memset(&metrics, 0, sizeof(metrics));
	switch (config_load(reporter_config_table, reporter_config_table_n,
	    &cfg, argc, argv, "tally-reporter: tally API, live Server-Sent "
	    "Events and the results page", stdout, stderr)) {
	case CONFIG_HELP:
		status = 0;
		goto out;
	case CONFIG_INVALID:
		status = CONFIG_EXIT_INVALID;
		goto out;
	case CONFIG_OK:
		break;
	}
	if (log_level_parse(cfg.log_level, &level) != 0) {
		fprintf(stderr, "LOG_LEVEL: \"%s\" is not debug, info, warn or "
		    "error\n", cfg.log_level);
		status = CONFIG_EXIT_INVALID;
		goto out;
	}
	log_init("tally-reporter", level);
	polls = polls_load(cfg.polls_file, cfg.option_a, cfg.option_b, stderr);
	if (polls == NULL) {
		status = CONFIG_EXIT_INVALID;
		goto out;
	}
	sig_init();
	reporter_raise_nofile(&cfg.http_max_connections);

	if ((tallies = tallies_new(polls)) == NULL)
		goto out;
	hub = sse_hub_new(polls, tallies, cfg.sse_heartbeat_ms,
	    cfg.sse_min_interval_ms, &metrics);
	if (hub == NULL || sse_hub_start(hub) != 0)
		goto out;
	lc.conninfo = cfg.database_url;
	lc.safety_poll_ms = cfg.safety_poll_ms;
	lc.max_backoff_ms = cfg.pg_max_backoff_ms;
	listener = listener_new(&lc, polls, tallies, hub, &metrics);
	if (listener == NULL || listener_start(listener) != 0)
		goto out;

	r.cfg = &cfg;
	r.polls = polls;
	r.tallies = tallies;
	r.hub = hub;
	r.listener = listener;
	r.metrics = &metrics;
	/* libmicrohttpd only times out idle connections; the watchdog also
	 * cuts a request dripped in a byte at a time (slowloris). */
	wd = watchdog_new(cfg.http_timeout_s * 1000, &metrics.connections_cut);
	if (wd == NULL)
		goto out;
	memset(&hc, 0, sizeof(hc));
	hc.addr = cfg.bind_addr;
	hc.port = cfg.bind_port;
	hc.threads = cfg.http_threads;
	hc.max_connections = cfg.http_max_connections;
	/* Request headers and the send buffer; no route reads a body. */
	hc.max_header_bytes = cfg.http_connection_bytes;
	hc.connection_timeout_s = cfg.http_timeout_s;
	hc.notify_connection = watchdog_notify;
	hc.notify_cls = wd;
	if ((d = httpd_start(&hc, routes_handle, routes_completed, &r)) == NULL)
		goto out;
	log_info("listening on http://%s:%ld (%zu polls, up to %ld "
	    "connections)", cfg.bind_addr, cfg.bind_port, polls_count(polls),
	    cfg.http_max_connections);

	while (!sig_sleep_ms(1000))
		;

	log_info("stopping: no new connections, ending %ld event streams",
	    sse_hub_clients(hub));
	httpd_quiesce(d);
	if (sse_hub_close_all(hub, cfg.shutdown_grace_ms) > 0)
		log_warn("some event streams did not end in %ld ms; closing "
		    "them", cfg.shutdown_grace_ms);
	status = 0;
out:
	/* Reverse order. The daemon goes before the hub: closing it frees
	 * the streams' clients, which the hub's lists point to. */
	httpd_stop(d);
	watchdog_free(wd);
	listener_free(listener);
	sse_hub_free(hub);
	tallies_free(tallies);
	polls_free(polls);
	config_fini(reporter_config_table, reporter_config_table_n, &cfg);
	if (status == 0 && d != NULL)
		log_info("stopped");
	return status;
}
