/*
 * lib_polls.c - libFuzzer target: polls_parse, the POLLS_FILE reader that
 * the gateway and the reporter share.
 *
 * Invariants on an accepted file: at least one poll and at most POLLS_MAX;
 * every poll has a valid unique id, a NUL-terminated title and 2 to
 * POLL_OPTIONS_MAX options with valid ids unique within the poll;
 * polls_find and poll_option_index find each of them again; polls_free
 * releases everything (LeakSanitizer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "polls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *fuzz_null;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct polls *ps;
	char *json;
	size_t n;

	if (fuzz_null == NULL && (fuzz_null = fopen("/dev/null", "w")) == NULL)
		abort();
	json = malloc(size + 1);
	if (json == NULL)
		return 0;
	memcpy(json, data, size);
	json[size] = '\0';
	ps = polls_parse(json, "fuzz", fuzz_null);
	free(json);
	if (ps == NULL)
		return 0;
	n = polls_count(ps);
	if (n < 1 || n > POLLS_MAX || polls_default(ps) != polls_at(ps, 0))
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct poll *p = polls_at(ps, i);

		if (!vote_id_valid(p->id, strlen(p->id)) ||
		    polls_find(ps, p->id, strlen(p->id)) != p ||
		    memchr(p->title, '\0', sizeof(p->title)) == NULL ||
		    p->n_options < 2 || p->n_options > POLL_OPTIONS_MAX)
			abort();
		for (size_t k = 0; k < p->n_options; k++) {
			const struct poll_option *o = &p->options[k];

			if (!vote_id_valid(o->id, strlen(o->id)) ||
			    poll_option_index(p, o->id, strlen(o->id)) !=
			        (int)k ||
			    memchr(o->label, '\0', sizeof(o->label)) == NULL)
				abort();
		}
	}
	polls_free(ps);
	return 0;
}
