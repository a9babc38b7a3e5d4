/*
 * consumer: the durable pull consumer `processor` on stream VOTES, created
 * with js_AddConsumer (never by a subscription, which would delete it on
 * unsubscribe), and read with pull requests of our own on a plain inbox
 * subscription. Not natsSubscription_Fetch: in nats.c 3.4.1 it can write
 * past the end of its own message array when messages of an earlier pull
 * request arrive during a fetch (seen under valgrind at ~80k msgs/s: heap
 * corruption, then an abort). Here a fetch never returns more than it was
 * asked for; surplus messages wait in the subscription for the next fetch.
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

enum consumer_ack {
	CONSUMER_ACK,         /* done: never deliver again */
	CONSUMER_NAK,         /* deliver again now (to anyone) */
	CONSUMER_IN_PROGRESS, /* still working: restart AckWait */
	CONSUMER_TERM,        /* poison: never deliver again */
};

struct consumer {
	natsConnection *nc;            /* borrowed */
	jsCtx *js;                     /* borrowed */
	struct consumer_config cfg;    /* strings borrowed */
	natsSubscription *sub;         /* on inbox.*; NULL until bound */
	char inbox[64];                /* "_INBOX.<nuid>" */
	char next_subject[256];        /* $JS.API.CONSUMER.MSG.NEXT.<s>.<c> */
	uint64_t fetch_id;             /* pull requests sent */
};

/* Zeroes c and remembers nc, js and cfg (all borrowed). */
void consumer_init(struct consumer *c, natsConnection *nc, jsCtx *js,
    const struct consumer_config *cfg);

/*
 * Ensures stream VOTES and the durable consumer with cfg's settings
 * (created, or updated in place), then binds a pull subscription to it,
 * replacing any earlier binding. Returns 0, or -1 and logs why.
 */
int consumer_bind(struct consumer *c) __attribute__((warn_unused_result));

/* Fetches up to batch messages (never more), waiting about wait_ms at
 * most. On CONSUMER_MESSAGES, list belongs to the caller
 * (natsMsgList_Destroy). */
enum consumer_fetch_result consumer_fetch(struct consumer *c,
    natsMsgList *list, int batch, long wait_ms);

/*
 * Asks the server for the consumer's state: *pending is the lag (messages
 * not yet delivered), *ack_pending those delivered but not acked. Returns
 * 0, 1 if the consumer no longer exists (rebind), or -1 on other errors.
 */
int consumer_state(struct consumer *c, uint64_t *pending,
    uint64_t *ack_pending) __attribute__((warn_unused_result));

/*
 * Acknowledges msg (fetched by consumer_fetch) as kind. Thread-safe: any
 * thread may ack any message. Returns 0, or -1 if it could not be sent
 * (the server then redelivers after AckWait, which the sequence rule
 * makes harmless).
 */
int consumer_ack(natsConnection *nc, natsMsg *msg, enum consumer_ack kind);

/* Drops the binding (the durable consumer stays on the server). */
void consumer_fini(struct consumer *c);

#endif
