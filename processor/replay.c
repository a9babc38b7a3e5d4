/*
 * replay.c - a pull consumer of its own -> the live store path.
 */
#include "replay.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "consumer.h"
#include "log.h"
#include "message.h"
#include "natsconn.h"
#include "sig.h"

/* Life of one pull request (its expires); idleness is measured on the
 * clock, across requests. */
#define REPLAY_FETCH_MS 1000
/* How long the server keeps the consumer of a replay that died, or that is
 * stuck retrying PostgreSQL (no pull request meanwhile). */
#define REPLAY_INACTIVE_S 600

static int
replay_flush(struct store *store, const struct replay_config *cfg,
    struct store_cast *casts, size_t *n, struct replay_progress *p)
{
	struct store_result res;

	if (*n == 0)
		return 0;
	switch (store_apply_retry(store, casts, *n, &res, cfg->max_backoff_ms,
	    NULL, NULL)) {
	case STORE_OK:
		break;
	case STORE_STALE:
		log_error("replay: stream %s was recreated during the replay; "
		    "run it again", NATSCONN_STREAM);
		return -1;
	default:
		return -1;
	}
	p->applied += res.rows_changed;
	*n = 0;
	return 0;
}

/*
 * Creates the replay's consumer, named "replay-<NUID>" into name: never a
 * name an earlier replay could have left behind (a pid would be: tallyctl
 * is pid 1 in every container), whose delivered state would silently skip
 * messages. AckNone: the replay keeps no state in NATS; a replay that dies
 * is run again. *pending receives the number of messages it will deliver.
 */
static int
replay_consumer_add(jsCtx *js, const struct replay_config *cfg, char *name,
    size_t cap, uint64_t *pending)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsInbox *inbox = NULL;
	const char *dot;
	natsStatus s;

	if (natsInbox_Create(&inbox) != NATS_OK) {
		log_error("nats: cannot make a consumer name");
		return -1;
	}
	dot = strrchr(inbox, '.');
	snprintf(name, cap, "replay-%s", dot != NULL ? dot + 1 : inbox);
	natsInbox_Destroy(inbox);

	jsConsumerConfig_Init(&cc);
	cc.Durable = name;
	cc.Description = "tallyctl replay";
	cc.AckPolicy = js_AckNone;
	cc.InactiveThreshold = (int64_t)REPLAY_INACTIVE_S * 1000000000LL;
	switch (cfg->from) {
	case REPLAY_FROM_START:
		cc.DeliverPolicy = js_DeliverAll;
		break;
	case REPLAY_FROM_SEQ:
		cc.DeliverPolicy = js_DeliverByStartSequence;
		cc.OptStartSeq = cfg->start_seq;
		break;
	case REPLAY_FROM_TIME:
		cc.DeliverPolicy = js_DeliverByStartTime;
		cc.OptStartTime = cfg->start_time_ns;
		break;
	}
	s = js_AddConsumer(&ci, js, NATSCONN_STREAM, &cc, NULL, &jerr);
	if (s != NATS_OK) {
		log_error("nats: replay consumer on %s: %s (JetStream error "
		    "%d)", NATSCONN_STREAM, natsStatus_GetText(s), (int)jerr);
		return -1;
	}
	*pending = ci->NumPending;
	jsConsumerInfo_Destroy(ci);
	return 0;
}

/* store_stream_use's question: the Created of stream VOTES now. */
static int
replay_stream_now(void *arg, int64_t *created_ns)
{
	jsStreamInfo *si = NULL;

	if (js_GetStreamInfo(&si, arg, NATSCONN_STREAM, NULL, NULL) !=
	    NATS_OK)
		return -1;
	*created_ns = si->Created;
	jsStreamInfo_Destroy(si);
	return 0;
}

/* Makes the replayed stream the database's, before anything of it is
 * stored (see store_stream_use). Returns 0 or -1 (logged). */
