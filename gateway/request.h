/*
 * request: the state of one HTTP request, from its first header to the
 * access-log line. MHD keeps it in con_cls. A vote request is suspended
 * while Redis and NATS work on it and resumed (from their threads) once its
 * outcome is set; only then does an MHD thread build the answer.
 */
#ifndef TALLY_GATEWAY_REQUEST_H
#define TALLY_GATEWAY_REQUEST_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "dedup.h"
#include "gateway.h"
#include "httpd.h"
#include "publish.h"
#include "vote.h"

enum request_outcome {
	OUTCOME_NONE,
	OUTCOME_ACCEPTED,    /* PubAck: seq, duplicate set */
	OUTCOME_UNCHANGED,   /* voter's current option already: seq set */
	OUTCOME_REPLAY,      /* Idempotency-Key seen: replay holds the answer */
	OUTCOME_UNAVAILABLE, /* 503: why is set */
	OUTCOME_VISITS,      /* /visits: count set */
};

struct request {
	struct gateway *gw;
	struct MHD_Connection *conn;
	enum gw_route route;
	uint64_t start_us;
	unsigned status;          /* as answered; 0 until then */
	bool suspended;           /* waiting for Redis/NATS, or just resumed */
	bool in_flight;           /* counted in gw->suspended until freed */
	struct httpd_body body;
	char path[128];           /* for the access log, truncated */
	const char *method;       /* MHD's string, valid for the request */

	/* A vote. */
	const struct poll *poll;
	bool form;                /* POST /: answer with the page */
	char cookie_voter[VOTE_TOKEN_MAX + 1]; /* voter_id cookie, or new */
	bool has_idem;            /* Idempotency-Key given (= vote.cast_id) */
	struct vote vote;
	struct dedup_job dj;
	struct publish_job pj;
	bool counted;             /* the CHECK counted the cast in Redis as
				   * being published: a RECORD uncounts it */

	/* Outcome, written by the Redis or NATS thread before the resume. */
	enum request_outcome outcome;
	uint64_t seq;
	bool duplicate;
	long long count;
	const char *why;          /* static text for a 503 */
	char *replay;             /* "<status> <body>", malloc'd */
	char *idem_answer;        /* what is stored under the key, malloc'd */

	struct request *next_free; /* private: request.c's per-thread cache */
};

/* Allocates the state of a new request. NULL when out of memory. Freed
 * requests go to the freeing thread's cache and are reused by that
 * thread's next request_new (any thread may call either). */
struct request *request_new(struct gateway *gw, struct MHD_Connection *c,
    const char *url, const char *method);
void request_free(struct request *r);

/* Suspends the connection and counts it in flight. Call from the access
 * handler, before handing r to another thread. False (nothing done) once
 * the gateway is draining: answer 503 at once. */
bool request_suspend(struct request *r) __attribute__((warn_unused_result));

/* Marks the outcome final and resumes the connection (thread-safe). After
 * this, only the MHD thread touches r. */
void request_resume(struct request *r);

#endif
