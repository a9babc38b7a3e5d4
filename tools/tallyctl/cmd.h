/*
 * The subcommands of tallyctl. Each takes its own argv (argv[0] is the
 * subcommand's name), prints its own --help, and returns the process exit
 * status: 0 success, 1 the operation failed, 2 a usage error (sysexits'
 * EX_USAGE would be 64; 2 is what getopt-style tools use), 69 a service
 * (NATS, PostgreSQL, the gateway) is unavailable, 78 bad configuration.
 */
#ifndef TALLYCTL_CMD_H
#define TALLYCTL_CMD_H

#include <stddef.h>

#define CMD_EXIT_OK 0
#define CMD_EXIT_FAILED 1
#define CMD_EXIT_USAGE 2
#define CMD_EXIT_UNAVAILABLE 69
#define CMD_EXIT_CONFIG 78

struct config_entry;

/*
 * Fills cfg from a subcommand's config table (config_load: --help goes to
 * stdout, a bad setting's message to stderr). Returns 0 when the command
 * goes on; -1 when it stops, with *status its exit status: CMD_EXIT_OK
 * after --help, CMD_EXIT_CONFIG after a bad setting. Either way the caller
 * calls config_fini.
 */
int cmd_config_load(const struct config_entry *table, size_t n, void *cfg,
    int argc, char **argv, const char *usage, int *status)
    __attribute__((warn_unused_result));

int cmd_init(int argc, char **argv);   /* stream + schema, idempotent */
int cmd_decode(int argc, char **argv); /* protobuf on stdin -> JSON line */
int cmd_seed(int argc, char **argv);   /* load generator */
int cmd_replay(int argc, char **argv); /* rebuild PostgreSQL from the stream */
int cmd_stream(int argc, char **argv); /* stream and consumer state */

#endif
