/*
 * config: one table per daemon, filled from the environment and from flags.
 *
 * Each entry names an environment variable (BIND_PORT); its flag is the same
 * name in lower case with dashes (--bind-port VALUE or --bind-port=VALUE).
 * Flags win over the environment, which wins over the default. Values are
 * validated as they are read; --help prints every entry with its default.
 * Entries marked CONFIG_SECRET never have their value printed anywhere.
 */
#ifndef TALLY_CONFIG_H
#define TALLY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit status for a bad setting (sysexits.h's EX_CONFIG). */
#define CONFIG_EXIT_INVALID 78

enum config_type {
	CONFIG_STR,  /* char *: heap copy, freed by config_fini */
	CONFIG_INT,  /* long, within [min, max] */
	CONFIG_BOOL, /* bool: 1/0, true/false, yes/no, on/off */
};

enum config_flag {
	CONFIG_SECRET = 1 << 0, /* never printed; --help shows "(secret)" */
};

struct config_entry {
	const char *name;          /* environment variable, e.g. "BIND_PORT" */
	enum config_type type;
	size_t offset;             /* offsetof() into the daemon's config */
	const char *default_value; /* as text; NULL means empty */
	long min, max;             /* CONFIG_INT only */
	unsigned flags;            /* enum config_flag */
	const char *help;          /* one line, with units */
};

enum config_result {
	CONFIG_OK,
	CONFIG_HELP,    /* --help was printed: exit 0 */
	CONFIG_INVALID, /* a message naming the variable was written to err */
};

/*
 * Fills cfg from defaults, then the environment, then argv. On
 * CONFIG_INVALID, a message naming the variable or flag is written to err
 * and cfg may be partly filled: call config_fini anyway. usage is one line
 * saying what the program is, printed first by --help (to out).
 */
enum config_result config_load(const struct config_entry *table, size_t n,
    void *cfg, int argc, char **argv, const char *usage, FILE *out, FILE *err)
    __attribute__((warn_unused_result));

/* Frees the strings config_load copied. Safe on a zeroed cfg. */
void config_fini(const struct config_entry *table, size_t n, void *cfg);

/* Sets one entry from text. Returns 0, or -1 and writes why to err. */
int config_set(const struct config_entry *e, void *cfg, const char *value,
    const char *origin, FILE *err) __attribute__((warn_unused_result));

#endif
