/* tallyctl seed: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cmd.h"

int
cmd_seed(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tallyctl seed: not built yet\n");
	return CMD_EXIT_FAILED;
}
