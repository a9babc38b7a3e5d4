/*
 * batch.c - the latest cast per (poll, voter) within one batch.
 */
#define _DEFAULT_SOURCE
#include "batch.h"

#include <stdlib.h>
#include <string.h>

/* Sorts pointers, not the 500-byte casts. */
static int
batch_cmp(const void *a, const void *b)
{
	const struct store_cast *x = *(const struct store_cast *const *)a;
	const struct store_cast *y = *(const struct store_cast *const *)b;
	int c;

	if ((c = strcmp(x->vote.poll, y->vote.poll)) != 0)
		return c;
	if ((c = strcmp(x->vote.voter, y->vote.voter)) != 0)
		return c;
	/* Highest sequence first: it is the one kept. */
	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

size_t
batch_latest(const struct store_cast *casts, size_t n,
    const struct store_cast **out)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++)
		out[i] = &casts[i];
	qsort(out, n, sizeof(*out), batch_cmp);
	/* Sorted: the first of each (poll, voter) run is its winner. */
	for (size_t i = 0; i < n; i++) {
		if (kept > 0 &&
		    strcmp(out[kept - 1]->vote.poll, out[i]->vote.poll) == 0 &&
		    strcmp(out[kept - 1]->vote.voter, out[i]->vote.voter) == 0)
			continue;
		out[kept++] = out[i];
	}
	return kept;
}
