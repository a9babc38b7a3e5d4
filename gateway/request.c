/*
 * request.c - per-request state and the suspend/resume bookkeeping.
 */
#define _POSIX_C_SOURCE 200809L
#include "request.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A struct request is just over glibc's per-thread cache limit (1032 bytes),
 * so every calloc went to the shared heap and ran malloc_consolidate: a few
 * percent of the gateway's CPU per vote. Each MHD thread keeps its own
 * small free list instead (a connection's requests start and end on the one
 * thread that serves it, so the lists stay balanced); the key's destructor
 * frees a list when its thread ends.
 */
#define REQUEST_CACHE_MAX 64

struct request_cache {
	struct request *head;
	size_t len;
};

static pthread_key_t request_cache_key;
static pthread_once_t request_cache_once = PTHREAD_ONCE_INIT;

static void
request_cache_free(void *arg)
{
	struct request_cache *c = arg;

	while (c->head != NULL) {
		struct request *r = c->head;
		c->head = r->next_free;
		free(r);
	}
	free(c);
}

static void
request_cache_init(void)
{
	if (pthread_key_create(&request_cache_key, request_cache_free) != 0)
		abort();
}

/* This thread's cache, or NULL when out of memory (then plain malloc). */
static struct request_cache *
request_cache(void)
{
	struct request_cache *c;

	pthread_once(&request_cache_once, request_cache_init);
	c = pthread_getspecific(request_cache_key);
	if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL &&
	    pthread_setspecific(request_cache_key, c) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

struct request *
request_new(struct gateway *gw, struct MHD_Connection *c, const char *url,
    const char *method)
{
	struct request_cache *rc = request_cache();
	struct request *r;

	if (rc != NULL && rc->head != NULL) {
		r = rc->head;
		rc->head = r->next_free;
		rc->len--;
		memset(r, 0, sizeof(*r));
	} else if ((r = calloc(1, sizeof(*r))) == NULL) {
		return NULL;
	}
	r->gw = gw;
	r->conn = c;
	r->method = method;
	r->start_us = metrics_now_us();
	r->route = GW_ROUTE_OTHER;
	if (gw->access_log)
		snprintf(r->path, sizeof(r->path), "%s", url);
	httpd_body_init(&r->body, (size_t)gw->cfg.max_body_bytes);
	return r;
}

void
request_free(struct request *r)
{
	struct request_cache *rc;

	if (r == NULL)
		return;
	if (r->in_flight) {
		atomic_fetch_sub(&r->gw->suspended, 1);
		r->in_flight = false;
	}
	httpd_body_fini(&r->body);
	free(r->replay);
	free(r->idem_answer);
	rc = request_cache();
	if (rc != NULL && rc->len < REQUEST_CACHE_MAX) {
		r->next_free = rc->head;
		rc->head = r;
		rc->len++;
		return;
	}
	free(r);
}

bool
request_suspend(struct request *r)
{
	/* Counted before draining is read, and the drain sets draining
	 * before it reads the count (both sequentially consistent): so
	 * either the drain waits for this request, or this request sees
	 * the drain and is not suspended. A suspended connection left
	 * when the loops stop would make MHD_stop_daemon abort. */
	atomic_fetch_add(&r->gw->suspended, 1);
	if (atomic_load(&r->gw->draining)) {
		atomic_fetch_sub(&r->gw->suspended, 1);
		return false;
	}
	r->suspended = true;
	r->in_flight = true;
	MHD_suspend_connection(r->conn);
	return true;
}

void
request_resume(struct request *r)
{
	/* MHD_resume_connection takes MHD's lock, which orders our writes to
	 * r before the MHD thread's reads. The count drops only when the
	 * request is freed, after its answer went out: the drain in main
	 * waits for zero and then stops the loops, which would otherwise
	 * drop an answer resumed but not yet written. */
	httpd_resume(r->conn);
}
