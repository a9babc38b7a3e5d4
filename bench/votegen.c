/*
 * votegen.c - deterministic, cheap cast generator (see votegen.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "votegen.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t
votegen_rand(struct votegen *g)
{
	uint64_t x = g->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	g->rng = x;
	return x;
}

void
votegen_init(struct votegen *g, const char *run, unsigned polls,
    double recast_share, uint64_t seed)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->run, sizeof(g->run), "%s", run);
	g->polls = polls > 0 ? polls : 1;
	g->recast_share = recast_share;
	g->rng = seed != 0 ? seed : 0x9e3779b97f4a7c15ULL;
}

void
votegen_next(struct votegen *g, struct vote *v)
{
	struct timespec ts;
	uint64_t voter, r = votegen_rand(g);
	/* 2:1 for a, like the original seed. */
	const char *option = r % 3 == 2 ? "b" : "a";
	double u = (double)(votegen_rand(g) >> 11) / (double)(1ULL << 53);

	memset(v, 0, sizeof(*v));
	if (g->voters > 0 && u < g->recast_share)
		voter = votegen_rand(g) % g->voters;
	else
		voter = g->voters++;
	/* A voter votes in one poll, so that a re-cast hits the same row. */
	snprintf(v->poll, sizeof(v->poll), "bench%u",
	    (unsigned)(voter % g->polls));
	snprintf(v->voter, sizeof(v->voter), "%s-v%llu", g->run,
	    (unsigned long long)voter);
	snprintf(v->option, sizeof(v->option), "%s", option);
	snprintf(v->cast_id, sizeof(v->cast_id), "%s-c%llu", g->run,
	    (unsigned long long)g->casts++);
	clock_gettime(CLOCK_REALTIME, &ts);
	v->cast_unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	v->source = VOTE_SOURCE_NATS;
}
