/*
 * backlog - fills stream VOTES fast, straight into JetStream, so that the
 * processor's drain rate can be measured on a backlog of a known size.
 *
 * Publishes with js_PublishMsgAsync and a MaxPending cap (never unbounded
 * memory), the same payload and headers as the gateway: bare protobuf
 * tally.v1.Vote, Nats-Msg-Id = cast id, Content-Type, Tally-Poll,
 * Tally-Option. The casts come from votegen, as in db_ceiling.
 *
 *   backlog --url nats://127.0.0.1:4222 --votes 1000000 [--polls 4]
 *       [--recast-share 0.3] [--max-pending 8192] [--run ID]
 *   backlog --url URL --delete-consumer processor
 *
 * Prints one JSON object: published, failed, seconds, votes_per_s.
 * Exit status 0 only if every vote got its PubAck.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "natsconn.h"
#include "votegen.h"

static atomic_uint_fast64_t backlog_failed;

static void
backlog_on_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void)js;
	(void)closure;
	if (atomic_fetch_add(&backlog_failed, 1) == 0)
		fprintf(stderr, "backlog: publish failed: %s (%s)\n",
		    natsStatus_GetText(pae->Err),
		    pae->ErrText != NULL ? pae->ErrText : "");
}

static double
backlog_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One vote as the gateway publishes it; 0 or -1. */
static int
backlog_publish(jsCtx *js, const struct vote *v)
{
	natsMsg *msg = NULL;
	natsStatus s;

	s = natsconn_vote_msg(&msg, v);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Nats-Msg-Id", v->cast_id);
	/* Stalls (up to StallWait) while MaxPending acks are outstanding. */
	for (int tries = 0; s == NATS_OK && tries < 1000; tries++) {
		s = js_PublishMsgAsync(js, &msg, NULL);
		if (s != NATS_TIMEOUT)
			break;
		s = NATS_OK;
	}
	if (s != NATS_OK) {
		fprintf(stderr, "backlog: publish: %s\n", natsStatus_GetText(s));
		natsMsg_Destroy(msg);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct natsconn_config nc_cfg = {.url = "nats://127.0.0.1:4222",
	    .name = "tally-bench-backlog", .stream_replicas = 1};
	const char *run = "bl", *delete_consumer = NULL;
	long long votes = 100000, max_pending = 8192;
	unsigned polls = 4;
	double recast = 0.3, t0, secs;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jso;
	struct votegen g;
	struct vote v;
	uint64_t sent = 0, failed;
	int rc = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--url") == 0) nc_cfg.url = argv[i + 1];
		else if (strcmp(argv[i], "--votes") == 0) votes = atoll(argv[i + 1]);
		else if (strcmp(argv[i], "--polls") == 0) polls = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--recast-share") == 0) recast = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--max-pending") == 0) max_pending = atoll(argv[i + 1]);
		else if (strcmp(argv[i], "--run") == 0) run = argv[i + 1];
		else if (strcmp(argv[i], "--delete-consumer") == 0) delete_consumer = argv[i + 1];
		else {
			fprintf(stderr, "backlog: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	log_init("bench-backlog", LOG_LEVEL_WARN);
	jsOptions_Init(&jso);
	jso.PublishAsync.MaxPending = max_pending;
	jso.PublishAsync.StallWait = 1000;
	jso.PublishAsync.ErrHandler = backlog_on_error;
	jso.Wait = 10000;
	if (natsconn_open(&nc_cfg, &jso, &nc, &js) != 0)
		return 1;
	if (delete_consumer != NULL) {
		jsErrCode jerr = 0;
		natsStatus s = js_DeleteConsumer(js, NATSCONN_STREAM,
		    delete_consumer, NULL, &jerr);

		/* Not found is what we want anyway. */
		rc = s == NATS_OK || jerr == JSConsumerNotFoundErr ? 0 : 1;
		if (rc != 0)
			fprintf(stderr, "backlog: delete consumer %s: %s (%d)\n",
			    delete_consumer, natsStatus_GetText(s), (int)jerr);
		goto out;
	}
	if (natsconn_stream_ensure(js, 1) != 0)
		goto out;
	votegen_init(&g, run, polls, recast, 0x243f6a8885a308d3ULL);
	t0 = backlog_now();
	for (; (long long)sent < votes; sent++) {
		votegen_next(&g, &v);
		if (backlog_publish(js, &v) != 0)
			break;
	}
	{
		jsPubOptions po;

		jsPubOptions_Init(&po);
		po.MaxWait = 60000;
		if (js_PublishAsyncComplete(js, &po) != NATS_OK)
			fprintf(stderr, "backlog: acks still missing after 60 s\n");
	}
	secs = backlog_now() - t0;
	failed = atomic_load(&backlog_failed);
	printf("{\"published\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"voters\":%"
	    PRIu64 ",\"seconds\":%.3f,\"votes_per_s\":%.1f}\n", sent - failed,
	    failed, g.voters, secs, secs > 0 ? (double)(sent - failed) / secs : 0.0);
	rc = (long long)sent == votes && failed == 0 ? 0 : 1;
out:
	natsconn_close(nc, js, 5000);
	return rc;
}
