/*
 * tallyctl decode - one protobuf tally.v1.Vote on stdin, one JSON line out.
 *
 * Made to be natscli's --translate command: natscli runs it once per
 * message with the payload on stdin and prints its combined stdout and
 * stderr; on a non-zero exit it prints the output quoted plus the error. So
 * a failure writes a JSON error object on stdout (for pipelines) and one
 * human line on stderr, and exits 1.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "codec.h"
#include "vote_json.h"

/* A vote is at most CODEC_VOTE_MAX_BYTES; anything far larger is not one,
 * and reading it all would only waste memory. */
#define DECODE_MAX_BYTES (64 * 1024)

static void
decode_usage(FILE *f)
{
	fprintf(f,
"usage: tallyctl decode [--help]\n"
"\n"
"Reads one protobuf tally.v1.Vote (the bare payload of a VOTES message) from\n"
"stdin and writes one JSON line to stdout:\n"
"  {\"poll\",\"voter\",\"option\",\"cast_id\",\"cast_unix_ms\",\"cast_at\",\"source\"}\n"
"cast_at is RFC 3339 UTC; source is the tally.v1.Source name.\n"
"\n"
"As a natscli translator:\n"
"  nats stream view VOTES --translate \"tallyctl decode\"\n"
"  nats sub --stream VOTES --all --translate \"tallyctl decode\"\n"
"\n"
"Exit status: 0 decoded a valid vote; 1 the input is not a tally.v1.Vote,\n"
"or decodes but breaks the id rules (then the JSON names the field in\n"
"\"invalid\"); 2 usage error.\n");
}

/* Reads all of fd into buf (cap bytes). Returns the length, or -1 on a read
 * error or when the input does not fit. */
static ssize_t
decode_read_all(int fd, uint8_t *buf, size_t cap)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return (ssize_t)len;
		len += (size_t)n;
		if (len == cap) {
			errno = EFBIG;
			return -1;
		}
	}
}

int
cmd_decode(int argc, char **argv)
{
	static uint8_t buf[DECODE_MAX_BYTES];
	const char *bad = NULL;
	struct vote v;
	ssize_t len;
	char *line;

	if (argc > 1) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			decode_usage(stdout);
			return CMD_EXIT_OK;
		}
		fprintf(stderr, "tallyctl decode: unexpected argument \"%s\"; it "
		    "reads the payload from stdin (see tallyctl decode --help)\n",
		    argv[1]);
		return CMD_EXIT_USAGE;
	}
	len = decode_read_all(STDIN_FILENO, buf, sizeof(buf));
	if (len < 0) {
		printf("{\"error\":\"unreadable\"}\n");
		fprintf(stderr, "tallyctl decode: cannot read stdin: %s (a vote "
		    "is at most %d bytes)\n", strerror(errno),
		    CODEC_VOTE_MAX_BYTES);
		return CMD_EXIT_FAILED;
	}
	if (len == 0) {
		printf("{\"error\":\"empty\",\"bytes\":0}\n");
		fprintf(stderr, "tallyctl decode: stdin is empty; pipe one "
		    "message payload in (e.g. nats ... --translate \"tallyctl "
		    "decode\")\n");
		return CMD_EXIT_FAILED;
	}
	switch (codec_vote_decode(buf, (size_t)len, &v, &bad)) {
	case CODEC_UNDECODABLE:
		printf("{\"error\":\"undecodable\",\"bytes\":%zd}\n", len);
		fprintf(stderr, "tallyctl decode: %zd bytes on stdin are not a "
		    "protobuf tally.v1.Vote (is this a VOTES message? see "
		    "docs/STREAM.md)\n", len);
		return CMD_EXIT_FAILED;
	case CODEC_INVALID:
		break;
	case CODEC_OK:
		bad = NULL;
		break;
	}
	line = vote_json_format(&v, bad);
	if (line == NULL) {
		fprintf(stderr, "tallyctl decode: out of memory\n");
		return CMD_EXIT_FAILED;
	}
	printf("%s\n", line);
	free(line);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "tallyctl decode: cannot write stdout: %s\n",
		    strerror(errno));
		return CMD_EXIT_FAILED;
	}
	if (bad != NULL) {
		fprintf(stderr, "tallyctl decode: the vote's %s breaks the id "
		    "rules (see proto/tally/v1/vote.proto)\n", bad);
		return CMD_EXIT_FAILED;
	}
	return CMD_EXIT_OK;
}
