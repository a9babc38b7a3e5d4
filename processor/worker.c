/*
 * worker.c - fetch thread and store threads around a queue of decoded
 * messages (group commit).
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

/* Messages the fetch thread decodes between two handovers to the queue
 * (one lock, one wake-up for all of them). */
#define WORKER_HANDOVER 256

/* How long after its expiry a pull request without a 408 is taken for
 * ended (see worker_fetch_main). */
#define WORKER_REQUEST_GRACE_MS 10

int
worker_init(struct worker *w, const struct worker_config *cfg,
    natsConnection *nc, jsCtx *js, struct deadletter *dl,
    const struct consumer_config *ccfg, struct store *const *stores,
    struct store *bind_store)
{
	memset(w, 0, sizeof(*w));
	w->cfg = *cfg;
	w->nc = nc;
	w->js = js;
	w->dl = dl;
	w->bind_store = bind_store;
	if (w->cfg.stores < 1)
		w->cfg.stores = 1;
	if (w->cfg.stores > WORKER_STORES_MAX)
		w->cfg.stores = WORKER_STORES_MAX;
	consumer_init(&w->consumer, nc, js, ccfg);
	metrics_hist_init(&w->m.batch_size, worker_size_bounds,
	    sizeof(worker_size_bounds) / sizeof(worker_size_bounds[0]));
	metrics_hist_init(&w->m.batch_seconds, metrics_latency_bounds,
	    metrics_latency_bounds_n);
	metrics_hist_init(&w->m.commit_delay, metrics_latency_bounds,
	    metrics_latency_bounds_n);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->hold_max = (size_t)w->cfg.batch_max *
	    (size_t)(w->cfg.stores + WORKER_QUEUED);
	/* Twice what the requests allow: a request given up for lost (NATS
	 * reconnecting) may still deliver. Beyond that, messages are Nak'd. */
	w->ring_cap = 2 * w->hold_max;
	if ((w->ring = calloc(w->ring_cap, sizeof(*w->ring))) == NULL)
		goto oom;
	for (long i = 0; i < w->cfg.stores; i++) {
		struct worker_store_thread *st = &w->st[i];

		st->w = w;
		st->store = stores[i];
		st->msgs = calloc((size_t)cfg->batch_max, sizeof(*st->msgs));
		st->casts = calloc((size_t)cfg->batch_max, sizeof(*st->casts));
		st->stored_ns = calloc((size_t)cfg->batch_max,
		    sizeof(*st->stored_ns));
		if (st->msgs == NULL || st->casts == NULL ||
		    st->stored_ns == NULL)
			goto oom;
	}
	return 0;
oom:
	log_error("out of memory for batches of %ld", cfg->batch_max);
	return -1;
}

void
worker_fini(struct worker *w)
{
	for (uint64_t i = w->head; i < w->tail; i++)
		natsMsg_Destroy(w->ring[i % w->ring_cap].msg);
	free(w->ring);
	for (size_t i = 0; i < WORKER_STORES_MAX; i++) {
		free(w->st[i].msgs);
		free(w->st[i].casts);
		free(w->st[i].stored_ns);
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
	deadletter_publish(w->dl, w->js, msg, seq, why);
	(void)consumer_ack(w->nc, msg, CONSUMER_TERM);
}

/* Decodes msg into e; good votes return true, poison is terminated. */
static bool
worker_decode(struct worker *w, natsMsg *msg, struct worker_entry *e)
{
	jsMsgMetaData *meta = NULL;
	const char *why = NULL;

	metrics_inc(&w->m.messages);
	if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
		worker_poison(w, msg, 0, "no JetStream metadata");
		return false;
	}
	e->cast.seq = meta->Sequence.Stream;
	e->stored_ns = meta->Timestamp;
	if (meta->NumDelivered > 1)
		metrics_inc(&w->m.redeliveries);
	jsMsgMetaData_Destroy(meta);
	if (message_decode(natsMsg_GetSubject(msg),
	    (const uint8_t *)natsMsg_GetData(msg),
	    (size_t)natsMsg_GetDataLength(msg), &e->cast.vote, &why) !=
	    MESSAGE_VOTE) {
		worker_poison(w, msg, e->cast.seq, why);
		return false;
	}
	e->msg = msg;
	metrics_inc(&w->m.votes);
	return true;
}

