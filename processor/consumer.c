/*
 * consumer.c - create, bind and fetch from the durable pull consumer.
 */
#define _POSIX_C_SOURCE 200809L
#include "consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#include "log.h"
#include "natsconn.h"

void
consumer_init(struct consumer *c, natsConnection *nc, jsCtx *js,
    const struct consumer_config *cfg)
{
	memset(c, 0, sizeof(*c));
	c->nc = nc;
	c->js = js;
	c->cfg = *cfg;
}

/* Creates the durable, or updates the settings that may change in place
 * (AckWait, MaxAckPending, MaxDeliver). */
static int
consumer_ensure(struct consumer *c)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	jsConsumerConfig_Init(&cc);
	cc.Durable = c->cfg.durable;
	cc.Description = "tally-processor: votes into PostgreSQL";
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckWait = (int64_t)c->cfg.ack_wait_s * 1000000000LL;
	cc.MaxAckPending = c->cfg.max_ack_pending;
	cc.MaxDeliver = c->cfg.max_deliver;
	/* Room for every processor's outstanding pull request. */
	cc.MaxWaiting = 512;

	s = js_GetConsumerInfo(&ci, c->js, NATSCONN_STREAM, c->cfg.durable,
	    NULL, &jerr);
	if (s == NATS_OK) {
		jsConsumerInfo_Destroy(ci);
		ci = NULL;
		s = js_UpdateConsumer(&ci, c->js, NATSCONN_STREAM, &cc, NULL,
		    &jerr);
	} else if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
		s = js_AddConsumer(&ci, c->js, NATSCONN_STREAM, &cc, NULL,
		    &jerr);
		/* Another processor may have made it in between: fine. */
		if (s != NATS_OK && (jerr == JSConsumerNameExistErr ||
		    jerr == JSConsumerExistingActiveErr))
			s = NATS_OK;
	}
	jsConsumerInfo_Destroy(ci);
	if (s != NATS_OK) {
		log_warn("nats: cannot create or update consumer %s: %s "
		    "(JetStream error %d)", c->cfg.durable,
		    natsStatus_GetText(s), (int)jerr);
		return -1;
	}
	return 0;
}

int
consumer_bind(struct consumer *c)
{
	natsInbox *inbox = NULL;
	char subject[80];
	natsStatus s;

	consumer_fini(c);
	if (natsconn_stream_ensure(c->js, c->cfg.stream_replicas) != 0)
		return -1;
	if (consumer_ensure(c) != 0)
		return -1;
	/* A fresh inbox per binding: nothing meant for an earlier one can
	 * reach this one. */
	if (natsInbox_Create(&inbox) != NATS_OK) {
		log_warn("nats: cannot make an inbox");
		return -1;
	}
	snprintf(c->inbox, sizeof(c->inbox), "%s", inbox);
	natsInbox_Destroy(inbox);
	snprintf(c->next_subject, sizeof(c->next_subject),
	    "$JS.API.CONSUMER.MSG.NEXT.%s.%s", NATSCONN_STREAM,
	    c->cfg.durable);
	snprintf(subject, sizeof(subject), "%s.*", c->inbox);
	s = natsConnection_SubscribeSync(&c->sub, c->nc, subject);
	/* What is queued is bounded by our own requests (and MaxAckPending):
	 * no slow-consumer drops. */
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(c->sub, -1, -1);
	if (s != NATS_OK) {
		log_warn("nats: cannot subscribe to %s: %s", subject,
		    natsStatus_GetText(s));
		consumer_fini(c);
		return -1;
	}
	log_info("nats: bound to consumer %s on stream %s", c->cfg.durable,
	    NATSCONN_STREAM);
	return 0;
}

/* The status code of a JetStream status message ("404", "408", ...), or
 * NULL for a message that carries a vote. */
static const char *
consumer_status(natsMsg *msg)
{
	const char *v = NULL;

	if (natsMsg_GetDataLength(msg) > 0 ||
	    natsMsgHeader_Get(msg, "Status", &v) != NATS_OK)
		return NULL;
	return v;
}

