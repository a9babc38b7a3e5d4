/*
 * worker.c - fetch thread and store thread around a ring of batches.
 */
#define _POSIX_C_SOURCE 200809L
#include "worker.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadletter.h"
#include "log.h"
#include "message.h"
#include "natsconn.h"
#include "pgconn.h"
#include "sig.h"

static const double worker_size_bounds[] = {
	1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000,
};

int
worker_init(struct worker *w, const struct worker_config *cfg,
    natsConnection *nc, jsCtx *js, const struct consumer_config *ccfg,
    struct store *const *stores)
{
	memset(w, 0, sizeof(*w));
	w->cfg = *cfg;
	w->nc = nc;
	w->js = js;
	if (w->cfg.stores < 1)
		w->cfg.stores = 1;
	if (w->cfg.stores > WORKER_STORES_MAX)
		w->cfg.stores = WORKER_STORES_MAX;
	for (long i = 0; i < w->cfg.stores; i++) {
		w->st[i].w = w;
		w->st[i].store = stores[i];
	}
	w->nslots = (size_t)w->cfg.stores + WORKER_QUEUED;
	consumer_init(&w->consumer, nc, js, ccfg);
	metrics_hist_init(&w->m.batch_size, worker_size_bounds,
	    sizeof(worker_size_bounds) / sizeof(worker_size_bounds[0]));
	metrics_hist_init(&w->m.batch_seconds, metrics_latency_bounds,
	    metrics_latency_bounds_n);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cond, NULL);
	for (size_t i = 0; i < w->nslots; i++) {
		struct worker_batch *b = &w->slots[i];

		b->acks = calloc((size_t)cfg->batch_max, sizeof(*b->acks));
		b->casts = calloc((size_t)cfg->batch_max, sizeof(*b->casts));
		if (b->acks == NULL || b->casts == NULL) {
			log_error("out of memory for batches of %ld",
			    cfg->batch_max);
			return -1;
		}
	}
	return 0;
}

void
worker_fini(struct worker *w)
{
	for (size_t i = 0; i < WORKER_BATCHES; i++) {
		natsMsgList_Destroy(&w->slots[i].list);
		free(w->slots[i].acks);
		free(w->slots[i].casts);
	}
	consumer_fini(&w->consumer);
	if (w->cfg.batch_max > 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cond);
	}
	memset(w, 0, sizeof(*w));
}

bool
worker_ready(struct worker *w)
{
	return natsconn_connected(w->nc) && atomic_load(&w->m.bound) &&
	    atomic_load(&w->m.pg_up);
}

/* Poison never reaches the store: copy it aside, then Term it so the
 * server never redelivers it. If the copy fails, Term anyway: the
 * original stays in stream VOTES at seq (limits retention), and a
 * message that can never be stored must not circle forever. */
static void
worker_poison(struct worker *w, natsMsg *msg, uint64_t seq, const char *why)
{
	metrics_inc(&w->m.poison);
	log_warn("poison message seq %" PRIu64 " on %s: %s; terminated", seq,
	    natsMsg_GetSubject(msg), why);
	if (deadletter_publish(w->js, msg, seq, why) != 0)
		metrics_inc(&w->m.deadletter_failed);
	(void)consumer_ack(w->nc, msg, CONSUMER_TERM);
}

/* Decodes the fetched list into b: good votes to b->casts, poison out. */
static void
worker_decode(struct worker *w, struct worker_batch *b)
{
	b->n = 0;
	for (int i = 0; i < b->list.Count; i++) {
		natsMsg *msg = b->list.Msgs[i];
		jsMsgMetaData *meta = NULL;
		struct store_cast *c = &b->casts[b->n];
		const char *why = NULL;

		if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
			worker_poison(w, msg, 0, "no JetStream metadata");
			continue;
		}
		c->seq = meta->Sequence.Stream;
		if (meta->NumDelivered > 1)
			metrics_inc(&w->m.redeliveries);
		jsMsgMetaData_Destroy(meta);
		if (message_decode(natsMsg_GetSubject(msg),
		    (const uint8_t *)natsMsg_GetData(msg),
		    (size_t)natsMsg_GetDataLength(msg), &c->vote, &why) !=
		    MESSAGE_VOTE) {
			worker_poison(w, msg, c->seq, why);
			continue;
		}
		b->acks[b->n++] = msg;
	}
	metrics_add(&w->m.messages, (uint64_t)b->list.Count);
	metrics_add(&w->m.votes, b->n);
}

