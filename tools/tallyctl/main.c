/*
 * tallyctl - the operator's tool: a table of subcommands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"

static const struct {
	const char *name;
	int (*run)(int, char **);
	const char *summary;
} cmds[] = {
	{"init", cmd_init, "create or update stream VOTES and the database "
	    "schema (idempotent)"},
	{"decode", cmd_decode, "read a protobuf tally.v1.Vote on stdin, write "
	    "one JSON line (a nats --translate command)"},
	{"seed", cmd_seed, "cast votes against a gateway (defaults: the "
	    "original app's seed, 3,000 votes)"},
	{"replay", cmd_replay, "rebuild the database from the stream, from the "
	    "start, a sequence or a time"},
	{"stream", cmd_stream, "show stream and consumer state on one screen"},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: tallyctl <command> [options]   (tallyctl <command> "
	    "--help for its options)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
}

int
main(int argc, char **argv)
{
	enum log_level level = LOG_LEVEL_WARN;
	const char *env_level = getenv("LOG_LEVEL");

	if (env_level != NULL && log_level_parse(env_level, &level) != 0)
		level = LOG_LEVEL_WARN;
	log_init("tallyctl", level);
	if (argc < 2) {
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CMD_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "tallyctl: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
	return CMD_EXIT_USAGE;
}
