/*
 * tallyctl replay: rebuilds PostgreSQL from stream VOTES with the live
 * processor's own store code: from the start, from a sequence
 * (--from-seq N) or from a time (--since 2026-11-29T10:00:00Z, --since 1h).
 * --reset empties votes and tallies first, for a full rebuild (after
 * restoring a backup, or to recount). Progress goes to stderr, the summary
 * to stdout.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "natsconn.h"
#include "replay.h"
#include "sig.h"
#include "store.h"

struct replay_cmd_config {
	struct natsconn_settings nats;
	char *database_url;
	long batch_max;
};

#define F(x) offsetof(struct replay_cmd_config, x)
static const struct config_entry replay_table[] = {
	NATSCONN_CONFIG_ENTRIES(struct replay_cmd_config, nats),
	{"DATABASE_URL", CONFIG_STR, F(database_url), NULL, 0, 0,
	    CONFIG_SECRET, "libpq connection string; empty: PG* variables"},
	{"BATCH_MAX", CONFIG_INT, F(batch_max), "5000", 1, 10000, 0,
	    "votes per transaction"},
};
#undef F
#define REPLAY_TABLE_N (sizeof(replay_table) / sizeof(replay_table[0]))

static const char replay_usage[] =
    "tallyctl replay [--reset | --from-seq N | --since TIME] [settings]: "
    "rebuild PostgreSQL from stream VOTES\n"
    "  (no option)      replay everything the stream holds\n"
    "  --from-seq N     replay from stream sequence N on\n"
    "  --since TIME     replay from a time on: 2026-11-29T10:00:00Z (UTC),\n"
    "                   or an age such as 90s, 30m, 1h, 2d\n"
    "  --reset          empty votes and tallies first (a full rebuild;\n"
    "                   not with --from-seq or --since)\n"
    "  --quiet          no progress lines\n"
    "Replaying over a live database is harmless: a row only moves to a\n"
    "higher stream sequence.";

/* Days since 1970-01-01 of a proleptic Gregorian date (no timegm()). */
static int64_t
replay_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * Parses "2026-11-29T10:00:00Z" (UTC) or an age ("90s", "30m", "1h",
 * "2d") relative to now into nanoseconds since the epoch. Returns 0 or -1.
 */
static int
replay_parse_since(const char *s, int64_t *out_ns)
{
	int y, mo, d, h, mi, sec, used = 0;
	char unit;
	long long n;

	static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31};

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi,
	    &sec, &used) == 6 && used == (int)strlen(s)) {
		if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] ||
		    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 ||
		    y % 400 == 0))) || h < 0 || h > 23 || mi < 0 || mi > 59 ||
		    sec < 0 || sec > 60 || y < 1970)
			return -1;
		*out_ns = ((replay_days_from_civil(y, mo, d) * 86400 +
		    h * 3600 + mi * 60 + sec)) * 1000000000LL;
		return 0;
	}
	/* An age: at most 100 years back, so that no product overflows. */
	if (isdigit((unsigned char)s[0]) &&
	    sscanf(s, "%lld%c%n", &n, &unit, &used) == 2 &&
	    used == (int)strlen(s) && n >= 0) {
		struct timespec now;
		int64_t mult;

		switch (unit) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		default: return -1;
		}
		if (n > 100LL * 366 * 86400 / mult)
			return -1;
		clock_gettime(CLOCK_REALTIME, &now);
		*out_ns = ((int64_t)now.tv_sec - n * mult) * 1000000000LL +
		    now.tv_nsec;
		return 0;
	}
	return -1;
}

struct replay_show {
	bool quiet;
	uint64_t last_us;
};

static void
replay_show_progress(const struct replay_progress *p, void *arg)
{
	struct replay_show *show = arg;
	uint64_t now = metrics_now_us();

	if (show->quiet || (now - show->last_us < 1000000 &&
	    p->last_seq < p->end_seq))
		return;
	show->last_us = now;
	fprintf(stderr, "replay: %" PRIu64 "/%" PRIu64 " messages (%.0f%%), "
	    "seq %" PRIu64 "/%" PRIu64 ", %.0f/s\n", p->messages, p->total,
	    p->total > 0 ? 100.0 * (double)p->messages / (double)p->total : 100,
	    p->last_seq, p->end_seq,
	    p->elapsed_s > 0 ? (double)p->messages / p->elapsed_s : 0);
}

/* Takes --reset, --from-seq, --since and --quiet out of argv (in place;
 * the rest goes to config_load). Returns 0, or -1 after a usage message. */