enum consumer_fetch_result
consumer_fetch(struct consumer *c, natsMsgList *list, int batch, long wait_ms)
{
	char reply[96], req[96];
	natsMsg **msgs;
	int count = 0, queued = 0, queued_bytes = 0, want;
	uint64_t deadline_us;
	bool asked = false;
	natsStatus s = NATS_OK;

	memset(list, 0, sizeof(*list));
	if (c->sub == NULL)
		return CONSUMER_FAILED;
	if ((msgs = calloc((size_t)batch, sizeof(*msgs))) == NULL)
		return CONSUMER_FAILED;
	/* Messages still queued (an earlier request's, past the earlier
	 * batch) count towards this batch: ask only for the rest. */
	if (natsSubscription_GetPending(c->sub, &queued, &queued_bytes) !=
	    NATS_OK)
		queued = 0;
	want = batch - queued;
	snprintf(reply, sizeof(reply), "%s.%" PRIu64, c->inbox,
	    ++c->fetch_id);
	if (want > 0) {
		/* The server answers 408 when expires passes with the batch
		 * not full, and 404 ... never with no_wait unset. */
		snprintf(req, sizeof(req), "{\"batch\":%d,\"expires\":%lld}",
		    want, (long long)wait_ms * 1000000LL);
		s = natsConnection_PublishRequestString(c->nc,
		    c->next_subject, reply, req);
		if (s != NATS_OK)
			goto fail;
		asked = true;
	}
	/* Our own deadline is a little after the server's expiry, so that
	 * its 408 normally ends the fetch. */
	deadline_us = metrics_now_us() + (uint64_t)wait_ms * 1000 + 100000;
	while (count < batch) {
		natsMsg *msg = NULL;
		uint64_t now = metrics_now_us();
		int64_t left_ms;
		const char *status;

		/* Without a request of ours, only take what is queued. */
		left_ms = !asked ? 0 : now >= deadline_us ? 0 :
		    (int64_t)(deadline_us - now) / 1000;
		s = natsSubscription_NextMsg(&msg, c->sub, left_ms > 0 ?
		    left_ms : 1);
		if (s == NATS_TIMEOUT) {
			s = NATS_OK;
			break;
		}
		if (s != NATS_OK)
			goto fail;
		if ((status = consumer_status(msg)) == NULL) {
			msgs[count++] = msg;
			continue;
		}
		/* 404/408/409 for this request end it; a status for an
		 * earlier request, or a heartbeat (100), means nothing. */
		if (strcmp(natsMsg_GetSubject(msg), reply) == 0 &&
		    strncmp(status, "100", 3) != 0) {
			if (strncmp(status, "404", 3) != 0 &&
			    strncmp(status, "408", 3) != 0) {
				const char *desc = NULL;

				(void)natsMsgHeader_Get(msg, "Description",
				    &desc);
				log_debug("nats: pull request: %s %s", status,
				    desc != NULL ? desc : "");
			}
			natsMsg_Destroy(msg);
			break;
		}
		natsMsg_Destroy(msg);
	}
	if (count == 0) {
		free(msgs);
		return CONSUMER_EMPTY;
	}
	list->Msgs = msgs;
	list->Count = count;
	return CONSUMER_MESSAGES;
fail:
	for (int i = 0; i < count; i++)
		natsMsg_Destroy(msgs[i]);
	free(msgs);
	log_debug("nats: fetch: %s", natsStatus_GetText(s));
	return CONSUMER_FAILED;
}

int
consumer_ack(natsConnection *nc, natsMsg *msg, enum consumer_ack kind)
{
	static const char *const bodies[] = {
		[CONSUMER_ACK] = "+ACK",
		[CONSUMER_NAK] = "-NAK",
		[CONSUMER_IN_PROGRESS] = "+WPI",
		[CONSUMER_TERM] = "+TERM",
	};
	const char *reply = natsMsg_GetReply(msg);

	if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
		return -1;
	return natsConnection_PublishString(nc, reply, bodies[kind]) ==
	    NATS_OK ? 0 : -1;
}

int
consumer_state(struct consumer *c, uint64_t *pending, uint64_t *ack_pending)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	s = js_GetConsumerInfo(&ci, c->js, NATSCONN_STREAM, c->cfg.durable,
	    NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr ||
	    jerr == JSStreamNotFoundErr)
		return 1;
	if (s != NATS_OK)
		return -1;
	*pending = ci->NumPending;
	*ack_pending = ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0;
	jsConsumerInfo_Destroy(ci);
	return 0;
}

void
consumer_fini(struct consumer *c)
{
	/* A plain subscription: unsubscribing it leaves the server's
	 * consumer alone. Messages still queued in it are dropped unacked
	 * and come back after AckWait. */
	if (c->sub != NULL)
		(void)natsSubscription_Unsubscribe(c->sub);
	natsSubscription_Destroy(c->sub);
	c->sub = NULL;
}
