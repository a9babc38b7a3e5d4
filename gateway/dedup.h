/*
 * dedup: the gateway's Redis. One thread owns the hiredis context and serves
 * a queue of jobs in batches, so no HTTP thread ever waits for Redis and a
 * round trip is paid per batch, not per vote. A batch is a few commands
 * whatever its size (one EVALSHA per 128 CHECKs, one per 128 RECORDs),
 * and the next batch is written before the last one's callbacks run.
 *
 * Keys:
 *   tally:v:<poll>:<voter>  "<option>:<seq>", TTL DEDUP_TTL_S, or
 *                           "<option>:<seq>:<n>" while n casts of the voter
 *                           are being published; written only through Lua
 *                           scripts that never let a lower stream sequence
 *                           replace a higher one
 *   tally:idem:<key>        the first answer to an Idempotency-Key, 24 h
 *   tally:stream            creation time of the stream the voter keys
 *                           were written for
 *   hits                    the /visits counter (the original app's key)
 *
 * Unsettled voters. A CHECK that lets a cast through (its option is not
 * the voter's settled current one) counts it in the key as being
 * published, in the same script; the cast's RECORD stores its option and
 * seq and uncounts it. While the count is above 0 no CHECK answers
 * "unchanged": a publish whose outcome is unknown (its PubAck timed out,
 * yet the message may be in the stream) or a gateway that died between
 * PubAck and RECORD leaves the count up, so the voter's next casts are
 * all published (harmless: the processor keeps the highest seq) until
 * the key expires, instead of one being answered "unchanged" from an
 * option older than the stream. A cast known not to be in the stream (the
 * publish was refused, or JetStream answered "duplicate") only uncounts
 * (a RECORD with seq 0).
 *
 * A stream made again numbers its messages from 1: see dedup_stream.
 *
 * Redis down: CHECK jobs come back DEDUP_BYPASS (fail-open) or
 * DEDUP_UNAVAILABLE (fail-closed); the outage is logged once, and once more
 * on recovery. RECORD jobs that could not be written are kept (bounded) and
 * replayed on reconnect before any CHECK reads Redis again, so Redis is
 * never read while it may be older than the stream (by this gateway:
 * docs/RELIABILITY.md, "Known limits"); if the backlog overflows, every
 * tally:v:* key is deleted on reconnect instead. A RECORD whose reply was
 * lost may have run: it is replayed without its uncount.
 */
#ifndef TALLY_GATEWAY_DEDUP_H
#define TALLY_GATEWAY_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "gwmetrics.h"
#include "vote.h"

enum dedup_op {
	DEDUP_OP_CHECK,  /* read the voter's current option (and idem answer) */
	DEDUP_OP_RECORD, /* store option:seq if seq is higher, uncount the
			  * cast if release (and store the idem answer) */
	DEDUP_OP_INCR,   /* INCR hits */
};

enum dedup_status {
	DEDUP_OK,          /* Redis answered */
	DEDUP_BYPASS,      /* Redis unavailable; go on without it (fail-open) */
	DEDUP_UNAVAILABLE, /* Redis unavailable and the caller must refuse */
};

/*
 * One request to the Redis thread. The caller owns the job (typically
 * inside its per-request state) and every string it points to; both must
 * stay valid until done runs. done runs on the Redis thread, exactly once
 * per accepted submission; after it returns the job is the caller's again.
 */
struct dedup_job {
	enum dedup_op op;
	const char *poll, *voter, *option; /* CHECK, RECORD */
	const char *idem_key;    /* NULL: no Idempotency-Key */
	const char *idem_answer; /* RECORD: answer to store under idem_key */
	uint64_t seq;            /* RECORD: the stream sequence of the cast;
				  * 0: none (only release, idem answer) */
	bool release;            /* RECORD: the CHECK counted the cast (it
				  * came back DEDUP_OK): uncount it */

	enum dedup_status status;
	bool has_current;        /* CHECK: Redis knows the voter's option */
	char current_option[VOTE_ID_MAX + 1];
	uint64_t current_seq;
	char *idem_found;        /* CHECK: stored answer, malloc'd; caller frees */
	long long count;         /* INCR */

	void (*done)(struct dedup_job *job, void *cls);
	void *cls;
	struct dedup_job *next;  /* private to dedup */
};

struct dedup_config {
	const char *host;
	long port;
	const char *password;   /* AUTH when non-empty; never logged */
	long timeout_ms;        /* connect and command timeout */
	long ttl_s;             /* tally:v:* expiry */
	long idem_ttl_s;        /* tally:idem:* expiry */
	long queue_max;         /* CHECK and INCR jobs waiting; more: refused */
	long batch_max;         /* jobs per pipelined batch */
	long backlog_max;       /* unwritten RECORDs kept for replay */
	bool fail_closed;       /* CHECK while Redis is down: UNAVAILABLE */
};

struct dedup;

/* Starts the Redis thread (which connects in the background, so Redis may
 * be down). cfg's strings are copied; m is borrowed. NULL on failure. */
struct dedup *dedup_new(const struct dedup_config *cfg, struct gw_metrics *m)
    __attribute__((warn_unused_result));

/*
 * Queues job. CHECK and INCR jobs are refused (-1) when queue_max jobs are
 * waiting or the thread is stopping: answer 503. RECORD jobs are always
 * taken (they finish votes already in the stream). Returns 0 or -1.
 */
int dedup_submit(struct dedup *d, struct dedup_job *job)
    __attribute__((warn_unused_result));

/* The stream the gateway publishes to, by its creation time (ns). Until
 * it is given, CHECKs do not read Redis (they come back DEDUP_BYPASS, or
 * DEDUP_UNAVAILABLE if fail-closed); when it differs from the stream
 * Redis's voter keys were written for, they are deleted first. Any
 * thread. */
void dedup_stream(struct dedup *d, int64_t created);

/* True while the last Redis exchange succeeded. Any thread. */
bool dedup_up(struct dedup *d);

/* Finishes every queued job, stops the thread, closes Redis. Accepts NULL. */
void dedup_free(struct dedup *d);

/* The Lua script that stores "option:seq" only over a lower seq, for a
 * whole batch (exposed for tests and docs). KEYS[1..n] voter keys; ARGV[1]
 * ttl_s, then option, seq and release ("1": uncount a cast being
 * published) for each key in order. Returns an array of n integers: 1
 * stored, 0 not (a higher seq was there, or seq was 0). */
extern const char dedup_record_script[];

/* The Lua script of a batch's CHECKs. KEYS: per job its voter key, then
 * its idem key if it has one; ARGV[1] ttl_s, then per job the option cast
 * and "1" if it has an idem key, else "0". Returns two values per job:
 * 1 and the stored answer (a repeat), 2 and the settled seq (the option
 * is the voter's current one), or 0 and "" (publish: now counted). */
extern const char dedup_check_script[];

#endif
