/*
 * seed_hist: a latency histogram for the load generator. Log-linear buckets
 * (HDR-style): exact below 32 us, then 16 buckets per power of two, so a
 * reported percentile is at most 1/16 (6.25 %) above the true value. Fixed
 * size, no allocation: one per thread, merged at the end.
 */
#ifndef TALLYCTL_SEED_HIST_H
#define TALLYCTL_SEED_HIST_H

#include <stdint.h>

#define SEED_HIST_BUCKETS (32 + 36 * 16) /* up to 2^41 us, about 25 days */

struct seed_hist {
	uint64_t counts[SEED_HIST_BUCKETS];
	uint64_t total;  /* values recorded */
	uint64_t max_us; /* largest value recorded, exact */
	uint64_t sum_us; /* for the mean */
};

/* Zeroes h. */
void seed_hist_init(struct seed_hist *h);

/* Records one value, in microseconds. */
void seed_hist_record(struct seed_hist *h, uint64_t us);

/* Adds src's counts into dst. */
void seed_hist_merge(struct seed_hist *dst, const struct seed_hist *src);

/*
 * The value at quantile q (0 < q <= 1: 0.5, 0.99, 0.999), in microseconds:
 * the upper edge of the bucket holding it, never above max_us. 0 if empty.
 */
uint64_t seed_hist_quantile(const struct seed_hist *h, double q);

/* Bucket index of a value, and the largest value that bucket holds. */
unsigned seed_hist_bucket(uint64_t us);
uint64_t seed_hist_bucket_top(unsigned bucket);

#endif
