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
consumer_stream_created(struct consumer *c, int64_t *created_ns)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	s = js_GetStreamInfo(&si, c->js, NATSCONN_STREAM, NULL, &jerr);
	if (s != NATS_OK) {
		log_warn("nats: stream %s: %s (JetStream error %d)",
		    NATSCONN_STREAM, natsStatus_GetText(s), (int)jerr);
		return -1;
	}
	*created_ns = si->Created;
	jsStreamInfo_Destroy(si);
	return 0;
}

int
consumer_stream_ensure(struct consumer *c, int64_t *created_ns)
{
	if (natsconn_stream_ensure(c->js, c->cfg.stream_replicas) != 0)
		return -1;
	return consumer_stream_created(c, created_ns);
}

int
consumer_bind(struct consumer *c, int64_t created_ns)
{
	int64_t now_ns = 0;

	consumer_fini(c);
	if (consumer_ensure(c) != 0)
		return -1;
	/* The same Created before and after the consumer was made: it was
	 * made on that stream (a deletion in between would change it), so
	 * whatever it delivers belongs to the stream the caller recorded. */
	if (consumer_stream_created(c, &now_ns) != 0)
		return -1;
	if (now_ns != created_ns) {
		log_warn("nats: stream %s was recreated while binding; "
		    "binding again", NATSCONN_STREAM);
		return -1;
	}
	c->stream_ns = created_ns;
	return consumer_attach(c);
}

int
consumer_attach(struct consumer *c)
{
	natsInbox *inbox = NULL;
	char subject[80];
	natsStatus s;

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
	c->reply[0] = '\0';
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
	log_info("nats: bound to consumer %s on stream %s (created %" PRId64
	    ")", c->cfg.durable, NATSCONN_STREAM, c->stream_ns);
	return 0;
}

/* The status code of a JetStream status message ("404", "408", ...), or
 * NULL for a message of the stream. A stored message always comes with
 * its ack subject, a status never does: an empty message with a Status
 * header that someone published to votes.* is poison, not a status (it
 * would otherwise be dropped unacked and come back every AckWait). */
static const char *
consumer_status(natsMsg *msg)
{
	const char *v = NULL, *reply = natsMsg_GetReply(msg);

	if ((reply != NULL && reply[0] != '\0') ||
	    natsMsg_GetDataLength(msg) > 0 ||
	    natsMsgHeader_Get(msg, "Status", &v) != NATS_OK)
		return NULL;
	return v;
}

int
consumer_request(struct consumer *c, int n, long expires_ms)
{
	char req[96];
	natsStatus s;

	if (c->sub == NULL || n < 1)
		return -1;
	snprintf(c->reply, sizeof(c->reply), "%s.%" PRIu64, c->inbox,
	    ++c->fetch_id);
	/* The server answers 408 when expires passes with the request not
	 * filled, and nothing when it is (no_wait unset: no 404 either). */
	if (expires_ms > 0)
		snprintf(req, sizeof(req), "{\"batch\":%d,\"expires\":%lld}",
		    n, (long long)expires_ms * 1000000LL);
	else
		snprintf(req, sizeof(req), "{\"batch\":%d,\"no_wait\":true}",
		    n);
	s = natsConnection_PublishRequestString(c->nc, c->next_subject,
	    c->reply, req);
	if (s != NATS_OK) {
		log_debug("nats: pull request: %s", natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

enum consumer_next_result
consumer_next(struct consumer *c, natsMsg **msg, long timeout_ms)
{
	uint64_t deadline_us = 0;
	int64_t left_ms = timeout_ms > 0 ? timeout_ms : 1;

	*msg = NULL;
	if (c->sub == NULL)
		return CONSUMER_NEXT_FAILED;
	for (;;) {
		natsMsg *m = NULL;
		const char *status;
		natsStatus s;

		s = natsSubscription_NextMsg(&m, c->sub, left_ms);
		if (s == NATS_TIMEOUT)
			return CONSUMER_NEXT_NONE;
		if (s != NATS_OK) {
			log_debug("nats: next message: %s",
			    natsStatus_GetText(s));
			return CONSUMER_NEXT_FAILED;
		}
		if ((status = consumer_status(m)) == NULL) {
			*msg = m;
			return CONSUMER_NEXT_MSG;
		}
		/* 404/408/409 for the current request end it; a status for
		 * an earlier request, or a heartbeat (100), means nothing. */
		if (strcmp(natsMsg_GetSubject(m), c->reply) == 0 &&
		    strncmp(status, "100", 3) != 0) {
			if (strncmp(status, "404", 3) != 0 &&
			    strncmp(status, "408", 3) != 0) {
				const char *desc = NULL;

				(void)natsMsgHeader_Get(m, "Description",
				    &desc);
				log_debug("nats: pull request: %s %s", status,
				    desc != NULL ? desc : "");
			}
			natsMsg_Destroy(m);
			return CONSUMER_NEXT_END;
		}
		natsMsg_Destroy(m);
		/* The clock only on this rare path: the common one (a
		 * message) costs no clock reading of ours. */
		if (deadline_us == 0)
			deadline_us = metrics_now_us() +
			    (uint64_t)left_ms * 1000;
		else {
			uint64_t now = metrics_now_us();

			if (now >= deadline_us)
				return CONSUMER_NEXT_NONE;
			left_ms = (int64_t)(deadline_us - now + 999) / 1000;
		}
	}
}

int
consumer_queued(struct consumer *c)
{
	int msgs = 0, bytes = 0;

	if (c->sub == NULL ||
	    natsSubscription_GetPending(c->sub, &msgs, &bytes) != NATS_OK)
		return 0;
	return msgs;
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
