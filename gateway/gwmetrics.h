/*
 * gwmetrics: the gateway's counters and histograms, and their Prometheus
 * rendering for GET /metrics. Every update is a relaxed atomic, so any
 * thread (MHD, the dedup thread, the NATS ack thread) may count.
 */
#ifndef TALLY_GATEWAY_GWMETRICS_H
#define TALLY_GATEWAY_GWMETRICS_H

#include "buf.h"
#include "metrics.h"

/* Routes as /metrics names them (label route="..."). */
enum gw_route {
	GW_ROUTE_PAGE,      /* GET / */
	GW_ROUTE_FORM,      /* POST / */
	GW_ROUTE_STATIC,    /* /static/... */
	GW_ROUTE_POLLS,     /* /api/v1/polls[/{poll}] */
	GW_ROUTE_VOTES,     /* /api/v1/polls/{poll}/votes */
	GW_ROUTE_VISITS,    /* /visits */
	GW_ROUTE_HEALTHZ,
	GW_ROUTE_READYZ,
	GW_ROUTE_METRICS,
	GW_ROUTE_OTHER,     /* unknown paths */
	GW_ROUTE_COUNT,
};

/* Statuses counted by exact value; anything else counts as "other". */
#define GW_STATUS_COUNT 14

struct gw_metrics {
	metrics_counter requests[GW_ROUTE_COUNT][GW_STATUS_COUNT];
	metrics_counter votes_accepted;   /* PubAck received, new cast */
	metrics_counter votes_duplicate;  /* PubAck said duplicate (msg id) */
	metrics_counter votes_unchanged;  /* same option as before: not sent */
	metrics_counter votes_idempotent; /* answered from the idempotency store */
	metrics_counter votes_rejected;   /* 4xx for a vote request */
	metrics_counter votes_unavailable;/* 503 for a vote request */
	metrics_counter dedup_bypass;     /* vote published without Redis */
	metrics_counter dedup_errors;     /* Redis command or connection errors */
	metrics_counter rate_limited;     /* 429 answers */
	metrics_counter connections_cut;  /* request not in by its deadline */
	_Atomic long votes_in_flight;     /* suspended vote requests */
	struct metrics_hist publish_seconds; /* publish -> PubAck */
	struct metrics_hist request_seconds; /* vote request, first byte -> answer */
};

void gwmetrics_init(struct gw_metrics *m);

/* Counts one finished request. */
void gwmetrics_count_request(struct gw_metrics *m, enum gw_route route,
    unsigned status);

const char *gwmetrics_route_name(enum gw_route route);

/* Appends every metric in the Prometheus text format. ready and
 * redis_up are gauges sampled by the caller. */
void gwmetrics_write(struct gw_metrics *m, struct buf *b, int ready,
    int redis_up);

#endif
