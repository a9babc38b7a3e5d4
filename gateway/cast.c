/*
 * cast.c - check, publish, record: one vote from parse to answer.
 */
#define _POSIX_C_SOURCE 200809L
#include "cast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static void cast_on_check(struct dedup_job *job, void *cls);
static void cast_on_ack(struct publish_job *job, void *cls);
static void cast_on_record(struct dedup_job *job, void *cls);

static void
cast_fail(struct request *r, const char *why)
{
	r->outcome = OUTCOME_UNAVAILABLE;
	r->why = why;
}

bool
cast_start(struct request *r)
{
	struct gateway *gw = r->gw;
	struct timespec ts;

	if (atomic_load(&gw->suspended) >= gw->cfg.max_in_flight) {
		cast_fail(r, "too many votes in flight; retry shortly");
		return false;
	}
	if (!r->has_idem && vote_cast_id_new(r->vote.cast_id) != 0) {
		cast_fail(r, "no randomness for a cast id");
		return false;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	r->vote.cast_unix_ms = (int64_t)ts.tv_sec * 1000 +
	    ts.tv_nsec / 1000000;

	memset(&r->dj, 0, sizeof(r->dj));
	r->counted = false;
	r->dj.op = DEDUP_OP_CHECK;
	r->dj.poll = r->vote.poll;
	r->dj.voter = r->vote.voter;
	r->dj.option = r->vote.option;
	r->dj.idem_key = r->has_idem ? r->vote.cast_id : NULL;
	r->dj.done = cast_on_check;
	r->dj.cls = r;
	if (!request_suspend(r)) {
		cast_fail(r, "the gateway is shutting down");
		return false;
	}
	if (dedup_submit(gw->dedup, &r->dj) != 0) {
		cast_fail(r, "too many votes waiting for the dedup store");
		request_resume(r);
	}
	return true;
}

/* Keeps the answer for the Idempotency-Key, to be stored with the next
 * RECORD of the request's job. */
static void
cast_keep_answer(struct request *r)
{
	char body[1024];
	size_t n;

	if (!r->has_idem)
		return;
	n = cast_answer_json(r, body, sizeof(body));
	r->idem_answer = malloc(n + 5);
	if (r->idem_answer != NULL)
		snprintf(r->idem_answer, n + 5, "200 %s", body);
}

/*
 * Ends the vote with one RECORD (the dedup job finished its CHECK, so it
 * is reused): seq > 0 stores the voter's cast; release uncounts the cast
 * the CHECK counted; the idem answer, if any, is stored too. The answer
 * waits for the record so that a client's next request, even through
 * another gateway, sees this cast in Redis. Without anything to write,
 * the answer goes at once.
 */
static void
cast_record(struct request *r, uint64_t seq, bool release)
{
	if (seq == 0 && !release && r->idem_answer == NULL) {
		request_resume(r);
		return;
	}
	r->dj.op = DEDUP_OP_RECORD;
	r->dj.seq = seq;
	r->dj.release = release;
	r->dj.idem_answer = r->idem_answer;
	r->dj.done = cast_on_record;
	if (dedup_submit(r->gw->dedup, &r->dj) != 0) {
		log_error("cast %s: dedup refused a record", r->vote.cast_id);
		request_resume(r);
	}
}

/* Redis thread: decide between replay, unchanged and publish. */
static void
cast_on_check(struct dedup_job *job, void *cls)
{
	struct request *r = cls;
	struct gateway *gw = r->gw;

	if (job->status == DEDUP_UNAVAILABLE) {
		cast_fail(r, "the dedup store is unavailable "
		    "(DEDUP_FAIL_CLOSED)");
		request_resume(r);
		return;
	}
	if (job->idem_found != NULL) {
		r->replay = job->idem_found;
		job->idem_found = NULL;
		r->outcome = OUTCOME_REPLAY;
		metrics_inc(&gw->metrics.votes_idempotent);
		request_resume(r);
		return;
	}
	if (job->has_current && strcmp(job->current_option,
	    r->vote.option) == 0) {
		r->outcome = OUTCOME_UNCHANGED;
		r->seq = job->current_seq;
		metrics_inc(&gw->metrics.votes_unchanged);
		/* A repeat of this request must get this answer, even after
		 * the voter has changed their vote. */
		cast_keep_answer(r);
		cast_record(r, 0, false);
		return;
	}
	/* DEDUP_OK: the CHECK counted the cast (BYPASS: Redis was away). */
	r->counted = job->status == DEDUP_OK;
	memset(&r->pj, 0, sizeof(r->pj));
	r->pj.vote = &r->vote;
	r->pj.done = cast_on_ack;
	r->pj.cls = r;
	if (publish_submit(gw->pub, &r->pj) != 0) {
		switch (r->pj.status) {
		case PUBLISH_FULL:
			cast_fail(r, "too many votes waiting for the broker");
			break;
		case PUBLISH_DISCONNECTED:
			cast_fail(r, "the broker is not connected");
			break;
		default:
			cast_fail(r, "the broker refused the vote");
			break;
		}
		cast_record(r, 0, r->counted);
	}
}

/* nats.c thread: the PubAck (or its failure) is in. */
static void
cast_on_ack(struct publish_job *job, void *cls)
{
	struct request *r = cls;
	struct gateway *gw = r->gw;

	if (job->status != PUBLISH_OK) {
		cast_fail(r, job->status == PUBLISH_TIMEOUT ?
		    "the broker did not acknowledge the vote in time" :
		    "the broker refused the vote");
		/* Maybe in the stream after all (a timeout): the cast stays
		 * counted, and the voter unsettled in Redis. */
		cast_record(r, 0, r->counted && job->unsent);
		return;
	}
	r->outcome = OUTCOME_ACCEPTED;
	r->seq = job->seq;
	r->duplicate = job->duplicate;
	metrics_inc(job->duplicate ? &gw->metrics.votes_duplicate :
	    &gw->metrics.votes_accepted);
	cast_keep_answer(r);
	/* A duplicate's seq holds the first cast under this Idempotency-Key,
	 * whose option may differ from this body's: only uncount. */
	cast_record(r, job->duplicate ? 0 : job->seq, r->counted);
}

/* Redis thread: recorded (or kept for replay if Redis is down). */
static void
cast_on_record(struct dedup_job *job, void *cls)
{
	(void)job;
	request_resume(cls);
}

/* Appends s to out[*n..cap), always leaving room for the NUL. */
static void
cast_put(char *out, size_t cap, size_t *n, const char *s)
{
	size_t len = strlen(s);

	if (len > cap - 1 - *n)
		len = cap - 1 - *n;
	memcpy(out + *n, s, len);
	*n += len;
	out[*n] = '\0';
}

size_t
cast_answer_json(const struct request *r, char *out, size_t cap)
{
	char seq[24];
	size_t n = 0;

	if (cap == 0)
		return 0;
	out[0] = '\0';
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)r->seq);
	/* Every id is a validated token ([A-Za-z0-9._:@-]): no escaping.
	 * Built by pieces: one snprintf of the whole answer cost more than
	 * the rest of the answer's work. */
	cast_put(out, cap, &n, r->outcome == OUTCOME_UNCHANGED ?
	    "{\"status\":\"unchanged\",\"poll\":\"" :
	    "{\"status\":\"accepted\",\"poll\":\"");
	cast_put(out, cap, &n, r->vote.poll);
	cast_put(out, cap, &n, "\",\"option\":\"");
	cast_put(out, cap, &n, r->vote.option);
	cast_put(out, cap, &n, "\",\"voter\":\"");
	cast_put(out, cap, &n, r->vote.voter);
	if (r->outcome == OUTCOME_UNCHANGED) {
		cast_put(out, cap, &n, "\",\"seq\":");
		cast_put(out, cap, &n, seq);
		cast_put(out, cap, &n, "}");
		return n;
	}
	cast_put(out, cap, &n, "\",\"cast_id\":\"");
	cast_put(out, cap, &n, r->vote.cast_id);
	cast_put(out, cap, &n, "\",\"seq\":");
	cast_put(out, cap, &n, seq);
	cast_put(out, cap, &n, r->duplicate ? ",\"duplicate\":true}" :
	    ",\"duplicate\":false}");
	return n;
}
