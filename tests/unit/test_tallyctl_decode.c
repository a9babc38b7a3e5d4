/*
 * test_tallyctl_decode: what `tallyctl decode` prints for a vote that the C
 * codec encoded - the JSON line, RFC 3339 times and enum names.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codec.h"
#include "vote_json.h"

static void
test_time(void)
{
	static const struct {
		int64_t ms;
		const char *want;
	} cases[] = {
		{0, "1970-01-01T00:00:00.000Z"},
		{1714564800123, "2024-05-01T12:00:00.123Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{951782400000, "2000-02-29T00:00:00.000Z"},
		{-1000, "1969-12-31T23:59:59.000Z"},
		{-1001, "1969-12-31T23:59:58.999Z"},
	};
	char out[40];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(vote_json_time(cases[i].ms, out, sizeof(out)) == 0);
		CHECK_STR(out, cases[i].want);
	}
	CHECK(vote_json_time(INT64_MAX, out, sizeof(out)) == -1);
	/* No overflow on the way (UBSan in the sanitizer build). */
	CHECK(vote_json_time(INT64_MIN, out, sizeof(out)) == -1);
}

static void
test_roundtrip(void)
{
	struct vote in, out;
	uint8_t buf[CODEC_VOTE_MAX_BYTES];
	const char *bad = "x";
	size_t n;
	char *line;

	memset(&in, 0, sizeof(in));
	strcpy(in.poll, "default");
	strcpy(in.voter, "v-1.a@b:c");
	strcpy(in.option, "a");
	strcpy(in.cast_id, "0123456789abcdef0123456789abcdef");
	in.cast_unix_ms = 1714564800123;
	in.source = VOTE_SOURCE_FORM;
	n = codec_vote_encode(&in, buf, sizeof(buf));
	CHECK(n > 0);
	CHECK(codec_vote_decode(buf, n, &out, &bad) == CODEC_OK);
	line = vote_json_format(&out, NULL);
	CHECK_STR(line, "{\"poll\":\"default\",\"voter\":\"v-1.a@b:c\","
	    "\"option\":\"a\",\"cast_id\":\"0123456789abcdef0123456789abcdef\","
	    "\"cast_unix_ms\":1714564800123,"
	    "\"cast_at\":\"2024-05-01T12:00:00.123Z\","
	    "\"source\":\"SOURCE_FORM\"}");
	free(line);

	/* An unknown enum value from a newer writer shows as its number;
	 * an invalid field is named. */
	out.source = (enum vote_source)9;
	line = vote_json_format(&out, "voter");
	CHECK(line != NULL && strstr(line, "\"source\":9") != NULL);
	CHECK(line != NULL && strstr(line, "\"invalid\":\"voter\"") != NULL);
	free(line);

	/* Escaping: whatever a broken writer put in a field stays JSON. */
	strcpy(out.voter, "a\"b\\c");
	line = vote_json_format(&out, "voter");
	CHECK(line != NULL && strstr(line, "\"voter\":\"a\\\"b\\\\c\"") != NULL);
	free(line);
}

int
main(void)
{
	test_time();
	test_roundtrip();
	return check_done("test_tallyctl_decode");
}
