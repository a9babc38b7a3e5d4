/* tallyctl init: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cmd.h"

int
cmd_init(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tallyctl init: not built yet\n");
	return CMD_EXIT_FAILED;
}
