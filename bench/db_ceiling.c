/*
 * db_ceiling - the database ceiling for the processor benchmark.
 *
 * Applies casts to PostgreSQL with the processor's own store (the very
 * statement, array parameters and per-batch transaction of
 * processor/store.c, linked from tally_processor_core), in batches of the
 * processor's size, with nothing else: no NATS fetch, no decode, no ack.
 * The casts come from votegen, as in the backlog the processor drains. So
 * processor drain rate / this rate is what everything but SQL costs.
 *
 *   db_ceiling --conninfo URL --votes 1000000 --batch 1000 [--polls 4]
 *       [--recast-share 0.3] [--run ID] [--reset]
 *
 * --reset empties votes and tallies first. synchronous_commit is left as
 * the server has it (on by default), as for the processor. Prints one JSON
 * object: votes, batches, seconds (time inside the statements only),
 * votes_per_s, and wall_seconds.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sig.h"
#include "store.h"
#include "votegen.h"

static double
ceiling_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	const char *conninfo = "", *run = "bl";
	long long votes = 100000, batch = 1000, done = 0, batches = 0;
	unsigned polls = 4;
	double recast = 0.3, in_sql = 0, wall0;
	struct store_cast *casts = NULL;
	struct store *st = NULL;
	struct votegen g;
	uint64_t seq = 0;
	int reset = 0, rc = 1;

	for (int i = 1; i < argc; i++) {
		const char *val = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(argv[i], "--reset") == 0) { reset = 1; continue; }
		if (strcmp(argv[i], "--conninfo") == 0) conninfo = val;
		else if (strcmp(argv[i], "--votes") == 0) votes = atoll(val);
		else if (strcmp(argv[i], "--batch") == 0) batch = atoll(val);
		else if (strcmp(argv[i], "--polls") == 0) polls = (unsigned)atoi(val);
		else if (strcmp(argv[i], "--recast-share") == 0) recast = atof(val);
		else if (strcmp(argv[i], "--run") == 0) run = val;
		else {
			fprintf(stderr, "db_ceiling: unknown argument %s\n", argv[i]);
			return 2;
		}
		i++;
	}
	if (batch < 1 || votes < 1) {
		fprintf(stderr, "db_ceiling: --votes and --batch must be >= 1\n");
		return 2;
	}
	log_init("bench-db-ceiling", LOG_LEVEL_WARN);
	sig_init();
	casts = calloc((size_t)batch, sizeof(*casts));
	st = store_new(conninfo, "tally-bench-db-ceiling", NULL);
	if (casts == NULL || st == NULL)
		goto out;
	if (store_connect(st, 2000) != 0)
		goto out;
	if (reset && store_reset(st) != 0)
		goto out;
	votegen_init(&g, run, polls, recast, 0x243f6a8885a308d3ULL);
	wall0 = ceiling_now();
	while (done < votes) {
		long long n = votes - done < batch ? votes - done : batch;
		struct store_result res;
		double t0;

		for (long long i = 0; i < n; i++) {
			votegen_next(&g, &casts[i].vote);
			casts[i].seq = ++seq;  /* a fresh stream numbers from 1 */
		}
		t0 = ceiling_now();
		if (store_apply(st, casts, (size_t)n, &res) != 0)
			goto out;
		in_sql += ceiling_now() - t0;
		done += n;
		batches++;
	}
	printf("{\"votes\":%lld,\"batches\":%lld,\"batch\":%lld,\"seconds\":%.3f,"
	    "\"votes_per_s\":%.1f,\"wall_seconds\":%.3f}\n", done, batches,
	    batch, in_sql, in_sql > 0 ? (double)done / in_sql : 0.0,
	    ceiling_now() - wall0);
	rc = 0;
out:
	store_free(st);
	free(casts);
	return rc;
}
