/*
 * cmd.c - what the subcommands share.
 */
#include <stdio.h>

#include "cmd.h"
#include "config.h"

int
cmd_config_load(const struct config_entry *table, size_t n, void *cfg,
    int argc, char **argv, const char *usage, int *status)
{
	switch (config_load(table, n, cfg, argc, argv, usage, stdout,
	    stderr)) {
	case CONFIG_OK:
		return 0;
	case CONFIG_HELP:
		*status = CMD_EXIT_OK;
		return -1;
	default:
		*status = CMD_EXIT_CONFIG;
		return -1;
	}
}
