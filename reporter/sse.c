/*
 * sse.c - Server-Sent Events fan-out over suspended MHD connections.
 *
 * Locking: one hub mutex guards the client lists and every client's
 * fields. The content reader runs on an MHD thread and calls
 * MHD_suspend_connection with the hub mutex held, so that the fan-out
 * thread can never see "suspended" before MHD has really suspended the
 * connection. MHD_resume_connection is always called WITHOUT the hub mutex
 * (the connections to wake are collected first): a connection that MHD
 * holds suspended cannot be closed or freed, so the pointer stays valid.
 */
#define _POSIX_C_SOURCE 200809L
#include "sse.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpd.h"
#include "log.h"

/* An immutable chunk of the stream, shared by every client of a poll. */
struct sse_event {
	_Atomic long refs;     /* < 0: static, never freed */
	uint64_t digest;       /* of the tally it carries */
	bool is_tally;
	size_t len;
	const char *text;      /* in the same allocation, or static */
};

#define SSE_STATIC_EVENT(name, str) \
	static struct sse_event name = { -1, 0, false, sizeof(str) - 1, str }

/* Browsers reconnect after 2 s (their default is 3 s) when a stream ends. */
SSE_STATIC_EVENT(sse_hello, "retry: 2000\n\n");
SSE_STATIC_EVENT(sse_ping, ": ping\n\n");

struct sse_client {
	struct sse_hub *hub;
	struct MHD_Connection *conn;
	size_t poll;
	struct sse_client *prev, *next;  /* in the poll's list */
	struct sse_event *cur;           /* being written; NULL: none */
	size_t off;                      /* bytes of cur already written */
	struct sse_event *pending;       /* newest tally not yet started */
	bool ping;                       /* a heartbeat is due */
	bool suspended;                  /* we asked MHD to suspend it */
	bool closing;                    /* end the stream after cur */
};

struct sse_poll {
	struct sse_client *head;
	struct sse_event *latest;  /* what a new client gets first */
	bool dirty;                /* a change waits for the rate limit */
	uint64_t last_sent_us;     /* monotonic time of the last broadcast */
};

struct sse_hub {
	const struct polls *polls;
	struct tallies *tallies;
	struct reporter_metrics *m;
	uint64_t heartbeat_us, min_interval_us;
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* wakes the fan-out thread */
	struct sse_poll *ps;        /* one per configured poll */
	size_t n_polls;
	long clients;
	bool stop, closing, started;
	uint64_t next_ping_us;
	pthread_t thread;
};

static uint64_t
sse_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct sse_event *
sse_event_ref(struct sse_event *e)
{
	if (e != NULL && atomic_load(&e->refs) >= 0)
		atomic_fetch_add(&e->refs, 1);
	return e;
}

static void
sse_event_unref(struct sse_event *e)
{
	if (e == NULL || atomic_load(&e->refs) < 0)
		return;
	if (atomic_fetch_sub(&e->refs, 1) == 1)
		free(e);
}

/* "id: <digest>\nevent: tally\ndata: <json>\n\n" for poll i, now. */
static struct sse_event *
sse_event_build(struct sse_hub *h, size_t i)
{
	const struct poll *poll = polls_at(h->polls, i);
	struct tally_snapshot snap;
	char id[TALLY_EVENT_ID_LEN];
	struct sse_event *e = NULL;
	char *json;
	int len;

	tallies_get(h->tallies, i, &snap);
	tallies_event_id(&snap, id);
	json = tallies_json(poll, &snap);
	if (json == NULL)
		return NULL;
	/* jansson's compact output has no newline, so one data line holds it. */
	len = snprintf(NULL, 0, "id: %s\nevent: tally\ndata: %s\n\n", id, json);
	if (len > 0)
		e = malloc(sizeof(*e) + (size_t)len + 1);
	if (e != NULL) {
		char *text = (char *)(e + 1);

		atomic_init(&e->refs, 1);
		e->digest = snap.digest;
		e->is_tally = true;
		e->len = (size_t)len;
		e->text = text;
		snprintf(text, (size_t)len + 1,
		    "id: %s\nevent: tally\ndata: %s\n\n", id, json);
	}
	free(json);
	return e;
}

struct sse_hub *
sse_hub_new(const struct polls *polls, struct tallies *t, long heartbeat_ms,
    long min_interval_ms, struct reporter_metrics *m)
{
	pthread_condattr_t ca;
	struct sse_hub *h;
	bool mu_ok = false;

	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->polls = polls;
	h->tallies = t;
	h->m = m;
	h->heartbeat_us = (uint64_t)heartbeat_ms * 1000u;
	h->min_interval_us = (uint64_t)min_interval_ms * 1000u;
	h->n_polls = polls_count(polls);
	h->ps = calloc(h->n_polls, sizeof(*h->ps));
	if (h->ps == NULL)
		goto fail;
	for (size_t i = 0; i < h->n_polls; i++)
		if ((h->ps[i].latest = sse_event_build(h, i)) == NULL)
			goto fail;
	if (pthread_mutex_init(&h->mu, NULL) != 0)
		goto fail;
	mu_ok = true;
	/* Deadlines are monotonic, immune to wall-clock steps. */
	if (pthread_condattr_init(&ca) != 0)
		goto fail;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&h->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto fail;
	}
	pthread_condattr_destroy(&ca);
	return h;
