/*
 * The subcommands of tallyctl. Each takes its own argv (argv[0] is the
 * subcommand's name), prints its own --help, and returns the process exit
 * status: 0 success, 1 the operation failed, 2 a usage error (sysexits'
 * EX_USAGE would be 64; 2 is what getopt-style tools use), 69 a service
 * (NATS, PostgreSQL, the gateway) is unavailable, 78 bad configuration.
 */
#ifndef TALLYCTL_CMD_H
#define TALLYCTL_CMD_H

#define CMD_EXIT_OK 0
#define CMD_EXIT_FAILED 1
#define CMD_EXIT_USAGE 2
#define CMD_EXIT_UNAVAILABLE 69
#define CMD_EXIT_CONFIG 78

int cmd_init(int argc, char **argv);   /* stream + schema, idempotent */
int cmd_decode(int argc, char **argv); /* protobuf on stdin -> JSON line */
int cmd_seed(int argc, char **argv);   /* load generator */
int cmd_replay(int argc, char **argv); /* rebuild PostgreSQL from the stream */
int cmd_stream(int argc, char **argv); /* stream and consumer state */

#endif