/* Asks for consumer lag; a vanished consumer (stream deleted and
 * recreated, consumer removed by hand) means bind again. */
static void
worker_refresh_lag(struct worker *w)
{
	uint64_t pending = 0, ack_pending = 0;

	switch (consumer_state(&w->consumer, &pending, &ack_pending)) {
	case 0:
		atomic_store(&w->m.lag, pending);
		atomic_store(&w->m.ack_pending, ack_pending);
		break;
	case 1:
		log_warn("nats: consumer %s is gone; recreating it",
		    w->consumer.cfg.durable);
		atomic_store(&w->m.bound, false);
		break;
	default:
		break;
	}
}

/* Waits on w->cond (w->mu held) for at most ms. Returns true on timeout. */
static bool
worker_wait_ms(struct worker *w, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(&w->cond, &w->mu, &ts) != 0;
}

/* A free slot, or NULL (w->mu held). */
static struct worker_batch *
worker_free_slot(struct worker *w)
{
	for (size_t i = 0; i < w->nslots; i++)
		if (w->slots[i].state == WORKER_SLOT_FREE)
			return &w->slots[i];
	return NULL;
}

/* The oldest queued slot, or NULL (w->mu held). */
static struct worker_batch *
worker_queued_slot(struct worker *w)
{
	struct worker_batch *oldest = NULL;

	for (size_t i = 0; i < w->nslots; i++) {
		struct worker_batch *b = &w->slots[i];

		if (b->state == WORKER_SLOT_QUEUED &&
		    (oldest == NULL || b->ticket < oldest->ticket))
			oldest = b;
	}
	return oldest;
}

static void *
worker_fetch_main(void *arg)
{
	struct worker *w = arg;
	uint64_t last_lag_us = 0;
	long backoff_ms = 100;
	int failures = 0;

	while (!sig_stop_requested()) {
		struct worker_batch *b;
		enum consumer_fetch_result r;
		natsMsgList list;

		if (!atomic_load(&w->m.bound)) {
			if (consumer_bind(&w->consumer) != 0 ||
			    deadletter_ensure(w->js, w->cfg.replicas) != 0) {
				metrics_inc(&w->m.nats_errors);
				if (sig_sleep_ms(pgconn_jitter_ms(backoff_ms)))
					break;
				backoff_ms = backoff_ms * 2 < w->cfg.max_backoff_ms
				    ? backoff_ms * 2 : w->cfg.max_backoff_ms;
				continue;
			}
			atomic_store(&w->m.bound, true);
			backoff_ms = 100;
			failures = 0;
		}
		if (metrics_now_us() - last_lag_us >=
		    (uint64_t)w->cfg.lag_refresh_ms * 1000) {
			last_lag_us = metrics_now_us();
			worker_refresh_lag(w);
			if (!atomic_load(&w->m.bound))
				continue;
		}
		/* A free slot first: never hold messages we cannot queue. */
		pthread_mutex_lock(&w->mu);
		if ((b = worker_free_slot(w)) == NULL) {
			worker_wait_ms(w, 200);
			pthread_mutex_unlock(&w->mu);
			continue;
		}
		pthread_mutex_unlock(&w->mu);

		r = consumer_fetch(&w->consumer, &list, (int)w->cfg.batch_max,
		    w->cfg.fetch_wait_ms);
		if (r == CONSUMER_EMPTY) {
			failures = 0;
			continue;
		}
		if (r == CONSUMER_FAILED) {
			metrics_inc(&w->m.nats_errors);
			/* NATS reconnects by itself; a few failures in a row
			 * while connected mean the binding itself is bad. */
			if (++failures >= 5 && natsconn_connected(w->nc))
				atomic_store(&w->m.bound, false);
			if (sig_sleep_ms(pgconn_jitter_ms(backoff_ms)))
				break;
			backoff_ms = backoff_ms * 2 < w->cfg.max_backoff_ms ?
			    backoff_ms * 2 : w->cfg.max_backoff_ms;
			continue;
		}
		failures = 0;
		backoff_ms = 100;
		b->list = list;
		worker_decode(w, b);
		pthread_mutex_lock(&w->mu);
		b->state = WORKER_SLOT_QUEUED;
		b->ticket = w->tickets++;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->mu);
	}
	pthread_mutex_lock(&w->mu);
	w->fetch_done = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct worker_waiting {
	struct worker *w;
	struct worker_batch *b;
};

