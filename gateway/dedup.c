/*
 * dedup.c - the Redis thread: queue, pipelined batches, outage handling.
 */
#define _POSIX_C_SOURCE 200809L
#include "dedup.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

const char dedup_record_script[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  local s = tonumber(string.match(cur, ':(%d+)$'))\n"
    "  if s and s >= tonumber(ARGV[2]) then return 0 end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[3])\n"
    "return 1\n";

/* A RECORD that Redis did not take, kept for replay on reconnect. */
struct dedup_pending {
	char key[8 + 2 * VOTE_TOKEN_MAX + 8];
	char option[VOTE_ID_MAX + 1];
	uint64_t seq;
	struct dedup_pending *next;
};

struct dedup {
	struct dedup_config cfg;
	char *host, *password;
	struct gw_metrics *metrics;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct dedup_job *head, *tail; /* queue, under lock */
	long queued_bounded;           /* CHECK + INCR jobs queued */
	bool stopping;

	/* Redis thread only from here on. */
	redisContext *ctx;
	char sha[48];                   /* SHA1 of the record script */
	uint64_t retry_at_ms;           /* next connect attempt */
	long backoff_ms;
	struct dedup_pending *backlog;  /* unwritten RECORDs */
	long backlog_len;
	bool need_flush;                /* backlog overflowed: delete tally:v:* */
	bool was_up;                    /* for logging once per outage */
	_Atomic bool up;
};

static uint64_t
dedup_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Marks Redis down after a failure: log once per outage, retry later. */
static void
dedup_lost(struct dedup *d, const char *why)
{
	metrics_inc(&d->metrics->dedup_errors);
	if (d->ctx != NULL) {
		redisFree(d->ctx);
		d->ctx = NULL;
	}
	atomic_store(&d->up, false);
	if (d->was_up) {
		log_warn("redis: %s:%ld unavailable (%s); %s until it is back",
		    d->host, d->cfg.port, why, d->cfg.fail_closed ?
		    "refusing votes (DEDUP_FAIL_CLOSED)" :
		    "accepting votes without dedup");
		d->was_up = false;
	}
	d->retry_at_ms = dedup_now_ms() + (uint64_t)d->backoff_ms;
	d->backoff_ms = d->backoff_ms * 2 > 2000 ? 2000 : d->backoff_ms * 2;
}

/* One command outside a pipeline; NULL (and Redis marked down) on failure
 * or an error reply. */
static redisReply *
dedup_command(struct dedup *d, const char *what, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(d->ctx, fmt, ap);
	va_end(ap);
	if (r == NULL) {
		dedup_lost(d, d->ctx->errstr);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		char why[160];
		snprintf(why, sizeof(why), "%s: %.120s", what, r->str);
		freeReplyObject(r);
		dedup_lost(d, why);
		return NULL;
	}
	return r;
}

static int
dedup_load_script(struct dedup *d)
{
	redisReply *r;

	r = dedup_command(d, "SCRIPT LOAD", "SCRIPT LOAD %s",
	    dedup_record_script);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STRING)
		snprintf(d->sha, sizeof(d->sha), "%s", r->str);
	freeReplyObject(r);
	return 0;
}

/* Replays unwritten RECORDs (the script keeps the highest seq, so replay
 * order does not matter), or deletes every voter key if some were lost. */
static int
dedup_catch_up(struct dedup *d)
{
	while (d->backlog != NULL) {
		struct dedup_pending *p = d->backlog;
		redisReply *r;

		r = dedup_command(d, "EVALSHA", "EVALSHA %s 1 %s %s %llu %ld",
		    d->sha, p->key, p->option, (unsigned long long)p->seq,
		    d->cfg.ttl_s);
		if (r == NULL)
			return -1;
		freeReplyObject(r);
		d->backlog = p->next;
		d->backlog_len--;
		free(p);
	}
	if (d->need_flush) {
		char cursor[32] = "0";
		long deleted = 0;

		do {
			redisReply *r = dedup_command(d, "SCAN",
			    "SCAN %s MATCH tally:v:* COUNT 1000", cursor);
			if (r == NULL)
				return -1;
			if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
				freeReplyObject(r);
				dedup_lost(d, "SCAN: unexpected reply");
				return -1;
			}
			snprintf(cursor, sizeof(cursor), "%s",
			    r->element[0]->str);
			for (size_t i = 0; i < r->element[1]->elements; i++) {
				redisReply *u = dedup_command(d, "UNLINK",
				    "UNLINK %s", r->element[1]->element[i]->str);
				if (u == NULL) {
					freeReplyObject(r);
					return -1;
				}
				freeReplyObject(u);
				deleted++;
			}
			freeReplyObject(r);
		} while (strcmp(cursor, "0") != 0);
		log_warn("redis: the dedup backlog overflowed during the "
		    "outage; deleted %ld voter keys so none is stale", deleted);
		d->need_flush = false;
	}
	return 0;
}