/*
 * Asks for consumer lag; a vanished consumer (stream deleted and
 * recreated, consumer removed by hand) means bind again. So does another
 * stream under the same consumer name: one made again with its consumer
 * (by another processor's binding, or by hand) before we saw ours go. Its
 * messages reach us under our binding's stream, and until we bind again
 * (and the database follows the new stream) they are stored against the
 * old stream's sequences: this bounds that to a refresh interval.
 */
static void
worker_refresh_lag(struct worker *w)
{
	uint64_t pending = 0, ack_pending = 0;
	int64_t now_ns = 0;

	switch (consumer_state(&w->consumer, &pending, &ack_pending)) {
	case 0:
		atomic_store(&w->m.lag, pending);
		atomic_store(&w->m.ack_pending, ack_pending);
		if (consumer_stream_created(&w->consumer, &now_ns) == 0 &&
		    now_ns != atomic_load(&w->stream_ns)) {
			log_warn("nats: stream %s is another one now (created "
			    "%" PRId64 ", bound to %" PRId64 "); binding "
			    "again", NATSCONN_STREAM, now_ns,
			    atomic_load(&w->stream_ns));
			atomic_store(&w->m.bound, false);
		}
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

/* Waits on w->cond (w->mu held) for at most us. Returns true on timeout. */
static bool
worker_wait_us(struct worker *w, uint64_t us)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(us / 1000000u);
	ts.tv_nsec += (long)(us % 1000000u) * 1000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(&w->cond, &w->mu, &ts) != 0;
}

static bool
worker_wait_ms(struct worker *w, long ms)
{
	return worker_wait_us(w, (uint64_t)ms * 1000u);
}

/*
 * Takes msg and the messages already waiting behind it (up to
 * WORKER_HANDOVER, and no more than *credit says are still coming, though
 * a late message of a lost request is taken all the same), decodes them
 * straight into the free part of the ring, then hands them over at once.
 * Returns true if the server's end of the current request came meanwhile.
 */
static bool
worker_take(struct worker *w, natsMsg *msg, long *credit)
{
	enum consumer_next_result r = CONSUMER_NEXT_MSG;
	uint64_t tail = w->tail, room, now_us = metrics_now_us();
	int more;

	pthread_mutex_lock(&w->mu);
	room = w->ring_cap - (w->tail - w->head);
	pthread_mutex_unlock(&w->mu);
	/* The entries from tail on are the fetch thread's alone until tail
	 * moves (head only grows, so room only grows meanwhile). */
	more = consumer_queued(&w->consumer);
	for (int i = 0;; i++) {
		if (*credit > 0)
			(*credit)--;
		if (tail - w->tail >= room) {
			log_debug("queue full; message handed back");
			(void)consumer_ack(w->nc, msg, CONSUMER_NAK);
			natsMsg_Destroy(msg);
		} else if (worker_decode(w, msg, &w->ring[tail % w->ring_cap])) {
			w->ring[tail % w->ring_cap].queued_us = now_us;
			w->ring[tail % w->ring_cap].stream_ns =
			    w->consumer.stream_ns;
			tail++;
		} else {
			natsMsg_Destroy(msg);
		}
		if (i + 1 >= WORKER_HANDOVER || i + 1 > more ||
		    (r = consumer_next(&w->consumer, &msg, 1)) !=
		    CONSUMER_NEXT_MSG)
			break;
	}
	if (tail != w->tail) {
		pthread_mutex_lock(&w->mu);
		w->tail = tail;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->mu);
	}
	return r == CONSUMER_NEXT_END;
}

/* Messages held: queued or being stored (w->mu held). */
static size_t
worker_held(struct worker *w)
{
	return (size_t)(w->tail - w->head) + w->storing;
}

/* After a stop: what already arrived goes back to the server at once
 * rather than after AckWait. */
static void
worker_hand_back(struct worker *w)
{
	natsMsg *msg;
	int n = consumer_queued(&w->consumer);

	for (int i = 0; i < n && consumer_next(&w->consumer, &msg, 1) ==
	    CONSUMER_NEXT_MSG; i++) {
		(void)consumer_ack(w->nc, msg, CONSUMER_NAK);
		natsMsg_Destroy(msg);
	}
}

/* store_stream_use's question: the Created of stream VOTES now. */
static int
worker_stream_now(void *arg, int64_t *created_ns)
{
	struct worker *w = arg;

	return consumer_stream_created(&w->consumer, created_ns);
}

