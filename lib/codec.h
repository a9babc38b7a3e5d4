/*
 * codec: struct vote <-> the bare protobuf tally.v1.Vote on the wire.
 * Unknown fields are skipped on decode (forward compatibility).
 */
#ifndef TALLY_CODEC_H
#define TALLY_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "vote.h"

/* Largest encoding of a valid vote, in bytes. */
#define CODEC_VOTE_MAX_BYTES 512

/* Encodes v into buf (cap bytes). Returns the length, or 0 if it does not
 * fit. v must pass vote_check. */
size_t codec_vote_encode(const struct vote *v, uint8_t *buf, size_t cap)
    __attribute__((warn_unused_result));

enum codec_result {
	CODEC_OK,
	CODEC_UNDECODABLE, /* not a tally.v1.Vote */
	CODEC_INVALID,     /* decodes, but an id breaks the rules */
};

/*
 * Decodes len bytes into v. On CODEC_INVALID, *bad_field names the first bad
 * field (static string) and v holds what could be copied; ids too long for
 * struct vote count as invalid.
 */
enum codec_result codec_vote_decode(const uint8_t *buf, size_t len,
    struct vote *v, const char **bad_field)
    __attribute__((warn_unused_result));

#endif