static int
replay_stream_use(jsCtx *js, struct store *store,
    const struct replay_config *cfg, int64_t created_ns)
{
	if (cfg->stream_ns != 0) {
		if (cfg->stream_ns == created_ns)
			return 0;
		log_error("replay: stream %s was recreated after the reset; "
		    "run it again", NATSCONN_STREAM);
		return -1;
	}
	switch (store_stream_use(store, created_ns, replay_stream_now, js)) {
	case STORE_STREAM_SAME:
	case STORE_STREAM_RECORDED:
	case STORE_STREAM_SWITCHED:
		return 0;
	case STORE_STREAM_GONE:
		log_error("replay: stream %s was recreated while starting; "
		    "run it again", NATSCONN_STREAM);
		return -1;
	default:
		return -1;
	}
}

/* Messages to ask for next: never more than the batch has room for, nor
 * than are left, so that a fetch fills and returns at once instead of
 * waiting out REPLAY_FETCH_MS for messages that will not come. */
static int
replay_want(const struct replay_config *cfg, size_t n, uint64_t left)
{
	uint64_t room = (uint64_t)cfg->batch_max - n;

	return (int)(left < room ? left : room);
}

int
replay_run(natsConnection *nc, jsCtx *js, struct store *store,
    const struct replay_config *cfg,
    void (*progress)(const struct replay_progress *, void *), void *arg,
    struct replay_progress *out)
{
	jsStreamInfo *si = NULL;
	struct consumer pull = {0};
	struct store_cast *casts = NULL;
	jsErrCode jerr = 0;
	int asked = 0, got = 0; /* by the current pull request */
	char name[64];
	bool created = false, done = false;
	uint64_t t0 = metrics_now_us(), idle_since, left, first_seq;
	uint64_t dseq = 0; /* the last consumer (delivery) sequence */
	size_t n = 0;
	natsStatus s;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	s = js_GetStreamInfo(&si, js, NATSCONN_STREAM, NULL, &jerr);
	if (s != NATS_OK) {
		log_error("nats: stream %s: %s (JetStream error %d)",
		    NATSCONN_STREAM, natsStatus_GetText(s), (int)jerr);
		goto done;
	}
	if (replay_stream_use(js, store, cfg, si->Created) != 0)
		goto done;
	store_set_stream(store, si->Created);
	out->end_seq = si->State.LastSeq;
	first_seq = si->State.FirstSeq;
	if (cfg->from == REPLAY_FROM_SEQ && cfg->start_seq > first_seq)
		first_seq = cfg->start_seq;
	if (si->State.Msgs == 0 || first_seq > out->end_seq) {
		rc = 1;
		goto done;
	}
	if ((casts = calloc((size_t)cfg->batch_max, sizeof(*casts))) == NULL) {
		log_error("out of memory for batches of %ld", cfg->batch_max);
		goto done;
	}
	if (replay_consumer_add(js, cfg, name, sizeof(name), &left) != 0)
		goto done;
	created = true;
	/* The consumer knows exactly what it will deliver: nothing (e.g.
	 * --since a time after the last cast) ends the replay here rather
	 * than after waiting for messages that never come. */
	out->total = left;
	if (left == 0) {
		rc = 1;
		goto done;
	}
	/* Pull requests of our own on a plain inbox (consumer.h says why
	 * not natsSubscription_Fetch). A request asks for what the batch
	 * has room for and lives REPLAY_FETCH_MS; the server says nothing
	 * when it is filled, and ends it with a status otherwise. */
	consumer_init(&pull, nc, js, &(struct consumer_config){
	    .durable = name});
	if (consumer_attach(&pull) != 0)
		goto done;
	idle_since = metrics_now_us();
	while (!done) {
		natsMsg *msg = NULL;
		jsMsgMetaData *meta = NULL;
		const char *why;
		uint64_t seq;

		if (sig_stop_requested()) {
			log_error("replay: stopped at seq %" PRIu64,
			    out->last_seq);
			goto done;
		}
		if (asked == got) {
			if ((asked = replay_want(cfg, n, left)) == 0) {
				if (replay_flush(store, cfg, casts, &n,
				    out) != 0)
					goto done;
				asked = replay_want(cfg, n, left);
			}
			got = 0;
			if (consumer_request(&pull, asked,
			    REPLAY_FETCH_MS) != 0) {
				log_error("nats: replay: cannot ask for "
				    "messages");
				goto done;
			}
		}
		switch (consumer_next(&pull, &msg, 100)) {
		case CONSUMER_NEXT_MSG:
			break;
		case CONSUMER_NEXT_END:
			asked = got; /* ended unfilled: ask again */
			/* FALLTHROUGH */
		case CONSUMER_NEXT_NONE:
			if ((long)((metrics_now_us() - idle_since) / 1000) >=
			    cfg->idle_timeout_ms) {
				log_error("replay: nothing arrived for %ld ms "
				    "after seq %" PRIu64 " (of %" PRIu64 "; %"
				    PRIu64 " still expected)",
				    cfg->idle_timeout_ms, out->last_seq,
				    out->end_seq, left);
				goto done;
			}
			continue;
		default:
			log_error("nats: replay: the pull subscription failed");
			goto done;
		}
		idle_since = metrics_now_us();
		got++;
		if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
			log_error("replay: a message without JetStream "
			    "metadata");
			natsMsg_Destroy(msg);
			goto done;
		}
		seq = meta->Sequence.Stream;
		/* AckNone never redelivers: a gap in the delivery sequence is
		 * a message lost in transit (a reconnect), and the rebuild
		 * would be incomplete. */
		if (meta->Sequence.Consumer != dseq + 1) {
			log_error("replay: deliveries %" PRIu64 "..%" PRIu64
			    " lost in transit (NATS reconnected?); run the "
			    "replay again", dseq + 1,
			    meta->Sequence.Consumer - 1);
			jsMsgMetaData_Destroy(meta);
			natsMsg_Destroy(msg);
			goto done;
		}
		dseq = meta->Sequence.Consumer;
		left = meta->NumPending;
		jsMsgMetaData_Destroy(meta);
		if (seq > out->end_seq) {
			/* Cast after the replay began: the live processor's
			 * business. */
			natsMsg_Destroy(msg);
			done = true;
		} else {
			out->last_seq = seq;
			out->messages++;
			if (message_decode(natsMsg_GetSubject(msg),
			    (const uint8_t *)natsMsg_GetData(msg),
			    (size_t)natsMsg_GetDataLength(msg),
			    &casts[n].vote, &why) == MESSAGE_VOTE) {
				casts[n].seq = seq;
				n++;
			} else {
				out->poison++;
				log_debug("replay: seq %" PRIu64 " skipped: %s",
				    seq, why);
			}
			natsMsg_Destroy(msg);
			/* At the stream's end as it was, or at the end of
			 * what the consumer holds (the last messages may have
			 * been deleted). */
			if (seq >= out->end_seq || left == 0)
				done = true;
		}
		if (done && replay_flush(store, cfg, casts, &n, out) != 0)
			goto done;
		out->elapsed_s = (double)(metrics_now_us() - t0) / 1e6;
		if (progress != NULL && !done && asked == got)
			progress(out, arg);
	}
	rc = 0;
done:
	out->elapsed_s = (double)(metrics_now_us() - t0) / 1e6;
	if (rc == 0 && progress != NULL)
		progress(out, arg);
	consumer_fini(&pull);
	if (created &&
	    js_DeleteConsumer(js, NATSCONN_STREAM, name, NULL, NULL) != NATS_OK)
		log_warn("nats: could not delete consumer %s; the server "
		    "drops it after %d s", name, REPLAY_INACTIVE_S);
	jsStreamInfo_Destroy(si);
	free(casts);
	return rc;
}