/* While PostgreSQL is away, keep the batch ours: InProgress restarts the
 * server's AckWait, so it is not redelivered to another processor. And
 * say so on /readyz. */
static void
worker_in_progress(void *arg)
{
	struct worker_waiting *ww = arg;

	atomic_store(&ww->w->m.pg_up, false);
	for (size_t i = 0; i < ww->b->n; i++)
		(void)consumer_ack(ww->w->nc, ww->b->acks[i],
		    CONSUMER_IN_PROGRESS);
}

/* Stores one batch and acks it; returns false if it could not commit. */
static bool
worker_store(struct worker *w, struct store *store, struct worker_batch *b)
{
	struct worker_waiting ww = {w, b};
	struct store_result res;
	uint64_t t0 = metrics_now_us();

	if (b->n > 0) {
		if (store_apply_retry(store, b->casts, b->n, &res,
		    w->cfg.max_backoff_ms, worker_in_progress, &ww) != 0) {
			atomic_store(&w->m.pg_up, false);
			return false;
		}
		atomic_store(&w->m.pg_up, true);
		metrics_add(&w->m.applied, res.rows_changed);
	}
	/* After COMMIT only. A crash between COMMIT and these acks means
	 * redelivery, which the sequence rule turns into no change. */
	for (size_t i = 0; i < b->n; i++)
		(void)consumer_ack(w->nc, b->acks[i], CONSUMER_ACK);
	metrics_inc(&w->m.batches);
	metrics_hist_observe(&w->m.batch_size, (double)b->list.Count);
	metrics_hist_observe(&w->m.batch_seconds,
	    (double)(metrics_now_us() - t0) / 1e6);
	return true;
}

/* How long a store thread waits for a batch before it checks that
 * PostgreSQL is still there (so that /readyz tells an idle processor's
 * truth too). */
#define WORKER_PING_MS 1000

