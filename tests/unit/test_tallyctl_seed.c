/*
 * test_tallyctl_seed: the pure parts of tallyctl seed - HTTP response
 * framing, URL / list / split parsing, weighted round robin, histogram.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "seed_args.h"
#include "seed_hist.h"
#include "seed_http.h"

static void
test_http(void)
{
	static const struct {
		const char *in;
		enum seed_http_result r;
		int status;
		bool close, unchanged;
		size_t length; /* 0: strlen(in) */
	} cases[] = {
		{"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}",
		    SEED_HTTP_DONE, 202, false, false, 0},
		{"HTTP/1.1 200 OK\r\ncontent-length: 22\r\n\r\n"
		    "{\"status\":\"unchanged\"}", SEED_HTTP_DONE, 200, false, true, 0},
		{"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"status\":",
		    SEED_HTTP_MORE, 0, false, false, 0},
		{"HTTP/1.1 200 OK\r\nContent-Len", SEED_HTTP_MORE, 0, false,
		    false, 0},
		{"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
		    "Content-Length: 0\r\n\r\n", SEED_HTTP_DONE, 503, true, false,
		    0},
		{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", SEED_HTTP_DONE,
		    200, true, false, 0},
		{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: "
		    "1\r\n\r\nx", SEED_HTTP_DONE, 200, false, false, 0},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "2\r\n{\"\r\n9;x=y\r\nunchanged\r\n0\r\nT: 1\r\n\r\n",
		    SEED_HTTP_DONE, 200,
		    false, true, 0},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "4\r\nunch\r\n0\r\n", SEED_HTTP_MORE, 0, false, false, 0},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "zz\r\n", SEED_HTTP_BAD, 0, false, false, 0},
		{"HTTP/1.1 204 No Content\r\n\r\n", SEED_HTTP_DONE, 204, false,
		    false, 0},
		/* Two answers back to back: only the first is framed. */
		{"HTTP/1.1 202 A\r\nContent-Length: 1\r\n\r\naHTTP/1.1 202 A\r\n",
		    SEED_HTTP_DONE, 202, false, false, 38},
		{"HTTP/1.1 200 OK\r\n\r\nbody until close", SEED_HTTP_BAD, 0,
		    false, false, 0},
		{"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", SEED_HTTP_BAD, 0,
		    false, false, 0},
		{"SSH-2.0-OpenSSH\r\n", SEED_HTTP_BAD, 0, false, false, 0},
		{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", SEED_HTTP_BAD,
		    0, false, false, 0},
		/* A 4xx saying "unchanged" is not an unchanged vote. */
		{"HTTP/1.1 422 X\r\nContent-Length: 9\r\n\r\nunchanged",
		    SEED_HTTP_DONE, 422, false, false, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seed_http_resp r;
		enum seed_http_result got;
		size_t len = strlen(cases[i].in);

		got = seed_http_parse(cases[i].in, len, &r);
		CHECK_MSG(got == cases[i].r, "case %zu: result %d, want %d", i,
		    (int)got, (int)cases[i].r);
		if (got != SEED_HTTP_DONE || cases[i].r != SEED_HTTP_DONE)
			continue;
		CHECK_MSG(r.status == cases[i].status, "case %zu: status %d", i,
		    r.status);
		CHECK_MSG(r.close == cases[i].close, "case %zu: close", i);
		CHECK_MSG(r.unchanged == cases[i].unchanged, "case %zu: "
		    "unchanged", i);
		CHECK_MSG(r.length == (cases[i].length ? cases[i].length : len),
		    "case %zu: length %zu", i, r.length);
	}
}

static void
test_url(void)
{
	struct seed_url u;
	const char *why = NULL;

	CHECK(seed_url_parse("http://127.0.0.1:8080/", &u, &why) == 0);
	CHECK_STR(u.ip, "127.0.0.1");
	CHECK(u.port == 8080);
	CHECK_STR(u.path, "/");
	CHECK(seed_url_parse("http://localhost", &u, &why) == 0);
	CHECK_STR(u.ip, "127.0.0.1");
	CHECK_STR(u.host, "localhost");
	CHECK(u.port == 80);
	CHECK_STR(u.path, "/");
	CHECK(seed_url_parse("http://10.1.2.3:9/tally/", &u, &why) == 0);
	CHECK_STR(u.path, "/tally/");
	CHECK(seed_url_parse("https://127.0.0.1/", &u, &why) == -1);
	CHECK(why != NULL);
	CHECK(seed_url_parse("http://example.com/", &u, &why) == -1);
	CHECK(seed_url_parse("http://127.0.0.1:0/", &u, &why) == -1);
	CHECK(seed_url_parse("http://127.0.0.1:65536/", &u, &why) == -1);
	CHECK(seed_url_parse("http://127.0.0.1:80x/", &u, &why) == -1);
	CHECK(seed_url_parse("http://:80/", &u, &why) == -1);
	CHECK(seed_url_parse("http://127.0.0.1/?a=b", &u, &why) == -1);
}

