/*
 * test_gateway_parse.c - vote bodies in every format, table-driven.
 */
#include <string.h>

#include "check.h"
#include "codec.h"
#include "parse.h"
#include "polls.h"

struct parse_case {
	enum parse_format f;
	const char *body;
	size_t len; /* 0: strlen(body) */
	enum parse_result want;
	const char *poll, *voter, *option; /* expected on PARSE_OK */
};

static const struct parse_case cases[] = {
	/* JSON */
	{PARSE_FORMAT_JSON, "{\"voter\":\"v1\",\"option\":\"a\"}", 0, PARSE_OK,
	    "", "v1", "a"},
	{PARSE_FORMAT_JSON, "{\"poll\":\"default\",\"voter\":\"v1\","
	    "\"option\":\"b\",\"extra\":[1,{}]}", 0, PARSE_OK, "default", "v1",
	    "b"},
	{PARSE_FORMAT_JSON, "{\"option\":\"a\"}", 0, PARSE_OK, "", "", "a"},
	{PARSE_FORMAT_JSON, "", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "[]", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "\"a\"", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":\"v\"}", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":1,\"option\":\"a\"}", 0,
	    PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":\"v\",\"option\":null}", 0,
	    PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":\"v\",\"option\":\"a\",\"option\":\"b\"}",
	    0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":\"v\\u0000x\",\"option\":\"a\"}", 0,
	    PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":\"has space\",\"option\":\"a\"}", 0,
	    PARSE_BAD_VOTER, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":\"\",\"option\":\"a\"}", 0,
	    PARSE_BAD_VOTER, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":\"v\",\"option\":\"A\"}", 0,
	    PARSE_UNKNOWN_OPTION, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":\"v\",\"option\":\"\"}", 0,
	    PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"poll\":\"../x\",\"voter\":\"v\",\"option\":\"a\"}",
	    0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_JSON, "{\"voter\":\"v\",\"option\":\"a\"} trailing", 0,
	    PARSE_MALFORMED, 0, 0, 0},
	/* form */
	{PARSE_FORMAT_FORM, "vote=a", 0, PARSE_OK, "", "", "a"},
	{PARSE_FORMAT_FORM, "vote=b&voter=x%40y.z", 0, PARSE_OK, "", "x@y.z",
	    "b"},
	{PARSE_FORMAT_FORM, "option=b&vote=a", 0, PARSE_OK, "", "", "b"},
	{PARSE_FORMAT_FORM, "poll=default&option=a&voter=v", 0, PARSE_OK,
	    "default", "v", "a"},
	{PARSE_FORMAT_FORM, "", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_FORM, "vote", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_FORM, "vote=", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_FORM, "vote=%4", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_FORM, "vote=%zz", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_FORM, "vote=c+d", 0, PARSE_UNKNOWN_OPTION, 0, 0, 0},
	{PARSE_FORMAT_FORM, "vote=a&voter=", 0, PARSE_BAD_VOTER, 0, 0, 0},
	{PARSE_FORMAT_FORM, "vote=a&voter=a%0d%0ab", 0, PARSE_BAD_VOTER, 0, 0,
	    0},
	{PARSE_FORMAT_FORM, "vote=a%00", 7 + 2, PARSE_UNKNOWN_OPTION, 0, 0, 0},
	/* other formats */
	{PARSE_FORMAT_NONE, "vote=a", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_OTHER, "vote=a", 0, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_PROTOBUF, "\x0a\xff\x01", 3, PARSE_MALFORMED, 0, 0, 0},
	{PARSE_FORMAT_PROTOBUF, "", 0, PARSE_MALFORMED, 0, 0, 0},
	/* field 3 (option) with wire type varint: refused */
	{PARSE_FORMAT_PROTOBUF, "\x18\x01", 2, PARSE_MALFORMED, 0, 0, 0},
};

