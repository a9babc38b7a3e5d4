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

#include "buf.h"
#include "log.h"
#include "natsconn.h"

/*
 * One call records a whole batch: Redis runs a script's commands without
 * interleaving, and a script call costs ~10 us of Redis time whatever its
 * size, so one call per vote was most of Redis's CPU per vote. A plain
 * find of ':' (option ids have none) is ~15% cheaper per key than a
 * pattern match. A value is "<option>:<seq>", or "<option>:<seq>:<n>"
 * while n casts of the voter are being published (dedup.h); such a key
 * keeps its expiry, so one left counted by a lost cast still expires.
 */
#define DEDUP_LUA_PARSE \
    "local function parse(cur)\n" \
    "  if not cur then return nil, 0, 0 end\n" \
    "  local a = string.find(cur, ':', 1, true)\n" \
    "  if not a then return '', 0, 0 end\n" \
    "  local b = string.find(cur, ':', a + 1, true)\n" \
    "  if not b then\n" \
    "    return string.sub(cur, 1, a - 1), tonumber(string.sub(cur, a + 1)) or 0, 0\n" \
    "  end\n" \
    "  return string.sub(cur, 1, a - 1), tonumber(string.sub(cur, a + 1, b - 1)) or 0,\n" \
    "    tonumber(string.sub(cur, b + 1)) or 0\n" \
    "end\n" \
    "local function put(key, o, s, n, ttl)\n" \
    "  if n > 0 then\n" \
    "    redis.call('SET', key, o .. ':' .. s .. ':' .. n, 'KEEPTTL')\n" \
    "  else\n" \
    "    redis.call('SET', key, o .. ':' .. s, 'EX', ttl)\n" \
    "  end\n" \
    "end\n"

const char dedup_record_script[] =
    DEDUP_LUA_PARSE
    "local out = {}\n"
    "local ttl = ARGV[1]\n"
    "for i = 1, #KEYS do\n"
    "  local key = KEYS[i]\n"
    "  local seq = tonumber(ARGV[3 * i])\n"
    "  local o, s, n = parse(redis.call('GET', key))\n"
    "  n = n - tonumber(ARGV[3 * i + 1])\n"
    "  if n < 0 then n = 0 end\n"
    "  out[i] = 0\n"
    "  if seq > 0 and (not o or s < seq) then\n"
    "    o = ARGV[3 * i - 1]\n"
    "    s = seq\n"
    "    out[i] = 1\n"
    "  end\n"
    "  if o == '' and s == 0 and n == 0 then\n"
    "    redis.call('DEL', key)\n"
    "  elseif o then\n"
    "    put(key, o, s, n, ttl)\n"
    "  end\n"
    "end\n"
    "return out\n";

const char dedup_check_script[] =
    DEDUP_LUA_PARSE
    "local out = {}\n"
    "local ttl = ARGV[1]\n"
    "local k = 1\n"
    "for i = 1, (#ARGV - 1) / 2 do\n"
    "  local opt = ARGV[2 * i]\n"
    "  local key = KEYS[k]\n"
    "  local found = nil\n"
    "  k = k + 1\n"
    "  if ARGV[2 * i + 1] == '1' then\n"
    "    found = redis.call('GET', KEYS[k])\n"
    "    k = k + 1\n"
    "  end\n"
    "  if found then\n"
    "    out[#out + 1] = 1\n"
    "    out[#out + 1] = found\n"
    "  else\n"
    "    local o, s, n = parse(redis.call('GET', key))\n"
    "    if o and n == 0 and o == opt then\n"
    "      out[#out + 1] = 2\n"
    "      out[#out + 1] = tostring(s)\n"
    "    else\n"
    "      if n == 0 then\n"
    "        redis.call('SET', key, (o or '') .. ':' .. s .. ':1', 'EX', ttl)\n"
    "      else\n"
    "        put(key, o, s, n + 1, ttl)\n"
    "      end\n"
    "      out[#out + 1] = 0\n"
    "      out[#out + 1] = ''\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* Longest key: "tally:v:" poll ":" voter, or "tally:idem:" key. */
#define DEDUP_KEY_MAX (16 + VOTE_ID_MAX + VOTE_TOKEN_MAX)
/* Keys per EVALSHA: Redis serves nobody else while a script runs, so a
 * call is kept to about a millisecond. */