static void
test_lists(void)
{
	struct seed_list l;
	unsigned w[SEED_MAX_LIST];
	const char *why;

	CHECK(seed_list_parse("a,b,c", &l, &why) == 0);
	CHECK(l.n == 3);
	CHECK_STR(l.id[2], "c");
	CHECK(seed_list_parse("default", &l, &why) == 0 && l.n == 1);
	CHECK(seed_list_parse("a,,b", &l, &why) == -1);
	CHECK(seed_list_parse("a,A", &l, &why) == -1);
	CHECK(seed_list_parse("a,a", &l, &why) == -1);
	CHECK(seed_list_parse("", &l, &why) == -1);
	CHECK(seed_list_parse("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", &l,
	    &why) == -1);

	CHECK(seed_split_parse("2:1", 2, w, &why) == 0);
	CHECK(w[0] == 2 && w[1] == 1);
	CHECK(seed_split_parse("1:0:3", 3, w, &why) == 0 && w[2] == 3);
	CHECK(seed_split_parse("2:1", 3, w, &why) == -1);
	CHECK(seed_split_parse("2:1:1", 2, w, &why) == -1);
	CHECK(seed_split_parse("0:0", 2, w, &why) == -1);
	CHECK(seed_split_parse("2:-1", 2, w, &why) == -1);
	CHECK(seed_split_parse("2,1", 2, w, &why) == -1);
	CHECK(seed_split_parse("2:", 2, w, &why) == -1);
}

static void
test_wrr(void)
{
	unsigned w[] = {2, 1}, w3[] = {5, 0, 2};
	long long cur[3] = {0};
	unsigned count[3] = {0};

	/* 2:1 over 3000 picks is exactly the original seed's 2000/1000. */
	for (int i = 0; i < 3000; i++)
		count[seed_wrr_next(w, cur, 2)]++;
	CHECK(count[0] == 2000 && count[1] == 1000);
	memset(cur, 0, sizeof(cur));
	memset(count, 0, sizeof(count));
	for (int i = 0; i < 700; i++)
		count[seed_wrr_next(w3, cur, 3)]++;
	CHECK(count[0] == 500 && count[1] == 0 && count[2] == 200);
}

static void
test_hist(void)
{
	struct seed_hist h, h2;

	/* Buckets are monotonic, contiguous, and hold their own top. */
	for (uint64_t v = 0; v < 200000; v += 7) {
		unsigned b = seed_hist_bucket(v);
		CHECK_MSG(seed_hist_bucket_top(b) >= v, "top of %llu",
		    (unsigned long long)v);
		CHECK_MSG(b == 0 || seed_hist_bucket_top(b - 1) < v,
		    "bucket of %llu", (unsigned long long)v);
		/* Relative error at most 1/16. */
		CHECK(seed_hist_bucket_top(b) <= v + v / 16 + 1);
	}
	seed_hist_init(&h);
	CHECK(seed_hist_quantile(&h, 0.99) == 0);
	for (uint64_t v = 1; v <= 1000; v++)
		seed_hist_record(&h, v);
	CHECK(h.total == 1000 && h.max_us == 1000);
	CHECK(seed_hist_quantile(&h, 0.5) >= 500);
	CHECK(seed_hist_quantile(&h, 0.5) <= 500 + 500 / 16 + 1);
	CHECK(seed_hist_quantile(&h, 0.99) >= 990);
	CHECK(seed_hist_quantile(&h, 1.0) == 1000);
	seed_hist_init(&h2);
	seed_hist_record(&h2, 5000000);
	seed_hist_merge(&h, &h2);
	CHECK(h.total == 1001 && h.max_us == 5000000);
	CHECK(seed_hist_quantile(&h, 1.0) == 5000000);
	CHECK(seed_hist_quantile(&h, 0.5) <= 532);
}

int
main(void)
{
	test_http();
	test_url();
	test_lists();
	test_wrr();
	test_hist();
	return check_done("test_tallyctl_seed");
}