static void
test_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct parse_case *c = &cases[i];
		struct vote v;
		const char *why = NULL;
		size_t len = c->len ? c->len : strlen(c->body);
		enum parse_result r = parse_vote(c->f, c->body, len, &v, &why);

		CHECK_MSG(r == c->want, "case %zu (%s): got %d want %d", i,
		    c->body, (int)r, (int)c->want);
		if (r != PARSE_OK) {
			CHECK_MSG(why != NULL, "case %zu has no message", i);
			continue;
		}
		CHECK_STR(v.poll, c->poll);
		CHECK_STR(v.voter, c->voter);
		CHECK_STR(v.option, c->option);
	}
}

static void
test_protobuf(void)
{
	struct vote in, out;
	uint8_t buf[CODEC_VOTE_MAX_BYTES + 8];
	const char *why;
	size_t n;

	memset(&in, 0, sizeof(in));
	strcpy(in.poll, "default");
	strcpy(in.voter, "v-1");
	strcpy(in.option, "b");
	n = codec_vote_encode(&in, buf, sizeof(buf));
	CHECK(n > 0);
	/* An unknown field (number 15, varint) is ignored. */
	buf[n++] = 15 << 3;
	buf[n++] = 1;
	CHECK(parse_vote(PARSE_FORMAT_PROTOBUF, (const char *)buf, n, &out,
	    &why) == PARSE_OK);
	CHECK_STR(out.poll, "default");
	CHECK_STR(out.voter, "v-1");
	CHECK_STR(out.option, "b");
	CHECK(out.source == VOTE_SOURCE_PROTOBUF);
}

static void
test_content_type(void)
{
	CHECK(parse_content_type(NULL) == PARSE_FORMAT_NONE);
	CHECK(parse_content_type("") == PARSE_FORMAT_NONE);
	CHECK(parse_content_type("application/json") == PARSE_FORMAT_JSON);
	CHECK(parse_content_type("Application/JSON; charset=utf-8") ==
	    PARSE_FORMAT_JSON);
	CHECK(parse_content_type("application/x-www-form-urlencoded") ==
	    PARSE_FORMAT_FORM);
	CHECK(parse_content_type("application/x-protobuf") ==
	    PARSE_FORMAT_PROTOBUF);
	CHECK(parse_content_type("application/jsonx") == PARSE_FORMAT_OTHER);
	CHECK(parse_content_type("text/plain") == PARSE_FORMAT_OTHER);
}

static void
test_check(void)
{
	struct polls *p = polls_load(NULL, "Cats", "Dogs", stderr);
	const struct poll *poll;
	struct vote v;
	const char *why;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	poll = polls_default(p);
	CHECK(parse_vote(PARSE_FORMAT_JSON, "{\"voter\":\"v\",\"option\":\"a\"}",
	    26, &v, &why) == PARSE_OK);
	CHECK(parse_vote_check(poll, &v, &why) == PARSE_OK);
	CHECK_STR(v.poll, "default");
	CHECK(parse_vote(PARSE_FORMAT_JSON, "{\"voter\":\"v\",\"option\":\"c\"}",
	    26, &v, &why) == PARSE_OK);
	CHECK(parse_vote_check(poll, &v, &why) == PARSE_UNKNOWN_OPTION);
	CHECK(parse_vote(PARSE_FORMAT_JSON, "{\"option\":\"a\"}", 14, &v,
	    &why) == PARSE_OK);
	CHECK(parse_vote_check(poll, &v, &why) == PARSE_BAD_VOTER);
	CHECK(parse_vote(PARSE_FORMAT_FORM, "poll=other&voter=v&vote=a", 25,
	    &v, &why) == PARSE_OK);
	CHECK(parse_vote_check(poll, &v, &why) == PARSE_MALFORMED);
	polls_free(p);
}

