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
	unsigned char raw[16];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
		if (r < 0)
			return -1;
		got += (size_t)r;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		dst[2 * i] = hex[raw[i] >> 4];
		dst[2 * i + 1] = hex[raw[i] & 15];
	}
	dst[2 * sizeof(raw)] = '\0';
	return 0;
}
