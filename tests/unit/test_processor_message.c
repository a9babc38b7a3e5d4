/*
 * test_processor_message: what the processor makes of raw stream messages.
 */
#include <string.h>

#include "check.h"
#include "codec.h"
#include "message.h"

static size_t
encode(const char *poll, const char *voter, const char *option, uint8_t *buf)
{
	struct vote v;

	memset(&v, 0, sizeof(v));
	snprintf(v.poll, sizeof(v.poll), "%s", poll);
	snprintf(v.voter, sizeof(v.voter), "%s", voter);
	snprintf(v.option, sizeof(v.option), "%s", option);
	v.cast_unix_ms = 1700000000000;
	return codec_vote_encode(&v, buf, CODEC_VOTE_MAX_BYTES);
}

int
main(void)
{
	uint8_t buf[CODEC_VOTE_MAX_BYTES];
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
	struct vote v;
	const char *why;
	size_t n;

	n = encode("default", "alice", "a", buf);
	CHECK(n > 0);
	CHECK(message_decode("votes.default", buf, n, &v, &why) ==
	    MESSAGE_VOTE);
	CHECK_STR(v.voter, "alice");
	CHECK_STR(v.option, "a");
	CHECK(v.cast_unix_ms == 1700000000000);

	/* The subject's poll must be the payload's. */
	CHECK(message_decode("votes.other", buf, n, &v, &why) ==
	    MESSAGE_POISON);
	CHECK_STR(why, "poll differs from subject");
	CHECK(message_decode("votes.defaultx", buf, n, &v, &why) ==
	    MESSAGE_POISON);
	CHECK(message_decode("other.default", buf, n, &v, &why) ==
	    MESSAGE_POISON);
	CHECK(message_decode(NULL, buf, n, &v, &why) == MESSAGE_POISON);

	CHECK(message_decode("votes.default", junk, sizeof(junk), &v, &why) ==
	    MESSAGE_POISON);
	CHECK_STR(why, "undecodable");
	/* Empty payload: decodes to an empty vote, whose poll is invalid. */
	CHECK(message_decode("votes.default", buf, 0, &v, &why) ==
	    MESSAGE_POISON);
	CHECK_STR(why, "invalid poll");

	/* Invalid ids are poison, named by field. Encoded by hand-rolled
	 * protobuf since codec_vote_encode refuses them. */
	{
		/* field 1 "default", field 2 "bad voter", field 3 "a" */
		static const uint8_t bad_voter[] = {0x0a, 7, 'd', 'e', 'f',
		    'a', 'u', 'l', 't', 0x12, 9, 'b', 'a', 'd', ' ', 'v', 'o',
		    't', 'e', 'r', 0x1a, 1, 'a'};
		static const uint8_t bad_option[] = {0x0a, 7, 'd', 'e', 'f',
		    'a', 'u', 'l', 't', 0x12, 1, 'x', 0x1a, 1, 'A'};

		CHECK(message_decode("votes.default", bad_voter,
		    sizeof(bad_voter), &v, &why) == MESSAGE_POISON);
		CHECK_STR(why, "invalid voter");
		CHECK(message_decode("votes.default", bad_option,
		    sizeof(bad_option), &v, &why) == MESSAGE_POISON);
		CHECK_STR(why, "invalid option");
	}
	return check_done("test_processor_message");
}
