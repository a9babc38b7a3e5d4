/*
 * lib_route.c - libFuzzer target: httpd_path_match on every route shape the
 * services use, then vote_id_valid / vote_token_valid on what it captured,
 * each checked against a plain reference of the id rules in vote.h.
 *
 * Invariants: a capture is a non-empty piece of the path holding no '/' or
 * '?'; a match means the path has exactly the pattern's segments; the id
 * checks agree with the reference; vote_copy_id never writes past its
 * buffer (ASan) and copies only what it accepts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "vote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_patterns[] = {
    "/",
    "/healthz",
    "/api/v1/polls",
    "/api/v1/polls/*",
    "/api/v1/polls/*/votes",
    "/api/v1/polls/*/tally",
    "/api/v1/polls/*/events",
    "/polls/*",
    "/*/*/*",
};

static bool
ref_id(const char *s, size_t n)
{
	if (n < 1 || n > VOTE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static bool
ref_token(const char *s, size_t n)
{
	if (n < 1 || n > VOTE_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == ':' || ch == '@' || ch == '-'))
			return false;
	}
	return true;
}

/* Segments of path up to '?' or its end. */
static size_t
segments(const char *s)
{
	size_t n = 0;

	for (; *s != '\0' && *s != '?'; s++)
		n += *s == '/';
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *cap[3];
	size_t cap_len[3];
	char id[VOTE_ID_MAX + 1], token[VOTE_TOKEN_MAX + 1];
	char *path;

	path = malloc(size + 1);
	if (path == NULL)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';

	/* The id rules on the raw bytes (NULs included). */
	if (vote_id_valid((const char *)data, size) !=
	        ref_id((const char *)data, size) ||
	    vote_token_valid((const char *)data, size) !=
	        ref_token((const char *)data, size))
		abort();
	if (vote_copy_id(id, (const char *)data, size) == 0) {
		if (!ref_id((const char *)data, size) || strlen(id) != size)
			abort();
	} else if (id[0] != '\0') {
		abort();
	}
	if (vote_copy_token(token, (const char *)data, size) == 0 &&
	    (!ref_token((const char *)data, size) || strlen(token) != size))
		abort();

	for (size_t i = 0; i < sizeof(fuzz_patterns) / sizeof(fuzz_patterns[0]);
	     i++) {
		const char *pat = fuzz_patterns[i];

		if (!httpd_path_match(path, pat, cap, cap_len, 3))
			continue;
		if (segments(path) != segments(pat))
			abort();
		for (size_t k = 0, n = 0; pat[k] != '\0'; k++) {
			if (pat[k] != '*')
				continue;
			if (cap_len[n] == 0 || cap[n] < path ||
			    cap[n] + cap_len[n] > path + strlen(path) ||
			    memchr(cap[n], '/', cap_len[n]) != NULL ||
			    memchr(cap[n], '?', cap_len[n]) != NULL)
				abort();
			/* A poll id from the URL goes through the same rule. */
			if (vote_id_valid(cap[n], cap_len[n]) !=
			    ref_id(cap[n], cap_len[n]))
				abort();
			n++;
		}
	}
	free(path);
	return 0;
}
