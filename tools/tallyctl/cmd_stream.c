/*
 * tallyctl stream - stream VOTES and its consumers on one screen: messages,
 * bytes, first and last sequence and time, per-subject (per-poll) counts,
 * limits, and for every consumer its lag (pending), ack pending,
 * redeliveries and last delivered sequence. The numbers are the server's
 * own (JetStream's STREAM.INFO and CONSUMER.LIST), the same ones its
 * monitoring endpoint /jsz shows.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "log.h"
#include "natsconn.h"
#include "sig.h"
#include "vote_json.h"

struct stream_opts {
	const char *stream;
	bool json;
	long watch_s;    /* 0: print once */
	long timeout_ms; /* to connect and for each request */
};

static void
stream_usage(FILE *f)
{
	fprintf(f,
"usage: tallyctl stream [--json] [--watch S] [--stream NAME] [--timeout S]\n"
"\n"
"Shows stream VOTES and its consumers: messages, bytes, first and last\n"
"sequence and time, messages per subject (one subject per poll), limits,\n"
"duplicate window, replicas; and for each consumer its pending messages\n"
"(lag), ack pending, redelivered, waiting pulls and last delivered sequence.\n"
"\n"
"  --json       one JSON object (with --watch: one per refresh, one a line)\n"
"  --watch S    refresh every S seconds until interrupted\n"
"  --stream N   another stream name (default VOTES)\n"
"  --timeout S  seconds to wait for NATS (default 3)\n"
"\n"
"Environment: NATS_URL (default nats://127.0.0.1:4222), NATS_USER,\n"
"NATS_PASSWORD, NATS_TOKEN, NATS_TLS_CA (see docs/CONTRACTS.md).\n"
"\n"
"Exit status: 0 shown; 1 the stream does not exist or a request failed;\n"
"2 usage error; 69 NATS cannot be reached; 78 NATS_URL cannot be used.\n");
}

static const char *
stream_env(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : def;
}

/* RFC 3339 of a JetStream time (ns since the epoch), or "-" for none. */
static void
stream_time(int64_t ns, char *out, size_t cap)
{
	if (ns <= 0 || vote_json_time(ns / 1000000, out, cap) != 0)
		snprintf(out, cap, "-");
}

static json_t *
stream_json_time(int64_t ns)
{
	char t[40];

	if (ns <= 0)
		return json_null();
	stream_time(ns, t, sizeof(t));
	return json_string(t);
}

