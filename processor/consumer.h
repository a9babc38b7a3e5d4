/*
 * consumer: the durable pull consumer `processor` on stream VOTES, created
 * with js_AddConsumer (never by a subscription, which would delete it on
 * unsubscribe), and read with pull requests of our own on a plain inbox
 * subscription. Not natsSubscription_Fetch: in nats.c 3.4.1 it can write
 * past the end of its own message array when messages of an earlier pull
 * request arrive during a fetch (seen under valgrind at ~80k msgs/s: heap
 * corruption, then an abort). Not a fetch either: the caller keeps a
 * request open and takes messages one by one as they arrive, so that none
 * waits for a batch to fill (worker.h); how much it asks for is its own
 * bound on the messages it holds.
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

enum consumer_next_result {
	CONSUMER_NEXT_MSG,    /* *msg is a message of the stream */
	CONSUMER_NEXT_NONE,   /* nothing arrived within the timeout */
	CONSUMER_NEXT_END,    /* the server ended the current request (404,
	                       * 408 expired, 409 ...): ask again */
	CONSUMER_NEXT_FAILED, /* NATS down, not bound, ...: back off */
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
	int64_t stream_ns;             /* Created of the bound stream, ns */
	char reply[96];                /* the current request's inbox */
};

/* Zeroes c and remembers nc, js and cfg (all borrowed). */
void consumer_init(struct consumer *c, natsConnection *nc, jsCtx *js,
    const struct consumer_config *cfg);

/*
 * Ensures stream VOTES (created, or updated in place) and reads its
 * creation time (jsStreamInfo.Created, ns since the epoch) into
 * *created_ns: what tells a recreated stream from the old one. Returns 0,
 * or -1 and logs why.
 */
int consumer_stream_ensure(struct consumer *c, int64_t *created_ns)
    __attribute__((warn_unused_result));

/* Reads the creation time of stream VOTES as it is now (no create).
 * Returns 0, or -1 (missing, NATS down). */
int consumer_stream_created(struct consumer *c, int64_t *created_ns)
    __attribute__((warn_unused_result));

/*
 * Ensures the durable consumer with cfg's settings (created, or updated in
 * place) on stream VOTES, which must still be the one created at
 * created_ns (checked after the consumer: a consumer made on a recreated
 * stream fails the bind), then binds a pull subscription to it, replacing
 * any earlier binding; c->stream_ns is then created_ns. Returns 0, or -1
 * and logs why.
 */
int consumer_bind(struct consumer *c, int64_t created_ns)
    __attribute__((warn_unused_result));

/*
 * The pull subscription of consumer_bind alone, for a consumer someone
 * else made (cfg.durable names it; e.g. tallyctl replay's own), replacing
 * any earlier one. Returns 0, or -1 and logs why.
 */
int consumer_attach(struct consumer *c) __attribute__((warn_unused_result));

/*
 * Asks the server for up to n more messages, delivered as they come while
 * the request lives (at most expires_ms). expires_ms 0 asks only for what
 * the stream holds now (no_wait): the server sends that at once, in one
 * burst, then ends the request (404 if it had nothing, 408 otherwise).
 * The new request becomes the current one: only its end is reported by
 * consumer_next (an earlier request's status is ignored). Returns 0, or
 * -1 if it could not be sent.
 */
int consumer_request(struct consumer *c, int n, long expires_ms)
    __attribute__((warn_unused_result));

/*
 * Waits at most timeout_ms (>= 1) for the next message of any request.
 * On CONSUMER_NEXT_MSG, *msg belongs to the caller (natsMsg_Destroy, after
 * consumer_ack).
 */
enum consumer_next_result consumer_next(struct consumer *c, natsMsg **msg,
    long timeout_ms);

/* Messages already received and waiting to be taken by consumer_next. */
int consumer_queued(struct consumer *c);

/*
 * Asks the server for the consumer's state: *pending is the lag (messages
 * not yet delivered), *ack_pending those delivered but not acked. Returns
 * 0, 1 if the consumer no longer exists (rebind), or -1 on other errors.
 */
int consumer_state(struct consumer *c, uint64_t *pending,
    uint64_t *ack_pending) __attribute__((warn_unused_result));

/*
 * Acknowledges msg (from consumer_next) as kind. Thread-safe: any
 * thread may ack any message. Returns 0, or -1 if it could not be sent
 * (the server then redelivers after AckWait, which the sequence rule
 * makes harmless).
 */
int consumer_ack(natsConnection *nc, natsMsg *msg, enum consumer_ack kind);

/* Drops the binding (the durable consumer stays on the server). */
void consumer_fini(struct consumer *c);

#endif
