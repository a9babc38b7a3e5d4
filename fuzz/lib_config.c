/*
 * lib_config.c - libFuzzer target: config values through config_set, and
 * whole command lines through config_load. The input is split at NUL bytes:
 * the first piece is a value for every entry of a table that has each type
 * (string, bounded integer, boolean, secret), the pieces together are argv.
 *
 * Invariants: an accepted integer lies within its bounds, an accepted
 * boolean is 0 or 1, a refused value leaves the previous one in place, and
 * config_fini frees everything (LeakSanitizer checks).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_cfg {
	char *name;
	long port;
	long wide;
	bool flag;
	char *secret;
};

static const struct config_entry fuzz_table[] = {
    {"FUZZ_NAME", CONFIG_STR, offsetof(struct fuzz_cfg, name), "x", 0, 0, 0,
     "a string"},
    {"FUZZ_PORT", CONFIG_INT, offsetof(struct fuzz_cfg, port), "8080", 1, 65535,
     0, "a port"},
    {"FUZZ_WIDE", CONFIG_INT, offsetof(struct fuzz_cfg, wide), "0", -1, 1000000,
     0, "a wide range"},
    {"FUZZ_FLAG", CONFIG_BOOL, offsetof(struct fuzz_cfg, flag), "false", 0, 0,
     0, "a boolean"},
    {"FUZZ_SECRET", CONFIG_STR, offsetof(struct fuzz_cfg, secret), "", 0, 0,
     CONFIG_SECRET, "a secret"},
};
#define FUZZ_N (sizeof(fuzz_table) / sizeof(fuzz_table[0]))
#define FUZZ_ARGS 16

static FILE *fuzz_null;

static void
fuzz_check(const struct fuzz_cfg *c)
{
	if (c->port < 1 || c->port > 65535 || c->wide < -1 ||
	    c->wide > 1000000 || c->name == NULL)
		abort();
	if (*(const unsigned char *)&c->flag > 1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_cfg c;
	char *text, *argv[FUZZ_ARGS + 2];
	int argc = 0;

	if (fuzz_null == NULL && (fuzz_null = fopen("/dev/null", "w")) == NULL)
		abort();
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	/* One value into every entry, on top of the defaults. */
	memset(&c, 0, sizeof(c));
	if (config_load(fuzz_table, FUZZ_N, &c, 0, NULL, "fuzz", fuzz_null,
	                fuzz_null) != CONFIG_OK)
		abort(); /* the defaults are valid */
	for (size_t i = 0; i < FUZZ_N; i++) {
		struct fuzz_cfg before = c;
		if (config_set(&fuzz_table[i], &c, text, "fuzz", fuzz_null) !=
		    0) {
			/* Refused: nothing changed. */
			if (memcmp(&before, &c, sizeof(c)) != 0)
				abort();
		}
		fuzz_check(&c);
	}
	config_fini(fuzz_table, FUZZ_N, &c);

	/* The pieces as a command line. */
	argv[argc++] = "fuzz";
	for (char *p = text; argc < FUZZ_ARGS + 1 && p <= text + size;
	     p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	memset(&c, 0, sizeof(c));
	switch (config_load(fuzz_table, FUZZ_N, &c, argc, argv, "fuzz",
	                    fuzz_null, fuzz_null)) {
	case CONFIG_OK:
		fuzz_check(&c);
		break;
	case CONFIG_HELP:
	case CONFIG_INVALID:
		break;
	}
	config_fini(fuzz_table, FUZZ_N, &c);
	free(text);
	return 0;
}
