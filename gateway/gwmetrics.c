/*
 * gwmetrics.c - gateway counters, rendered as Prometheus text.
 */
#define _POSIX_C_SOURCE 200809L
#include "gwmetrics.h"

#include <stdio.h>
#include <string.h>

static const char *const gw_route_names[GW_ROUTE_COUNT] = {
	"page", "form", "static", "polls", "votes", "visits", "healthz",
	"readyz", "metrics", "other",
};

/* Index GW_STATUS_COUNT - 1 is "other". */
static const unsigned gw_statuses[GW_STATUS_COUNT - 1] = {
	200, 201, 304, 400, 404, 405, 413, 415, 422, 429, 431, 500, 503,
};

void
gwmetrics_init(struct gw_metrics *m)
{
	memset(m, 0, sizeof(*m));
	metrics_hist_init(&m->publish_seconds, metrics_latency_bounds,
	    metrics_latency_bounds_n);
	metrics_hist_init(&m->request_seconds, metrics_latency_bounds,
	    metrics_latency_bounds_n);
}

static size_t
gwmetrics_status_index(unsigned status)
{
	for (size_t i = 0; i < GW_STATUS_COUNT - 1; i++)
		if (gw_statuses[i] == status)
			return i;
	return GW_STATUS_COUNT - 1;
}

void
gwmetrics_count_request(struct gw_metrics *m, enum gw_route route,
    unsigned status)
{
	if ((unsigned)route >= GW_ROUTE_COUNT)
		route = GW_ROUTE_OTHER;
	metrics_inc(&m->requests[route][gwmetrics_status_index(status)]);
}

const char *
gwmetrics_route_name(enum gw_route route)
{
	return (unsigned)route < GW_ROUTE_COUNT ? gw_route_names[route] :
	    "other";
}

void
gwmetrics_write(struct gw_metrics *m, struct buf *b, int ready, int redis_up)
{
	const char *help = "HTTP requests answered, by route and status.";
	char labels[96];

	for (size_t r = 0; r < GW_ROUTE_COUNT; r++) {
		for (size_t s = 0; s < GW_STATUS_COUNT; s++) {
			uint64_t v = metrics_get(&m->requests[r][s]);
			char status[8];

			/* Zero series are noise; the family header still
			 * appears once through the first sample. */
			if (v == 0)
				continue;
			if (s < GW_STATUS_COUNT - 1)
				snprintf(status, sizeof(status), "%u",
				    gw_statuses[s]);
			else
				snprintf(status, sizeof(status), "other");
			snprintf(labels, sizeof(labels),
			    "route=\"%s\",status=\"%s\"", gw_route_names[r],
			    status);
			metrics_write_counter(b, "tally_gateway_requests_total",
			    help, labels, v);
			help = NULL;
		}
	}
	if (help != NULL)
		metrics_write_counter(b, "tally_gateway_requests_total", help,
		    "route=\"healthz\",status=\"200\"", 0);

	metrics_write_counter(b, "tally_gateway_votes_total",
	    "Vote requests by outcome.", "result=\"accepted\"",
	    metrics_get(&m->votes_accepted));
	metrics_write_counter(b, "tally_gateway_votes_total", NULL,
	    "result=\"duplicate\"", metrics_get(&m->votes_duplicate));
	metrics_write_counter(b, "tally_gateway_votes_total", NULL,
	    "result=\"unchanged\"", metrics_get(&m->votes_unchanged));
	metrics_write_counter(b, "tally_gateway_votes_total", NULL,
	    "result=\"idempotent_replay\"", metrics_get(&m->votes_idempotent));
	metrics_write_counter(b, "tally_gateway_votes_total", NULL,
	    "result=\"rejected\"", metrics_get(&m->votes_rejected));
	metrics_write_counter(b, "tally_gateway_votes_total", NULL,
	    "result=\"unavailable\"", metrics_get(&m->votes_unavailable));
	metrics_write_gauge(b, "tally_gateway_votes_in_flight",
	    "Vote requests waiting for Redis or a PubAck.", "",
	    (double)atomic_load(&m->votes_in_flight));
	metrics_write_counter(b, "tally_gateway_dedup_bypass_total",
	    "Votes published without a Redis dedup check (Redis down).", "",
	    metrics_get(&m->dedup_bypass));
	metrics_write_counter(b, "tally_gateway_dedup_errors_total",
	    "Redis connection or command failures.", "",
	    metrics_get(&m->dedup_errors));
	metrics_write_counter(b, "tally_gateway_rate_limited_total",
	    "Requests refused by the per-client rate limit (429).", "",
	    metrics_get(&m->rate_limited));
	metrics_write_counter(b, "tally_gateway_connections_cut_total",
	    "Connections closed because a request was not in after "
	    "CONNECTION_TIMEOUT_S (slowloris).", "",
	    metrics_get(&m->connections_cut));
	metrics_write_gauge(b, "tally_gateway_ready",
	    "1 when NATS is connected and stream VOTES exists.", "",
	    ready ? 1 : 0);
	metrics_write_gauge(b, "tally_gateway_redis_up",
	    "1 while the dedup store answers.", "", redis_up ? 1 : 0);
	metrics_write_hist(b, "tally_gateway_publish_seconds",
	    "JetStream publish to PubAck (or failure), in seconds.",
	    &m->publish_seconds);
	metrics_write_hist(b, "tally_gateway_vote_request_seconds",
	    "Vote requests from parse to answer, in seconds.",
	    &m->request_seconds);
}