fail:
	if (mu_ok)
		pthread_mutex_destroy(&h->mu);
	for (size_t i = 0; h->ps != NULL && i < h->n_polls; i++)
		sse_event_unref(h->ps[i].latest);
	free(h->ps);
	free(h);
	return NULL;
}

/* A growable list of connections to resume once the hub mutex is free. */
struct sse_wake {
	struct MHD_Connection **c;
	size_t n, cap;
};

/* Called with the hub mutex held. A client we cannot queue for waking
 * (out of memory) stays suspended and flagged, and is retried at the next
 * heartbeat. */
static void
sse_wake_add(struct sse_wake *w, struct sse_client *c)
{
	if (!c->suspended)
		return;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		struct MHD_Connection **p = realloc(w->c, cap * sizeof(*p));
		if (p == NULL)
			return;
		w->c = p;
		w->cap = cap;
	}
	c->suspended = false;
	w->c[w->n++] = c->conn;
}

/* Called without the hub mutex. */
static void
sse_wake_run(struct sse_wake *w)
{
	for (size_t i = 0; i < w->n; i++)
		httpd_resume(w->c[i]);
	w->n = 0;
}

/* Sends poll i's current tally to its clients if it differs from the last
 * one sent. Called with the hub mutex held; drops it while building. */
static void
sse_hub_broadcast(struct sse_hub *h, size_t i, struct sse_wake *w)
{
	struct sse_poll *p = &h->ps[i];
	struct sse_event *e;

	p->dirty = false;
	pthread_mutex_unlock(&h->mu);
	e = sse_event_build(h, i);
	pthread_mutex_lock(&h->mu);
	if (e == NULL) {
		log_error("sse: out of memory building poll %s's event",
		    polls_at(h->polls, i)->id);
		p->dirty = true;
		return;
	}
	if (e->digest == p->latest->digest) {
		/* Same counts (a refresh that changed nothing visible, or the
		 * first load stamping updated_at): newcomers get the new text,
		 * watchers need nothing. */
		sse_event_unref(p->latest);
		p->latest = e;
		return;
	}
	sse_event_unref(p->latest);
	p->latest = e;
	p->last_sent_us = sse_now_us();
	metrics_inc(&h->m->sse_broadcasts);
	for (struct sse_client *c = p->head; c != NULL; c = c->next) {
		sse_event_unref(c->pending);
		c->pending = sse_event_ref(e);
		sse_wake_add(w, c);
	}
}

static void *
sse_hub_run(void *arg)
{
	struct sse_hub *h = arg;
	struct sse_wake w = {0};

	pthread_mutex_lock(&h->mu);
	h->next_ping_us = sse_now_us() + h->heartbeat_us;
	while (!h->stop) {
		uint64_t now = sse_now_us(), deadline = h->next_ping_us;
		struct timespec ts;

		for (size_t i = 0; i < h->n_polls; i++) {
			struct sse_poll *p = &h->ps[i];
			uint64_t due = p->last_sent_us + h->min_interval_us;

			if (!p->dirty)
				continue;
			if (now >= due)
				sse_hub_broadcast(h, i, &w);
			else if (due < deadline)
				deadline = due;
		}
		if (now >= h->next_ping_us) {
			h->next_ping_us = now + h->heartbeat_us;
			deadline = h->next_ping_us;
			for (size_t i = 0; i < h->n_polls; i++)
				for (struct sse_client *c = h->ps[i].head;
				    c != NULL; c = c->next) {
					c->ping = true;
					sse_wake_add(&w, c);
				}
		}
		if (w.n > 0) {
			pthread_mutex_unlock(&h->mu);
			sse_wake_run(&w);
			pthread_mutex_lock(&h->mu);
			continue;
		}
		ts.tv_sec = (time_t)(deadline / 1000000u);
		ts.tv_nsec = (long)(deadline % 1000000u) * 1000;
		pthread_cond_timedwait(&h->cv, &h->mu, &ts);
	}
	pthread_mutex_unlock(&h->mu);
	free(w.c);
	return NULL;
}

int
sse_hub_start(struct sse_hub *h)
{
	int rc;

	rc = pthread_create(&h->thread, NULL, sse_hub_run, h);
	if (rc != 0) {
		log_error("sse: cannot start the fan-out thread: %s",
		    strerror(rc));
		return -1;
	}
	h->started = true;
	return 0;
}

