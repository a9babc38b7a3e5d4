/*
 * consumer.c - create, bind and fetch from the durable pull consumer.
 */
#include "consumer.h"

#include <string.h>

#include "log.h"
#include "natsconn.h"

void
consumer_init(struct consumer *c, jsCtx *js, const struct consumer_config *cfg)
{
	memset(c, 0, sizeof(*c));
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
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;

	consumer_fini(c);
	if (natsconn_stream_ensure(c->js, c->cfg.stream_replicas) != 0)
		return -1;
	if (consumer_ensure(c) != 0)
		return -1;
	jsSubOptions_Init(&so);
	so.Stream = NATSCONN_STREAM;
	so.Consumer = c->cfg.durable; /* bind only; never create */
	so.ManualAck = true;
	s = js_PullSubscribe(&c->sub, c->js, NATSCONN_SUBJECTS,
	    c->cfg.durable, NULL, &so, &jerr);
	if (s != NATS_OK) {
		log_warn("nats: cannot bind to consumer %s: %s (JetStream "
		    "error %d)", c->cfg.durable, natsStatus_GetText(s),
		    (int)jerr);
		c->sub = NULL;
		return -1;
	}
	log_info("nats: bound to consumer %s on stream %s", c->cfg.durable,
	    NATSCONN_STREAM);
	return 0;
}

enum consumer_fetch_result
consumer_fetch(struct consumer *c, natsMsgList *list, int batch, long wait_ms)
{
	jsErrCode jerr = 0;
	natsStatus s;

	memset(list, 0, sizeof(*list));
	if (c->sub == NULL)
		return CONSUMER_FAILED;
	s = natsSubscription_Fetch(list, c->sub, batch, wait_ms, &jerr);
	/* A fetch that times out before the batch fills may still have
	 * collected messages: they are ours now, use them (dropping them
	 * would leave them unacked until AckWait). */
	if (list->Count > 0)
		return CONSUMER_MESSAGES;
	natsMsgList_Destroy(list);
	/* Fetch returns NATS_TIMEOUT, sometimes early, when the stream is
	 * idle: that is not an error. */
	if (s == NATS_OK || s == NATS_TIMEOUT)
		return CONSUMER_EMPTY;
	log_debug("nats: fetch: %s (JetStream error %d)",
	    natsStatus_GetText(s), (int)jerr);
	return CONSUMER_FAILED;
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
	/* Destroy, never Unsubscribe: since nats.c 3.4 Destroy leaves the
	 * server's consumer alone. */
	natsSubscription_Destroy(c->sub);
	c->sub = NULL;
}