#define DEDUP_SCRIPT_KEYS_MAX 128

/* A RECORD that Redis did not take, kept for replay on reconnect. */
struct dedup_pending {
	char key[8 + 2 * VOTE_TOKEN_MAX + 8];
	char option[VOTE_ID_MAX + 1];
	uint64_t seq;
	bool release;
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
	bool sleeping;                 /* in a cond wait, not yet signalled */

	/* Redis thread only from here on. */
	redisContext *ctx;
	char sha[48];                   /* SHA1 of the record script */
	char check_sha[48];             /* SHA1 of the check script */
	uint64_t retry_at_ms;           /* next connect attempt */
	long backoff_ms;
	struct dedup_pending *backlog;  /* unwritten RECORDs */
	long backlog_len;
	bool need_flush;                /* backlog overflowed: delete tally:v:* */
	bool was_up;                    /* for logging once per outage */
	_Atomic int64_t stream;         /* VOTES's creation time; 0: unknown */
	int64_t stream_done;            /* the stream Redis was checked for */
	_Atomic bool up;

	/* A batch's command arguments, built here and copied into hiredis's
	 * output buffer by each append, so one set serves every command. */
	char (*keys)[DEDUP_KEY_MAX];    /* 2 * batch_max */
	char (*nums)[24];               /* batch_max: seqs as text */
	const char **argv;              /* 4 * batch_max + 8 */
	struct buf resp;                /* a batch's commands, RESP-encoded */
};

