/*
 * polls.c - poll definitions from a JSON file or from OPTION_A/OPTION_B.
 */
#include "polls.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct polls {
	size_t n;
	struct poll *polls;
};

void
polls_free(struct polls *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->polls[i].options);
	free(p->polls);
	free(p);
}

static int
polls_copy_label(char *dst, const char *src, const char *origin,
    const char *what, FILE *err)
{
	size_t len = strlen(src);

	if (len == 0 || len > POLL_LABEL_MAX) {
		fprintf(err, "%s: %s must be 1 to %d bytes\n", origin, what,
		    POLL_LABEL_MAX);
		return -1;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

static int
polls_parse_poll(json_t *jp, struct poll *poll, const char *origin, FILE *err)
{
	json_t *opts, *jo;
	const char *id = NULL, *title = NULL;
	size_t i;

	if (json_unpack(jp, "{s:s, s?s, s:o}", "id", &id, "title", &title,
	    "options", &opts) != 0 || !json_is_array(opts)) {
		fprintf(err, "%s: each poll needs \"id\" and an \"options\" "
		    "array\n", origin);
		return -1;
	}
	if (vote_copy_id(poll->id, id, strlen(id)) != 0) {
		fprintf(err, "%s: poll id \"%s\" must match [a-z0-9_-]{1,64}\n",
		    origin, id);
		return -1;
	}
	if (polls_copy_label(poll->title, title != NULL ? title : id, origin,
	    "a poll title", err) != 0)
		return -1;
	poll->n_options = json_array_size(opts);
	if (poll->n_options < 2 || poll->n_options > POLL_OPTIONS_MAX) {
		fprintf(err, "%s: poll \"%s\" needs 2 to %d options\n", origin,
		    poll->id, POLL_OPTIONS_MAX);
		return -1;
	}
	poll->options = calloc(poll->n_options, sizeof(*poll->options));
	if (poll->options == NULL)
		return -1;
	json_array_foreach(opts, i, jo) {
		const char *oid = NULL, *label = NULL;
		struct poll_option *o = &poll->options[i];

		if (json_unpack(jo, "{s:s, s?s}", "id", &oid, "label",
		    &label) != 0 || vote_copy_id(o->id, oid, strlen(oid)) != 0) {
			fprintf(err, "%s: poll \"%s\": option %zu needs an "
			    "\"id\" matching [a-z0-9_-]{1,64}\n", origin,
			    poll->id, i);
			return -1;
		}
		if (polls_copy_label(o->label, label != NULL ? label : oid,
		    origin, "an option label", err) != 0)
			return -1;
		if (poll_option_index(poll, o->id, strlen(o->id)) != (int)i) {
			fprintf(err, "%s: poll \"%s\": option \"%s\" appears "
			    "twice\n", origin, poll->id, o->id);
			return -1;
		}
	}
	return 0;
}

struct polls *
polls_parse(const char *text, const char *origin, FILE *err)
{
	json_error_t jerr;
	json_t *root = NULL, *arr, *jp;
	struct polls *p = NULL;
	size_t i;

	root = json_loads(text, 0, &jerr);
	if (root == NULL) {
		fprintf(err, "%s: line %d: %s\n", origin, jerr.line, jerr.text);
		goto fail;
	}
	arr = json_object_get(root, "polls");
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > POLLS_MAX) {
		fprintf(err, "%s: needs a \"polls\" array of 1 to %d polls\n",
		    origin, POLLS_MAX);
		goto fail;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		goto fail;
	p->polls = calloc(json_array_size(arr), sizeof(*p->polls));
	if (p->polls == NULL)
		goto fail;
	json_array_foreach(arr, i, jp) {
		p->n = i + 1;
		if (polls_parse_poll(jp, &p->polls[i], origin, err) != 0)
			goto fail;
		if (polls_find(p, p->polls[i].id, strlen(p->polls[i].id)) !=
		    &p->polls[i]) {
			fprintf(err, "%s: poll \"%s\" appears twice\n", origin,
			    p->polls[i].id);
			goto fail;
		}
	}
	json_decref(root);
	return p;
fail:
	json_decref(root);
	polls_free(p);
	return NULL;
}

struct polls *
polls_load(const char *path, const char *label_a, const char *label_b,
    FILE *err)
{
	json_t *root;
	char *text;
	struct polls *p;

	if (path != NULL && path[0] != '\0') {
		json_error_t jerr;
		root = json_load_file(path, 0, &jerr);
		if (root == NULL) {
			fprintf(err, "POLLS_FILE %s: line %d: %s\n", path,
			    jerr.line, jerr.text);
			return NULL;
		}
	} else {
		char title[2 * POLL_LABEL_MAX + 8];
		snprintf(title, sizeof(title), "%s vs %s!", label_a, label_b);
		root = json_pack("{s:[{s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}]}",
		    "polls", "id", POLLS_DEFAULT_ID, "title", title, "options",
		    "id", "a", "label", label_a, "id", "b", "label", label_b);
		if (root == NULL) {
			fprintf(err, "OPTION_A/OPTION_B: labels must be UTF-8\n");
			return NULL;
		}
	}
	/* One parser for both sources: the default goes through the same
	 * checks (label length, UTF-8) as a file. */
	text = json_dumps(root, 0);
	json_decref(root);
	if (text == NULL)
		return NULL;
	p = polls_parse(text, path != NULL && path[0] != '\0' ? path :
	    "OPTION_A/OPTION_B", err);
	free(text);
	return p;
}

size_t
polls_count(const struct polls *p)
{
	return p->n;
}

const struct poll *
polls_at(const struct polls *p, size_t i)
{
	return i < p->n ? &p->polls[i] : NULL;
}

const struct poll *
polls_default(const struct polls *p)
{
	return &p->polls[0];
}

const struct poll *
polls_find(const struct polls *p, const char *id, size_t len)
{
	for (size_t i = 0; i < p->n; i++) {
		if (strlen(p->polls[i].id) == len &&
		    memcmp(p->polls[i].id, id, len) == 0)
			return &p->polls[i];
	}
	return NULL;
}

int
poll_option_index(const struct poll *poll, const char *id, size_t len)
{
	for (size_t i = 0; i < poll->n_options; i++) {
		if (strlen(poll->options[i].id) == len &&
		    memcmp(poll->options[i].id, id, len) == 0)
			return (int)i;
	}
	return -1;
}
