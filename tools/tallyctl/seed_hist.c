/*
 * seed_hist.c - log-linear latency buckets.
 */
#include "seed_hist.h"

#include <string.h>

void
seed_hist_init(struct seed_hist *h)
{
	memset(h, 0, sizeof(*h));
}

/* Position of the highest set bit (v > 0). */
static unsigned
seed_hist_msb(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

unsigned
seed_hist_bucket(uint64_t us)
{
	unsigned e, sub, b;

	if (us < 32)
		return (unsigned)us;
	e = seed_hist_msb(us); /* >= 5 */
	/* The 4 bits after the leading one pick the sub-bucket. */
	sub = (unsigned)(us >> (e - 4)) & 15u;
	b = 32 + (e - 5) * 16 + sub;
	return b < SEED_HIST_BUCKETS ? b : SEED_HIST_BUCKETS - 1;
}

uint64_t
seed_hist_bucket_top(unsigned bucket)
{
	unsigned e, sub;

	if (bucket < 32)
		return bucket;
	e = (bucket - 32) / 16 + 5;
	sub = (bucket - 32) % 16;
	return ((uint64_t)(16 + sub + 1) << (e - 4)) - 1;
}

void
seed_hist_record(struct seed_hist *h, uint64_t us)
{
	h->counts[seed_hist_bucket(us)]++;
	h->total++;
	h->sum_us += us;
	if (us > h->max_us)
		h->max_us = us;
}

void
seed_hist_merge(struct seed_hist *dst, const struct seed_hist *src)
{
	for (unsigned i = 0; i < SEED_HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->sum_us += src->sum_us;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
}

uint64_t
seed_hist_quantile(const struct seed_hist *h, double q)
{
	uint64_t rank, seen = 0, top;

	if (h->total == 0)
		return 0;
	/* The smallest value with at least q of all values at or below it. */
	rank = (uint64_t)(q * (double)h->total + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->total)
		rank = h->total;
	for (unsigned i = 0; i < SEED_HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			top = seed_hist_bucket_top(i);
			return top < h->max_us ? top : h->max_us;
		}
	}
	return h->max_us;
}
