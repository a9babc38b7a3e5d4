/*
 * test_reporter_tallies.c - the tally cache: change detection, digests
 * (event ids), the API's JSON.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "polls.h"
#include "tallies.h"

static void
test_set_get(void)
{
	struct polls *p = polls_load(NULL, "Tea", "Coffee", stderr);
	struct tallies *t;
	struct tally_snapshot s;
	int64_t v[2] = {0, 0};
	uint64_t zero_digest;

	CHECK(p != NULL);
	t = tallies_new(p);
	CHECK(t != NULL);
	if (t == NULL)
		goto out;
	tallies_get(t, 0, &s);
	CHECK(s.n == 2 && s.total == 0 && s.updated_at_ms == 0);
	zero_digest = s.digest;
	CHECK(tallies_refresh_age_s(t) < 0);

	/* The first load always counts as a change: it stamps updated_at. */
	CHECK(tallies_set(t, 0, v, 1000) == true);
	tallies_get(t, 0, &s);
	CHECK(s.updated_at_ms == 1000 && s.digest == zero_digest);
	CHECK(tallies_set(t, 0, v, 2000) == false);
	tallies_get(t, 0, &s);
	CHECK(s.updated_at_ms == 1000);

	v[0] = 2;
	v[1] = 1;
	CHECK(tallies_set(t, 0, v, 3000) == true);
	tallies_get(t, 0, &s);
	CHECK(s.total == 3 && s.votes[0] == 2 && s.votes[1] == 1);
	CHECK(s.updated_at_ms == 3000);
	CHECK(s.digest != zero_digest);
	CHECK(s.digest == tallies_digest(v, 2));

	/* Swapped counts are a different state. */
	v[0] = 1;
	v[1] = 2;
	CHECK(tallies_digest(v, 2) != s.digest);

	tallies_mark_refreshed(t);
	CHECK(tallies_refresh_age_s(t) >= 0 && tallies_refresh_age_s(t) < 1);
out:
	tallies_free(t);
	polls_free(p);
}

static void
test_event_id(void)
{
	struct tally_snapshot s = { .digest = 0xabcULL };
	char id[TALLY_EVENT_ID_LEN];
	int64_t v[2] = {2000, 1000};

	tallies_event_id(&s, id);
	CHECK_STR(id, "0000000000000abc");
	/* Fixed: the id must be the same on every replica and every build,
	 * so it is pinned: FNV-1a 64 over the counts' little-endian bytes,
	 * worked out apart from reporter/tallies.c. */
	s.digest = tallies_digest(v, 2);
	tallies_event_id(&s, id);
	CHECK_STR(id, "42159441d43d9701");
	CHECK(tallies_digest(v, 0) == 0xcbf29ce484222325ULL);
}

static void
test_json(void)
{
	struct polls *p = polls_load(NULL, "Ca\"ts", "Dogs", stderr);
	struct tally_snapshot s;
	json_t *j;
	char *text;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	memset(&s, 0, sizeof(s));
	s.n = 2;
	text = tallies_json(polls_at(p, 0), &s);
	CHECK(text != NULL);
	CHECK(text != NULL && strstr(text, "\"updated_at\":null") != NULL);
	free(text);

	s.votes[0] = 2000;
	s.votes[1] = 1000;
	s.total = 3000;
	s.updated_at_ms = 1714564800123LL;  /* 2024-05-01T12:00:00.123Z */
	text = tallies_json(polls_at(p, 0), &s);
	j = text != NULL ? json_loads(text, 0, NULL) : NULL;
	CHECK(j != NULL);
	if (j != NULL) {
		json_t *o0 = json_array_get(json_object_get(j, "options"), 0);

		CHECK_STR(json_string_value(json_object_get(j, "poll")),
		    "default");
		CHECK(json_integer_value(json_object_get(j, "total")) == 3000);
		CHECK_STR(json_string_value(json_object_get(j, "updated_at")),
		    "2024-05-01T12:00:00.123Z");
		CHECK_STR(json_string_value(json_object_get(o0, "id")), "a");
		CHECK_STR(json_string_value(json_object_get(o0, "label")),
		    "Ca\"ts");
		CHECK(json_integer_value(json_object_get(o0, "votes")) == 2000);
		CHECK(json_array_size(json_object_get(j, "options")) == 2);
	}
	/* One line: the SSE data field cannot hold a newline. */
	CHECK(text != NULL && strchr(text, '\n') == NULL);
	json_decref(j);
	free(text);
	polls_free(p);
}

int
main(void)
{
	test_set_get();
	test_event_id();
	test_json();
	return check_done("test_reporter_tallies");
}