static void
test_form_field(void)
{
	char out[8];

	CHECK(parse_form_field("a=1&b=2", 7, "b", out, sizeof(out)) == 1);
	CHECK_STR(out, "2");
	CHECK(parse_form_field("a=1&b=2", 7, "c", out, sizeof(out)) == -1);
	CHECK(parse_form_field("ab=1", 4, "a", out, sizeof(out)) == -1);
	CHECK(parse_form_field("a=%41+b", 7, "a", out, sizeof(out)) == 3);
	CHECK_STR(out, "A b");
	CHECK(parse_form_field("a=12345678", 10, "a", out, sizeof(out)) == -3);
	CHECK(parse_form_field("a=%", 3, "a", out, sizeof(out)) == -2);
	CHECK(parse_form_field("&&a&=x", 6, "a", out, sizeof(out)) == 0);
}

/* JSON bodies on both sides of the fast path's edge: each must get the same
 * result, message and vote from parse_vote as from the jansson reference. */
static const char *const json_agree[] = {
	"{\"voter\":\"v1\",\"option\":\"a\"}",
	" \t\r\n{ \"voter\" : \"v1\" , \"option\" : \"a\" } \n",
	"{}",
	"{ }",
	"{\"option\":\"a\",\"x\":\"1\",\"y\":\"2\",\"z\":\"3\",\"w\":\"4\","
	    "\"u\":\"5\",\"t\":\"6\",\"s\":\"7\"}", /* 9 members: jansson */
	"{\"voter\":\"v\",\"option\":\"a\",\"option\":\"a\"}",
	"{\"voter\":\"v\",\"voter\":\"w\",\"option\":\"a\"}",
	"{\"voter\":\"v\\u0031\",\"option\":\"a\"}",
	"{\"voter\":\"v\\u0000\",\"option\":\"a\"}",
	"{\"voter\":\"\xc3\xa9\",\"option\":\"a\"}",
	"{\"voter\":\"\xff\",\"option\":\"a\"}",
	"{\"voter\":\"v\",\"option\":\"a\",\"n\":1}",
	"{\"voter\":\"v\",\"option\":\"a\",}",
	"{\"voter\":\"v\",,\"option\":\"a\"}",
	"{\"voter\":\"v\" \"option\":\"a\"}",
	"{\"voter\":\"v\",\"option\":\"a\"}}",
	"{\"voter\":\"v\",\"option\":\"a\"",
	"{\"voter\":\"v\",\"option\":\"a",
	"{\"voter\"}",
	"{\"voter\":}",
	"{\"option\":\"\"}",
	"{\"voter\":\"\",\"option\":\"a\"}",
	"{\"poll\":\"\",\"voter\":\"v\",\"option\":\"a\"}",
	"{\"poll\":\"Default\",\"voter\":\"v\",\"option\":\"a\"}",
	"{\"voter\":\"v\",\"option\":\"a\"}\f",
	"{\"voter\":\"v\",\"option\":\"a\"} x",
	"{\"vo\tter\":\"v\",\"option\":\"a\"}",
	"\"{}\"",
	"",
};

static void
test_json_paths_agree(void)
{
	for (size_t i = 0; i < sizeof(json_agree) / sizeof(json_agree[0]);
	    i++) {
		const char *b = json_agree[i], *w1 = NULL, *w2 = NULL;
		struct vote v1, v2;
		enum parse_result r1, r2;

		r1 = parse_vote(PARSE_FORMAT_JSON, b, strlen(b), &v1, &w1);
		r2 = parse_vote_json_reference(b, strlen(b), &v2, &w2);
		CHECK(r1 == r2);
		CHECK(memcmp(&v1, &v2, sizeof(v1)) == 0);
		CHECK((w1 == NULL) == (w2 == NULL));
		if (w1 != NULL && w2 != NULL)
			CHECK_STR(w1, w2);
	}
}

int
main(void)
{
	test_table();
	test_protobuf();
	test_content_type();
	test_check();
	test_form_field();
	test_json_paths_agree();
	return check_done("test_gateway_parse");
}
