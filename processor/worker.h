/*
 * worker: the processor's hot path, fetch -> decode -> store -> ack.
 *
 * Threads share the work so that NATS and PostgreSQL are busy at the same
 * time: a fetch thread pulls a batch, decodes it and terminates its
 * poison, then queues it; each of cfg.stores store threads (one PostgreSQL
 * connection each) takes the oldest queued batch, applies it in one
 * transaction and acks its messages only after COMMIT. Batches commute
 * (store.h), so they may commit in any order and in parallel. At most
 * stores + 2 batches are in the process at once (one per store thread,
 * two queued), which is what MaxAckPending must allow for.
 */
#ifndef TALLY_PROCESSOR_WORKER_H
#define TALLY_PROCESSOR_WORKER_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "buf.h"
#include "consumer.h"
#include "metrics.h"
#include "store.h"

#define WORKER_STORES_MAX 8
/* Batches queued beyond the ones being stored. */
#define WORKER_QUEUED 2
#define WORKER_BATCHES (WORKER_STORES_MAX + WORKER_QUEUED)

struct worker_config {
	long batch_max;       /* messages per fetch and per transaction */
	long fetch_wait_ms;   /* longest wait for a batch to fill */
	long max_backoff_ms;  /* ceiling of reconnect and retry backoff */
	long lag_refresh_ms;  /* how often consumer lag is asked for */
	long replicas;        /* of VOTES_DLQ when this creates it */
	long stores;          /* store threads, 1..WORKER_STORES_MAX */
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
	struct metrics_hist batch_size;
	struct metrics_hist batch_seconds; /* store + ack */
	_Atomic uint64_t lag;          /* consumer NumPending */
	_Atomic uint64_t ack_pending;  /* consumer NumAckPending */
	atomic_bool bound;             /* consumer bound */
	atomic_bool pg_up;             /* last statement or connect worked */
};

enum worker_slot {
	WORKER_SLOT_FREE,          /* the fetch thread may fill it */
	WORKER_SLOT_QUEUED,        /* filled, waiting for a store thread */
	WORKER_SLOT_STORING,       /* a store thread holds it */
};

struct worker_batch {
	natsMsgList list;          /* every message fetched; owned */
	natsMsg **acks;            /* the good ones, parallel to casts */
	struct store_cast *casts;
	size_t n;                  /* good messages */
	enum worker_slot state;
	uint64_t ticket;           /* fill order: the oldest is stored first */
};

struct worker_store_thread {
	struct worker *w;
	struct store *store;       /* borrowed */
	pthread_t thread;
	bool started;
};

struct worker {
	struct worker_config cfg;
	natsConnection *nc;        /* borrowed */
	jsCtx *js;                 /* borrowed */
	struct consumer consumer;  /* used by the fetch thread only */
	struct worker_store_thread st[WORKER_STORES_MAX];
	struct worker_metrics m;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct worker_batch slots[WORKER_BATCHES];
	size_t nslots;             /* cfg.stores + WORKER_QUEUED */
	uint64_t tickets;          /* batches filled so far */
	bool fetch_done;
	pthread_t fetcher;
};

/*
 * Prepares w; nc, js and stores[0 .. cfg->stores-1] (one per store
 * thread) are borrowed and must outlive it; ccfg is copied (its strings
 * borrowed). Returns 0, or -1 when out of memory.
 */
int worker_init(struct worker *w, const struct worker_config *cfg,
    natsConnection *nc, jsCtx *js, const struct consumer_config *ccfg,
    struct store *const *stores) __attribute__((warn_unused_result));

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
