/*
 * tallies.c - the in-memory tally cache.
 */
#define _POSIX_C_SOURCE 200809L
#include "tallies.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

struct tally_slot {
	int64_t votes[POLL_OPTIONS_MAX];
	int64_t total;
	int64_t updated_at_ms;
	uint64_t digest;
	bool loaded;
};

struct tallies {
	const struct polls *polls;     /* borrowed */
	pthread_mutex_t mu;            /* guards slots and refreshed_us */
	struct tally_slot *slots;      /* one per configured poll */
	uint64_t refreshed_us;         /* monotonic; 0 = never */
};

uint64_t
tallies_digest(const int64_t *votes, size_t n)
{
	/* FNV-1a over the counts' bytes in a fixed (little-endian) order, so
	 * every replica on every machine names a state the same way. */
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		uint64_t v = (uint64_t)votes[i];
		for (int b = 0; b < 8; b++) {
			h ^= (v >> (8 * b)) & 0xff;
			h *= 0x100000001b3ULL;
		}
	}
	return h;
}

struct tallies *
tallies_new(const struct polls *polls)
{
	struct tallies *t;
	size_t n = polls_count(polls);

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->slots = calloc(n, sizeof(*t->slots));
	if (t->slots == NULL)
		goto fail;
	t->polls = polls;
	for (size_t i = 0; i < n; i++)
		t->slots[i].digest = tallies_digest(t->slots[i].votes,
		    polls_at(polls, i)->n_options);
	if (pthread_mutex_init(&t->mu, NULL) != 0)
		goto fail;
	return t;
fail:
	free(t->slots);
	free(t);
	return NULL;
}

void
tallies_free(struct tallies *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->slots);
	free(t);
}

bool
tallies_set(struct tallies *t, size_t poll_index, const int64_t *votes,
    int64_t now_ms)
{
	size_t n = polls_at(t->polls, poll_index)->n_options;
	struct tally_slot *s = &t->slots[poll_index];
	bool changed;

	pthread_mutex_lock(&t->mu);
	changed = !s->loaded ||
	    memcmp(s->votes, votes, n * sizeof(*votes)) != 0;
	if (changed) {
		memcpy(s->votes, votes, n * sizeof(*votes));
		s->total = 0;
		for (size_t i = 0; i < n; i++)
			s->total += votes[i];
		s->digest = tallies_digest(votes, n);
		s->updated_at_ms = now_ms;
		s->loaded = true;
	}
	pthread_mutex_unlock(&t->mu);
	return changed;
}

void
tallies_get(struct tallies *t, size_t poll_index, struct tally_snapshot *out)
{
	const struct tally_slot *s = &t->slots[poll_index];

	out->n = polls_at(t->polls, poll_index)->n_options;
	pthread_mutex_lock(&t->mu);
	memcpy(out->votes, s->votes, out->n * sizeof(out->votes[0]));
	out->total = s->total;
	out->updated_at_ms = s->updated_at_ms;
	out->digest = s->digest;
	pthread_mutex_unlock(&t->mu);
}

void
tallies_mark_refreshed(struct tallies *t)
{
	uint64_t now = metrics_now_us();

	pthread_mutex_lock(&t->mu);
	t->refreshed_us = now > 0 ? now : 1;
	pthread_mutex_unlock(&t->mu);
}

double
tallies_refresh_age_s(struct tallies *t)
{
	uint64_t at;

	pthread_mutex_lock(&t->mu);
	at = t->refreshed_us;
	pthread_mutex_unlock(&t->mu);
	if (at == 0)
		return -1;
	return (double)(metrics_now_us() - at) / 1e6;
}

void
tallies_event_id(const struct tally_snapshot *s, char *out)
{
	snprintf(out, TALLY_EVENT_ID_LEN, "%016" PRIx64, s->digest);
}

/* RFC 3339 UTC with milliseconds: 2024-05-01T12:00:00.123Z (25 bytes). */
static void
tallies_format_time(int64_t ms, char *out, size_t cap)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

char *
tallies_json(const struct poll *poll, const struct tally_snapshot *s)
{
	json_t *root = NULL, *opts;
	char when[64];
	char *text = NULL;

	opts = json_array();
	if (opts == NULL)
		return NULL;
	for (size_t i = 0; i < poll->n_options && i < s->n; i++) {
		if (json_array_append_new(opts, json_pack("{s:s, s:s, s:I}",
		    "id", poll->options[i].id, "label",
		    poll->options[i].label, "votes",
		    (json_int_t)s->votes[i])) != 0)
			goto fail;
	}
	if (s->updated_at_ms > 0)
		tallies_format_time(s->updated_at_ms, when, sizeof(when));
	/* "o" steals opts, also when the pack fails. */
	root = json_pack("{s:s, s:o, s:I, s:o}", "poll", poll->id,
	    "options", opts, "total", (json_int_t)s->total, "updated_at",
	    s->updated_at_ms > 0 ? json_string(when) : json_null());
	opts = NULL;
	if (root == NULL)
		goto fail;
	text = json_dumps(root, JSON_COMPACT);
fail:
	json_decref(opts);
	json_decref(root);
	return text;
}
