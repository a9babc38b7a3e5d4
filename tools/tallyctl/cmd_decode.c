/* tallyctl decode: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cmd.h"

int
cmd_decode(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tallyctl decode: not built yet\n");
	return CMD_EXIT_FAILED;
}