/* Jobs taken from the queue together, and which of them Redis answered. */
struct dedup_batch {
	struct dedup_job **jobs;        /* batch_max */
	bool *ok;                       /* batch_max */
	bool *maybe;                    /* batch_max: a RECORD not answered
					 * that Redis may have run all the
					 * same (written, reply lost) */
	size_t n;
	bool checks;                    /* its CHECKs were sent */
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
dedup_lost(struct dedup *d, const char *why_in)
{
	char why[128];

	/* why_in is often d->ctx->errstr, which redisFree frees. */
	snprintf(why, sizeof(why), "%s", why_in);
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
dedup_load(struct dedup *d, const char *script, char *sha, size_t cap)
{
	redisReply *r;

	r = dedup_command(d, "SCRIPT LOAD", "SCRIPT LOAD %s", script);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STRING)
		snprintf(sha, cap, "%s", r->str);
	freeReplyObject(r);
	return 0;
}

static int
dedup_load_scripts(struct dedup *d)
{
	if (dedup_load(d, dedup_record_script, d->sha, sizeof(d->sha)) != 0)
		return -1;
	return dedup_load(d, dedup_check_script, d->check_sha,
	    sizeof(d->check_sha));
}

/* Deletes every voter key. Returns how many, or -1 (Redis lost). */
static long
dedup_flush_voters(struct dedup *d)
{
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
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements; i++) {
			redisReply *u = dedup_command(d, "UNLINK", "UNLINK %s",
			    r->element[1]->element[i]->str);
			if (u == NULL) {
				freeReplyObject(r);
				return -1;
			}
			freeReplyObject(u);
			deleted++;
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return deleted;
}

/* Forgets every unwritten RECORD. */
static void
dedup_drop_backlog(struct dedup *d)
{
	while (d->backlog != NULL) {
		struct dedup_pending *p = d->backlog;
		d->backlog = p->next;
		free(p);
	}
	d->backlog_len = 0;
}

/* Replays unwritten RECORDs (the script keeps the highest seq, so replay
 * order does not matter), or deletes every voter key if some were lost. */
static int
dedup_catch_up(struct dedup *d)
{
	while (d->backlog != NULL) {
		struct dedup_pending *p = d->backlog;
		redisReply *r;

		r = dedup_command(d, "EVALSHA",
		    "EVALSHA %s 1 %s %ld %s %llu %d", d->sha, p->key,
		    d->cfg.ttl_s, p->option, (unsigned long long)p->seq, p->release ? 1 : 0);
		if (r == NULL)
			return -1;
		freeReplyObject(r);
		d->backlog = p->next;
		d->backlog_len--;
		free(p);
	}
	if (d->need_flush) {
		long deleted = dedup_flush_voters(d);
		if (deleted < 0)
			return -1;
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
	d->stream_done = 0; /* maybe another Redis, or a restored one */
	if (d->password[0] != '\0') {
		r = dedup_command(d, "AUTH", "AUTH %s", d->password);
		if (r == NULL)
			return false;
		freeReplyObject(r);
	}
	if (dedup_load_scripts(d) != 0 || dedup_catch_up(d) != 0)
		return false;
	d->backoff_ms = 100;
	atomic_store(&d->up, true);
	if (!d->was_up) {
		log_info("redis: connected to %s:%ld", d->host, d->cfg.port);
		d->was_up = true;
	}
	return true;
}

/*
 * Are Redis's voter keys about the stream the gateway publishes to? A
 * stream made again (deleted, or a nats-server back without its store)
 * numbers its messages from 1, so every seq in Redis is higher than the
 * new casts': a RECORD would never replace them, and a CHECK would answer
 * "unchanged" from a cast of the old stream. Redis keeps the creation
 * time of the stream its keys were written for (tally:stream); when it is
 * another one (or none: keys from before it was kept), every voter key
 * and unwritten RECORD is dropped, once, by whichever gateway sees it
 * first. Until the gateway knows its stream, CHECKs do not read Redis.
 * Returns true when CHECKs may be sent.
 */
static bool
dedup_reconcile(struct dedup *d)
{
	int64_t stream = atomic_load(&d->stream);
	char want[24];
	redisReply *r;
	bool same;
	long deleted;

	if (stream == 0)
		return false;
	if (stream == d->stream_done)
		return true;
	snprintf(want, sizeof(want), "%lld", (long long)stream);
	if ((r = dedup_command(d, "GET", "GET tally:stream")) == NULL)
		return false;
	same = r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
	freeReplyObject(r);
	if (!same) {
		dedup_drop_backlog(d);
		d->need_flush = false;
		if ((deleted = dedup_flush_voters(d)) < 0)
			return false;
		r = dedup_command(d, "SET", "SET tally:stream %s", want);
		if (r == NULL)
			return false;
		freeReplyObject(r);
		log_warn("redis: voter keys were written for another stream "
		    "%s than this one (created %s); deleted %ld of them",
		    NATSCONN_STREAM, want, deleted);
	}
	d->stream_done = stream;
	return true;
}

/*
 * Keeps a RECORD that Redis did not take. Storing the highest seq can be
 * done twice, uncounting cannot: a RECORD that may have run (maybe) is
 * replayed without its release, or a second run would uncount another
 * cast of the voter, one whose outcome is unknown, and let a CHECK answer
 * "unchanged" from an option older than the stream. Left counted, the
 * voter's casts are all published until the key expires (dedup.h).
 */
static void
dedup_keep(struct dedup *d, const struct dedup_job *j, bool maybe)
{
	struct dedup_pending *p;
	bool release = j->release && !maybe;

	if (j->seq == 0 && !release)
		return; /* nothing for the voter's key */
	if (d->backlog_len >= d->cfg.backlog_max || d->need_flush) {
		/* Too many to replay: forget them all and delete every voter
		 * key on reconnect instead. */
		dedup_drop_backlog(d);
		d->need_flush = true;
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		d->need_flush = true;
		return;
	}
	snprintf(p->key, sizeof(p->key), "tally:v:%s:%s", j->poll, j->voter);
	snprintf(p->option, sizeof(p->option), "%s",
	    j->option != NULL ? j->option : "");
	p->seq = j->seq;
	p->release = release;
	p->next = d->backlog;
	d->backlog = p;
	d->backlog_len++;
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

/* Finishes a job without Redis (maybe: see dedup_keep). */
static void
dedup_fail(struct dedup *d, struct dedup_job *j, bool maybe)
{
	j->has_current = false;
	free(j->idem_found);
	j->idem_found = NULL;
	if (j->op == DEDUP_OP_RECORD) {
		dedup_keep(d, j, maybe);
		j->status = DEDUP_BYPASS;
	} else if (j->op == DEDUP_OP_INCR || d->cfg.fail_closed) {
		j->status = DEDUP_UNAVAILABLE;
	} else {
		j->status = DEDUP_BYPASS;
	}
}

/* Writes u in decimal at out (24 bytes suffice); returns the length. */
static size_t
dedup_utoa(char *out, unsigned long long u)
{
	char tmp[24];
	size_t n = 0, len;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	for (len = 0; n > 0; len++)
		out[len] = tmp[--n];
	out[len] = '\0';
	return len;
}

/* "<prefix><a>[:<b>]" into out (DEDUP_KEY_MAX bytes; ids are validated
 * and short, so it always fits). */
static void
dedup_key(char *out, const char *prefix, const char *a, const char *b)
{
	size_t n = strlen(prefix), la = strlen(a);

	memcpy(out, prefix, n);
	memcpy(out + n, a, la);
	n += la;
	if (b != NULL) {
		size_t lb = strlen(b);
		out[n++] = ':';
		memcpy(out + n, b, lb);
		n += lb;
	}
	out[n] = '\0';
}

/* Appends d->argv[0..argc) to d->resp as one RESP command. By hand: the
 * hiredis formatter spent ~5,000 instructions a vote on it. */
static void
dedup_resp_argv(struct dedup *d, size_t argc)
{
	char num[32];
	size_t n;

	num[0] = '*';
	n = 1 + dedup_utoa(num + 1, argc);
	buf_append(&d->resp, num, n);
	buf_append(&d->resp, "\r\n", 2);
	for (size_t i = 0; i < argc; i++) {
		size_t len = strlen(d->argv[i]);
		num[0] = '$';
		n = 1 + dedup_utoa(num + 1, len);
		buf_append(&d->resp, num, n);
		buf_append(&d->resp, "\r\n", 2);
		buf_append(&d->resp, d->argv[i], len);
		buf_append(&d->resp, "\r\n", 2);
	}
}

/* Starts d->argv with "EVALSHA sha k keys[0..k) ttl"; nkeys (16 bytes)
 * holds k as text. Returns the argument count so far. */
static size_t
dedup_evalsha(struct dedup *d, const char *sha, char *nkeys, size_t k,
    const char *ttl)
{
	snprintf(nkeys, 16, "%zu", k);
	d->argv[0] = "EVALSHA";
	d->argv[1] = sha;
	d->argv[2] = nkeys;
	for (size_t x = 0; x < k; x++)
		d->argv[3 + x] = d->keys[x];
	d->argv[3 + k] = ttl;
	return 4 + k;
}

/*
 * One batch is a handful of commands whatever its size, written in one go
 * and answered in order:
 *
 *   EVALSHA record n key.. ttl option seq release ..  per 128 RECORDs
 *   SET tally:idem:<key> answer EX ttl NX              per RECORD with a key
 *   EVALSHA check n key [idem key].. ttl option idem.. per 128 CHECKs
 *   INCR hits                                          per INCR
 *
 * RECORDs go first so that a CHECK in the same batch reads them. Redis
 * pays its per-command and per-script costs once per batch, not per vote.
 */
static void
dedup_append_records(struct dedup *d, struct dedup_job **batch, size_t n)
{
	char nkeys[16], ttl[24];
	size_t i = 0;

	snprintf(ttl, sizeof(ttl), "%ld", d->cfg.ttl_s);
	while (i < n) {
		size_t k = 0, first = i, argc;

		for (; i < n && k < DEDUP_SCRIPT_KEYS_MAX; i++) {
			struct dedup_job *j = batch[i];
			if (j->op != DEDUP_OP_RECORD)
				continue;
			dedup_key(d->keys[k], "tally:v:", j->poll, j->voter);
			dedup_utoa(d->nums[k], j->seq);
			k++;
		}
		if (k == 0)
			break;
		argc = dedup_evalsha(d, d->sha, nkeys, k, ttl);
		for (size_t x = first, y = 0; x < i; x++) {
			if (batch[x]->op != DEDUP_OP_RECORD)
				continue;
			d->argv[argc++] = batch[x]->option != NULL ?
			    batch[x]->option : "";
			d->argv[argc++] = d->nums[y++];
			d->argv[argc++] = batch[x]->release ? "1" : "0";
		}
		dedup_resp_argv(d, argc);
	}
	snprintf(ttl, sizeof(ttl), "%ld", d->cfg.idem_ttl_s);
	for (i = 0; i < n; i++) {
		struct dedup_job *j = batch[i];
		if (j->op != DEDUP_OP_RECORD || j->idem_key == NULL ||
		    j->idem_answer == NULL)
			continue;
		dedup_key(d->keys[0], "tally:idem:", j->idem_key, NULL);
		d->argv[0] = "SET";
		d->argv[1] = d->keys[0];
		d->argv[2] = j->idem_answer;
		d->argv[3] = "EX";
		d->argv[4] = ttl;
		d->argv[5] = "NX";
		dedup_resp_argv(d, 6);
	}
}

static void
dedup_append_checks(struct dedup *d, struct dedup_job **batch, size_t n,
    bool checks)
{
	char nkeys[16], ttl[24];
	size_t i = checks ? 0 : n; /* no checks: straight to the INCRs */

	snprintf(ttl, sizeof(ttl), "%ld", d->cfg.ttl_s);
	while (i < n) {
		size_t jobs = 0, k = 0, first = i, argc;

		for (; i < n && jobs < DEDUP_SCRIPT_KEYS_MAX; i++) {
			struct dedup_job *j = batch[i];
			if (j->op != DEDUP_OP_CHECK)
				continue;
			dedup_key(d->keys[k++], "tally:v:", j->poll, j->voter);
			if (j->idem_key != NULL)
				dedup_key(d->keys[k++], "tally:idem:",
				    j->idem_key, NULL);
			jobs++;
		}
		if (jobs == 0)
			break;
		argc = dedup_evalsha(d, d->check_sha, nkeys, k, ttl);
		for (size_t x = first; x < i; x++) {
			if (batch[x]->op != DEDUP_OP_CHECK)
				continue;
			d->argv[argc++] = batch[x]->option;
			d->argv[argc++] = batch[x]->idem_key != NULL ?
			    "1" : "0";
		}
		dedup_resp_argv(d, argc);
	}
	for (i = 0; i < n; i++) {
		if (batch[i]->op != DEDUP_OP_INCR)
			continue;
		d->argv[0] = "INCR";
		d->argv[1] = "hits";
		dedup_resp_argv(d, 2);
	}
}

/* Reads the EVALSHA and SET replies; sets ok[i] for each RECORD stored,
 * and clears maybe[i] for those Redis surely did not run (NOSCRIPT). */
static void
dedup_read_records(struct dedup *d, struct dedup_job **batch, size_t n,
    bool *ok, bool *maybe)
{
	size_t i = 0;
	redisReply *r;

	while (i < n) {
		size_t k = 0, first = i;
		bool stored;

		for (; i < n && k < DEDUP_SCRIPT_KEYS_MAX; i++)
			if (batch[i]->op == DEDUP_OP_RECORD)
				k++;
		if (k == 0)
			break;
		if ((r = dedup_reply(d)) == NULL)
			continue;
		stored = r->type == REDIS_REPLY_ARRAY && r->elements == k;
		if (!stored) {
			/* NOSCRIPT after a Redis restart, or worse: keep the
			 * records, reconnect, replay. */
			char why[160];
			snprintf(why, sizeof(why), "EVALSHA: %.120s",
			    r->type == REDIS_REPLY_ERROR ? r->str :
			    "unexpected reply");
			if (r->type == REDIS_REPLY_ERROR &&
			    strncmp(r->str, "NOSCRIPT", 8) == 0)
				for (size_t x = first; x < i; x++)
					maybe[x] = false;
			freeReplyObject(r);
			dedup_lost(d, why);
			continue;
		}
		freeReplyObject(r);
		for (size_t x = first; x < i; x++)
			if (batch[x]->op == DEDUP_OP_RECORD)
				ok[x] = true;
	}
	for (i = 0; i < n; i++) {
		struct dedup_job *j = batch[i];
		if (j->op == DEDUP_OP_RECORD && j->idem_key != NULL &&
		    j->idem_answer != NULL && (r = dedup_reply(d)) != NULL)
			freeReplyObject(r);
	}
}

/* One CHECK's two values of the check script's reply. */
static bool
dedup_read_check(struct dedup_job *j, const redisReply *code,
    const redisReply *val)
{
	if (code->type != REDIS_REPLY_INTEGER || val->type != REDIS_REPLY_STRING)
		return false;
	switch (code->integer) {
	case 1: /* a repeat: the first answer */
		j->idem_found = strdup(val->str);
		return j->idem_found != NULL;
	case 2: /* the voter's settled current option */
		if (vote_copy_id(j->current_option, j->option,
		    strlen(j->option)) != 0)
			return false;
		j->current_seq = strtoull(val->str, NULL, 10);
		j->has_current = true;
		return true;
	case 0: /* publish: counted as being published */
		return true;
	default:
		return false;
	}
}

/* Reads the check scripts' and INCR replies; sets ok[i] for each job
 * answered. */
static void
dedup_read_checks(struct dedup *d, struct dedup_job **batch, size_t n,
    bool *ok, bool checks)
{
	size_t i = checks ? 0 : n; /* no checks: straight to the INCRs */
	redisReply *r;

	while (i < n) {
		size_t jobs = 0, first = i, e = 0;

		for (; i < n && jobs < DEDUP_SCRIPT_KEYS_MAX; i++)
			if (batch[i]->op == DEDUP_OP_CHECK)
				jobs++;
		if (jobs == 0)
			break;
		if ((r = dedup_reply(d)) == NULL)
			continue;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 * jobs) {
			/* NOSCRIPT after a Redis restart, or worse. */
			char why[160];
			snprintf(why, sizeof(why), "EVALSHA check: %.120s",
			    r->type == REDIS_REPLY_ERROR ? r->str :
			    "unexpected reply");
			freeReplyObject(r);
			dedup_lost(d, why);
			continue;
		}
		for (size_t x = first; x < i; x++) {
			struct dedup_job *j = batch[x];
			if (j->op != DEDUP_OP_CHECK)
				continue;
			ok[x] = dedup_read_check(j, r->element[e],
			    r->element[e + 1]);
			e += 2;
		}
		freeReplyObject(r);
	}
	for (i = 0; i < n; i++) {
		struct dedup_job *j = batch[i];
		if (j->op != DEDUP_OP_INCR || (r = dedup_reply(d)) == NULL)
			continue;
		if (r->type == REDIS_REPLY_INTEGER) {
			j->count = r->integer;
			ok[i] = true;
		}
		freeReplyObject(r);
	}
}

/* Writes every command of b to Redis without waiting for the replies.
 * Returns false (nothing pending) when Redis is down or the write fails. */
static bool
dedup_send(struct dedup *d, struct dedup_batch *b)
{
	int done = 0;

	memset(b->ok, 0, b->n * sizeof(*b->ok));
	memset(b->maybe, 0, b->n * sizeof(*b->maybe));
	if (!dedup_ensure(d))
		return false;
	/* CHECKs left unsent come back DEDUP_BYPASS (or UNAVAILABLE). */
	b->checks = dedup_reconcile(d);
	if (d->ctx == NULL)
		return false;
	d->resp.len = 0;
	dedup_append_records(d, b->jobs, b->n);
	dedup_append_checks(d, b->jobs, b->n, b->checks);
	if (d->resp.failed) {
		buf_fini(&d->resp);
		buf_init(&d->resp);
		dedup_lost(d, "out of memory");
		return false;
	}
	if (d->resp.len > 0 && redisAppendFormattedCommand(d->ctx,
	    d->resp.data, d->resp.len) != REDIS_OK) {
		dedup_lost(d, "out of memory");
		return false;
	}
	/* From the first byte written, Redis may run the RECORDs whatever
	 * becomes of their replies. */
	for (size_t i = 0; i < b->n; i++)
		b->maybe[i] = b->jobs[i]->op == DEDUP_OP_RECORD;
	while (!done) {
		if (redisBufferWrite(d->ctx, &done) != REDIS_OK) {
			dedup_lost(d, d->ctx->errstr[0] ? d->ctx->errstr :
			    "write");
			return false;
		}
	}
	return true;
}

/* Reads b's replies, in the order dedup_send wrote the commands. */
static void
dedup_receive(struct dedup *d, struct dedup_batch *b)
{
	dedup_read_records(d, b->jobs, b->n, b->ok, b->maybe);
	dedup_read_checks(d, b->jobs, b->n, b->ok, b->checks);
}

/* Sets each job's status and runs its callback (which may publish,
 * resume a connection, or queue the next job). */
static void
dedup_finish(struct dedup *d, struct dedup_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct dedup_job *j = b->jobs[i];
		if (b->ok[i])
			j->status = DEDUP_OK;
		else
			dedup_fail(d, j, b->maybe[i]);
		if (j->op == DEDUP_OP_CHECK && j->status == DEDUP_BYPASS)
			metrics_inc(&d->metrics->dedup_bypass);
		j->done(j, j->cls);
	}
	b->n = 0;
}

static int
dedup_batch_init(struct dedup_batch *b, size_t cap)
{
	b->jobs = calloc(cap, sizeof(*b->jobs));
	b->ok = calloc(cap, sizeof(*b->ok));
	b->maybe = calloc(cap, sizeof(*b->maybe));
	b->n = 0;
	return b->jobs != NULL && b->ok != NULL && b->maybe != NULL ? 0 : -1;
}

static void
dedup_batch_fini(struct dedup_batch *b)
{
	free(b->jobs);
	free(b->ok);
	free(b->maybe);
}

/* Waits for work (or, while Redis is down, for the next reconnect try)
 * and takes up to cap queued jobs into b. Called and returns with d->lock
 * held. Returns false when the thread must stop. */
static bool
dedup_take(struct dedup *d, struct dedup_batch *b, size_t cap, bool wait)
{
	while (wait && d->head == NULL && !d->stopping) {
		int w;

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
			d->sleeping = true;
			w = pthread_cond_timedwait(&d->wake, &d->lock, &ts);
			d->sleeping = false;
			if (w == ETIMEDOUT)
				break;
		} else {
			d->sleeping = true;
			pthread_cond_wait(&d->wake, &d->lock);
			d->sleeping = false;
		}
	}
	if (wait && d->head == NULL && d->stopping)
		return false;
	while (d->head != NULL && b->n < cap) {
		struct dedup_job *j = d->head;
		d->head = j->next;
		if (j->op != DEDUP_OP_RECORD)
			d->queued_bounded--;
		b->jobs[b->n++] = j;
	}
	if (d->head == NULL)
		d->tail = NULL;
	return true;
}

