/*
 * deadletter: copies of poison messages, published on DEADLETTER_SUBJECT
 * (outside stream VOTES's subjects) and kept by the small stream VOTES_DLQ.
 * The original also stays in VOTES at its sequence (limits retention);
 * the copy is what operators look at: `nats stream view VOTES_DLQ`.
 */
#ifndef TALLY_PROCESSOR_DEADLETTER_H
#define TALLY_PROCESSOR_DEADLETTER_H

#include <nats/nats.h>
#include <stdatomic.h>
#include <stdint.h>

#include "metrics.h"

#define DEADLETTER_STREAM "VOTES_DLQ"
#define DEADLETTER_SUBJECT "tally.deadletter.votes"

/* Creates stream VOTES_DLQ if missing (idempotent, safe from several
 * processes). Returns 0, or -1 and logs why. */
int deadletter_ensure(jsCtx *js, long replicas)
    __attribute__((warn_unused_result));

/*
 * The copies are published asynchronously, so that poison never holds up
 * the fetch thread: a copy waits for its PubAck (DEADLETTER_ACK_WAIT_MS)
 * in nats.c while fetching goes on. A failed copy (no PubAck, a JetStream
 * error, or more than DEADLETTER_MAX_PENDING copies unanswered) is logged
 * with its sequence and counted in *failed; the original stays in VOTES.
 */
#define DEADLETTER_ACK_WAIT_MS 5000
#define DEADLETTER_MAX_PENDING 1000

struct deadletter {
	metrics_counter *failed; /* borrowed */
	_Atomic long pending;    /* copies published, not yet answered */
};

void deadletter_init(struct deadletter *d, metrics_counter *failed);

/* Sets the async publish handler on jso, before the jsCtx is made. */
void deadletter_options(struct deadletter *d, jsOptions *jso);

/*
 * Publishes a copy of msg (payload and headers) with Tally-Error: why,
 * Tally-Stream-Seq: seq and Tally-Subject: the original subject. Never
 * waits for the PubAck; what fails is logged and counted, here or later.
 */
void deadletter_publish(struct deadletter *d, jsCtx *js, natsMsg *msg,
    uint64_t seq, const char *why);

/* Waits up to timeout_ms for the copies still unanswered; returns how
 * many remain (logged). */
long deadletter_wait(struct deadletter *d, long timeout_ms);

#endif
