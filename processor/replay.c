/*
 * replay.c - ordered consumer -> the live store path.
 */
#include "replay.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "message.h"
#include "natsconn.h"
#include "sig.h"

/* Messages per fetch: larger pulls were seen to stall with nats.c 3.4.1
 * (3,001 pending, a pull of 3,001 returned nothing); a transaction still
 * takes up to batch_max, gathered over several fetches. */
#define REPLAY_FETCH_MAX 1000
/* Longest wait of one fetch. */
#define REPLAY_FETCH_MS 1000

static int
replay_flush(struct store *store, const struct replay_config *cfg,
    struct store_cast *casts, size_t *n, struct replay_progress *p)
{
	struct store_result res;

	if (*n == 0)
		return 0;
	if (store_apply_retry(store, casts, *n, &res, cfg->max_backoff_ms,
	    NULL, NULL) != 0)
		return -1;
	p->applied += res.rows_changed;
	*n = 0;
	return 0;
}

int
replay_run(jsCtx *js, struct store *store, const struct replay_config *cfg,
    void (*progress)(const struct replay_progress *, void *), void *arg,
    struct replay_progress *out)
{
	jsStreamInfo *si = NULL;
	natsSubscription *sub = NULL;
	struct store_cast *casts = NULL;
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	char name[64];
	bool created = false;
	uint64_t t0 = metrics_now_us(), idle_ms = 0, first_seq;
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
	out->end_seq = si->State.LastSeq;
	first_seq = si->State.FirstSeq;
	if (cfg->from == REPLAY_FROM_SEQ && cfg->start_seq > first_seq)
		first_seq = cfg->start_seq;
	out->total = si->State.Msgs;
	if (first_seq > si->State.FirstSeq && out->end_seq >= first_seq)
		out->total = out->end_seq - first_seq + 1;
	if (si->State.Msgs == 0 || first_seq > out->end_seq) {
		rc = 1;
		goto done;
	}
	if ((casts = calloc((size_t)cfg->batch_max, sizeof(*casts))) == NULL) {
		log_error("out of memory for batches of %ld", cfg->batch_max);
		goto done;
	}

	/* A consumer of our own, named after the process, created here and
	 * deleted at the end (or by the server a minute after a crashed
	 * replay): nobody else reads it, so AckAll lets one ack per batch
	 * confirm the batch. */
	snprintf(name, sizeof(name), "replay-%ld", (long)getpid());
	jsConsumerConfig_Init(&cc);
	cc.Durable = name;
	cc.AckPolicy = js_AckAll;
	cc.AckWait = (int64_t)600 * 1000000000LL;
	/* Room for a whole fetch: a pull asking for more than MaxAckPending
	 * (server default 1000) would wait out its timeout. */
	cc.MaxAckPending = cfg->batch_max * 2;
	cc.InactiveThreshold = (int64_t)60 * 1000000000LL;
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
	jsConsumerInfo_Destroy(ci);
	if (s != NATS_OK) {
		log_error("nats: replay consumer on %s: %s (JetStream error "
		    "%d)", NATSCONN_STREAM, natsStatus_GetText(s), (int)jerr);
		goto done;
	}
	created = true;
	jsSubOptions_Init(&so);
	so.Stream = NATSCONN_STREAM;
	so.Consumer = name;
	s = js_PullSubscribe(&sub, js, NATSCONN_SUBJECTS, name, NULL, &so,
	    &jerr);
	if (s != NATS_OK) {
		log_error("nats: replay bind to %s: %s (JetStream error %d)",
		    name, natsStatus_GetText(s), (int)jerr);
		goto done;
	}
	while (out->last_seq < out->end_seq) {
		natsMsgList list = {0};
		jsErrCode ferr = 0;
		bool past_end = false;
		uint64_t want;

		if (sig_stop_requested()) {
			log_error("replay: stopped at seq %" PRIu64,
			    out->last_seq);
			goto done;
		}
		/* Never ask for more than is left: a batch that fills returns
		 * at once instead of waiting out the fetch. */
		want = out->end_seq - out->last_seq;
		if (want > REPLAY_FETCH_MAX)
			want = REPLAY_FETCH_MAX;
		/* Commit when the next fetch might not fit the batch. */
		if (n > 0 && (uint64_t)cfg->batch_max - n < want &&
		    replay_flush(store, cfg, casts, &n, out) != 0)
			goto done;
		if (want > (uint64_t)cfg->batch_max)
			want = (uint64_t)cfg->batch_max;
		s = natsSubscription_Fetch(&list, sub, (int)want,
		    REPLAY_FETCH_MS, &ferr);
		/* Messages may come with NATS_TIMEOUT (a batch that did not
		 * fill): they count. */
		if (list.Count == 0) {
			natsMsgList_Destroy(&list);
			if (s != NATS_OK && s != NATS_TIMEOUT) {
				log_error("nats: replay fetch: %s",
				    natsStatus_GetText(s));
				goto done;
			}
			idle_ms += REPLAY_FETCH_MS;
			if ((long)idle_ms >= cfg->idle_timeout_ms) {
				log_error("replay: nothing arrived for %ld ms "
				    "after seq %" PRIu64 " (of %" PRIu64 ")",
				    cfg->idle_timeout_ms, out->last_seq,
				    out->end_seq);
				goto done;
			}
			continue;
		}
		idle_ms = 0;
		for (int i = 0; i < list.Count && !past_end; i++) {
			natsMsg *msg = list.Msgs[i];
			jsMsgMetaData *meta = NULL;
			const char *why;
			uint64_t seq;

			if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
				continue;
			seq = meta->Sequence.Stream;
			jsMsgMetaData_Destroy(meta);
			if (seq > out->end_seq) {
				/* Cast after the replay began: the live
				 * processor's business. */
				past_end = true;
				break;
			}
			out->last_seq = seq;
			out->messages++;
			if (message_decode(natsMsg_GetSubject(msg),
			    (const uint8_t *)natsMsg_GetData(msg),
			    (size_t)natsMsg_GetDataLength(msg), &casts[n].vote,
			    &why) == MESSAGE_VOTE) {
				casts[n].seq = seq;
				n++;
			} else {
				out->poison++;
				log_debug("replay: seq %" PRIu64 " skipped: %s",
				    seq, why);
			}
		}
		if ((past_end || out->last_seq >= out->end_seq) &&
		    replay_flush(store, cfg, casts, &n, out) != 0) {
			natsMsgList_Destroy(&list);
			goto done;
		}
		/* AckAll: the last message confirms everything fetched so far.
		 * A replay that dies is simply run again: nothing is lost. */
		(void)natsMsg_Ack(list.Msgs[list.Count - 1], NULL);
		natsMsgList_Destroy(&list);
		out->elapsed_s = (double)(metrics_now_us() - t0) / 1e6;
		if (progress != NULL)
			progress(out, arg);
		if (past_end)
			break;
	}
	rc = 0;
done:
	out->elapsed_s = (double)(metrics_now_us() - t0) / 1e6;
	if (rc == 0 && progress != NULL)
		progress(out, arg);
	natsSubscription_Destroy(sub);
	if (created &&
	    js_DeleteConsumer(js, NATSCONN_STREAM, name, NULL, NULL) != NATS_OK)
		log_warn("nats: could not delete consumer %s; the server "
		    "drops it after a minute", name);
	jsStreamInfo_Destroy(si);
	free(casts);
	return rc;
}
