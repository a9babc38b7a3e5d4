/*
 * polls: the polls that voters may vote in, shared by the gateway and the
 * reporter. Read once at start from a JSON file, or made from OPTION_A and
 * OPTION_B as in the original app; immutable afterwards, so any thread may
 * read it without locks.
 */
#ifndef TALLY_POLLS_H
#define TALLY_POLLS_H

#include <stddef.h>
#include <stdio.h>

#include "vote.h"

#define POLLS_MAX 256        /* polls in one file */
#define POLL_OPTIONS_MAX 64  /* options in one poll */
#define POLL_LABEL_MAX 200   /* bytes of a title or label */
#define POLLS_DEFAULT_ID "default"

struct poll_option {
	char id[VOTE_ID_MAX + 1];
	char label[POLL_LABEL_MAX + 1];
};

struct poll {
	char id[VOTE_ID_MAX + 1];
	char title[POLL_LABEL_MAX + 1];
	size_t n_options;
	struct poll_option *options;
};

struct polls;

/*
 * Loads polls from the JSON file at path ({"polls": [{"id", "title",
 * "options": [{"id", "label"}]}]}), or, if path is NULL or empty, makes the
 * default poll "default" with options a (label_a) and b (label_b). Every poll
 * needs 2 or more options; ids follow vote_id_valid and are unique. Returns
 * NULL and writes why (naming the file and the poll) to err.
 */
struct polls *polls_load(const char *path, const char *label_a,
    const char *label_b, FILE *err) __attribute__((warn_unused_result));

/* Same as polls_load from a file, from JSON text (for tests). */
struct polls *polls_parse(const char *json, const char *origin, FILE *err)
    __attribute__((warn_unused_result));

void polls_free(struct polls *p);

size_t polls_count(const struct polls *p);
const struct poll *polls_at(const struct polls *p, size_t i);
/* The first poll: the one the plain vote and results pages use. */
const struct poll *polls_default(const struct polls *p);
/* The poll with id[0..len), or NULL. */
const struct poll *polls_find(const struct polls *p, const char *id,
    size_t len);
/* The index of option id[0..len) in poll, or -1. */
int poll_option_index(const struct poll *poll, const char *id, size_t len);

#endif
