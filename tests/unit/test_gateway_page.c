/*
 * test_gateway_page.c - the vote page, its assets, the rate limiter and the
 * metrics rendering: pure modules of the gateway.
 */
#include <string.h>

#include "check.h"
#include "gwmetrics.h"
#include "page.h"
#include "polls.h"
#include "ratelimit.h"

static void
test_page(void)
{
	struct polls *p = polls_load(NULL, "Cats <3", "Dogs", stderr);
	struct buf b;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	buf_init(&b);
	page_render_vote(&b, polls_default(p), NULL, NULL, "host-1");
	CHECK(strstr(b.data, "<title>Cats &lt;3 vs Dogs!</title>") != NULL);
	CHECK(strstr(b.data, "value=\"a\"") != NULL);
	CHECK(strstr(b.data, "(Tip: you can change your vote)") != NULL);
	CHECK(strstr(b.data, "Processed by container ID host-1") != NULL);
	CHECK(strstr(b.data, "faded") == NULL);
	CHECK(strstr(b.data, "<script>") == NULL);
	CHECK(strstr(b.data, "style=") == NULL);
	buf_fini(&b);

	buf_init(&b);
	page_render_vote(&b, polls_default(p), "b", "oops <x>", "h");
	CHECK(strstr(b.data, "class=\"o0 faded\"") != NULL);
	CHECK(strstr(b.data, "class=\"o1 chosen\" aria-pressed=\"true\"") !=
	    NULL);
	CHECK(strstr(b.data, "&#10004;") != NULL);
	CHECK(strstr(b.data, "You voted for Dogs.") != NULL);
	CHECK(strstr(b.data, "oops &lt;x&gt;") != NULL);
	buf_fini(&b);
	polls_free(p);
}

static void
test_assets(void)
{
	const char *type;
	size_t len;

	CHECK(page_asset("/static/vote.css", &type, &len) != NULL);
	CHECK(strncmp(type, "text/css", 8) == 0 && len > 0);
	CHECK(page_asset("/static/vote.js", &type, &len) != NULL);
	CHECK(page_asset("/static/../vote.js", &type, &len) == NULL);
	CHECK(page_asset("/static/", &type, &len) == NULL);
}

static void
test_ratelimit(void)
{
	struct ratelimit *rl = ratelimit_new(10, 3);
	uint64_t t = 1000000;

	CHECK(rl != NULL);
	if (rl == NULL)
		return;
	CHECK(ratelimit_allow(rl, "1.2.3.4", t));
	CHECK(ratelimit_allow(rl, "1.2.3.4", t));
	CHECK(ratelimit_allow(rl, "1.2.3.4", t));
	CHECK(!ratelimit_allow(rl, "1.2.3.4", t));
	CHECK(ratelimit_allow(rl, "5.6.7.8", t)); /* another client */
	CHECK(ratelimit_allow(rl, "1.2.3.4", t + 100000)); /* 0.1 s: 1 more */
	CHECK(!ratelimit_allow(rl, "1.2.3.4", t + 100000));
	ratelimit_free(rl);
}

static void
test_metrics(void)
{
	static struct gw_metrics m;
	struct buf b;

	gwmetrics_init(&m);
	gwmetrics_count_request(&m, GW_ROUTE_VOTES, 200);
	gwmetrics_count_request(&m, GW_ROUTE_VOTES, 200);
	gwmetrics_count_request(&m, GW_ROUTE_OTHER, 404);
	gwmetrics_count_request(&m, GW_ROUTE_PAGE, 299);
	metrics_inc(&m.dedup_bypass);
	buf_init(&b);
	gwmetrics_write(&m, &b, 1, 0);
	CHECK(strstr(b.data, "tally_gateway_requests_total{route=\"votes\","
	    "status=\"200\"} 2\n") != NULL);
	CHECK(strstr(b.data, "{route=\"other\",status=\"404\"} 1\n") != NULL);
	CHECK(strstr(b.data, "{route=\"page\",status=\"other\"} 1\n") != NULL);
	CHECK(strstr(b.data, "tally_gateway_dedup_bypass_total 1\n") != NULL);
	CHECK(strstr(b.data, "tally_gateway_ready 1\n") != NULL);
	CHECK(strstr(b.data, "tally_gateway_redis_up 0\n") != NULL);
	CHECK(strstr(b.data, "# TYPE tally_gateway_publish_seconds "
	    "histogram") != NULL);
	buf_fini(&b);
}

int
main(void)
{
	test_page();
	test_assets();
	test_ratelimit();
	test_metrics();
	return check_done("test_gateway_page");
}
