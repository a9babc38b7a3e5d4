/*
 * parse.c - vote bodies in three formats, and the checks against a poll.
 *
 * Every format fills the same struct vote, so the rules live once, in
 * parse_vote_check. A value too long for its field is reported as invalid
 * for that field, never truncated into a different, valid id.
 */
#define _POSIX_C_SOURCE 200809L
#include "parse.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "tally/v1/vote.pb-c.h"

/* Longest field value we decode; anything longer is invalid for any field. */
#define PARSE_FIELD_MAX 256

enum parse_format
parse_content_type(const char *value)
{
	static const struct {
		const char *type;
		enum parse_format f;
	} types[] = {
		{"application/json", PARSE_FORMAT_JSON},
		{"application/x-www-form-urlencoded", PARSE_FORMAT_FORM},
		{"application/x-protobuf", PARSE_FORMAT_PROTOBUF},
		{"application/protobuf", PARSE_FORMAT_PROTOBUF},
	};
	size_t len;

	if (value == NULL)
		return PARSE_FORMAT_NONE;
	while (*value == ' ' || *value == '\t')
		value++;
	if (*value == '\0')
		return PARSE_FORMAT_NONE;
	len = strcspn(value, "; \t");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strlen(types[i].type) == len &&
		    strncasecmp(value, types[i].type, len) == 0)
			return types[i].f;
	}
	return PARSE_FORMAT_OTHER;
}

static int
parse_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..len) into out[cap]. Returns the length, -2 on a bad
 * escape, -3 when it does not fit. */
static int
parse_form_decode(const char *s, size_t len, char *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;
			if (len - i < 3) /* needs two hex digits after '%' */
				return -2;
			hi = parse_hex(s[i + 1]);
			lo = parse_hex(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -2;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (n + 1 >= cap)
			return -3;
		out[n++] = c;
	}
	out[n] = '\0';
	return (int)n;
}

int
parse_form_field(const char *body, size_t len, const char *name, char *out,
    size_t cap)
{
	size_t nlen = strlen(name);
	const char *p = body, *end = body + len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pair_end = amp != NULL ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pair_end - p));
		const char *key_end = eq != NULL ? eq : pair_end;

		/* Names are plain ASCII in every client we know; compare raw. */
		if ((size_t)(key_end - p) == nlen && memcmp(p, name, nlen) == 0) {
			const char *val = eq != NULL ? eq + 1 : pair_end;
			return parse_form_decode(val, (size_t)(pair_end - val),
			    out, cap);
		}
		p = pair_end + 1;
	}
	return -1;
}

/* Stores a poll id from the body (empty allowed: "not given"). */
static enum parse_result
parse_set_poll(struct vote *v, const char *s, size_t len, const char **why)
{
	if (len == 0)
		return PARSE_OK;
	if (vote_copy_id(v->poll, s, len) != 0) {
		*why = "poll is not a valid poll id";
		return PARSE_MALFORMED;
	}
	return PARSE_OK;
}

static enum parse_result
parse_set_voter(struct vote *v, const char *s, size_t len, const char **why)
{
	if (len == 0)
		return PARSE_OK;
	if (vote_copy_token(v->voter, s, len) != 0) {
		*why = "voter must be 1 to 128 characters of [A-Za-z0-9._:@-]";
		return PARSE_BAD_VOTER;
	}
	return PARSE_OK;
}

static enum parse_result
parse_set_option(struct vote *v, const char *s, size_t len, const char **why)
{
	if (len == 0) {
		*why = "option is required";
		return PARSE_MALFORMED;
	}
	if (vote_copy_id(v->option, s, len) != 0) {
		*why = "option is not one of the poll's options";
		return PARSE_UNKNOWN_OPTION;
	}
	return PARSE_OK;
}

static enum parse_result
parse_form(const char *body, size_t len, struct vote *v, const char **why)
{
	char val[PARSE_FIELD_MAX];
	enum parse_result r;
	int n;

	n = parse_form_field(body, len, "poll", val, sizeof(val));
	if (n == -2 || n == -3) {
		*why = n == -2 ? "bad percent-escape in form field poll" :
		    "poll is not a valid poll id";
		return PARSE_MALFORMED;
	}
	if (n >= 0 && (r = parse_set_poll(v, val, (size_t)n, why)) != PARSE_OK)
		return r;

	n = parse_form_field(body, len, "voter", val, sizeof(val));
	if (n == -2) {
		*why = "bad percent-escape in form field voter";
		return PARSE_MALFORMED;
	}
	if (n == -3 || n == 0) {
		*why = "voter must be 1 to 128 characters of [A-Za-z0-9._:@-]";
		return PARSE_BAD_VOTER;
	}
	if (n > 0 && (r = parse_set_voter(v, val, (size_t)n, why)) != PARSE_OK)
		return r;

	n = parse_form_field(body, len, "option", val, sizeof(val));
	if (n == -1)
		n = parse_form_field(body, len, "vote", val, sizeof(val));
	if (n == -1) {
		*why = "form field vote (or option) is required";
		return PARSE_MALFORMED;
	}
	if (n == -2) {
		*why = "bad percent-escape in form field vote";
		return PARSE_MALFORMED;
	}
	if (n == -3) {
		*why = "option is not one of the poll's options";
		return PARSE_UNKNOWN_OPTION;
	}
	return parse_set_option(v, val, (size_t)n, why);
}

