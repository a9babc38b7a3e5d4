/*
 * metrics: lock-free counters and histograms, written out in the Prometheus
 * text format. Updates are relaxed atomics: safe from any thread, cheap on
 * the hot path. Each daemon keeps its own metrics in its context struct and
 * writes them with the metrics_write_* functions on GET /metrics.
 */
#ifndef TALLY_METRICS_H
#define TALLY_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef _Atomic uint64_t metrics_counter;

#define METRICS_HIST_MAX_BUCKETS 16

/* A histogram of durations or sizes. bounds are upper bucket bounds in the
 * unit named by the metric (seconds for durations), ascending. */
struct metrics_hist {
	const double *bounds;  /* borrowed, n entries */
	size_t n;
	_Atomic uint64_t counts[METRICS_HIST_MAX_BUCKETS + 1]; /* last: +Inf */
	_Atomic uint64_t sum_micro; /* sum of observations times 1e6 */
	_Atomic uint64_t count;
};

/* Latency bounds in seconds, 100 us to 10 s. */
extern const double metrics_latency_bounds[];
extern const size_t metrics_latency_bounds_n;

static inline void
metrics_inc(metrics_counter *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void
metrics_add(metrics_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t
metrics_get(metrics_counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Sets bounds (borrowed; at most METRICS_HIST_MAX_BUCKETS) and zeroes. */
void metrics_hist_init(struct metrics_hist *h, const double *bounds, size_t n);
void metrics_hist_observe(struct metrics_hist *h, double value);

/* Writes "# HELP", "# TYPE" and the sample. labels is "" or
 * "route=\"/\",status=\"200\"" (without braces). Counters and gauges write
 * their HELP/TYPE lines only when help is non-NULL, so several labelled
 * samples of one family follow a single header. */
void metrics_write_counter(struct buf *b, const char *name, const char *help,
    const char *labels, uint64_t value);
void metrics_write_gauge(struct buf *b, const char *name, const char *help,
    const char *labels, double value);
void metrics_write_hist(struct buf *b, const char *name, const char *help,
    struct metrics_hist *h);

/* Monotonic clock in microseconds, for durations. */
uint64_t metrics_now_us(void);

#endif