/*
 * Two batches are in hand at a time: the next one is written to Redis
 * before the callbacks of the last one run (they publish to NATS and resume
 * connections, the thread's main CPU work), so Redis's round trip overlaps
 * that work instead of adding to every vote's wait. Replies are still read
 * strictly in order, and a batch's callbacks run only after its replies.
 */
static void *
dedup_main(void *arg)
{
	struct dedup *d = arg;
	struct dedup_batch cur, prev, tmp;
	size_t cap = (size_t)d->cfg.batch_max;
	bool run = true;

	d->keys = calloc(2 * cap, sizeof(*d->keys));
	d->nums = calloc(cap, sizeof(*d->nums));
	d->argv = calloc(4 * cap + 8, sizeof(*d->argv));
	if (dedup_batch_init(&cur, cap) != 0 ||
	    dedup_batch_init(&prev, cap) != 0 || d->keys == NULL ||
	    d->nums == NULL || d->argv == NULL) {
		log_error("redis: out of memory");
		abort();
	}
	(void)dedup_ensure(d);
	while (run || prev.n > 0) {
		bool sent = false;

		pthread_mutex_lock(&d->lock);
		/* With callbacks pending, take what is queued but never
		 * wait: they may be what the next jobs are waiting for. */
		if (run)
			run = dedup_take(d, &cur, cap, prev.n == 0);
		pthread_mutex_unlock(&d->lock);
		/* Redis went away during the last batch: its RECORDs must be
		 * in the backlog, replayed on reconnect, before this batch's
		 * CHECKs read Redis. */
		if (prev.n > 0 && d->ctx == NULL)
			dedup_finish(d, &prev);
		if (cur.n > 0)
			sent = dedup_send(d, &cur);
		else if (prev.n == 0)
			(void)dedup_ensure(d); /* a reconnect try while idle */
		if (prev.n > 0)
			dedup_finish(d, &prev);
		if (cur.n > 0) {
			if (sent)
				dedup_receive(d, &cur);
			tmp = prev;
			prev = cur;
			cur = tmp;
		}
	}
	dedup_batch_fini(&cur);
	dedup_batch_fini(&prev);
	free(d->keys);
	free(d->nums);
	free(d->argv);
	buf_fini(&d->resp);
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
	/* Only a sleeping thread needs the futex wake-up; a busy one takes
	 * the job with its next batch. */
	if (d->sleeping) {
		d->sleeping = false;
		pthread_cond_signal(&d->wake);
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void
dedup_stream(struct dedup *d, int64_t created)
{
	atomic_store(&d->stream, created);
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
