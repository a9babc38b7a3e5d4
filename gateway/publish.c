/*
 * publish.c - async JetStream publish; PubAcks matched back to their jobs.
 *
 * nats.c 3.4.1 passes the AckHandler the original natsMsg but no per-message
 * closure, so jobs are found through a small hash map keyed by the message
 * pointer. An entry is added before the publish call (the ack may arrive
 * before js_PublishMsgAsync returns) and removed by whoever finishes it.
 *
 * Stream VOTES is not assumed to live forever once made: a server that
 * comes back without its store, or an operator's `nats stream rm`, leaves
 * publishes with no responder. A PubAck error that says so, or a periodic
 * look, wakes the stream thread, which marks the gateway not ready and
 * makes the stream again; the vote that hit the gap got its 503.
 */
#define _POSIX_C_SOURCE 200809L
#include "publish.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/status.h>

#include "log.h"
#include "sig.h"

struct publisher {
	struct publish_config cfg;
	struct gw_metrics *metrics;
	natsConnection *nc;
	jsCtx *js;
	long replicas;
	_Atomic long pending;
	_Atomic bool stream_ok;
	_Atomic bool stream_check;  /* a publish found no stream: look now */
	_Atomic bool stopping;
	int64_t created;            /* VOTES's creation time (stream thread) */
	pthread_t ensure_thread;
	bool ensure_started;
	pthread_mutex_t wake_lock;  /* with wake: the stream thread's sleep */
	pthread_cond_t wake;

	pthread_mutex_t map_lock;
	struct publish_job **buckets;
	size_t nbuckets; /* a power of two */
};

static size_t
publish_bucket(const struct publisher *p, const void *msg)
{
	uint64_t h = (uint64_t)(uintptr_t)msg >> 4;

	h *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 32) & (p->nbuckets - 1);
}

static void
publish_map_put(struct publisher *p, struct publish_job *job)
{
	size_t b = publish_bucket(p, job->msg);

	pthread_mutex_lock(&p->map_lock);
	job->next_in_bucket = p->buckets[b];
	p->buckets[b] = job;
	pthread_mutex_unlock(&p->map_lock);
}

/* Removes and returns the job publishing msg, or NULL. */
static struct publish_job *
publish_map_take(struct publisher *p, const void *msg)
{
	size_t b = publish_bucket(p, msg);
	struct publish_job **pp, *job = NULL;

	pthread_mutex_lock(&p->map_lock);
	for (pp = &p->buckets[b]; *pp != NULL; pp = &(*pp)->next_in_bucket) {
		if ((*pp)->msg == msg) {
			job = *pp;
			*pp = job->next_in_bucket;
			break;
		}
	}
	pthread_mutex_unlock(&p->map_lock);
	return job;
}

/* Wakes the stream thread to look for the stream. Cheap after the first
 * call: one failure per gap wakes it, the rest find the flag set. */
static void
publish_stream_suspect(struct publisher *p)
{
	if (atomic_exchange(&p->stream_check, true))
		return;
	pthread_mutex_lock(&p->wake_lock);
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->wake_lock);
}

/* Errors that mean nothing serves the subject: no stream (or none for
 * these subjects), or JetStream itself gone. */
static bool
publish_no_stream(natsStatus err, jsErrCode code)
{
	return err == NATS_NO_RESPONDERS || err == NATS_NOT_FOUND ||
	    code == JSStreamNotFoundErr || code == JSStreamNotMatchErr;
}

