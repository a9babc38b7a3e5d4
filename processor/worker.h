/*
 * worker: the processor's hot path, fetch -> decode -> store -> ack, as a
 * group commit.
 *
 * A fetch thread asks the server for messages (every cfg.fetch_interval_ms
 * at most, for what the stream holds then, unless the last request came
 * back full; or, with 0, by keeping a request open) and appends each
 * message as it arrives, decoded (poison terminated at once), to a queue.
 * Each of cfg.stores store threads (one PostgreSQL connection each), when
 * free, takes everything queued, up to batch_max, at once, applies it in
 * one transaction and acks its messages only after COMMIT. It waits for a
 * batch to fill no longer than cfg.linger_ms after its first message was
 * queued. So a lone vote is committed within a few ms, and under load the
 * batches grow by themselves: what arrives during one commit (and the
 * linger) is the next batch; a steady trickle no longer costs PostgreSQL
 * one transaction per few votes. Batches commute (store.h), so they may commit in any order and in
 * parallel. A processor holds at most batch_max x (stores + WORKER_QUEUED)
 * messages (queued, being stored, or asked for and not yet arrived),
 * which is what MaxAckPending must allow for.
 *
 * Binding records the stream in PostgreSQL first (store_stream_use, on a
 * connection of the fetch thread's own), then makes the consumer; every
 * message is tagged with the stream its binding was made on, a batch holds
 * one stream's messages only, and a batch whose stream is no longer the
 * recorded one (VOTES was recreated meanwhile) writes nothing: its
 * messages are Nak'd and the fetch thread binds again.
 */
#ifndef TALLY_PROCESSOR_WORKER_H
#define TALLY_PROCESSOR_WORKER_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "buf.h"
#include "consumer.h"
#include "deadletter.h"
#include "metrics.h"
#include "store.h"

#define WORKER_STORES_MAX 8
/* Batches' worth of messages held beyond the ones being stored. */
#define WORKER_QUEUED 2

struct worker_config {
	long batch_max;       /* most messages per transaction */
	long fetch_wait_ms;   /* lifetime of one pull request at the server */
	long fetch_interval_ms; /* 0: a request stays open, messages come as
	                         * stored; else no_wait requests, at most one
	                         * per this many ms unless the last one filled */
	long max_backoff_ms;  /* ceiling of reconnect and retry backoff */
	long lag_refresh_ms;  /* how often consumer lag is asked for */
	long replicas;        /* of VOTES_DLQ when this creates it */
	long stores;          /* store threads, 1..WORKER_STORES_MAX */
	long linger_ms;       /* longest wait for a batch to fill; 0: none */
};

struct worker_metrics {
	metrics_counter messages;      /* fetched */
	metrics_counter votes;         /* decoded good votes */
	metrics_counter applied;       /* votes rows inserted or replaced */
	metrics_counter poison;
	metrics_counter deadletter_failed;
	metrics_counter redeliveries;  /* messages with NumDelivered > 1 */
	metrics_counter pg_errors;
	metrics_counter nats_errors;   /* failed fetches and binds */
	metrics_counter batches;
	metrics_counter stale;         /* votes of batches of a replaced stream */
	struct metrics_hist batch_size;
	struct metrics_hist batch_seconds; /* store + ack */
	struct metrics_hist commit_delay;  /* stream store time -> COMMIT */
	_Atomic uint64_t lag;          /* consumer NumPending */
	_Atomic uint64_t ack_pending;  /* consumer NumAckPending */
	atomic_bool bound;             /* consumer bound */
	atomic_bool pg_up;             /* last statement or connect worked */
};

/* A decoded message waiting for a store thread. */
struct worker_entry {
	natsMsg *msg;              /* owned; acked after COMMIT */
	int64_t stored_ns;         /* when the stream stored it (Unix ns) */
	uint64_t queued_us;        /* when it was queued (metrics_now_us) */
	int64_t stream_ns;         /* Created of the stream it came from */
	struct store_cast cast;
};

struct worker_store_thread {
	struct worker *w;
	struct store *store;       /* borrowed */
	natsMsg **msgs;            /* the batch being stored, owned */
	struct store_cast *casts;  /* parallel to msgs */
	int64_t *stored_ns;        /* parallel to msgs */
	int64_t stream_ns;         /* the batch's stream (all alike) */
	size_t n;
	pthread_t thread;
	bool started;
};

struct worker {
	struct worker_config cfg;
	natsConnection *nc;        /* borrowed */
	jsCtx *js;                 /* borrowed */
	struct deadletter *dl;     /* borrowed: poison's copies */
	struct consumer consumer;  /* used by the fetch thread only */
	struct store *bind_store;  /* borrowed; the fetch thread's only */
	_Atomic int64_t stream_ns; /* Created of the bound stream */
	struct worker_store_thread st[WORKER_STORES_MAX];
	struct worker_metrics m;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* The queue: a ring; head and tail count entries taken and added
	 * since the start (index = count % ring_cap). Only the fetch thread
	 * moves tail and writes entries at or past it; store threads move
	 * head. Both under mu. */
	struct worker_entry *ring;
	size_t ring_cap;
	uint64_t head, tail;
	size_t storing;            /* messages held by store threads */
	size_t hold_max;           /* batch_max x (stores + WORKER_QUEUED) */
	bool fetch_done;
	pthread_t fetcher;
};

/*
 * Prepares w; nc, js, dl, stores[0 .. cfg->stores-1] (one per store thread)
 * and bind_store (the fetch thread's, for store_stream_use) are borrowed
 * and must outlive it; ccfg is copied (its strings borrowed). Returns 0,
 * or -1 when out of memory.
 */
int worker_init(struct worker *w, const struct worker_config *cfg,
    natsConnection *nc, jsCtx *js, struct deadletter *dl,
    const struct consumer_config *ccfg, struct store *const *stores,
    struct store *bind_store)
    __attribute__((warn_unused_result));

/*
 * Runs until a stop is requested (sig.h), then finishes the batches
 * already fetched (commit and ack) when PostgreSQL allows, and returns 0;
 * -1 only if a thread cannot start.
 */
int worker_run(struct worker *w) __attribute__((warn_unused_result));

/* Frees what worker_init made. Accepts a zeroed w. */
void worker_fini(struct worker *w);

/* True when NATS is connected, the consumer bound and PostgreSQL up. */
bool worker_ready(struct worker *w);

/* Appends the Prometheus text of w's metrics. Any thread. */
void worker_write_metrics(struct worker *w, struct buf *b);

#endif
