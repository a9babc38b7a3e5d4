/*
 * vote.c - id rules and cast ids.
 */
#define _DEFAULT_SOURCE
#include "vote.h"

#include <string.h>
#include <sys/random.h>

bool
vote_id_valid(const char *s, size_t len)
{
	if (len == 0 || len > VOTE_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool
vote_token_valid(const char *s, size_t len)
{
	if (len == 0 || len > VOTE_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		    c == '.' || c == ':' || c == '@'))
			return false;
	}
	return true;
}

int
vote_copy_id(char *dst, const char *s, size_t len)
{
	dst[0] = '\0';
	if (!vote_id_valid(s, len))
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

int
vote_copy_token(char *dst, const char *s, size_t len)
{
	dst[0] = '\0';
	if (!vote_token_valid(s, len))
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

const char *
vote_check(const struct vote *v)
{
	if (!vote_id_valid(v->poll, strlen(v->poll)))
		return "poll";
	if (!vote_token_valid(v->voter, strlen(v->voter)))
		return "voter";
	if (!vote_id_valid(v->option, strlen(v->option)))
		return "option";
	if (v->cast_id[0] != '\0' &&
	    !vote_token_valid(v->cast_id, strlen(v->cast_id)))
		return "cast_id";
	return NULL;
}

int
vote_cast_id_new(char *dst)
{
	static const char hex[] = "0123456789abcdef";
	/* Randomness is fetched 32 ids at a time per thread: one getrandom(2)
	 * per id was a system call per vote on the gateway's hot path. Bytes
	 * are used once; tally's daemons do not fork, so no copy of the pool
	 * is ever reused by a child. */
	static _Thread_local unsigned char pool[32 * 16];
	static _Thread_local size_t pool_left;
	unsigned char *raw;

	if (pool_left < 16) {
		size_t got = 0;
		while (got < sizeof(pool)) {
			ssize_t r = getrandom(pool + got, sizeof(pool) - got, 0);
			if (r < 0)
				return -1;
			got += (size_t)r;
		}
		pool_left = sizeof(pool);
	}
	raw = pool + sizeof(pool) - pool_left;
	pool_left -= 16;
	for (size_t i = 0; i < 16; i++) {
		dst[2 * i] = hex[raw[i] >> 4];
		dst[2 * i + 1] = hex[raw[i] & 15];
	}
	memset(raw, 0, 16); /* a used id leaves nothing to read back */
	dst[32] = '\0';
	return 0;
}