/* The three members a JSON body may carry; s is NULL when absent. */
struct parse_json_members {
	const char *poll, *voter, *option;
	size_t poll_len, voter_len, option_len;
};

/* The rules shared by both JSON paths, once the members are found. */
static enum parse_result
parse_json_members(const struct parse_json_members *m, struct vote *v,
    const char **why)
{
	enum parse_result r;

	if (m->option == NULL) {
		*why = "option is required";
		return PARSE_MALFORMED;
	}
	if (m->voter != NULL && m->voter_len == 0) {
		*why = "voter must be 1 to 128 characters of [A-Za-z0-9._:@-]";
		return PARSE_BAD_VOTER;
	}
	if ((r = parse_set_poll(v, m->poll, m->poll_len, why)) != PARSE_OK ||
	    (r = parse_set_voter(v, m->voter, m->voter_len, why)) != PARSE_OK)
		return r;
	return parse_set_option(v, m->option, m->option_len, why);
}

/* A JSON member that must be a string if present: returns its value and
 * length through out-parameters; *s is NULL when absent. */
static int
parse_json_string(json_t *root, const char *key, const char **s, size_t *len)
{
	json_t *j = json_object_get(root, key);

	*s = NULL;
	*len = 0;
	if (j == NULL)
		return 0;
	if (!json_is_string(j))
		return -1;
	*s = json_string_value(j);
	*len = json_string_length(j);
	return 0;
}

static enum parse_result
parse_json_jansson(const char *body, size_t len, struct vote *v,
    const char **why)
{
	struct parse_json_members m;
	json_error_t jerr;
	json_t *root;
	enum parse_result r = PARSE_MALFORMED;

	/* No JSON_ALLOW_NUL: "\u0000" inside a string is refused. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		*why = "body is not valid JSON";
		return PARSE_MALFORMED;
	}
	if (!json_is_object(root)) {
		*why = "body must be a JSON object";
		goto done;
	}
	if (parse_json_string(root, "poll", &m.poll, &m.poll_len) != 0 ||
	    parse_json_string(root, "voter", &m.voter, &m.voter_len) != 0 ||
	    parse_json_string(root, "option", &m.option, &m.option_len) != 0) {
		*why = "poll, voter and option must be strings";
		goto done;
	}
	r = parse_json_members(&m, v, why);
done:
	json_decref(root);
	return r;
}

/*
 * The fast path. Almost every body is one flat object of short, plain
 * strings ({"voter":"alice","option":"a"}); building a jansson tree for it
 * cost ~10,000 instructions a vote. This reads exactly that subset: members
 * whose keys and values are strings of printable ASCII without escapes, at
 * most PARSE_FAST_MEMBERS of them, no key twice. Anything else (an escape,
 * a byte outside 0x20-0x7e, a number, nesting, a duplicate, a syntax error)
 * returns false and jansson decides, so every body the fast path accepts is
 * valid JSON whose strings are their own bytes, and both paths give the
 * same answer (fuzz/gateway_json.c checks it on every input).
 */
#define PARSE_FAST_MEMBERS 8

struct parse_span {
	const char *s;
	size_t len;
};

static const char *
parse_fast_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
	    *p == '\r'))
		p++;
	return p;
}

/* A plain string at *p; advances past its closing quote. */
static bool
parse_fast_string(const char **p, const char *end, struct parse_span *out)
{
	const char *q = *p;

	if (q == end || *q != '"')
		return false;
	out->s = ++q;
	for (; q < end && *q != '"'; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e ||
		    *q == '\\')
			return false;
	if (q == end)
		return false;
	out->len = (size_t)(q - out->s);
	*p = q + 1;
	return true;
}

static bool
parse_fast_is(const struct parse_span *k, const char *name)
{
	size_t n = strlen(name);

	return k->len == n && memcmp(k->s, name, n) == 0;
}

