/*
 * gateway_body.h - the shared body of the gateway's body-parser fuzz
 * targets: parse in one format, then check against the default poll, and
 * assert the invariants a caller relies on.
 */
#ifndef TALLY_FUZZ_GATEWAY_BODY_H
#define TALLY_FUZZ_GATEWAY_BODY_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "polls.h"

static struct polls *fuzz_polls;

static int
fuzz_gateway_body(enum parse_format f, const uint8_t *data, size_t size)
{
	struct vote v;
	const char *why = NULL;
	enum parse_result r;

	if (fuzz_polls == NULL) {
		fuzz_polls = polls_load(NULL, "Cats", "Dogs", stderr);
		if (fuzz_polls == NULL)
			abort();
	}
	r = parse_vote(f, (const char *)data, size, &v, &why);
	if (r != PARSE_OK) {
		if (why == NULL)
			abort(); /* every refusal explains itself */
		return 0;
	}
	/* Whatever was accepted is made of valid ids only. */
	if ((v.poll[0] != '\0' && !vote_id_valid(v.poll, strlen(v.poll))) ||
	    (v.voter[0] != '\0' && !vote_token_valid(v.voter,
	    strlen(v.voter))) || !vote_id_valid(v.option, strlen(v.option)))
		abort();
	r = parse_vote_check(polls_default(fuzz_polls), &v, &why);
	if (r == PARSE_OK && vote_check(&v) != NULL)
		abort();
	return 0;
}

#endif
