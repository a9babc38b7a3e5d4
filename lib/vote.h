/*
 * vote: one cast, as every part of tally sees it, and the rules for its ids.
 *
 * Poll and option ids are short lowercase tokens ([a-z0-9_-], 1 to 64
 * characters) so that they are valid NATS subject tokens, URL segments and
 * keys. Voter ids and cast ids are printable tokens ([A-Za-z0-9._:@-],
 * 1 to 128 characters): a cookie value, an API client's id or a UUID.
 */
#ifndef TALLY_VOTE_H
#define TALLY_VOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VOTE_ID_MAX 64     /* poll and option ids, in bytes */
#define VOTE_TOKEN_MAX 128 /* voter and cast ids, in bytes */

/* Same numbers as tally.v1.Source. */
enum vote_source {
	VOTE_SOURCE_UNSPECIFIED = 0,
	VOTE_SOURCE_FORM = 1,
	VOTE_SOURCE_JSON = 2,
	VOTE_SOURCE_PROTOBUF = 3,
	VOTE_SOURCE_NATS = 4,
};

/* Fixed-size so that a vote can live on the stack or in an array. */
struct vote {
	char poll[VOTE_ID_MAX + 1];
	char voter[VOTE_TOKEN_MAX + 1];
	char option[VOTE_ID_MAX + 1];
	char cast_id[VOTE_TOKEN_MAX + 1];
	int64_t cast_unix_ms;
	enum vote_source source;
};

/* True if s[0..len) is a valid poll or option id. */
bool vote_id_valid(const char *s, size_t len);

/* True if s[0..len) is a valid voter or cast id. */
bool vote_token_valid(const char *s, size_t len);

/* Copies a valid id or token into dst (of size max + 1) and NUL-terminates.
 * Returns 0, or -1 if s is not valid (dst is then empty). */
int vote_copy_id(char *dst, const char *s, size_t len)
    __attribute__((warn_unused_result));
int vote_copy_token(char *dst, const char *s, size_t len)
    __attribute__((warn_unused_result));

/* Checks every id of a vote. Returns NULL if valid, else the name of the
 * first bad field ("poll", "voter", "option" or "cast_id"). An empty cast_id
 * is allowed here: the gateway assigns one. */
const char *vote_check(const struct vote *v);

/* Writes a new random cast id (32 hex characters) into dst, which holds at
 * least 33 bytes. Returns 0, or -1 if the system has no randomness. */
int vote_cast_id_new(char *dst) __attribute__((warn_unused_result));

#endif
