/*
 * test_reporter_page.c - shares, vote counts in words, the rendered page.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "page.h"
#include "polls.h"

struct shares_case {
	size_t n;
	int64_t votes[4];
	int want[4];
};

static const struct shares_case shares_cases[] = {
	/* The original's seed: round(2000 / 3000 * 100) = 67, 100 - 67. */
	{2, {2000, 1000}, {67, 33}},
	{2, {0, 0}, {50, 50}},        /* no votes: 50/50 as in the original */
	{2, {0, 1}, {0, 100}},
	{2, {1, 1}, {50, 50}},
	{2, {1, 7}, {13, 87}},        /* 12.5 rounds up, as Math.round */
	{2, {7, 1}, {88, 12}},
	{2, {1, 2}, {33, 67}},
	{3, {0, 0, 0}, {34, 33, 33}},
	{3, {1, 1, 1}, {34, 33, 33}},
	{3, {1, 0, 2}, {33, 0, 67}},
	{4, {1, 1, 1, 1}, {25, 25, 25, 25}},
	{4, {10, 20, 30, 41}, {10, 20, 30, 40}},
	{2, {-5, 5}, {0, 100}},       /* a negative count reads as zero */
};

static void
test_shares(void)
{
	for (size_t i = 0; i < sizeof(shares_cases) / sizeof(shares_cases[0]);
	    i++) {
		const struct shares_case *c = &shares_cases[i];
		int pct[4] = {0}, sum = 0;

		page_shares(c->votes, c->n, pct);
		for (size_t k = 0; k < c->n; k++) {
			CHECK_MSG(pct[k] == c->want[k], "case %zu option %zu: "
			    "%d, want %d", i, k, pct[k], c->want[k]);
			sum += pct[k];
		}
		CHECK_MSG(sum == 100, "case %zu sums to %d", i, sum);
	}
}

static void
test_votes_text(void)
{
	char b[32];

	CHECK_STR(page_votes_text(0, b, sizeof(b)), "No votes yet");
	CHECK_STR(page_votes_text(1, b, sizeof(b)), "1 vote");
	CHECK_STR(page_votes_text(2, b, sizeof(b)), "2 votes");
	CHECK_STR(page_votes_text(3000, b, sizeof(b)), "3000 votes");
}

static void
test_render(void)
{
	struct polls *p;
	struct tally_snapshot s;
	struct buf b;

	p = polls_parse("{\"polls\": [{\"id\": \"pets\", \"title\": "
	    "\"<Cats> & \\\"Dogs\\\"!\", \"options\": [{\"id\": \"a\", "
	    "\"label\": \"<b>Cats</b>\"}, {\"id\": \"b\", \"label\": \"Dogs\"}, "
	    "{\"id\": \"c\", \"label\": \"Fish\"}]}]}", "test", stderr);
	CHECK(p != NULL);
	if (p == NULL)
		return;
	memset(&s, 0, sizeof(s));
	s.n = 3;
	s.votes[0] = 1;
	s.total = 1;
	buf_init(&b);
	CHECK(page_render_results(&b, polls_at(p, 0), &s) == 0);
	CHECK(b.data != NULL);
	if (b.data != NULL) {
		CHECK(strstr(b.data, "<title>&lt;Cats&gt; &amp; &quot;Dogs&quot;"
		    " -- Result</title>") != NULL);
		CHECK(strstr(b.data, "&lt;b&gt;Cats&lt;/b&gt;") != NULL);
		CHECK(strstr(b.data, "<b>Cats") == NULL);
		CHECK(strstr(b.data, ">1 vote</p>") != NULL);
		CHECK(strstr(b.data, "class=\"bar c0 w100\"") != NULL);
		CHECK(strstr(b.data, "class=\"bar c2 w0\"") != NULL);
		CHECK(strstr(b.data, "<span class=\"stat\">100.0%</span>") !=
		    NULL);
		CHECK(strstr(b.data, "data-poll=\"pets\"") != NULL);
		/* The CSP forbids inline script and style. */
		CHECK(strstr(b.data, "style=") == NULL);
		CHECK(strstr(b.data, "<script>") == NULL);
	}
	buf_fini(&b);
	polls_free(p);
}

static void
test_assets(void)
{
	size_t len;
	const char *css = page_css(&len);

	CHECK(len == strlen(css));
	CHECK(strstr(css, ".w0{width:0%}") != NULL);
	CHECK(strstr(css, ".w100{width:100%}") != NULL);
	CHECK(strstr(page_js(&len), "new EventSource") != NULL);
}

int
main(void)
{
	test_shares();
	test_votes_text();
	test_render();
	test_assets();
	return check_done("test_reporter_page");
}
