/*
 * ratelimit: an optional token bucket per client address for vote
 * requests (RATE_LIMIT_PER_S, RATE_LIMIT_BURST). Buckets live in a fixed
 * table, so memory is bounded whatever the number of clients; when two
 * addresses share a slot the newer one takes it over (both get a fresh
 * bucket), which errs on the side of letting votes through.
 */
#ifndef TALLY_GATEWAY_RATELIMIT_H
#define TALLY_GATEWAY_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* NULL when out of memory. per_s > 0. */
struct ratelimit *ratelimit_new(long per_s, long burst)
    __attribute__((warn_unused_result));
void ratelimit_free(struct ratelimit *rl);

/* Takes one token for client (an address as text) at now_us. Returns
 * false when the client is over its rate. Thread-safe. */
bool ratelimit_allow(struct ratelimit *rl, const char *client,
    uint64_t now_us);

#endif
