/*
 * request.c - per-request state and the suspend/resume bookkeeping.
 */
#define _POSIX_C_SOURCE 200809L
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct request *
request_new(struct gateway *gw, struct MHD_Connection *c, const char *url,
    const char *method)
{
	struct request *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
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
	if (r == NULL)
		return;
	httpd_body_fini(&r->body);
	free(r->replay);
	free(r->idem_answer);
	free(r);
}

void
request_suspend(struct request *r)
{
	r->suspended = true;
	atomic_fetch_add(&r->gw->suspended, 1);
	MHD_suspend_connection(r->conn);
}

void
request_resume(struct request *r)
{
	struct gateway *gw = r->gw;

	/* MHD_resume_connection takes MHD's lock, which orders our writes to
	 * r before the MHD thread's reads. Decrement last: the drain in main
	 * waits for zero, then stops MHD. */
	MHD_resume_connection(r->conn);
	atomic_fetch_sub(&gw->suspended, 1);
}
