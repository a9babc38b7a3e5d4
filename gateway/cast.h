/*
 * cast: the asynchronous journey of one valid vote:
 *
 *   CHECK in Redis ──idempotent repeat──────────────▶ replay the first answer
 *        │        ──same option as now─────────────▶ 200 "unchanged"
 *        ▼
 *   publish to JetStream ──error / timeout / full──▶ 503
 *        │ PubAck (seq, duplicate)
 *        ▼
 *   RECORD option:seq in Redis (higher seq wins) ──▶ 200 "accepted"
 *
 * Each step runs on the thread that finished the previous one (the Redis
 * thread, then a nats.c thread); the connection stays suspended throughout
 * and is resumed exactly once, when the outcome is set.
 */
#ifndef TALLY_GATEWAY_CAST_H
#define TALLY_GATEWAY_CAST_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"

/*
 * Starts the journey of r->vote (parsed and checked against r->poll;
 * cast_id holds the Idempotency-Key if r->has_idem). Returns true if r was
 * suspended (the answer comes after the resume), false if the outcome is
 * already set (503: too many votes in flight, or no randomness).
 */
bool cast_start(struct request *r);

/* The JSON answer to an accepted or unchanged vote, into out (cap bytes).
 * Returns its length. */
size_t cast_answer_json(const struct request *r, char *out, size_t cap);

#endif
