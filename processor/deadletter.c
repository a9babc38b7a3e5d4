/*
 * deadletter.c - the dead-letter copy of a poison message.
 */
#define _POSIX_C_SOURCE 200809L
#include "deadletter.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "natsconn.h"
#include "sig.h"

int
deadletter_ensure(jsCtx *js, long replicas)
{
	jsStreamConfig sc;
	const char *subject = DEADLETTER_SUBJECT;

	natsconn_stream_config_init(&sc, DEADLETTER_STREAM, &subject, replicas,
	    "tally: copies of poison messages from VOTES");
	/* Poison is rare; a bound keeps a flood of it from filling disks. */
	sc.MaxMsgs = 100000;
	/* An existing VOTES_DLQ is the operator's: left as it is. */
	return natsconn_stream_ensure_config(js, &sc, false);
}

void
deadletter_init(struct deadletter *d, metrics_counter *failed)
{
	d->failed = failed;
	atomic_store(&d->pending, 0);
}

static void
deadletter_failed(struct deadletter *d, const char *seq, const char *why,
    jsErrCode jerr)
{
	metrics_inc(d->failed);
	log_warn("nats: dead-letter copy of seq %s failed: %s (JetStream "
	    "error %d); the original stays in stream VOTES", seq, why,
	    (int)jerr);
}

/* nats.c's thread, once per copy: a PubAck, or why there is none. The
 * copy is ours to destroy. */
static void
deadletter_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
    void *closure)
{
	struct deadletter *d = closure;

	(void)js;
	(void)pa;
	if (msg == NULL && pae != NULL)
		msg = pae->Msg;
	if (pae != NULL) {
		const char *seq = NULL;

		if (msg == NULL || natsMsgHeader_Get(msg, "Tally-Stream-Seq",
		    &seq) != NATS_OK)
			seq = "?";
		/* JetStream's own words when it refused the copy. */
		deadletter_failed(d, seq, pae->ErrText != NULL &&
		    pae->ErrText[0] != '\0' ? pae->ErrText :
		    natsStatus_GetText(pae->Err), pae->ErrCode);
	}
	natsMsg_Destroy(msg);
	atomic_fetch_sub(&d->pending, 1);
}

void
deadletter_options(struct deadletter *d, jsOptions *jso)
{
	jso->PublishAsync.AckHandler = deadletter_on_ack;
	jso->PublishAsync.AckHandlerClosure = d;
	/* Our own bound below comes first; this one only backs it up, and
	 * must not make a publish wait long. */
	jso->PublishAsync.MaxPending = DEADLETTER_MAX_PENDING + 64;
	jso->PublishAsync.StallWait = 10;
}

void
deadletter_publish(struct deadletter *d, jsCtx *js, natsMsg *msg,
    uint64_t seq, const char *why)
{
	natsMsg *copy = NULL;
	jsPubOptions po;
	const char **keys = NULL;
	int nkeys = 0;
	char seqbuf[24];
	natsStatus s;

	snprintf(seqbuf, sizeof(seqbuf), "%" PRIu64, seq);
	if (atomic_load(&d->pending) >= DEADLETTER_MAX_PENDING) {
		/* JetStream is not answering the copies: skip rather than
		 * queue without end or wait. */
		deadletter_failed(d, seqbuf, "too many copies unanswered", 0);
		return;
	}
	s = natsMsg_Create(&copy, DEADLETTER_SUBJECT, NULL,
	    natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
	/* Copy every header value; a message without headers has none. */
	if (s == NATS_OK &&
	    natsMsgHeader_Keys(msg, &keys, &nkeys) == NATS_OK) {
		for (int i = 0; s == NATS_OK && i < nkeys; i++) {
			const char **vals = NULL;
			int nvals = 0;

			if (natsMsgHeader_Values(msg, keys[i], &vals,
			    &nvals) != NATS_OK)
				continue;
			for (int j = 0; s == NATS_OK && j < nvals; j++)
				s = natsMsgHeader_Add(copy, keys[i], vals[j]);
			free((void *)vals);
		}
		free((void *)keys);
	}
	if (s == NATS_OK)
		s = natsMsgHeader_Set(copy, "Tally-Error", why);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(copy, "Tally-Stream-Seq", seqbuf);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(copy, "Tally-Subject",
		    natsMsg_GetSubject(msg));
	/* The original's Nats-Msg-Id would make VOTES_DLQ drop a second
	 * copy of a re-sent poison message: each copy is its own event. */
	if (s == NATS_OK)
		(void)natsMsgHeader_Delete(copy, "Nats-Msg-Id");
	jsPubOptions_Init(&po);
	po.MaxWait = DEADLETTER_ACK_WAIT_MS;
	if (s == NATS_OK) {
		/* Counted first: the PubAck may come before the call returns. */
		atomic_fetch_add(&d->pending, 1);
		s = js_PublishMsgAsync(js, &copy, &po);
		if (s != NATS_OK)
			atomic_fetch_sub(&d->pending, 1);
	}
	/* On success nats.c took the copy (and set copy to NULL). */
	natsMsg_Destroy(copy);
	if (s != NATS_OK)
		deadletter_failed(d, seqbuf, natsStatus_GetText(s), 0);
}

long
deadletter_wait(struct deadletter *d, long timeout_ms)
{
	long left = sig_wait_drained(&d->pending, timeout_ms);

	if (left > 0)
		log_warn("nats: %ld dead-letter copies still unanswered at "
		    "exit; their originals stay in stream VOTES", left);
	return left;
}