/* Runs on a nats.c thread for every PubAck, error or timeout. */
static void
publish_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
    void *closure)
{
	struct publisher *p = closure;
	struct publish_job *job;

	(void)js;
	if (msg == NULL && pae != NULL)
		msg = pae->Msg;
	job = publish_map_take(p, msg);
	natsMsg_Destroy(msg);
	if (job == NULL)
		return;
	if (pa != NULL) {
		job->status = PUBLISH_OK;
		job->seq = pa->Sequence;
		job->duplicate = pa->Duplicate;
	} else {
		natsStatus err = pae != NULL ? pae->Err : NATS_ERR;
		job->status = err == NATS_TIMEOUT ? PUBLISH_TIMEOUT :
		    PUBLISH_FAILED;
		/* An answer from JetStream (an error code, or no stream to
		 * answer at all) says the message was not stored. */
		job->unsent = pae != NULL && (pae->ErrCode != 0 ||
		    err == NATS_NO_RESPONDERS);
		if (publish_no_stream(err, pae != NULL ? pae->ErrCode : 0))
			publish_stream_suspect(p);
		log_debug("publish %s: %s (JetStream error %d)",
		    job->vote->cast_id, natsStatus_GetText(err),
		    pae != NULL ? (int)pae->ErrCode : 0);
	}
	metrics_hist_observe(&p->metrics->publish_seconds,
	    (double)(metrics_now_us() - job->started_us) / 1e6);
	atomic_fetch_sub(&p->pending, 1);
	job->done(job, job->cls);
}

/* Sleeps up to ms, or until publish_close, or (if on_suspect) until
 * publish_stream_suspect. */
static void
publish_wait_ms(struct publisher *p, long ms, bool on_suspect)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->wake_lock);
	while (!atomic_load(&p->stopping) &&
	    !(on_suspect && atomic_load(&p->stream_check)) &&
	    pthread_cond_timedwait(&p->wake, &p->wake_lock, &until) == 0)
		;
	pthread_mutex_unlock(&p->wake_lock);
}

/* Notes which stream VOTES is: a new creation time means a stream made
 * again, whose sequences start over (dedup.h, dedup_stream). */
static void
publish_stream_seen(struct publisher *p, int64_t created)
{
	if (created == p->created)
		return;
	if (p->created != 0)
		log_warn("nats: stream %s was made again; its sequences start "
		    "over", NATSCONN_STREAM);
	p->created = created;
	if (p->cfg.on_stream != NULL)
		p->cfg.on_stream(created, p->cfg.on_stream_cls);
}

/* Is stream VOTES there? 1 yes, 0 no (or no JetStream), -1 unknown (a
 * timeout, a disconnect): only a clear "no" makes the gateway unready. */
static int
publish_stream_exists(struct publisher *p)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	s = js_GetStreamInfo(&si, p->js, NATSCONN_STREAM, NULL, &jerr);
	if (s == NATS_OK)
		publish_stream_seen(p, si->Created);
	jsStreamInfo_Destroy(si);
	if (s == NATS_OK)
		return 1;
	return publish_no_stream(s, jerr) ? 0 : -1;
}

/*
 * The stream thread, for the publisher's whole life: creates or verifies
 * stream VOTES until that works (a gateway starts while NATS is down and
 * becomes ready when NATS comes), then looks for it every
 * PUBLISH_STREAM_CHECK_MS or at once when a publish finds no stream, and
 * starts over when it is gone. Looks are at least PUBLISH_STREAM_RETRY_MS
 * apart, however many votes fail meanwhile.
 */
#define PUBLISH_STREAM_CHECK_MS 5000
#define PUBLISH_STREAM_RETRY_MS 500

static void *
publish_ensure_main(void *arg)
{
	struct publisher *p = arg;
	bool warned = false;

	while (!atomic_load(&p->stopping)) {
		if (!atomic_load(&p->stream_ok)) {
			atomic_store(&p->stream_check, false);
			if (natsconn_connected(p->nc) &&
			    natsconn_stream_ensure(p->js, p->replicas) == 0) {
				/* Which stream it is, before votes flow. */
				(void)publish_stream_exists(p);
				atomic_store(&p->stream_ok, true);
				log_info("nats: stream %s ready", NATSCONN_STREAM);
				warned = false;
				continue;
			}
			if (!warned && natsconn_connected(p->nc)) {
				log_warn("nats: stream %s not ready; retrying",
				    NATSCONN_STREAM);
				warned = true;
			}
			publish_wait_ms(p, PUBLISH_STREAM_RETRY_MS, false);
			continue;
		}
		publish_wait_ms(p, PUBLISH_STREAM_CHECK_MS, true);
		if (atomic_load(&p->stopping))
			break;
		atomic_store(&p->stream_check, false);
		if (natsconn_connected(p->nc) && publish_stream_exists(p) == 0) {
			atomic_store(&p->stream_ok, false);
			log_warn("nats: stream %s is gone; making it again",
			    NATSCONN_STREAM);
			continue;
		}
		publish_wait_ms(p, PUBLISH_STREAM_RETRY_MS, false);
	}
	return NULL;
}