static void *
worker_store_main(void *arg)
{
	struct worker_store_thread *st = arg;
	struct worker *w = st->w;

	for (;;) {
		struct worker_batch *b;

		pthread_mutex_lock(&w->mu);
		while ((b = worker_queued_slot(w)) == NULL && !w->fetch_done) {
			if (!worker_wait_ms(w, WORKER_PING_MS))
				continue;
			pthread_mutex_unlock(&w->mu);
			atomic_store(&w->m.pg_up, store_ping(st->store) == 0);
			pthread_mutex_lock(&w->mu);
		}
		if (b == NULL) {
			pthread_mutex_unlock(&w->mu);
			break; /* fetching stopped and nothing is queued */
		}
		b->state = WORKER_SLOT_STORING;
		pthread_mutex_unlock(&w->mu);

		if (!worker_store(w, st->store, b)) {
			/* Stopping with PostgreSQL away: hand the batch
			 * back at once rather than after AckWait. */
			for (size_t i = 0; i < b->n; i++)
				(void)consumer_ack(w->nc, b->acks[i],
				    CONSUMER_NAK);
		}
		natsMsgList_Destroy(&b->list);
		memset(&b->list, 0, sizeof(b->list));
		b->n = 0;
		pthread_mutex_lock(&w->mu);
		b->state = WORKER_SLOT_FREE;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

int
worker_run(struct worker *w)
{
	int rc = 0;

	/* Connect every store first (waiting for PostgreSQL as long as it
	 * takes, or until a stop): no fetching while nothing can commit. */
	for (long i = 0; i < w->cfg.stores; i++)
		if (store_connect(w->st[i].store, w->cfg.max_backoff_ms) != 0)
			return 0; /* stop requested */
	atomic_store(&w->m.pg_up, true);
	for (long i = 0; i < w->cfg.stores; i++) {
		if (pthread_create(&w->st[i].thread, NULL, worker_store_main,
		    &w->st[i]) != 0) {
			log_error("cannot start store thread %ld", i);
			rc = -1;
			break;
		}
		w->st[i].started = true;
	}
	if (rc == 0 &&
	    pthread_create(&w->fetcher, NULL, worker_fetch_main, w) != 0) {
		log_error("cannot start the fetch thread");
		rc = -1;
	}
	if (rc != 0) {
		/* Let the store threads that did start end. */
		pthread_mutex_lock(&w->mu);
		w->fetch_done = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->mu);
	} else {
		pthread_join(w->fetcher, NULL);
	}
	for (long i = 0; i < w->cfg.stores; i++)
		if (w->st[i].started)
			pthread_join(w->st[i].thread, NULL);
	return rc;
}

void
worker_write_metrics(struct worker *w, struct buf *b)
{
	struct worker_metrics *m = &w->m;

	metrics_write_counter(b, "tally_processor_messages_total",
	    "Messages fetched from stream VOTES.", "",
	    metrics_get(&m->messages));
	metrics_write_counter(b, "tally_processor_votes_total",
	    "Good votes decoded.", "", metrics_get(&m->votes));
	metrics_write_counter(b, "tally_processor_votes_applied_total",
	    "Votes rows inserted or replaced (a higher sequence won).", "",
	    metrics_get(&m->applied));
	metrics_write_counter(b, "tally_processor_poison_total",
	    "Poison messages terminated and dead-lettered.", "",
	    metrics_get(&m->poison));
	metrics_write_counter(b, "tally_processor_deadletter_failures_total",
	    "Dead-letter copies that could not be published.", "",
	    metrics_get(&m->deadletter_failed));
	metrics_write_counter(b, "tally_processor_redeliveries_total",
	    "Messages delivered more than once.", "",
	    metrics_get(&m->redeliveries));
	metrics_write_counter(b, "tally_processor_pg_errors_total",
	    "Failed PostgreSQL statements and connections.", "",
	    metrics_get(&m->pg_errors));
	metrics_write_counter(b, "tally_processor_nats_errors_total",
	    "Failed fetches and consumer binds.", "",
	    metrics_get(&m->nats_errors));
	metrics_write_counter(b, "tally_processor_batches_total",
	    "Batches committed and acked.", "", metrics_get(&m->batches));
	metrics_write_gauge(b, "tally_processor_consumer_lag",
	    "Messages not yet delivered to the consumer (NumPending).", "",
	    (double)atomic_load(&m->lag));
	metrics_write_gauge(b, "tally_processor_consumer_ack_pending",
	    "Messages delivered but not yet acked (NumAckPending).", "",
	    (double)atomic_load(&m->ack_pending));
	metrics_write_hist(b, "tally_processor_batch_size",
	    "Messages per fetched batch.", &m->batch_size);
	metrics_write_hist(b, "tally_processor_batch_duration_seconds",
	    "Time to commit and ack one batch.", &m->batch_seconds);
	metrics_write_gauge(b, "tally_processor_up",
	    "1 when NATS, the consumer and PostgreSQL are all usable.", "",
	    worker_ready(w) ? 1 : 0);
}
