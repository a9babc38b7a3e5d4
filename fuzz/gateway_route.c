/*
 * gateway_route.c - libFuzzer target: the gateway's routing of a request
 * path (httpd_path_match on the API patterns, then the poll lookup) and the
 * Content-Type reader.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "parse.h"
#include "polls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct polls *fuzz_polls;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *cap[1];
	size_t cap_len[1];
	char *path;

	if (fuzz_polls == NULL &&
	    (fuzz_polls = polls_load(NULL, "Cats", "Dogs", stderr)) == NULL)
		abort();
	path = malloc(size + 1);
	if (path == NULL)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';
	(void)parse_content_type(path);
	if (httpd_path_match(path, "/api/v1/polls/*/votes", cap, cap_len, 1) ||
	    httpd_path_match(path, "/api/v1/polls/*", cap, cap_len, 1)) {
		/* The capture lies inside the path and holds no '/'. */
		if (cap[0] < path || cap[0] + cap_len[0] > path + size ||
		    memchr(cap[0], '/', cap_len[0]) != NULL)
			abort();
		const struct poll *p = polls_find(fuzz_polls, cap[0],
		    cap_len[0]);
		if (p != NULL && !vote_id_valid(cap[0], cap_len[0]))
			abort();
	}
	free(path);
	return 0;
}
