/*
 * message: what the processor makes of one message of stream VOTES. Pure
 * (no NATS, no I/O), so it is unit-tested and fuzzed on raw bytes.
 */
#ifndef TALLY_PROCESSOR_MESSAGE_H
#define TALLY_PROCESSOR_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "vote.h"

enum message_verdict {
	MESSAGE_VOTE,   /* *v holds a valid vote for the subject's poll */
	MESSAGE_POISON, /* never storable: terminate, count, dead-letter */
};

/*
 * Decodes the payload of a message published on subject ("votes.<poll>").
 * Poison: undecodable bytes, a vote whose ids break the rules, or a payload
 * poll that differs from the subject's. On MESSAGE_POISON *why is a short
 * static reason ("undecodable", "invalid voter", "poll differs from
 * subject"). Whether the poll exists is not the processor's business.
 */
enum message_verdict message_decode(const char *subject, const uint8_t *data,
    size_t len, struct vote *v, const char **why)
    __attribute__((warn_unused_result));

#endif