/* One stream info and consumer list as JSON (new reference). */
static json_t *
stream_to_json(const jsStreamInfo *si, const jsConsumerInfoList *cl)
{
	const jsStreamConfig *c = si->Config;
	const jsStreamState *s = &si->State;
	json_t *o = json_object(), *st = json_object(), *subj = json_array();
	json_t *counts = json_object(), *cons = json_array();

	for (int i = 0; i < c->SubjectsLen; i++)
		json_array_append_new(subj, json_string(c->Subjects[i]));
	for (int i = 0; s->Subjects != NULL && i < s->Subjects->Count; i++)
		json_object_set_new(counts, s->Subjects->List[i].Subject,
		    json_integer((json_int_t)s->Subjects->List[i].Msgs));
	json_object_set_new(st, "name", json_string(c->Name));
	json_object_set_new(st, "subjects", subj);
	json_object_set_new(st, "storage",
	    json_string(natsconn_storage_name(c->Storage)));
	json_object_set_new(st, "retention",
	    json_string(natsconn_retention_name(c->Retention)));
	json_object_set_new(st, "replicas", json_integer(c->Replicas));
	json_object_set_new(st, "duplicate_window_ms",
	    json_integer(c->Duplicates / 1000000));
	json_object_set_new(st, "max_msgs", json_integer(c->MaxMsgs));
	json_object_set_new(st, "max_bytes", json_integer(c->MaxBytes));
	json_object_set_new(st, "max_age_ms", json_integer(c->MaxAge / 1000000));
	json_object_set_new(st, "messages", json_integer((json_int_t)s->Msgs));
	json_object_set_new(st, "bytes", json_integer((json_int_t)s->Bytes));
	json_object_set_new(st, "first_seq",
	    json_integer((json_int_t)s->FirstSeq));
	json_object_set_new(st, "first_time", stream_json_time(s->FirstTime));
	json_object_set_new(st, "last_seq", json_integer((json_int_t)s->LastSeq));
	json_object_set_new(st, "last_time", stream_json_time(s->LastTime));
	json_object_set_new(st, "num_subjects", json_integer(s->NumSubjects));
	json_object_set_new(st, "num_deleted",
	    json_integer((json_int_t)s->NumDeleted));
	json_object_set_new(st, "consumer_count", json_integer(s->Consumers));
	json_object_set_new(st, "subject_messages", counts);
	for (int i = 0; cl != NULL && i < cl->Count; i++) {
		const jsConsumerInfo *ci = cl->List[i];
		json_t *co = json_object();

		json_object_set_new(co, "name", json_string(ci->Name));
		json_object_set_new(co, "durable", json_boolean(
		    ci->Config->Durable != NULL && ci->Config->Durable[0]));
		json_object_set_new(co, "pull", json_boolean(
		    ci->Config->DeliverSubject == NULL ||
		    ci->Config->DeliverSubject[0] == '\0'));
		json_object_set_new(co, "pending",
		    json_integer((json_int_t)ci->NumPending));
		json_object_set_new(co, "ack_pending",
		    json_integer(ci->NumAckPending));
		json_object_set_new(co, "redelivered",
		    json_integer(ci->NumRedelivered));
		json_object_set_new(co, "waiting", json_integer(ci->NumWaiting));
		json_object_set_new(co, "delivered_stream_seq",
		    json_integer((json_int_t)ci->Delivered.Stream));
		json_object_set_new(co, "delivered_consumer_seq",
		    json_integer((json_int_t)ci->Delivered.Consumer));
		json_object_set_new(co, "last_delivered_time",
		    stream_json_time(ci->Delivered.Last));
		json_object_set_new(co, "ack_floor_stream_seq",
		    json_integer((json_int_t)ci->AckFloor.Stream));
		json_object_set_new(co, "ack_wait_ms",
		    json_integer(ci->Config->AckWait / 1000000));
		json_object_set_new(co, "max_ack_pending",
		    json_integer(ci->Config->MaxAckPending));
		json_object_set_new(co, "max_deliver",
		    json_integer(ci->Config->MaxDeliver));
		json_array_append_new(cons, co);
	}
	json_object_set_new(o, "stream", st);
	json_object_set_new(o, "consumers", cons);
	return o;
}

/* "unlimited" for the server's -1 or 0, else the number. */
static void
stream_limit(char *out, size_t cap, int64_t v, const char *unit)
{
	if (v <= 0)
		snprintf(out, cap, "unlimited");
	else
		snprintf(out, cap, "%" PRId64 "%s", v, unit);
}

