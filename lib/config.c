/*
 * config.c - the config table: defaults, environment, flags, --help.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "BIND_PORT" -> "bind-port"; out holds at least 64 bytes. */
static void
config_flag_name(const char *name, char *out, size_t cap)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < cap; i++)
		out[i] = name[i] == '_' ? '-' : (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

static int
config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int
config_set(const struct config_entry *e, void *cfg, const char *value,
    const char *origin, FILE *err)
{
	char *p = (char *)cfg + e->offset;
	char *end;
	long l;
	bool b;

	switch (e->type) {
	case CONFIG_STR: {
		char *copy = strdup(value);
		if (copy == NULL) {
			fprintf(err, "%s: out of memory\n", e->name);
			return -1;
		}
		free(*(char **)(void *)p);
		*(char **)(void *)p = copy;
		return 0;
	}
	case CONFIG_INT:
		errno = 0;
		l = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0') {
			fprintf(err, "%s (%s): \"%s\" is not a whole number\n",
			    e->name, origin, value);
			return -1;
		}
		if (l < e->min || l > e->max) {
			fprintf(err, "%s (%s): %ld is outside %ld..%ld\n",
			    e->name, origin, l, e->min, e->max);
			return -1;
		}
		*(long *)(void *)p = l;
		return 0;
	case CONFIG_BOOL:
		if (config_parse_bool(value, &b) != 0) {
			fprintf(err, "%s (%s): \"%s\" is not a boolean "
			    "(true/false, 1/0, yes/no, on/off)\n",
			    e->name, origin, value);
			return -1;
		}
		*(bool *)(void *)p = b;
		return 0;
	}
	return -1;
}

static void
config_help(const struct config_entry *table, size_t n, const char *usage,
    FILE *out)
{
	char flag[64];

	fprintf(out, "%s\n\nSettings (environment variable, flag, default):\n",
	    usage);
	for (size_t i = 0; i < n; i++) {
		const struct config_entry *e = &table[i];
		config_flag_name(e->name, flag, sizeof(flag));
		fprintf(out, "  %-22s --%-22s ", e->name, flag);
		if (e->flags & CONFIG_SECRET)
			fprintf(out, "(secret)");
		else if (e->default_value == NULL || e->default_value[0] == '\0')
			fprintf(out, "(empty)");
		else
			fprintf(out, "%s", e->default_value);
		fprintf(out, "\n      %s\n", e->help);
	}
	fprintf(out, "\nA setting is read from its flag, else its environment "
	    "variable, else the default.\nA bad value exits with status %d.\n",
	    CONFIG_EXIT_INVALID);
}

static const struct config_entry *
config_find_flag(const struct config_entry *table, size_t n, const char *arg,
    size_t len)
{
	char flag[64];

	for (size_t i = 0; i < n; i++) {
		config_flag_name(table[i].name, flag, sizeof(flag));
		if (strlen(flag) == len && memcmp(flag, arg, len) == 0)
			return &table[i];
	}
	return NULL;
}

enum config_result
config_load(const struct config_entry *table, size_t n, void *cfg, int argc,
    char **argv, const char *usage, FILE *out, FILE *err)
{
	const char *v;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			config_help(table, n, usage, out);
			return CONFIG_HELP;
		}
	}
	for (size_t i = 0; i < n; i++) {
		v = table[i].default_value != NULL ? table[i].default_value : "";
		if (config_set(&table[i], cfg, v, "default", err) != 0)
			return CONFIG_INVALID;
		v = getenv(table[i].name);
		if (v != NULL && config_set(&table[i], cfg, v, "environment",
		    err) != 0)
			return CONFIG_INVALID;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *eq;
		const struct config_entry *e;
		size_t len;

		if (strncmp(arg, "--", 2) != 0) {
			fprintf(err, "unexpected argument \"%s\" (see --help)\n",
			    arg);
			return CONFIG_INVALID;
		}
		arg += 2;
		eq = strchr(arg, '=');
		len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		e = config_find_flag(table, n, arg, len);
		if (e == NULL) {
			fprintf(err, "unknown flag \"%s\" (see --help)\n", argv[i]);
			return CONFIG_INVALID;
		}
		if (eq != NULL)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			fprintf(err, "%s: flag --%.*s needs a value\n", e->name,
			    (int)len, arg);
			return CONFIG_INVALID;
		}
		if (config_set(e, cfg, v, "flag", err) != 0)
			return CONFIG_INVALID;
	}
	return CONFIG_OK;
}

void
config_fini(const struct config_entry *table, size_t n, void *cfg)
{
	for (size_t i = 0; i < n; i++) {
		if (table[i].type == CONFIG_STR) {
			char **p = (char **)(void *)((char *)cfg + table[i].offset);
			free(*p);
			*p = NULL;
		}
	}
}
