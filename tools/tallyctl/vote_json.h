/*
 * vote_json: one vote as one line of JSON, the shape `tallyctl decode`
 * prints (and that natscli shows through --translate):
 *
 *   {"poll":"default","voter":"v1","option":"a","cast_id":"…",
 *    "cast_unix_ms":1714564800123,"cast_at":"2024-05-01T12:00:00.123Z",
 *    "source":"SOURCE_FORM"}
 *
 * source is the tally.v1.Source enum name (as protobuf's JSON mapping
 * writes it), or the bare number for a value this build does not know.
 */
#ifndef TALLYCTL_VOTE_JSON_H
#define TALLYCTL_VOTE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "vote.h"

/* Writes ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2024-05-01T12:00:00.123Z") into out (at least 32 bytes). Returns 0, or
 * -1 if the time cannot be represented. */
int vote_json_time(int64_t ms, char *out, size_t cap)
    __attribute__((warn_unused_result));

/*
 * Returns the JSON line (no trailing newline) for v, or NULL when out of
 * memory; the caller frees it. invalid, if not NULL, names a field that
 * breaks the id rules and is added as "invalid".
 */
char *vote_json_format(const struct vote *v, const char *invalid)
    __attribute__((warn_unused_result));

#endif
