/*
 * tallies: the in-memory copy of every configured poll's tally, which is
 * what the API, the pages and the event streams serve. The listener thread
 * writes it; HTTP and fan-out threads read consistent snapshots. A mutex
 * guards it: each critical section copies at most POLL_OPTIONS_MAX counts.
 */
#ifndef TALLY_REPORTER_TALLIES_H
#define TALLY_REPORTER_TALLIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "polls.h"

/* A poll's tally at one moment; plain data, lives on the stack. */
struct tally_snapshot {
	size_t n;                          /* options, as configured */
	int64_t votes[POLL_OPTIONS_MAX];   /* in the configured order */
	int64_t total;
	int64_t updated_at_ms;  /* Unix ms when this replica saw it change;
	                         * 0 until the first load */
	uint64_t digest;        /* of the counts only: equal tallies have equal
	                         * digests on every replica (the SSE event id) */
};

/* Event ids are the digest in hex: 16 characters and a NUL. */
#define TALLY_EVENT_ID_LEN 17

struct tallies;

/* All polls start at zero votes, not yet loaded. polls is borrowed and must
 * outlive the tallies. Returns NULL when out of memory. */
struct tallies *tallies_new(const struct polls *polls)
    __attribute__((warn_unused_result));
void tallies_free(struct tallies *t);

/*
 * Replaces poll poll_index's counts with votes[0..n_options) (configured
 * order). Returns true if any count differs from before (updated_at then
 * becomes now_ms), false if nothing changed. The first call for a poll
 * always stamps updated_at.
 */
bool tallies_set(struct tallies *t, size_t poll_index, const int64_t *votes,
    int64_t now_ms);

/* Copies poll poll_index's tally into out. */
void tallies_get(struct tallies *t, size_t poll_index,
    struct tally_snapshot *out);

/* Records that the database was read successfully just now (monotonic). */
void tallies_mark_refreshed(struct tallies *t);
/* Seconds since the last tallies_mark_refreshed, or -1 if never. */
double tallies_refresh_age_s(struct tallies *t);

/* The digest of votes[0..n), as stored in tally_snapshot.digest. */
uint64_t tallies_digest(const int64_t *votes, size_t n);
/* out (TALLY_EVENT_ID_LEN bytes) = the snapshot's digest in lowercase hex. */
void tallies_event_id(const struct tally_snapshot *s, char *out);

/*
 * The API's answer for a poll: {"poll", "options": [{"id", "label",
 * "votes"}], "total", "updated_at"} with updated_at an RFC 3339 UTC time or
 * null before the first load. Returns malloc'd compact JSON (caller frees),
 * or NULL when out of memory.
 */
char *tallies_json(const struct poll *poll, const struct tally_snapshot *s)
    __attribute__((warn_unused_result));

#endif