/* Connects if it is time to try. Returns true when Redis is usable and
 * holds nothing older than what we published. */
static bool
dedup_ensure(struct dedup *d)
{
	struct timeval tv;
	redisReply *r;

	if (d->ctx != NULL)
		return d->backlog == NULL && !d->need_flush ? true :
		    dedup_catch_up(d) == 0;
	if (dedup_now_ms() < d->retry_at_ms)
		return false;
	tv.tv_sec = d->cfg.timeout_ms / 1000;
	tv.tv_usec = (d->cfg.timeout_ms % 1000) * 1000;
	d->ctx = redisConnectWithTimeout(d->host, (int)d->cfg.port, tv);
	if (d->ctx == NULL || d->ctx->err) {
		char why[160];
		snprintf(why, sizeof(why), "connect: %s",
		    d->ctx != NULL ? d->ctx->errstr : "out of memory");
		dedup_lost(d, why);
		return false;
	}
	redisSetTimeout(d->ctx, tv);
	if (d->password[0] != '\0') {
		r = dedup_command(d, "AUTH", "AUTH %s", d->password);
		if (r == NULL)
			return false;
		freeReplyObject(r);
	}
	if (dedup_load_script(d) != 0 || dedup_catch_up(d) != 0)
		return false;
	d->backoff_ms = 100;
	atomic_store(&d->up, true);
	if (!d->was_up) {
		log_info("redis: connected to %s:%ld", d->host, d->cfg.port);
		d->was_up = true;
	}
	return true;
}

/* Keeps a RECORD that Redis did not take. */
static void
dedup_keep(struct dedup *d, const struct dedup_job *j)
{
	struct dedup_pending *p;

	if (d->backlog_len >= d->cfg.backlog_max || d->need_flush) {
		/* Too many to replay: forget them all and delete every voter
		 * key on reconnect instead. */
		while (d->backlog != NULL) {
			p = d->backlog;
			d->backlog = p->next;
			free(p);
		}
		d->backlog_len = 0;
		d->need_flush = true;
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		d->need_flush = true;
		return;
	}
	snprintf(p->key, sizeof(p->key), "tally:v:%s:%s", j->poll, j->voter);
	snprintf(p->option, sizeof(p->option), "%s", j->option);
	p->seq = j->seq;
	p->next = d->backlog;
	d->backlog = p;
	d->backlog_len++;
}

/* Number of replies job's commands produce. */
static int
dedup_append(struct dedup *d, struct dedup_job *j)
{
	int n = 0;

	switch (j->op) {
	case DEDUP_OP_CHECK:
		if (j->idem_key != NULL) {
			redisAppendCommand(d->ctx, "GET tally:idem:%s",
			    j->idem_key);
			n++;
		}
		redisAppendCommand(d->ctx, "GET tally:v:%s:%s", j->poll,
		    j->voter);
		n++;
		break;
	case DEDUP_OP_RECORD:
		redisAppendCommand(d->ctx, "EVALSHA %s 1 tally:v:%s:%s %s %llu %ld",
		    d->sha, j->poll, j->voter, j->option,
		    (unsigned long long)j->seq, d->cfg.ttl_s);
		n++;
		if (j->idem_key != NULL && j->idem_answer != NULL) {
			redisAppendCommand(d->ctx,
			    "SET tally:idem:%s %b EX %ld NX", j->idem_key,
			    j->idem_answer, strlen(j->idem_answer),
			    d->cfg.idem_ttl_s);
			n++;
		}
		break;
	case DEDUP_OP_INCR:
		redisAppendCommand(d->ctx, "INCR hits");
		n++;
		break;
	}
	return n;
}

