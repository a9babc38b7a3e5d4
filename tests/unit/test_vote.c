/* Unit tests for vote.c: the id rules, table-driven. */
#include <string.h>

#include "check.h"
#include "vote.h"

static const struct {
	const char *s;
	int id_ok, token_ok;
} cases[] = {
	{"a", 1, 1},
	{"cats-vs-dogs_2", 1, 1},
	{"", 0, 0},
	{"A", 0, 1},
	{"a.b", 0, 1},
	{"a b", 0, 0},
	{"a/b", 0, 0},
	{"..", 0, 1},
	{"a*", 0, 0},
	{"a>", 0, 0},
	{"caf\xc3\xa9", 0, 0},
	{"user@example.com", 0, 1},
	{"550e8400-e29b-41d4-a716-446655440000", 1, 1},
	{"a\r\nSet-Cookie:x", 0, 0},
	{"0123456789012345678901234567890123456789012345678901234567890123",
	    1, 1},
	{"01234567890123456789012345678901234567890123456789012345678901234",
	    0, 1},
};

int
main(void)
{
	struct vote v;
	char id[VOTE_ID_MAX + 1], tok[VOTE_TOKEN_MAX + 1], big[200];
	char cid1[33], cid2[33];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].s);
		CHECK_MSG(vote_id_valid(cases[i].s, len) == cases[i].id_ok,
		    "id \"%s\"", cases[i].s);
		CHECK_MSG(vote_token_valid(cases[i].s, len) ==
		    cases[i].token_ok, "token \"%s\"", cases[i].s);
	}
	/* An embedded NUL is never part of a valid id. */
	CHECK(!vote_id_valid("a\0b", 3));
	CHECK(!vote_token_valid("a\0b", 3));

	memset(big, 'x', sizeof(big));
	CHECK(vote_token_valid(big, VOTE_TOKEN_MAX));
	CHECK(!vote_token_valid(big, VOTE_TOKEN_MAX + 1));

	CHECK(vote_copy_id(id, "dogs", 4) == 0);
	CHECK_STR(id, "dogs");
	CHECK(vote_copy_id(id, "Dogs", 4) == -1);
	CHECK_STR(id, "");
	CHECK(vote_copy_token(tok, "v:1", 3) == 0);
	CHECK_STR(tok, "v:1");

	memset(&v, 0, sizeof(v));
	strcpy(v.poll, "default");
	strcpy(v.voter, "abc123");
	strcpy(v.option, "a");
	CHECK(vote_check(&v) == NULL);
	strcpy(v.option, "A");
	CHECK_STR(vote_check(&v), "option");
	strcpy(v.option, "a");
	strcpy(v.voter, "a b");
	CHECK_STR(vote_check(&v), "voter");
	strcpy(v.voter, "ok");
	strcpy(v.poll, "../etc");
	CHECK_STR(vote_check(&v), "poll");
	strcpy(v.poll, "p");
	strcpy(v.cast_id, "bad id");
	CHECK_STR(vote_check(&v), "cast_id");

	CHECK(vote_cast_id_new(cid1) == 0);
	CHECK(vote_cast_id_new(cid2) == 0);
	CHECK(strlen(cid1) == 32);
	CHECK(vote_token_valid(cid1, 32));
	CHECK(strcmp(cid1, cid2) != 0);
	return check_done("test_vote");
}
