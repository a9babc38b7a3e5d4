/*
 * publish: JetStream asynchronous publishing of votes, with a bounded
 * number in flight and an ack timeout on each.
 *
 * publish_submit returns at once; the job's done callback runs on a nats.c
 * thread when the PubAck (or an error, or the timeout) arrives. No thread
 * waits per vote.
 */
#ifndef TALLY_GATEWAY_PUBLISH_H
#define TALLY_GATEWAY_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>

#include "gwmetrics.h"
#include "natsconn.h"
#include "vote.h"

enum publish_status {
	PUBLISH_OK,           /* PubAck: seq (and duplicate) are set */
	PUBLISH_FULL,         /* max_pending publishes in flight already */
	PUBLISH_DISCONNECTED, /* NATS is not connected */
	PUBLISH_TIMEOUT,      /* no PubAck within timeout_ms */
	PUBLISH_FAILED,       /* any other error (no stream, encode, ...) */
};

/* One publish; owned by the caller (inside its request state) and kept
 * valid until done runs. vote must pass vote_check and carry a cast_id,
 * which becomes the Nats-Msg-Id. */
struct publish_job {
	const struct vote *vote;
	enum publish_status status;
	uint64_t seq;
	bool duplicate;
	bool unsent;      /* failed, and surely not in the stream: refused
			   * before it was sent, or JetStream answered an
			   * error (a timeout or a lost connection: unknown) */
	uint64_t started_us;
	void (*done)(struct publish_job *job, void *cls);
	void *cls;
	struct publish_job *next_in_bucket; /* private */
	const void *msg;                    /* private: the natsMsg in flight */
};

struct publish_config {
	long max_pending; /* publishes awaiting a PubAck; more: PUBLISH_FULL */
	long timeout_ms;  /* per-publish MaxWait for the PubAck */
	/* Called (on the stream thread) with VOTES's creation time when it
	 * is first seen and whenever it changes: a stream made again. */
	void (*on_stream)(int64_t created, void *cls);
	void *on_stream_cls;
};

struct publisher;

/* Opens the NATS connection (retrying in the background) and starts a
 * thread that creates or updates stream VOTES until it succeeds. NULL on a
 * fatal setting (bad URL, unreadable TLS file). */
struct publisher *publish_open(const struct publish_config *cfg,
    const struct natsconn_config *nats, struct gw_metrics *m)
    __attribute__((warn_unused_result));

/*
 * Publishes job->vote to votes.<poll>. Returns 0 if it is in flight (done
 * will run), or -1 with job->status set (FULL, DISCONNECTED, FAILED) if it
 * was not sent (done will not run).
 */
int publish_submit(struct publisher *p, struct publish_job *job)
    __attribute__((warn_unused_result));

/* NATS connected and stream VOTES created or verified. Any thread. */
bool publish_ready(struct publisher *p);

/* Publishes in flight now. */
long publish_pending(struct publisher *p);

/* Waits (up to timeout_ms) for in-flight PubAcks, stops the stream thread,
 * closes NATS. Accepts NULL. */
void publish_close(struct publisher *p, long timeout_ms);

#endif