/* Reads one reply; NULL after a connection failure (Redis marked down). */
static redisReply *
dedup_reply(struct dedup *d)
{
	void *r = NULL;

	if (d->ctx == NULL)
		return NULL;
	if (redisGetReply(d->ctx, &r) != REDIS_OK || r == NULL) {
		dedup_lost(d, d->ctx->errstr[0] ? d->ctx->errstr : "read");
		return NULL;
	}
	return r;
}

/* "<option>:<seq>" -> job's current option and seq. */
static void
dedup_parse_current(struct dedup_job *j, const redisReply *r)
{
	const char *colon;
	size_t len;

	if (r->type != REDIS_REPLY_STRING)
		return;
	colon = strrchr(r->str, ':');
	if (colon == NULL)
		return;
	len = (size_t)(colon - r->str);
	if (vote_copy_id(j->current_option, r->str, len) != 0)
		return;
	j->current_seq = strtoull(colon + 1, NULL, 10);
	j->has_current = true;
}

/* Reads job's replies and sets its result. A failed read leaves Redis
 * down; the job is then finished as if Redis had been down from the start. */
static void
dedup_read(struct dedup *d, struct dedup_job *j)
{
	redisReply *r;
	bool ok = true;

	switch (j->op) {
	case DEDUP_OP_CHECK:
		if (j->idem_key != NULL) {
			if ((r = dedup_reply(d)) == NULL) {
				ok = false;
			} else {
				if (r->type == REDIS_REPLY_STRING)
					j->idem_found = strdup(r->str);
				freeReplyObject(r);
			}
		}
		if ((r = dedup_reply(d)) == NULL) {
			ok = false;
		} else {
			dedup_parse_current(j, r);
			freeReplyObject(r);
		}
		break;
	case DEDUP_OP_RECORD:
		if ((r = dedup_reply(d)) == NULL) {
			ok = false;
		} else {
			if (r->type == REDIS_REPLY_ERROR) {
				/* NOSCRIPT after a Redis restart, or worse:
				 * keep the record, reconnect, replay. */
				char why[160];
				snprintf(why, sizeof(why), "EVALSHA: %.120s",
				    r->str);
				freeReplyObject(r);
				dedup_lost(d, why);
				ok = false;
			} else {
				freeReplyObject(r);
			}
		}
		if (j->idem_key != NULL && j->idem_answer != NULL &&
		    (r = dedup_reply(d)) != NULL)
			freeReplyObject(r);
		break;
	case DEDUP_OP_INCR:
		if ((r = dedup_reply(d)) == NULL) {
			ok = false;
		} else {
			if (r->type == REDIS_REPLY_INTEGER)
				j->count = r->integer;
			else
				ok = false;
			freeReplyObject(r);
		}
		break;
	}
	if (ok) {
		j->status = DEDUP_OK;
		return;
	}
	j->has_current = false;
	free(j->idem_found);
	j->idem_found = NULL;
	if (j->op == DEDUP_OP_RECORD) {
		dedup_keep(d, j);
		j->status = DEDUP_BYPASS;
	} else if (j->op == DEDUP_OP_INCR || d->cfg.fail_closed) {
		j->status = DEDUP_UNAVAILABLE;
	} else {
		j->status = DEDUP_BYPASS;
	}
}

/* Finishes a job without Redis. */
static void
dedup_fail(struct dedup *d, struct dedup_job *j)
{
	j->has_current = false;
	j->idem_found = NULL;
	if (j->op == DEDUP_OP_RECORD) {
		dedup_keep(d, j);
		j->status = DEDUP_BYPASS;
	} else if (j->op == DEDUP_OP_INCR || d->cfg.fail_closed) {
		j->status = DEDUP_UNAVAILABLE;
	} else {
		j->status = DEDUP_BYPASS;
	}
}