static void
stream_print_text(const jsStreamInfo *si, const jsConsumerInfoList *cl)
{
	const jsStreamConfig *c = si->Config;
	const jsStreamState *s = &si->State;
	char t1[40], t2[40], l1[32], l2[32], l3[32];

	printf("stream %s: %s storage, %s retention, %" PRId64 " replica%s\n",
	    c->Name, natsconn_storage_name(c->Storage),
	    natsconn_retention_name(c->Retention), c->Replicas,
	    c->Replicas == 1 ? "" : "s");
	printf("  subjects      ");
	for (int i = 0; i < c->SubjectsLen; i++)
		printf("%s%s", i ? ", " : "", c->Subjects[i]);
	printf("  (%" PRId64 " in use)\n", s->NumSubjects);
	printf("  messages      %" PRIu64 "  (%" PRIu64 " bytes, %" PRIu64
	    " deleted)\n", s->Msgs, s->Bytes, s->NumDeleted);
	stream_time(s->FirstTime, t1, sizeof(t1));
	stream_time(s->LastTime, t2, sizeof(t2));
	printf("  first         seq %" PRIu64 " at %s\n", s->FirstSeq, t1);
	printf("  last          seq %" PRIu64 " at %s\n", s->LastSeq, t2);
	printf("  dup window    %" PRId64 " s\n", c->Duplicates / 1000000000);
	stream_limit(l1, sizeof(l1), c->MaxMsgs, " msgs");
	stream_limit(l2, sizeof(l2), c->MaxBytes, " bytes");
	stream_limit(l3, sizeof(l3), c->MaxAge / 1000000000, " s");
	printf("  limits        %s, %s, max age %s\n", l1, l2, l3);
	if (s->Subjects != NULL && s->Subjects->Count > 0) {
		printf("  per subject  ");
		for (int i = 0; i < s->Subjects->Count; i++)
			printf(" %s=%" PRIu64, s->Subjects->List[i].Subject,
			    s->Subjects->List[i].Msgs);
		printf("\n");
	}
	printf("consumers: %d\n", cl != NULL ? cl->Count : 0);
	if (cl == NULL || cl->Count == 0)
		return;
	printf("  %-16s %10s %11s %11s %7s %12s  %s\n", "NAME", "PENDING",
	    "ACK_PENDING", "REDELIVERED", "WAITING", "DELIVERED", "LAST");
	for (int i = 0; i < cl->Count; i++) {
		const jsConsumerInfo *ci = cl->List[i];

		stream_time(ci->Delivered.Last, t1, sizeof(t1));
		printf("  %-16s %10" PRIu64 " %11" PRId64 " %11" PRId64 " %7"
		    PRId64 " %12" PRIu64 "  %s\n", ci->Name, ci->NumPending,
		    ci->NumAckPending, ci->NumRedelivered, ci->NumWaiting,
		    ci->Delivered.Stream, t1);
	}
	printf("  (PENDING is the lag: messages not yet delivered; DELIVERED is "
	    "the last stream sequence handed out)\n");
}

/* Fetches and prints once. Returns an exit status. */
static int
stream_show(jsCtx *js, const struct stream_opts *o, bool clear)
{
	jsStreamInfo *si = NULL;
	jsConsumerInfoList *cl = NULL;
	jsOptions jo;
	jsErrCode jerr = 0;
	natsStatus s;
	int rc = CMD_EXIT_FAILED;

	jsOptions_Init(&jo);
	jo.Wait = o->timeout_ms;
	/* Subjects are per poll, never per voter, so this list stays short. */
	jo.Stream.Info.SubjectsFilter = ">";
	s = js_GetStreamInfo(&si, js, o->stream, &jo, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		fprintf(stderr, "tallyctl stream: stream %s does not exist yet: "
		    "start tally-gateway or tally-processor, or run tallyctl "
		    "init\n", o->stream);
		goto out;
	}
	if (s != NATS_OK) {
		fprintf(stderr, "tallyctl stream: stream info for %s: %s "
		    "(JetStream error %d). Is JetStream enabled (nats-server "
		    "-js)?\n", o->stream, natsStatus_GetText(s), (int)jerr);
		goto out;
	}
	jsOptions_Init(&jo);
	jo.Wait = o->timeout_ms;
	s = js_Consumers(&cl, js, o->stream, &jo, &jerr);
	if (s == NATS_NOT_FOUND)
		s = NATS_OK; /* no consumers yet */
	if (s != NATS_OK) {
		fprintf(stderr, "tallyctl stream: consumer list of %s: %s "
		    "(JetStream error %d)\n", o->stream, natsStatus_GetText(s),
		    (int)jerr);
		goto out;
	}
	if (o->json) {
		json_t *j = stream_to_json(si, cl);
		char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

		json_decref(j);
		if (txt == NULL)
			goto out;
		printf("%s\n", txt);
		free(txt);
	} else {
		if (clear)
			printf("\033[H\033[2J");
		stream_print_text(si, cl);
	}
	fflush(stdout);
	rc = CMD_EXIT_OK;
out:
	jsConsumerInfoList_Destroy(cl);
	jsStreamInfo_Destroy(si);
	return rc;
}

