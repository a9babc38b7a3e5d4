/*
 * replay: rebuilds PostgreSQL from stream VOTES through the same store
 * code as the live processor, so the result equals the live one. A pull
 * consumer of its own (AckNone, a unique name, deleted when the replay
 * ends, or by the server 10 minutes after a replay that died) reads from
 * the start, a sequence or a time, up to the stream's last sequence as it
 * was when the replay began. Replaying over a live database is harmless: a
 * row only moves to a higher sequence. The stream it reads becomes the
 * database's (store_stream_use: a recreated one replaces the recorded
 * one), and a replay whose stream is recreated meanwhile fails.
 */
#ifndef TALLY_PROCESSOR_REPLAY_H
#define TALLY_PROCESSOR_REPLAY_H

#include <nats/nats.h>
#include <stdint.h>

#include "store.h"

enum replay_from {
	REPLAY_FROM_START,
	REPLAY_FROM_SEQ,  /* start_seq */
	REPLAY_FROM_TIME, /* start_time_ns, UTC nanoseconds since the epoch */
};

struct replay_config {
	enum replay_from from;
	uint64_t start_seq;
	int64_t start_time_ns;
	long batch_max;      /* casts per transaction */
	long max_backoff_ms; /* PostgreSQL retry ceiling */
	long idle_timeout_ms; /* give up when nothing arrives this long */
	int64_t stream_ns;   /* 0, or the Created of the stream the caller
	                      * already recorded (store_reset), which must
	                      * still be the one that exists */
};

struct replay_progress {
	uint64_t end_seq;     /* the stream's last sequence at the start */
	uint64_t last_seq;    /* the last sequence read */
	uint64_t messages;    /* read so far */
	uint64_t total;       /* messages expected (estimate) */
	uint64_t applied;     /* votes rows changed */
	uint64_t poison;      /* skipped (the live processor dead-letters) */
	double elapsed_s;
};

/*
 * Runs the replay on nc and js (borrowed), calling progress (if not NULL)
 * after each pull request and
 * once at the end. *out receives the final figures. Returns 0, 1 when
 * there is nothing to replay (an empty stream, a start after its last
 * message), or -1 after logging why (NATS or the stream unavailable, a
 * stop requested, nothing arriving for idle_timeout_ms, messages lost in
 * transit: run it again).
 */
int replay_run(natsConnection *nc, jsCtx *js, struct store *store,
    const struct replay_config *cfg,
    void (*progress)(const struct replay_progress *, void *), void *arg,
    struct replay_progress *out) __attribute__((warn_unused_result));

#endif
