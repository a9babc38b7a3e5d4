/*
 * seed_args: the pure parsing behind `tallyctl seed`'s options (a target
 * URL, lists of ids, a weight split), kept apart so unit tests can table-drive
 * them without a network.
 */
#ifndef TALLYCTL_SEED_ARGS_H
#define TALLYCTL_SEED_ARGS_H

#include <stddef.h>

#include "vote.h"

#define SEED_MAX_LIST 16 /* polls or options in one run */

/* An http:// target: a numeric or "localhost" host, a port, a path prefix. */
struct seed_url {
	char host[64];  /* as given (for the Host header) */
	char ip[16];    /* dotted IPv4 to connect to */
	int port;       /* 1..65535, 80 if not given */
	char path[256]; /* starts with '/' */
};

/* Parses "http://host[:port][/path]". Only IPv4 literals and "localhost"
 * are accepted: the generator never resolves names (it only talks to
 * loopback or a given address). Returns 0, or -1 with a reason in *why. */
int seed_url_parse(const char *s, struct seed_url *u, const char **why)
    __attribute__((warn_unused_result));

/* A list of poll or option ids. */
struct seed_list {
	char id[SEED_MAX_LIST][VOTE_ID_MAX + 1];
	unsigned n;
};

/* Parses "a,b,c": 1..SEED_MAX_LIST ids, each valid by vote_id_valid, no
 * repeats. Returns 0, or -1 with a reason in *why. */
int seed_list_parse(const char *s, struct seed_list *l, const char **why)
    __attribute__((warn_unused_result));

/* Parses a split like "2:1" into n whole weights (each 0..1000000, at least
 * one above zero); the count must equal n. Returns 0 or -1 with *why. */
int seed_split_parse(const char *s, unsigned n, unsigned *weights,
    const char **why) __attribute__((warn_unused_result));

/*
 * Smooth weighted round robin (as in nginx's upstreams): picks the next of n
 * choices so that any run of sum(weights) picks holds each choice exactly
 * weight times, interleaved. current[] holds n zeroed counters.
 */
unsigned seed_wrr_next(const unsigned *weights, long long *current,
    unsigned n);

#endif
