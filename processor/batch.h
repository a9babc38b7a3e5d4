/*
 * batch: picks, from a batch of casts, the one that counts per (poll,
 * voter): the highest stream sequence. Pure, so it is unit-tested alone.
 */
#ifndef TALLY_PROCESSOR_BATCH_H
#define TALLY_PROCESSOR_BATCH_H

#include <stddef.h>

#include "store.h"

/*
 * Fills out (room for n) with pointers to the winning casts, ordered by
 * (poll, voter) in byte order, one per pair, and returns how many. The
 * fixed order is also the order rows are locked in, so concurrent batches
 * from several processors lock alike and seldom deadlock.
 */
size_t batch_latest(const struct store_cast *casts, size_t n,
    const struct store_cast **out);

#endif