static bool
parse_json_fast(const char *body, size_t len, struct parse_json_members *m)
{
	struct parse_span keys[PARSE_FAST_MEMBERS], val;
	const char *p = body, *end = body + len;
	size_t n = 0;

	memset(m, 0, sizeof(*m));
	p = parse_fast_ws(p, end);
	if (p == end || *p != '{')
		return false;
	p = parse_fast_ws(p + 1, end);
	if (p < end && *p == '}') {
		p++;
	} else {
		for (;;) {
			if (n == PARSE_FAST_MEMBERS ||
			    !parse_fast_string(&p, end, &keys[n]))
				return false;
			p = parse_fast_ws(p, end);
			if (p == end || *p != ':')
				return false;
			p = parse_fast_ws(p + 1, end);
			if (!parse_fast_string(&p, end, &val))
				return false;
			for (size_t i = 0; i < n; i++)
				if (keys[i].len == keys[n].len && memcmp(
				    keys[i].s, keys[n].s, keys[n].len) == 0)
					return false;
			if (parse_fast_is(&keys[n], "poll")) {
				m->poll = val.s;
				m->poll_len = val.len;
			} else if (parse_fast_is(&keys[n], "voter")) {
				m->voter = val.s;
				m->voter_len = val.len;
			} else if (parse_fast_is(&keys[n], "option")) {
				m->option = val.s;
				m->option_len = val.len;
			}
			n++;
			p = parse_fast_ws(p, end);
			if (p == end)
				return false;
			if (*p == '}') {
				p++;
				break;
			}
			if (*p != ',')
				return false;
			p = parse_fast_ws(p + 1, end);
		}
	}
	return parse_fast_ws(p, end) == end;
}

static enum parse_result
parse_json(const char *body, size_t len, struct vote *v, const char **why)
{
	struct parse_json_members m;

	if (parse_json_fast(body, len, &m))
		return parse_json_members(&m, v, why);
	return parse_json_jansson(body, len, v, why);
}

enum parse_result
parse_vote_json_reference(const char *body, size_t len, struct vote *v,
    const char **why)
{
	memset(v, 0, sizeof(*v));
	*why = NULL;
	v->source = VOTE_SOURCE_JSON;
	return parse_json_jansson(body != NULL ? body : "", len, v, why);
}

/* A protobuf string field; protobuf-c gives "" for an absent one. */
static size_t
parse_pb_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

static enum parse_result
parse_protobuf(const char *body, size_t len, struct vote *v, const char **why)
{
	Tally__V1__Vote *m;
	enum parse_result r;

	m = tally__v1__vote__unpack(NULL, len, (const uint8_t *)body);
	if (m == NULL) {
		*why = "body is not a tally.v1.Vote";
		return PARSE_MALFORMED;
	}
	if ((r = parse_set_poll(v, m->poll, parse_pb_len(m->poll), why)) ==
	    PARSE_OK &&
	    (r = parse_set_voter(v, m->voter, parse_pb_len(m->voter), why)) ==
	    PARSE_OK)
		r = parse_set_option(v, m->option, parse_pb_len(m->option), why);
	tally__v1__vote__free_unpacked(m, NULL);
	return r;
}

enum parse_result
parse_vote(enum parse_format f, const char *body, size_t len, struct vote *v,
    const char **why)
{
	memset(v, 0, sizeof(*v));
	*why = NULL;
	if (body == NULL)
		body = "";
	switch (f) {
	case PARSE_FORMAT_FORM:
		v->source = VOTE_SOURCE_FORM;
		return parse_form(body, len, v, why);
	case PARSE_FORMAT_JSON:
		v->source = VOTE_SOURCE_JSON;
		return parse_json(body, len, v, why);
	case PARSE_FORMAT_PROTOBUF:
		v->source = VOTE_SOURCE_PROTOBUF;
		return parse_protobuf(body, len, v, why);
	case PARSE_FORMAT_NONE:
	case PARSE_FORMAT_OTHER:
		break;
	}
	*why = "unsupported content type";
	return PARSE_MALFORMED;
}

enum parse_result
parse_vote_check(const struct poll *poll, struct vote *v, const char **why)
{
	if (v->poll[0] != '\0' && strcmp(v->poll, poll->id) != 0) {
		*why = "poll in the body does not match the poll in the URL";
		return PARSE_MALFORMED;
	}
	memcpy(v->poll, poll->id, strlen(poll->id) + 1);
	if (!vote_token_valid(v->voter, strlen(v->voter))) {
		*why = "voter must be 1 to 128 characters of [A-Za-z0-9._:@-]";
		return PARSE_BAD_VOTER;
	}
	if (poll_option_index(poll, v->option, strlen(v->option)) < 0) {
		*why = "option is not one of the poll's options";
		return PARSE_UNKNOWN_OPTION;
	}
	return PARSE_OK;
}
