/* Unit tests for httpd.c's pure helpers: routing and body collection. */
#include <string.h>

#include "check.h"
#include "httpd.h"

static const struct {
	const char *path, *pattern;
	int match;
	const char *cap0;
} routes[] = {
	{"/", "/", 1, NULL},
	{"/?x=1", "/", 1, NULL},
	{"/api/v1/polls", "/api/v1/polls", 1, NULL},
	{"/api/v1/polls/", "/api/v1/polls", 0, NULL},
	{"/api/v1/polls/default/votes", "/api/v1/polls/*/votes", 1, "default"},
	{"/api/v1/polls/default/votes?a=b", "/api/v1/polls/*/votes", 1,
	    "default"},
	{"/api/v1/polls//votes", "/api/v1/polls/*/votes", 0, NULL},
	{"/api/v1/polls/a/b/votes", "/api/v1/polls/*/votes", 0, NULL},
	{"/api/v1/polls/x/votesx", "/api/v1/polls/*/votes", 0, NULL},
	{"/api/v1/polls/x/vote", "/api/v1/polls/*/votes", 0, NULL},
	{"/polls/x", "/polls/*", 1, "x"},
	{"/polls/x/", "/polls/*", 0, NULL},
	{"", "/", 0, NULL},
	{"/healthz", "/", 0, NULL},
};

int
main(void)
{
	const char *caps[2];
	size_t lens[2];
	struct httpd_body b;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		bool m = httpd_path_match(routes[i].path, routes[i].pattern,
		    caps, lens, 2);
		CHECK_MSG(m == routes[i].match, "%s ~ %s", routes[i].path,
		    routes[i].pattern);
		if (m && routes[i].cap0 != NULL)
			CHECK_MSG(lens[0] == strlen(routes[i].cap0) &&
			    memcmp(caps[0], routes[i].cap0, lens[0]) == 0,
			    "capture of %s", routes[i].path);
	}

	httpd_body_init(&b, 8);
	CHECK(httpd_body_add(&b, "abc", 3) == 0);
	CHECK(httpd_body_add(&b, "defgh", 5) == 0);
	CHECK(!b.too_large);
	CHECK(b.len == 8 && strcmp(b.data, "abcdefgh") == 0);
	CHECK(httpd_body_add(&b, "i", 1) == 0);
	CHECK(b.too_large);
	CHECK(b.len == 8);
	httpd_body_fini(&b);
	CHECK(b.data == NULL);
	return check_done("test_httpd");
}
