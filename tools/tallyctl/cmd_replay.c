/* tallyctl replay: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cmd.h"

int
cmd_replay(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tallyctl replay: not built yet\n");
	return CMD_EXIT_FAILED;
}