static void
dedup_run_batch(struct dedup *d, struct dedup_job **batch, size_t n)
{
	bool usable = dedup_ensure(d);

	if (usable) {
		/* Whole batch out in one write, then the replies in order. */
		for (size_t i = 0; i < n; i++)
			dedup_append(d, batch[i]);
		for (size_t i = 0; i < n; i++) {
			if (d->ctx != NULL)
				dedup_read(d, batch[i]);
			else
				dedup_fail(d, batch[i]);
		}
	} else {
		for (size_t i = 0; i < n; i++)
			dedup_fail(d, batch[i]);
	}
	for (size_t i = 0; i < n; i++) {
		struct dedup_job *j = batch[i];
		if (j->op == DEDUP_OP_CHECK && j->status == DEDUP_BYPASS)
			metrics_inc(&d->metrics->dedup_bypass);
		j->done(j, j->cls);
	}
}

static void *
dedup_main(void *arg)
{
	struct dedup *d = arg;
	struct dedup_job **batch;
	size_t cap = (size_t)d->cfg.batch_max;

	batch = calloc(cap, sizeof(*batch));
	if (batch == NULL) {
		log_error("redis: out of memory");
		abort();
	}
	(void)dedup_ensure(d);
	pthread_mutex_lock(&d->lock);
	for (;;) {
		size_t n = 0;

		while (d->head == NULL && !d->stopping) {
			if (d->ctx == NULL || d->backlog != NULL) {
				/* Down: wake up to reconnect (and replay the
				 * backlog) even if no vote comes. */
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 200 * 1000000L;
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				if (pthread_cond_timedwait(&d->wake, &d->lock,
				    &ts) == ETIMEDOUT)
					break;
			} else {
				pthread_cond_wait(&d->wake, &d->lock);
			}
		}
		if (d->head == NULL && d->stopping)
			break;
		while (d->head != NULL && n < cap) {
			struct dedup_job *j = d->head;
			d->head = j->next;
			if (j->op != DEDUP_OP_RECORD)
				d->queued_bounded--;
			batch[n++] = j;
		}
		if (d->head == NULL)
			d->tail = NULL;
		pthread_mutex_unlock(&d->lock);
		if (n > 0)
			dedup_run_batch(d, batch, n);
		else
			(void)dedup_ensure(d);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	free(batch);
	return NULL;
}

struct dedup *
dedup_new(const struct dedup_config *cfg, struct gw_metrics *m)
{
	struct dedup *d;

	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->cfg = *cfg;
	if (d->cfg.batch_max < 1)
		d->cfg.batch_max = 1;
	d->host = strdup(cfg->host);
	d->password = strdup(cfg->password != NULL ? cfg->password : "");
	d->metrics = m;
	d->backoff_ms = 100;
	d->was_up = true; /* so that a Redis down at start is logged */
	if (d->host == NULL || d->password == NULL)
		goto fail;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	if (pthread_create(&d->thread, NULL, dedup_main, d) != 0) {
		log_error("redis: cannot start the dedup thread");
		pthread_cond_destroy(&d->wake);
		pthread_mutex_destroy(&d->lock);
		goto fail;
	}
	return d;
fail:
	free(d->host);
	free(d->password);
	free(d);
	return NULL;
}

int
dedup_submit(struct dedup *d, struct dedup_job *job)
{
	bool bounded = job->op != DEDUP_OP_RECORD;

	job->next = NULL;
	job->idem_found = NULL;
	job->has_current = false;
	pthread_mutex_lock(&d->lock);
	if (bounded && (d->stopping || d->queued_bounded >= d->cfg.queue_max)) {
		pthread_mutex_unlock(&d->lock);
		return -1;
	}
	if (bounded)
		d->queued_bounded++;
	if (d->tail != NULL)
		d->tail->next = job;
	else
		d->head = job;
	d->tail = job;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

bool
dedup_up(struct dedup *d)
{
	return atomic_load(&d->up);
}

void
dedup_free(struct dedup *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	if (d->backlog_len > 0)
		log_warn("redis: %ld dedup records were never written (Redis "
		    "down at exit); their voters will be re-checked against "
		    "the stream", d->backlog_len);
	while (d->backlog != NULL) {
		struct dedup_pending *p = d->backlog;
		d->backlog = p->next;
		free(p);
	}
	if (d->ctx != NULL)
		redisFree(d->ctx);
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d->host);
	free(d->password);
	free(d);
}
