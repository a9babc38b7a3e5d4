/*
 * parse: a vote request body (JSON, HTML form or protobuf) -> struct vote.
 *
 * Pure functions: no I/O, no globals, no allocation that outlives a call.
 * They are the gateway's attack surface, so each one is unit-tested
 * table-driven and has a libFuzzer target (fuzz/gateway_*.c).
 */
#ifndef TALLY_GATEWAY_PARSE_H
#define TALLY_GATEWAY_PARSE_H

#include <stddef.h>

#include "polls.h"
#include "vote.h"

enum parse_format {
	PARSE_FORMAT_NONE,     /* no Content-Type header */
	PARSE_FORMAT_JSON,     /* application/json */
	PARSE_FORMAT_FORM,     /* application/x-www-form-urlencoded */
	PARSE_FORMAT_PROTOBUF, /* application/x-protobuf (tally.v1.Vote) */
	PARSE_FORMAT_OTHER,    /* anything else: 415 */
};

/* The caller branches on these; each maps to one HTTP status. */
enum parse_result {
	PARSE_OK,
	PARSE_MALFORMED,      /* 400 bad_request */
	PARSE_BAD_VOTER,      /* 422 bad_voter */
	PARSE_UNKNOWN_OPTION, /* 422 unknown_option */
};

/* Reads a Content-Type value (media type case-insensitive, parameters such
 * as "; charset=utf-8" ignored). NULL or empty gives PARSE_FORMAT_NONE. */
enum parse_format parse_content_type(const char *value);

/*
 * Parses body[0..len) in format f into v: poll (empty when the body names
 * none), voter (empty when absent: the form route fills it from the cookie)
 * and option. Field names: "poll", "voter", "option" ("vote" is accepted for
 * "option", as the original form posts it). Unknown JSON keys and unknown
 * protobuf fields are ignored. On failure *why is a static message.
 * body need not be NUL-terminated.
 */
enum parse_result parse_vote(enum parse_format f, const char *body,
    size_t len, struct vote *v, const char **why)
    __attribute__((warn_unused_result));

/*
 * parse_vote for a JSON body, always through jansson. parse_vote reads the
 * common shape of body itself and gives the same result; this is the
 * reference the fuzz target and the unit tests compare it with.
 */
enum parse_result parse_vote_json_reference(const char *body, size_t len,
    struct vote *v, const char **why) __attribute__((warn_unused_result));

/*
 * Checks a parsed vote against poll: the body's poll (if any) must equal
 * poll's id (PARSE_MALFORMED), the voter must be a valid token
 * (PARSE_BAD_VOTER) and the option one of poll's (PARSE_UNKNOWN_OPTION).
 * On success v->poll holds poll's id.
 */
enum parse_result parse_vote_check(const struct poll *poll, struct vote *v,
    const char **why) __attribute__((warn_unused_result));

/*
 * Finds field name in an urlencoded form body[0..len) and writes its
 * percent-decoded value into out (cap bytes, NUL-terminated). Returns the
 * value's length, -1 if absent, -2 if malformed or longer than cap - 1.
 */
int parse_form_field(const char *body, size_t len, const char *name,
    char *out, size_t cap) __attribute__((warn_unused_result));

#endif
