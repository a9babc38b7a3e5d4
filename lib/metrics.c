/*
 * metrics.c - Prometheus text exposition.
 */
#define _POSIX_C_SOURCE 200809L
#include "metrics.h"

#include <string.h>
#include <time.h>

const double metrics_latency_bounds[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t metrics_latency_bounds_n =
    sizeof(metrics_latency_bounds) / sizeof(metrics_latency_bounds[0]);

void
metrics_hist_init(struct metrics_hist *h, const double *bounds, size_t n)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->n = n < METRICS_HIST_MAX_BUCKETS ? n : METRICS_HIST_MAX_BUCKETS;
}

void
metrics_hist_observe(struct metrics_hist *h, double value)
{
	size_t i;

	for (i = 0; i < h->n && value > h->bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_micro,
	    value > 0 ? (uint64_t)(value * 1e6) : 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

static void
metrics_header(struct buf *b, const char *name, const char *help,
    const char *type)
{
	if (help != NULL)
		buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		    type);
}

void
metrics_write_counter(struct buf *b, const char *name, const char *help,
    const char *labels, uint64_t value)
{
	metrics_header(b, name, help, "counter");
	if (labels != NULL && labels[0] != '\0')
		buf_printf(b, "%s{%s} %llu\n", name, labels,
		    (unsigned long long)value);
	else
		buf_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

void
metrics_write_gauge(struct buf *b, const char *name, const char *help,
    const char *labels, double value)
{
	metrics_header(b, name, help, "gauge");
	if (labels != NULL && labels[0] != '\0')
		buf_printf(b, "%s{%s} %.17g\n", name, labels, value);
	else
		buf_printf(b, "%s %.17g\n", name, value);
}

void
metrics_write_hist(struct buf *b, const char *name, const char *help,
    struct metrics_hist *h)
{
	uint64_t cum = 0;

	metrics_header(b, name, help, "histogram");
	for (size_t i = 0; i <= h->n; i++) {
		cum += atomic_load_explicit(&h->counts[i],
		    memory_order_relaxed);
		if (i < h->n)
			buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
			    h->bounds[i], (unsigned long long)cum);
		else
			buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)cum);
	}
	buf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name,
	    (double)atomic_load_explicit(&h->sum_micro,
	    memory_order_relaxed) / 1e6, name, (unsigned long long)cum);
}

uint64_t
metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
