/*
 * votegen: the casts the benchmark feeds the processor and the database
 * ceiling, generated the same way for both so that their rates compare.
 *
 * Realistic voters: most casts come from new voters, a share re-cast as an
 * earlier voter (a changed vote, or a repeat that Redis let through), spread
 * round robin over several polls. Deterministic for a given run id and seed.
 */
#ifndef TALLY_BENCH_VOTEGEN_H
#define TALLY_BENCH_VOTEGEN_H

#include <stdint.h>

#include "vote.h"

struct votegen {
	char run[17];         /* prefix of voter and cast ids */
	unsigned polls;       /* polls bench0 .. bench<polls-1> */
	double recast_share;  /* casts by an earlier voter */
	uint64_t rng;         /* xorshift64 state */
	uint64_t casts;       /* casts made so far */
	uint64_t voters;      /* voters made so far */
};

/* Sets g up; run (at most 16 characters of [A-Za-z0-9]) names the run. */
void votegen_init(struct votegen *g, const char *run, unsigned polls,
    double recast_share, uint64_t seed);

/* Fills v with the next cast (cast_id unique per run, cast time now). */
void votegen_next(struct votegen *g, struct vote *v);

#endif