void
sse_hub_notify(struct sse_hub *h, size_t poll_index)
{
	pthread_mutex_lock(&h->mu);
	h->ps[poll_index].dirty = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* MHD's content reader: copies what is pending, or suspends. */
static ssize_t
sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse_client *c = cls;
	struct sse_hub *h = c->hub;
	size_t n = 0;
	ssize_t ret;

	(void)pos;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		if (c->cur != NULL) {
			size_t k = c->cur->len - c->off;

			if (k > max - n)
				k = max - n;
			memcpy(buf + n, c->cur->text + c->off, k);
			n += k;
			c->off += k;
			if (c->off < c->cur->len)
				break;  /* buf is full */
			if (c->cur->is_tally)
				metrics_inc(&h->m->sse_events);
			else if (c->cur == &sse_ping)
				metrics_inc(&h->m->sse_heartbeats);
			sse_event_unref(c->cur);
			c->cur = NULL;
			c->off = 0;
			continue;
		}
		if (c->closing)
			break;
		if (c->pending != NULL) {
			c->cur = c->pending;
			c->pending = NULL;
			continue;
		}
		if (c->ping) {
			c->ping = false;
			c->cur = &sse_ping;
			continue;
		}
		if (n == 0) {
			/* Nothing to say: park the connection until the
			 * fan-out thread has something for it. */
			c->suspended = true;
			MHD_suspend_connection(c->conn);
		}
		break;
	}
	if (n > 0)
		ret = (ssize_t)n;
	else if (c->closing)
		ret = MHD_CONTENT_READER_END_OF_STREAM;
	else
		ret = 0;
	pthread_mutex_unlock(&h->mu);
	return ret;
}

/* MHD's free callback: the response (and so the stream) is done. */
static void
sse_client_free(void *cls)
{
	struct sse_client *c = cls;
	struct sse_hub *h = c->hub;
	struct sse_poll *p = &h->ps[c->poll];

	pthread_mutex_lock(&h->mu);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		p->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	h->clients--;
	atomic_store(&h->m->sse_clients, h->clients);
	sse_event_unref(c->cur);
	sse_event_unref(c->pending);
	pthread_mutex_unlock(&h->mu);
	free(c);
}

enum MHD_Result
sse_hub_serve(struct sse_hub *h, struct MHD_Connection *conn,
    size_t poll_index, const char *last_event_id)
{
	struct MHD_Response *r;
	struct sse_client *c;
	struct sse_poll *p = &h->ps[poll_index];
	enum MHD_Result ret;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return MHD_NO;
	c->hub = h;
	c->conn = conn;
	c->poll = poll_index;
	c->cur = &sse_hello;
	pthread_mutex_lock(&h->mu);
	if (h->closing) {
		pthread_mutex_unlock(&h->mu);
		free(c);
		return httpd_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "shutting_down", "this replica is shutting down; retry");
	}
	if (last_event_id != NULL) {
		char id[TALLY_EVENT_ID_LEN];
		struct tally_snapshot s = { .digest = p->latest->digest };

		tallies_event_id(&s, id);
		if (strcmp(id, last_event_id) != 0)
			c->pending = sse_event_ref(p->latest);
	} else {
		c->pending = sse_event_ref(p->latest);
	}
	c->next = p->head;
	if (p->head != NULL)
		p->head->prev = c;
	p->head = c;
	h->clients++;
	atomic_store(&h->m->sse_clients, h->clients);
	pthread_mutex_unlock(&h->mu);
	metrics_inc(&h->m->sse_connects);

	/* From here on the response owns c: MHD calls sse_client_free. */
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024,
	    sse_read, c, sse_client_free);
	if (r == NULL) {
		sse_client_free(c);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/event-stream; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	/* Proxies such as nginx must pass events through at once. */
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	/* When the stream ends (shutdown), close: the browser reconnects,
	 * through the load balancer, to a replica that is still up. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

long
sse_hub_close_all(struct sse_hub *h, long timeout_ms)
{
	struct sse_wake w = {0};
	uint64_t until = sse_now_us() + (uint64_t)timeout_ms * 1000u;
	long left;

	pthread_mutex_lock(&h->mu);
	h->closing = true;
	for (size_t i = 0; i < h->n_polls; i++)
		for (struct sse_client *c = h->ps[i].head; c != NULL;
		    c = c->next) {
			c->closing = true;
			sse_wake_add(&w, c);
		}
	pthread_mutex_unlock(&h->mu);
	sse_wake_run(&w);
	free(w.c);
	for (;;) {
		struct timespec ts = { 0, 20 * 1000000L };

		left = sse_hub_clients(h);
		if (left == 0 || sse_now_us() >= until)
			break;
		nanosleep(&ts, NULL);
	}
	return left;
}

long
sse_hub_clients(struct sse_hub *h)
{
	long n;

	pthread_mutex_lock(&h->mu);
	n = h->clients;
	pthread_mutex_unlock(&h->mu);
	return n;
}

void
sse_hub_free(struct sse_hub *h)
{
	if (h == NULL)
		return;
	if (h->started) {
		pthread_mutex_lock(&h->mu);
		h->stop = true;
		pthread_cond_signal(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->thread, NULL);
	}
	for (size_t i = 0; i < h->n_polls; i++)
		sse_event_unref(h->ps[i].latest);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h->ps);
	free(h);
}
