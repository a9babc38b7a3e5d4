/*
 * consumer: the durable pull consumer `processor` on stream VOTES, created
 * with js_AddConsumer and then bound to. (A durable that js_PullSubscribe
 * itself creates is deleted when the subscription is unsubscribed or
 * drained; one we create and bind to is never deleted by us.)
 */
#ifndef TALLY_PROCESSOR_CONSUMER_H
#define TALLY_PROCESSOR_CONSUMER_H

#include <nats/nats.h>
#include <stdint.h>

struct consumer_config {
	const char *durable;   /* consumer name, "processor" */
	long ack_wait_s;       /* redelivery timer; > the longest batch */
	long max_ack_pending;  /* >= batch size x batches in flight x procs */
	long max_deliver;      /* -1: unlimited (see docs/PROCESSOR.md) */
	long stream_replicas;  /* for natsconn_stream_ensure */
};

enum consumer_fetch_result {
	CONSUMER_MESSAGES, /* list holds at least one message */
	CONSUMER_EMPTY,    /* nothing arrived within the wait */
	CONSUMER_FAILED,   /* NATS down, consumer gone, ...: back off, rebind */
};

struct consumer {
	jsCtx *js;                     /* borrowed */
	struct consumer_config cfg;    /* strings borrowed */
	natsSubscription *sub;         /* NULL until bound */
};

/* Zeroes c and remembers js and cfg (both borrowed). */
void consumer_init(struct consumer *c, jsCtx *js,
    const struct consumer_config *cfg);

/*
 * Ensures stream VOTES and the durable consumer with cfg's settings
 * (created, or updated in place), then binds a pull subscription to it,
 * replacing any earlier binding. Returns 0, or -1 and logs why.
 */
int consumer_bind(struct consumer *c) __attribute__((warn_unused_result));

/* Fetches up to batch messages, waiting at most wait_ms. On
 * CONSUMER_MESSAGES, list belongs to the caller (natsMsgList_Destroy). */
enum consumer_fetch_result consumer_fetch(struct consumer *c,
    natsMsgList *list, int batch, long wait_ms);

/*
 * Asks the server for the consumer's state: *pending is the lag (messages
 * not yet delivered), *ack_pending those delivered but not acked. Returns
 * 0, 1 if the consumer no longer exists (rebind), or -1 on other errors.
 */
int consumer_state(struct consumer *c, uint64_t *pending,
    uint64_t *ack_pending) __attribute__((warn_unused_result));

/* Drops the binding (the durable consumer stays on the server). */
void consumer_fini(struct consumer *c);

#endif