static int
stream_parse(int argc, char **argv, struct stream_opts *o)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"watch", required_argument, NULL, 'w'},
		{"stream", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char *end;
	double d;
	int ch;

	o->stream = NATSCONN_STREAM;
	o->timeout_ms = 3000;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			o->json = true;
			break;
		case 'w':
		case 't':
			errno = 0;
			d = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(d > 0) || d > 86400) {
				fprintf(stderr, "tallyctl stream: %s needs "
				    "seconds above 0, not \"%s\"\n",
				    ch == 'w' ? "--watch" : "--timeout", optarg);
				return -1;
			}
			if (ch == 'w')
				o->watch_s = d < 1 ? 1 : (long)d;
			else
				o->timeout_ms = (long)(d * 1000);
			break;
		case 's':
			o->stream = optarg;
			break;
		case 'h':
			stream_usage(stdout);
			return 1;
		default:
			fprintf(stderr, "tallyctl stream: unknown or incomplete "
			    "option \"%s\" (see tallyctl stream --help)\n",
			    argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tallyctl stream: unexpected argument \"%s\" "
		    "(see tallyctl stream --help)\n", argv[optind]);
		return -1;
	}
	return 0;
}

int
cmd_stream(int argc, char **argv)
{
	struct stream_opts o;
	struct natsconn_config nc_cfg;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	int64_t waited = 0;
	char url[512];
	int r, rc;

	memset(&o, 0, sizeof(o));
	r = stream_parse(argc, argv, &o);
	if (r != 0)
		return r > 0 ? CMD_EXIT_OK : CMD_EXIT_USAGE;
	memset(&nc_cfg, 0, sizeof(nc_cfg));
	nc_cfg.url = stream_env("NATS_URL", "nats://127.0.0.1:4222");
	nc_cfg.user = stream_env("NATS_USER", NULL);
	nc_cfg.password = stream_env("NATS_PASSWORD", NULL);
	nc_cfg.token = stream_env("NATS_TOKEN", NULL);
	nc_cfg.tls_ca = stream_env("NATS_TLS_CA", NULL);
	nc_cfg.name = "tallyctl stream";
	nc_cfg.stream_replicas = 1;
	/* natsconn's reconnect chatter would bury the one line that says
	 * what to do; LOG_LEVEL=info brings it back. */
	if (getenv("LOG_LEVEL") == NULL)
		log_init("tallyctl", LOG_LEVEL_ERROR);
	sig_init();
	natsconn_redact(nc_cfg.url, url, sizeof(url));
	if (natsconn_open(&nc_cfg, NULL, &nc, &js) != 0) {
		fprintf(stderr, "tallyctl stream: cannot use NATS_URL \"%s\" "
		    "(see the line above); set NATS_URL and the NATS_* login "
		    "variables\n", url);
		return CMD_EXIT_CONFIG;
	}
	/* natsconn keeps retrying in the background; a one-shot tool waits
	 * a little and then says what to do. */
	while (!natsconn_connected(nc) && waited < o.timeout_ms &&
	    !sig_stop_requested()) {
		(void)sig_sleep_ms(50);
		waited += 50;
	}
	if (!natsconn_connected(nc)) {
		fprintf(stderr, "tallyctl stream: cannot reach NATS at %s: is "
		    "nats-server running (with -js)? Set NATS_URL to where it "
		    "listens.\n", url);
		natsconn_close(nc, js, 0);
		return CMD_EXIT_UNAVAILABLE;
	}
	for (;;) {
		rc = stream_show(js, &o, o.watch_s > 0 && isatty(STDOUT_FILENO));
		if (o.watch_s == 0 || sig_sleep_ms(o.watch_s * 1000))
			break;
	}
	natsconn_close(nc, js, 0);
	return rc;
}