/*
 * Binds to the durable consumer, recording the stream in PostgreSQL
 * before the consumer is made: so no message of a recreated stream can
 * reach any processor before the database follows that stream, and a
 * batch of the old one that commits later is refused (store.h).
 */
static int
worker_bind(struct worker *w)
{
	int64_t created_ns;

	if (consumer_stream_ensure(&w->consumer, &created_ns) != 0)
		return -1;
	if (!store_connected(w->bind_store) && store_ping(w->bind_store) != 0)
		return -1;
	switch (store_stream_use(w->bind_store, created_ns, worker_stream_now,
	    w)) {
	case STORE_STREAM_SAME:
	case STORE_STREAM_RECORDED:
	case STORE_STREAM_SWITCHED:
		break;
	case STORE_STREAM_GONE:
		log_info("nats: stream %s changed while binding; binding "
		    "again", NATSCONN_STREAM);
		return -1;
	default:
		return -1;
	}
	if (consumer_bind(&w->consumer, created_ns) != 0)
		return -1;
	atomic_store(&w->stream_ns, created_ns);
	return deadletter_ensure(w->js, w->cfg.replicas);
}

static void *
worker_fetch_main(void *arg)
{
	struct worker *w = arg;
	uint64_t request_end_us = 0, request_us = 0;
	long backoff_ms = 100, credit = 0;
	int failures = 0;
	bool paced = w->cfg.fetch_interval_ms > 0, short_end = false;

	while (!sig_stop_requested()) {
		enum consumer_next_result r;
		natsMsg *msg = NULL;
		uint64_t now, due;
		long wait_ms;

		if (!atomic_load(&w->m.bound)) {
			credit = 0;
			if (worker_bind(w) != 0) {
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
		if (credit == 0) {
			/* Ask for what we may still hold; for a sizeable
			 * chunk unless we hold nothing (no chatter of tiny
			 * requests while the store threads are busy). */
			size_t held, room;

			pthread_mutex_lock(&w->mu);
			held = worker_held(w);
			room = held < w->hold_max ? w->hold_max - held : 0;
			if (room == 0 || (held > 0 &&
			    room < (size_t)w->cfg.batch_max / 2 + 1)) {
				worker_wait_ms(w, 200);
				pthread_mutex_unlock(&w->mu);
				continue;
			}
			pthread_mutex_unlock(&w->mu);
			now = metrics_now_us();
			due = request_us +
			    (uint64_t)w->cfg.fetch_interval_ms * 1000;
			if (paced && short_end && now < due) {
				/* The last request took all there was: let
				 * the next votes gather in the stream and
				 * come as one burst (FETCH_INTERVAL_MS). */
				if (sig_sleep_ms((long)((due - now + 999) /
				    1000)))
					break;
				continue;
			}
			if (consumer_request(&w->consumer, (int)room,
			    paced ? 0 : w->cfg.fetch_wait_ms) != 0) {
				metrics_inc(&w->m.nats_errors);
				if (sig_sleep_ms(pgconn_jitter_ms(backoff_ms)))
					break;
				backoff_ms = backoff_ms * 2 <
				    w->cfg.max_backoff_ms ? backoff_ms * 2 :
				    w->cfg.max_backoff_ms;
				continue;
			}
			credit = (long)room;
			request_us = now;
			short_end = false;
			/* The request ends at the server's expiry: its 408
			 * normally says so, but not always (nats-server
			 * 2.9.10 drops some expired requests silently: about
			 * one expiry in 20 at 1,000 votes/s, each leaving the
			 * votes stored meanwhile to wait for our deadline).
			 * So the deadline is the expiry plus a round trip's
			 * margin; a request that outlives it by a little can
			 * only deliver into the ring's spare half. */
			request_end_us = metrics_now_us() +
			    (uint64_t)w->cfg.fetch_wait_ms * 1000 +
			    WORKER_REQUEST_GRACE_MS * 1000;
		}
		now = metrics_now_us();
		wait_ms = now >= request_end_us ? 1 :
		    (long)((request_end_us - now) / 1000) + 1;
		/* Wake up for the lag refresh and a stop now and then. */
		if (wait_ms > 200)
			wait_ms = 200;
		r = consumer_next(&w->consumer, &msg, wait_ms);
		switch (r) {
		case CONSUMER_NEXT_MSG:
			failures = 0;
			backoff_ms = 100;
			if (worker_take(w, msg, &credit)) {
				short_end = credit > 0;
				credit = 0;
			}
			break;
		case CONSUMER_NEXT_END:
			failures = 0;
			short_end = credit > 0;
			credit = 0;
			break;
		case CONSUMER_NEXT_NONE:
			if (metrics_now_us() >= request_end_us) {
				short_end = credit > 0;
				credit = 0;
			}
			break;
		case CONSUMER_NEXT_FAILED:
			credit = 0;
			metrics_inc(&w->m.nats_errors);
			/* NATS reconnects by itself; a few failures in a row
			 * while connected mean the binding itself is bad. */
			if (++failures >= 5 && natsconn_connected(w->nc))
				atomic_store(&w->m.bound, false);
			if (sig_sleep_ms(pgconn_jitter_ms(backoff_ms)))
				goto stop;
			backoff_ms = backoff_ms * 2 < w->cfg.max_backoff_ms ?
			    backoff_ms * 2 : w->cfg.max_backoff_ms;
			break;
		}
	}
stop:
	worker_hand_back(w);
	pthread_mutex_lock(&w->mu);
	w->fetch_done = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* While PostgreSQL is away, keep the messages ours: InProgress restarts
 * the server's AckWait, so they are not redelivered to another processor
 * meanwhile: this thread's batch and what waits in the queue (another
 * store thread in the same state sends it too: harmless). And say so on
 * /readyz. */
static void
worker_in_progress(void *arg)
{
	struct worker_store_thread *st = arg;
	struct worker *w = st->w;

	atomic_store(&w->m.pg_up, false);
	for (size_t i = 0; i < st->n; i++)
		(void)consumer_ack(w->nc, st->msgs[i], CONSUMER_IN_PROGRESS);
	pthread_mutex_lock(&w->mu);
	for (uint64_t i = w->head; i < w->tail; i++)
		(void)consumer_ack(w->nc, w->ring[i % w->ring_cap].msg,
		    CONSUMER_IN_PROGRESS);
	pthread_mutex_unlock(&w->mu);
}

/* Stores st's batch and acks it; returns false if it could not commit
 * or was refused (its messages are then the caller's to hand back). */
static bool
worker_store(struct worker_store_thread *st)
{
	struct worker *w = st->w;
	struct store_result res;
	struct timespec now;
	uint64_t t0 = metrics_now_us();
	int64_t now_ns;
	int rc;

	store_set_stream(st->store, st->stream_ns);
	rc = store_apply_retry(st->store, st->casts, st->n, &res,
	    w->cfg.max_backoff_ms, worker_in_progress, st);
	if (rc == STORE_STALE) {
		/* Fetched from a stream that has been replaced: its casts
		 * cannot be ranked against the new stream's, and its
		 * consumer is gone, so they are lost with it. A message of
		 * the new stream that reached us through the old binding
		 * (its consumer has the same name) comes back at once to
		 * whoever is bound to it, thanks to the Nak. */
		atomic_store(&w->m.pg_up, true);
		metrics_add(&w->m.stale, st->n);
		log_warn("a batch of %zu votes from stream %s created %" PRId64
		    " came after it was replaced; not stored, handed back",
		    st->n, NATSCONN_STREAM, st->stream_ns);
		if (atomic_load(&w->stream_ns) == st->stream_ns)
			atomic_store(&w->m.bound, false);
		return false;
	}
	if (rc != STORE_OK) {
		atomic_store(&w->m.pg_up, false);
		return false;
	}
	atomic_store(&w->m.pg_up, true);
	metrics_add(&w->m.applied, res.rows_changed);
	clock_gettime(CLOCK_REALTIME, &now);
	now_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
	for (size_t i = 0; i < st->n; i++)
		metrics_hist_observe(&w->m.commit_delay,
		    (double)(now_ns - st->stored_ns[i]) / 1e9);
	/* After COMMIT only. A crash between COMMIT and these acks means
	 * redelivery, which the sequence rule turns into no change. */
	for (size_t i = 0; i < st->n; i++)
		(void)consumer_ack(w->nc, st->msgs[i], CONSUMER_ACK);
	metrics_inc(&w->m.batches);
	metrics_hist_observe(&w->m.batch_size, (double)st->n);
	metrics_hist_observe(&w->m.batch_seconds,
	    (double)(metrics_now_us() - t0) / 1e6);
	return true;
}

/* How long a store thread waits for a message before it checks that
 * PostgreSQL is still there (so that /readyz tells an idle processor's
 * truth too). */
#define WORKER_PING_MS 1000

/*
 * With w->mu held, waits until there is a batch to take: a full one, or
 * one whose oldest message has waited cfg.linger_ms in the queue, or
 * whatever is left once fetching stopped. Returns false when fetching
 * stopped and nothing is queued.
 */
static bool
worker_await_batch(struct worker_store_thread *st)
{
	struct worker *w = st->w;
	uint64_t linger_us = (uint64_t)w->cfg.linger_ms * 1000u;

	for (;;) {
		uint64_t due, now;

		if (w->tail == w->head) {
			if (w->fetch_done)
				return false;
			if (!worker_wait_ms(w, WORKER_PING_MS))
				continue;
			pthread_mutex_unlock(&w->mu);
			atomic_store(&w->m.pg_up, store_ping(st->store) == 0);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (w->tail - w->head >= (uint64_t)w->cfg.batch_max ||
		    w->fetch_done || linger_us == 0)
			return true;
		due = w->ring[w->head % w->ring_cap].queued_us + linger_us;
		now = metrics_now_us();
		if (now >= due)
			return true;
		(void)worker_wait_us(w, due - now);
	}
}

static void *
worker_store_main(void *arg)
{
	struct worker_store_thread *st = arg;
	struct worker *w = st->w;

	for (;;) {
		size_t n;

		pthread_mutex_lock(&w->mu);
		if (!worker_await_batch(st)) {
			pthread_mutex_unlock(&w->mu);
			break; /* fetching stopped and nothing is queued */
		}
		/* Everything queued, up to a batch, of one stream. */
		n = (size_t)(w->tail - w->head);
		if (n > (size_t)w->cfg.batch_max)
			n = (size_t)w->cfg.batch_max;
		st->stream_ns = w->ring[w->head % w->ring_cap].stream_ns;
		for (size_t i = 0; i < n; i++) {
			struct worker_entry *e =
			    &w->ring[(w->head + i) % w->ring_cap];

			if (e->stream_ns != st->stream_ns) {
				n = i;
				break;
			}
			st->msgs[i] = e->msg;
			st->casts[i] = e->cast;
			st->stored_ns[i] = e->stored_ns;
		}
		w->head += n;
		w->storing += n;
		st->n = n;
		pthread_mutex_unlock(&w->mu);

		if (!worker_store(st)) {
			/* Stopping with PostgreSQL away, or a replaced
			 * stream: hand the batch back at once rather than
			 * after AckWait. */
			for (size_t i = 0; i < st->n; i++)
				(void)consumer_ack(w->nc, st->msgs[i],
				    CONSUMER_NAK);
		}
		for (size_t i = 0; i < st->n; i++)
			natsMsg_Destroy(st->msgs[i]);
		pthread_mutex_lock(&w->mu);
		w->storing -= st->n;
		st->n = 0;
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
		/* Lag is asked for here, not by the fetch thread: the
		 * request takes a round trip through JetStream's API, and
		 * messages must not wait for it. */
		while (!sig_sleep_ms(w->cfg.lag_refresh_ms))
			if (atomic_load(&w->m.bound))
				worker_refresh_lag(w);
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
	metrics_write_counter(b, "tally_processor_stale_votes_total",
	    "Votes not stored: fetched from stream VOTES before it was "
	    "recreated.", "", metrics_get(&m->stale));
	metrics_write_gauge(b, "tally_processor_consumer_lag",
	    "Messages not yet delivered to the consumer (NumPending).", "",
	    (double)atomic_load(&m->lag));
	metrics_write_gauge(b, "tally_processor_consumer_ack_pending",
	    "Messages delivered but not yet acked (NumAckPending).", "",
	    (double)atomic_load(&m->ack_pending));
	metrics_write_hist(b, "tally_processor_batch_size",
	    "Votes per stored batch (one transaction).", &m->batch_size);
	metrics_write_hist(b, "tally_processor_batch_duration_seconds",
	    "Time to commit and ack one batch.", &m->batch_seconds);
	metrics_write_hist(b, "tally_processor_commit_delay_seconds",
	    "Per vote: from its storing in stream VOTES to its COMMIT.",
	    &m->commit_delay);
	metrics_write_gauge(b, "tally_processor_up",
	    "1 when NATS, the consumer and PostgreSQL are all usable.", "",
	    worker_ready(w) ? 1 : 0);
}
