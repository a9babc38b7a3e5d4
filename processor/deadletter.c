/*
 * deadletter.c - the dead-letter copy of a poison message.
 */
#include "deadletter.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "natsconn.h"

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

int
deadletter_publish(jsCtx *js, natsMsg *msg, uint64_t seq, const char *why)
{
	natsMsg *copy = NULL;
	jsPubAck *pa = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	const char **keys = NULL;
	int nkeys = 0;
	char seqbuf[24];
	natsStatus s;

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
	snprintf(seqbuf, sizeof(seqbuf), "%" PRIu64, seq);
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
	po.MaxWait = 5000;
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, js, copy, &po, &jerr);
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(copy);
	if (s != NATS_OK) {
		log_warn("nats: dead-letter copy of seq %" PRIu64 " failed: %s "
		    "(JetStream error %d); the original stays in stream VOTES",
		    seq, natsStatus_GetText(s), (int)jerr);
		return -1;
	}
	return 0;
}
