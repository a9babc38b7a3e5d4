/* tallyctl stream: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cmd.h"

int
cmd_stream(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tallyctl stream: not built yet\n");
	return CMD_EXIT_FAILED;
}
