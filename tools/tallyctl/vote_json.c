/*
 * vote_json.c - struct vote -> one JSON line (jansson does the escaping).
 */
#define _DEFAULT_SOURCE /* gmtime_r */
#include "vote_json.h"

#include <jansson.h>
#include <stdio.h>
#include <time.h>

int
vote_json_time(int64_t ms, char *out, size_t cap)
{
	/* Floor division, so that -1 ms is 23:59:59.999 of the day before
	 * (written so that no step overflows, INT64_MIN included). */
	int frac = (int)(ms % 1000);
	time_t sec = (time_t)(ms / 1000 - (frac < 0 ? 1 : 0));
	struct tm tm;
	size_t n;

	if (frac < 0)
		frac += 1000;
	if (gmtime_r(&sec, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0)
		return -1;
	n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0 || n + 6 > cap)
		return -1;
	snprintf(out + n, cap - n, ".%03dZ", frac);
	return 0;
}

static json_t *
vote_json_source(enum vote_source s)
{
	static const char *const names[] = {"SOURCE_UNSPECIFIED",
	    "SOURCE_FORM", "SOURCE_JSON", "SOURCE_PROTOBUF", "SOURCE_NATS"};

	if ((unsigned)s < sizeof(names) / sizeof(names[0]))
		return json_string(names[s]);
	/* A newer writer's value: show the number, as protobuf's JSON
	 * mapping does for unknown enum values. */
	return json_integer((json_int_t)s);
}

char *
vote_json_format(const struct vote *v, const char *invalid)
{
	char when[40];
	json_t *o;
	char *s;

	o = json_object();
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "poll", json_string(v->poll));
	json_object_set_new(o, "voter", json_string(v->voter));
	json_object_set_new(o, "option", json_string(v->option));
	json_object_set_new(o, "cast_id", json_string(v->cast_id));
	json_object_set_new(o, "cast_unix_ms", json_integer(v->cast_unix_ms));
	if (vote_json_time(v->cast_unix_ms, when, sizeof(when)) == 0)
		json_object_set_new(o, "cast_at", json_string(when));
	else
		json_object_set_new(o, "cast_at", json_null());
	json_object_set_new(o, "source", vote_json_source(v->source));
	if (invalid != NULL)
		json_object_set_new(o, "invalid", json_string(invalid));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_ENSURE_ASCII);
	json_decref(o);
	return s;
}
