/*
 * deadletter: copies of poison messages, published on DEADLETTER_SUBJECT
 * (outside stream VOTES's subjects) and kept by the small stream VOTES_DLQ.
 * The original also stays in VOTES at its sequence (limits retention);
 * the copy is what operators look at: `nats stream view VOTES_DLQ`.
 */
#ifndef TALLY_PROCESSOR_DEADLETTER_H
#define TALLY_PROCESSOR_DEADLETTER_H

#include <nats/nats.h>
#include <stdint.h>

#define DEADLETTER_STREAM "VOTES_DLQ"
#define DEADLETTER_SUBJECT "tally.deadletter.votes"

/* Creates stream VOTES_DLQ if missing (idempotent, safe from several
 * processes). Returns 0, or -1 and logs why. */
int deadletter_ensure(jsCtx *js, long replicas)
    __attribute__((warn_unused_result));

/*
 * Publishes a copy of msg (payload and headers) with Tally-Error: why,
 * Tally-Stream-Seq: seq and Tally-Subject: the original subject, and waits
 * for the PubAck. Returns 0, or -1 and logs why.
 */
int deadletter_publish(jsCtx *js, natsMsg *msg, uint64_t seq, const char *why)
    __attribute__((warn_unused_result));

#endif
