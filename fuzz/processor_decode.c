/*
 * processor_decode: libFuzzer target for the processor's message decoding.
 * The first byte picks the subject (matching, other poll, no prefix); the
 * rest is the payload. message_decode must never crash, and a vote it
 * accepts must pass vote_check and match the subject.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "vote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const subjects[] = {"votes.default", "votes.p",
	    "other.default", "votes."};
	const char *subject, *why = NULL;
	struct vote v;

	if (size == 0)
		return 0;
	subject = subjects[data[0] % 4];
	if (message_decode(subject, data + 1, size - 1, &v, &why) ==
	    MESSAGE_VOTE) {
		if (vote_check(&v) != NULL ||
		    strcmp(subject + strlen("votes."), v.poll) != 0)
			abort();
	} else if (why == NULL) {
		abort();
	}
	return 0;
}
