/*
 * rusage - runs a command and writes what it cost, measured by the kernel.
 *
 * A short-lived child (the load generator, the backlog publisher, the
 * database ceiling) is gone before a /proc sampler can read it for the last
 * time; wait4() hands over its exact CPU time and peak RSS instead.
 *
 * usage: rusage OUT_JSON COMMAND [ARGS...]
 * OUT_JSON gets {"user_s", "sys_s", "maxrss_kb", "status"}; the exit status
 * is the command's own (128 + signal if it was killed).
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t rusage_child;

/* Passes SIGTERM/SIGINT on, so that stopping the wrapper stops the command. */
static void
rusage_forward(int sig)
{
	if (rusage_child > 0)
		kill(rusage_child, sig);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct rusage ru;
	int status, code;
	FILE *out;
	pid_t r;

	if (argc < 3) {
		fprintf(stderr, "usage: rusage OUT_JSON COMMAND [ARGS...]\n");
		return 2;
	}
	rusage_child = fork();
	if (rusage_child < 0) {
		perror("rusage: fork");
		return 1;
	}
	if (rusage_child == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "rusage: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = rusage_forward;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	do
		r = wait4(rusage_child, &status, 0, &ru);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		perror("rusage: wait4");
		return 1;
	}
	code = WIFEXITED(status) ? WEXITSTATUS(status) :
	    128 + WTERMSIG(status);
	if ((out = fopen(argv[1], "w")) == NULL) {
		perror(argv[1]);
		return code != 0 ? code : 1;
	}
	fprintf(out, "{\"user_s\":%.3f,\"sys_s\":%.3f,\"maxrss_kb\":%ld,"
	    "\"status\":%d}\n", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss, code);
	fclose(out);
	return code;
}
