/*
 * codec.c - protobuf-c glue for tally.v1.Vote.
 */
#include "codec.h"

#include <string.h>

#include "tally/v1/vote.pb-c.h"

size_t
codec_vote_encode(const struct vote *v, uint8_t *buf, size_t cap)
{
	Tally__V1__Vote m = TALLY__V1__VOTE__INIT;

	/* protobuf-c takes char * but only reads through it when packing. */
	m.poll = (char *)v->poll;
	m.voter = (char *)v->voter;
	m.option = (char *)v->option;
	m.cast_id = (char *)v->cast_id;
	m.cast_unix_ms = v->cast_unix_ms;
	m.source = (Tally__V1__Source)v->source;
	if (tally__v1__vote__get_packed_size(&m) > cap)
		return 0;
	return tally__v1__vote__pack(&m, buf);
}

/* Copies src into dst[max + 1] if it is valid by check; else leaves a prefix
 * and returns -1. */
static int
codec_copy(char *dst, size_t max, const char *src,
    bool (*check)(const char *, size_t))
{
	size_t len = src != NULL ? strlen(src) : 0;

	if (len > max) {
		memcpy(dst, src, max);
		dst[max] = '\0';
		return -1;
	}
	memcpy(dst, src != NULL ? src : "", len);
	dst[len] = '\0';
	return check(dst, len) ? 0 : -1;
}

static bool
codec_cast_id_ok(const char *s, size_t len)
{
	return len == 0 || vote_token_valid(s, len);
}

enum codec_result
codec_vote_decode(const uint8_t *buf, size_t len, struct vote *v,
    const char **bad_field)
{
	Tally__V1__Vote *m;
	enum codec_result r = CODEC_OK;

	memset(v, 0, sizeof(*v));
	*bad_field = NULL;
	m = tally__v1__vote__unpack(NULL, len, buf);
	if (m == NULL)
		return CODEC_UNDECODABLE;
	if (codec_copy(v->poll, VOTE_ID_MAX, m->poll, vote_id_valid) != 0)
		*bad_field = "poll";
	else if (codec_copy(v->voter, VOTE_TOKEN_MAX, m->voter,
	    vote_token_valid) != 0)
		*bad_field = "voter";
	else if (codec_copy(v->option, VOTE_ID_MAX, m->option,
	    vote_id_valid) != 0)
		*bad_field = "option";
	else if (codec_copy(v->cast_id, VOTE_TOKEN_MAX, m->cast_id,
	    codec_cast_id_ok) != 0)
		*bad_field = "cast_id";
	if (*bad_field != NULL)
		r = CODEC_INVALID;
	v->cast_unix_ms = m->cast_unix_ms;
	v->source = (enum vote_source)m->source;
	tally__v1__vote__free_unpacked(m, NULL);
	return r;
}
