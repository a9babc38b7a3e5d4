/* Unit tests for codec.c: round trips, hostile bytes, unknown fields. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "codec.h"

static void
fill(struct vote *v, const char *poll, const char *voter, const char *option,
    const char *cast_id)
{
	memset(v, 0, sizeof(*v));
	strcpy(v->poll, poll);
	strcpy(v->voter, voter);
	strcpy(v->option, option);
	strcpy(v->cast_id, cast_id);
	v->cast_unix_ms = 1764402386123;
	v->source = VOTE_SOURCE_JSON;
}

int
main(void)
{
	struct vote in, out;
	uint8_t buf[CODEC_VOTE_MAX_BYTES], ext[CODEC_VOTE_MAX_BYTES + 16];
	const char *bad;
	size_t n;
	char longid[VOTE_TOKEN_MAX + 1];

	fill(&in, "default", "voter-1", "b", "c0ffee");
	n = codec_vote_encode(&in, buf, sizeof(buf));
	CHECK(n > 0);
	CHECK(codec_vote_decode(buf, n, &out, &bad) == CODEC_OK);
	CHECK_STR(out.poll, "default");
	CHECK_STR(out.voter, "voter-1");
	CHECK_STR(out.option, "b");
	CHECK_STR(out.cast_id, "c0ffee");
	CHECK(out.cast_unix_ms == 1764402386123);
	CHECK(out.source == VOTE_SOURCE_JSON);

	/* The largest valid vote fits CODEC_VOTE_MAX_BYTES. */
	memset(longid, 'x', VOTE_TOKEN_MAX);
	longid[VOTE_TOKEN_MAX] = '\0';
	fill(&in, "p", longid, "o", longid);
	memset(in.poll, 'p', VOTE_ID_MAX);
	memset(in.option, 'o', VOTE_ID_MAX);
	n = codec_vote_encode(&in, buf, sizeof(buf));
	CHECK(n > 0 && n <= CODEC_VOTE_MAX_BYTES);
	CHECK(codec_vote_encode(&in, buf, 10) == 0);

	/* An unknown field (number 99, varint) is skipped. */
	fill(&in, "default", "v", "a", "");
	n = codec_vote_encode(&in, buf, sizeof(buf));
	memcpy(ext, buf, n);
	ext[n] = (uint8_t)((99 << 3) | 0) & 0x7f;
	ext[n] |= 0x80;
	ext[n + 1] = (uint8_t)(99 >> 4);
	ext[n + 2] = 7;
	CHECK(codec_vote_decode(ext, n + 3, &out, &bad) == CODEC_OK);
	CHECK_STR(out.voter, "v");

	/* Garbage and truncation are undecodable. */
	CHECK(codec_vote_decode((const uint8_t *)"\xff\xff\xff", 3, &out,
	    &bad) == CODEC_UNDECODABLE);
	fill(&in, "default", "voter-1", "b", "c0ffee");
	n = codec_vote_encode(&in, buf, sizeof(buf));
	/* Cut inside the poll string. */
	CHECK(codec_vote_decode(buf, 5, &out, &bad) == CODEC_UNDECODABLE);
	/* A wrong wire type for poll (varint instead of bytes). */
	CHECK(codec_vote_decode((const uint8_t *)"\x08\x01", 2, &out, &bad) ==
	    CODEC_UNDECODABLE);

	/* Empty message decodes but is invalid: no poll. */
	CHECK(codec_vote_decode((const uint8_t *)"", 0, &out, &bad) ==
	    CODEC_INVALID);
	CHECK_STR(bad, "poll");
	/* Bad ids are reported by field. */
	fill(&in, "default", "voter 1", "b", "");
	n = codec_vote_encode(&in, buf, sizeof(buf));
	CHECK(codec_vote_decode(buf, n, &out, &bad) == CODEC_INVALID);
	CHECK_STR(bad, "voter");
	fill(&in, "default", "v", "B", "");
	n = codec_vote_encode(&in, buf, sizeof(buf));
	CHECK(codec_vote_decode(buf, n, &out, &bad) == CODEC_INVALID);
	CHECK_STR(bad, "option");
	return check_done("test_codec");
}