static int
replay_parse_args(int *argc, char **argv, struct replay_config *rc,
    bool *reset, bool *quiet)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		const char *v = NULL;

		if (strcmp(a, "--reset") == 0) {
			*reset = true;
			continue;
		}
		if (strcmp(a, "--quiet") == 0) {
			*quiet = true;
			continue;
		}
		if (strcmp(a, "--from-seq") == 0 || strcmp(a, "--since") == 0) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "tallyctl replay: %s needs a "
				    "value\n", a);
				return -1;
			}
			v = argv[++i];
		} else if (strncmp(a, "--from-seq=", 11) == 0 ||
		    strncmp(a, "--since=", 8) == 0) {
			v = strchr(a, '=') + 1;
		} else {
			argv[out++] = argv[i];
			continue;
		}
		if (rc->from != REPLAY_FROM_START) {
			fprintf(stderr, "tallyctl replay: give one of "
			    "--from-seq and --since\n");
			return -1;
		}
		if (strncmp(a, "--from-seq", 10) == 0) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(v, &end, 10);
			/* strtoull takes leading blanks and a sign ("-1" is
			 * 2^64-1): digits only, and in range. */
			if (!isdigit((unsigned char)*v) || *end != '\0' ||
			    n == 0 || errno == ERANGE || n > INT64_MAX) {
				fprintf(stderr, "tallyctl replay: --from-seq "
				    "\"%s\" is not a sequence (1, 2, ...)\n", v);
				return -1;
			}
			rc->from = REPLAY_FROM_SEQ;
			rc->start_seq = n;
		} else {
			if (replay_parse_since(v, &rc->start_time_ns) != 0) {
				fprintf(stderr, "tallyctl replay: --since \"%s\""
				    " is neither 2026-11-29T10:00:00Z nor an age"
				    " such as 1h\n", v);
				return -1;
			}
			rc->from = REPLAY_FROM_TIME;
		}
	}
	if (*reset && rc->from != REPLAY_FROM_START) {
		fprintf(stderr, "tallyctl replay: --reset rebuilds from the "
		    "start; it cannot go with --from-seq or --since\n");
		return -1;
	}
	*argc = out;
	return 0;
}

int
cmd_replay(int argc, char **argv)
{
	struct replay_cmd_config cfg = {0};
	struct replay_config rc = {0};
	struct replay_progress p;
	struct replay_show show = {0};
	struct store *store = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	bool reset = false;
	int status = CMD_EXIT_FAILED, r;

	if (replay_parse_args(&argc, argv, &rc, &reset, &show.quiet) != 0)
		return CMD_EXIT_USAGE;
	if (cmd_config_load(replay_table, REPLAY_TABLE_N, &cfg, argc, argv,
	    replay_usage, &status) != 0)
		goto out;
	sig_init();
	rc.batch_max = cfg.batch_max;
	rc.max_backoff_ms = 2000;
	rc.idle_timeout_ms = 5000;

	struct natsconn_config ncfg = natsconn_config_of(&cfg.nats,
	    "tallyctl-replay");
	if (natsconn_open(&ncfg, NULL, &nc, &js) != 0) {
		status = CMD_EXIT_CONFIG;
		goto out;
	}
	for (int i = 0; i < 50 && !natsconn_connected(nc); i++)
		nats_Sleep(100);
	if (!natsconn_connected(nc)) {
		char url[512];

		natsconn_redact(cfg.nats.url, url, sizeof(url));
		fprintf(stderr, "tallyctl replay: NATS at %s is unavailable\n",
		    url);
		status = CMD_EXIT_UNAVAILABLE;
		goto out;
	}
	/* store_connect retries until it works: a replay waits for a
	 * database that is still starting (Ctrl-C ends the wait). */
	store = store_new(cfg.database_url, "tallyctl-replay", NULL);
	if (store == NULL || store_connect(store, rc.max_backoff_ms) != 0) {
		status = CMD_EXIT_UNAVAILABLE;
		goto out;
	}
	/* Reset before reading the stream's end: every cast after the
	 * TRUNCATE is then either replayed here or applied live. The same
	 * transaction records the stream as the one the votes come from
	 * (whatever the database recorded before, e.g. a restored backup). */
	if (reset) {
		jsStreamInfo *si = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetStreamInfo(&si, js, NATSCONN_STREAM, NULL,
		    &jerr);

		if (s != NATS_OK) {
			fprintf(stderr, "tallyctl replay: stream %s: %s "
			    "(JetStream error %d)\n", NATSCONN_STREAM,
			    natsStatus_GetText(s), (int)jerr);
			goto out;
		}
		rc.stream_ns = si->Created;
		jsStreamInfo_Destroy(si);
		store_set_stream(store, rc.stream_ns);
		if (store_reset(store) != 0)
			goto out;
		fprintf(stderr, "replay: votes and tallies emptied; stream "
		    "%s (created %" PRId64 ") recorded\n", NATSCONN_STREAM,
		    rc.stream_ns);
	}
	r = replay_run(nc, js, store, &rc, replay_show_progress, &show, &p);
	if (r < 0)
		goto out;
	if (r == 1)
		printf("replay: nothing to replay\n");
	else
		printf("replay: %" PRIu64 " messages up to seq %" PRIu64 ", %"
		    PRIu64 " rows changed, %" PRIu64 " poison skipped, in "
		    "%.1f s (%.0f/s)\n", p.messages, p.last_seq, p.applied,
		    p.poison, p.elapsed_s, p.elapsed_s > 0 ?
		    (double)p.messages / p.elapsed_s : 0);
	status = CMD_EXIT_OK;
out:
	store_free(store);
	natsconn_close(nc, js, 1000);
	config_fini(replay_table, REPLAY_TABLE_N, &cfg);
	return status;
}
