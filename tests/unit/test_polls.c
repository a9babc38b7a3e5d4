/* Unit tests for polls.c: the default poll and the file format. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "polls.h"

static const struct {
	const char *json;
	int ok;
	const char *err_has;
} cases[] = {
	{"{\"polls\":[{\"id\":\"p\",\"options\":[{\"id\":\"x\"},"
	    "{\"id\":\"y\"}]}]}", 1, NULL},
	{"{\"polls\":[]}", 0, "1 to"},
	{"{}", 0, "polls"},
	{"not json", 0, "line 1"},
	{"{\"polls\":[{\"id\":\"p\",\"options\":[{\"id\":\"x\"}]}]}", 0,
	    "2 to"},
	{"{\"polls\":[{\"id\":\"P\",\"options\":[{\"id\":\"x\"},"
	    "{\"id\":\"y\"}]}]}", 0, "[a-z0-9_-]"},
	{"{\"polls\":[{\"id\":\"p\",\"options\":[{\"id\":\"x\"},"
	    "{\"id\":\"x\"}]}]}", 0, "twice"},
	{"{\"polls\":[{\"id\":\"p\",\"options\":[{\"id\":\"x\"},"
	    "{\"id\":\"y\"}]},{\"id\":\"p\",\"options\":[{\"id\":\"x\"},"
	    "{\"id\":\"y\"}]}]}", 0, "twice"},
	{"{\"polls\":[{\"id\":\"p\",\"options\":[{\"id\":\"x\",\"label\":\"\"},"
	    "{\"id\":\"y\"}]}]}", 0, "label"},
	{"{\"polls\":[{\"id\":\"p\",\"options\":[{\"id\":1},{\"id\":\"y\"}]}]}",
	    0, "option 0"},
};

int
main(void)
{
	struct polls *p;
	const struct poll *poll;
	char err[512];

	p = polls_load(NULL, "Cats", "Dogs", stderr);
	CHECK(p != NULL);
	if (p != NULL) {
		poll = polls_default(p);
		CHECK(polls_count(p) == 1);
		CHECK_STR(poll->id, "default");
		CHECK_STR(poll->title, "Cats vs Dogs!");
		CHECK(poll->n_options == 2);
		CHECK_STR(poll->options[0].id, "a");
		CHECK_STR(poll->options[0].label, "Cats");
		CHECK_STR(poll->options[1].label, "Dogs");
		CHECK(poll_option_index(poll, "b", 1) == 1);
		CHECK(poll_option_index(poll, "c", 1) == -1);
		CHECK(polls_find(p, "default", 7) == poll);
		CHECK(polls_find(p, "defaul", 6) == NULL);
	}
	polls_free(p);

	/* Labels with quotes and HTML stay text; the JSON is built safely. */
	p = polls_load("", "Tabs \"<b>\"", "Spaces", stderr);
	CHECK(p != NULL);
	if (p != NULL)
		CHECK_STR(polls_default(p)->options[0].label, "Tabs \"<b>\"");
	polls_free(p);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *f = fmemopen(err, sizeof(err), "w");
		p = polls_parse(cases[i].json, "test.json", f);
		fclose(f);
		CHECK_MSG((p != NULL) == cases[i].ok, "case %zu: %s", i, err);
		if (cases[i].err_has != NULL)
			CHECK_MSG(strstr(err, cases[i].err_has) != NULL &&
			    strstr(err, "test.json") != NULL,
			    "case %zu: error \"%s\"", i, err);
		polls_free(p);
	}

	{
		FILE *f = fmemopen(err, sizeof(err), "w");
		p = polls_load("/nonexistent/polls.json", "a", "b", f);
		fclose(f);
		CHECK(p == NULL);
		CHECK(strstr(err, "POLLS_FILE /nonexistent/polls.json") != NULL);
	}
	return check_done("test_polls");
}