struct publisher *
publish_open(const struct publish_config *cfg,
    const struct natsconn_config *nats, struct gw_metrics *m)
{
	struct publisher *p;
	jsOptions jso;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->cfg = *cfg;
	p->metrics = m;
	p->replicas = nats->stream_replicas;
	pthread_mutex_init(&p->map_lock, NULL);
	pthread_mutex_init(&p->wake_lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	for (p->nbuckets = 1024; p->nbuckets < (size_t)cfg->max_pending * 2;)
		p->nbuckets *= 2;
	p->buckets = calloc(p->nbuckets, sizeof(*p->buckets));
	if (p->buckets == NULL)
		goto fail;

	jsOptions_Init(&jso);
	/* Our own cap (max_pending) answers 503 first; the library's is a
	 * backstop that must never make a publish call stall for long. */
	jso.PublishAsync.MaxPending = cfg->max_pending + 64;
	jso.PublishAsync.StallWait = 10;
	jso.PublishAsync.AckHandler = publish_on_ack;
	jso.PublishAsync.AckHandlerClosure = p;
	jso.Wait = 5000; /* stream management calls */
	if (natsconn_open(nats, &jso, &p->nc, &p->js) != 0)
		goto fail;
	if (pthread_create(&p->ensure_thread, NULL, publish_ensure_main,
	    p) != 0) {
		log_error("nats: cannot start the stream thread");
		goto fail;
	}
	p->ensure_started = true;
	return p;
fail:
	publish_close(p, 0);
	return NULL;
}

int
publish_submit(struct publisher *p, struct publish_job *job)
{
	const struct vote *v = job->vote;
	natsMsg *msg = NULL;
	jsPubOptions po;
	natsStatus s;

	job->unsent = true; /* until it is handed to nats.c */
	if (!natsconn_connected(p->nc)) {
		job->status = PUBLISH_DISCONNECTED;
		return -1;
	}
	if (atomic_fetch_add(&p->pending, 1) >= p->cfg.max_pending) {
		atomic_fetch_sub(&p->pending, 1);
		job->status = PUBLISH_FULL;
		return -1;
	}
	s = natsconn_vote_msg(&msg, v);
	if (s == NATS_OK) {
		jsPubOptions_Init(&po);
		po.MaxWait = p->cfg.timeout_ms;
		po.MsgId = v->cast_id;
		po.ExpectStream = NATSCONN_STREAM;
		job->msg = msg;
		job->started_us = metrics_now_us();
		publish_map_put(p, job);
		job->unsent = false; /* the ack handler may run at once */
		s = js_PublishMsgAsync(p->js, &msg, &po);
		if (s != NATS_OK) {
			(void)publish_map_take(p, job->msg);
			job->unsent = true;
		}
	}
	if (s != NATS_OK) {
		natsMsg_Destroy(msg);
		atomic_fetch_sub(&p->pending, 1);
		job->status = s == NATS_TIMEOUT ? PUBLISH_FULL : PUBLISH_FAILED;
		log_debug("publish %s: %s", v->cast_id, natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

bool
publish_ready(struct publisher *p)
{
	return atomic_load(&p->stream_ok) && natsconn_connected(p->nc);
}

long
publish_pending(struct publisher *p)
{
	return atomic_load(&p->pending);
}

void
publish_close(struct publisher *p, long timeout_ms)
{
	if (p == NULL)
		return;
	(void)sig_wait_drained(&p->pending, timeout_ms);
	pthread_mutex_lock(&p->wake_lock);
	atomic_store(&p->stopping, true);
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->wake_lock);
	if (p->ensure_started)
		pthread_join(p->ensure_thread, NULL);
	natsconn_close(p->nc, p->js, 1000);
	free(p->buckets);
	pthread_mutex_destroy(&p->map_lock);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->wake_lock);
	free(p);
}
