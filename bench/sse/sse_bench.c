/*
 * sse_bench: opens N Server-Sent Events streams on one tally-reporter and
 * measures, for each tally change it makes itself (UPDATE + NOTIFY in one
 * committed transaction, exactly what the processor does), how long after
 * the COMMIT returned each stream received the new tally. Prints the
 * delivery delay distribution per round and the reporter's memory.
 *
 *   sse_bench --port 8081 --clients 10000 --rounds 5 \
 *       --conninfo postgresql://... [--poll default] [--pid PID]
 *
 * One epoll loop, non-blocking sockets; the client's own cost is small next
 * to the server's, but both share the machine: read the numbers as an upper
 * bound of the reporter's delay.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

struct client {
	int fd;
	size_t len;           /* bytes in line */
	long long total;      /* last "total" seen in a tally event; -1: none */
	int64_t got_us;       /* when the round's target total arrived */
	char line[LINE_MAX_BYTES];
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
connect_one(int port, const char *poll)
{
	struct sockaddr_in sa;
	char req[256];
	int fd, one = 1, n;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	n = snprintf(req, sizeof(req), "GET /api/v1/polls/%s/events HTTP/1.1\r\n"
	    "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n", poll);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Feeds bytes; notes "total" of each data line. Returns -1 at EOF/error. */
static int
client_read(struct client *c, int64_t t)
{
	char buf[16384];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (c->len < LINE_MAX_BYTES - 1)
					c->line[c->len++] = buf[i];
				continue;
			}
			c->line[c->len] = '\0';
			if (strncmp(c->line, "data: ", 6) == 0) {
				char *p = strstr(c->line, "\"total\":");
				if (p != NULL) {
					c->total = strtoll(p + 8, NULL, 10);
					c->got_us = t;
				}
			}
			c->len = 0;
		}
	}
}

static long
proc_status_kb(int pid, const char *key)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

/* Runs the epoll loop until every live client has total >= want or the
 * deadline passes. Returns the number that reached it. */
static int
pump(int ep, struct client *cl, int n, long long want, int64_t deadline)
{
	struct epoll_event evs[512];
	int done = 0;

	for (;;) {
		int k;

		done = 0;
		for (int i = 0; i < n; i++)
			if (cl[i].fd >= 0 && cl[i].total >= want)
				done++;
		if (done == n || now_us() >= deadline)
			return done;
		k = epoll_wait(ep, evs, 512, 20);
		for (int j = 0; j < k; j++) {
			struct client *c = &cl[evs[j].data.u32];
			if (client_read(c, now_us()) != 0) {
				close(c->fd);
				c->fd = -1;
			}
		}
	}
}

int
main(int argc, char **argv)
{
	int port = 8081, n = 1000, rounds = 5, pid = 0, ep, live;
	const char *conninfo = "", *poll = "default";
	struct rlimit rl;
	struct client *cl;
	PGconn *pg;
	int64_t t0, *delays;
	long rss0 = -1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--clients") == 0) n = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--conninfo") == 0) conninfo = argv[i + 1];
		else if (strcmp(argv[i], "--poll") == 0) poll = argv[i + 1];
		else if (strcmp(argv[i], "--pid") == 0) pid = atoi(argv[i + 1]);
		else { fprintf(stderr, "unknown %s\n", argv[i]); return 2; }
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	pg = PQconnectdb(conninfo);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "postgres: %s", PQerrorMessage(pg));
		return 1;
	}
	cl = calloc((size_t)n, sizeof(*cl));
	delays = calloc((size_t)n, sizeof(*delays));
	if (cl == NULL || delays == NULL) {
		fprintf(stderr, "out of memory for %d streams\n", n);
		return 1;
	}
	ep = epoll_create1(0);
	if (pid > 0) {
		rss0 = proc_status_kb(pid, "VmRSS:");
		printf("reporter before: VmRSS %ld kB\n", rss0);
	}
	t0 = now_us();
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

		cl[i].total = -1;
		cl[i].fd = connect_one(port, poll);
		if (cl[i].fd < 0) {
			fprintf(stderr, "connect %d: %s\n", i, strerror(errno));
			return 1;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev);
		/* Let the server accept in batches (listen backlog). */
		if (i % 500 == 499)
			pump(ep, cl, i + 1, 0, now_us() + 20000);
	}
	live = pump(ep, cl, n, 0, now_us() + 60000000);
	printf("%d of %d streams open with their first tally after %.2f s\n",
	    live, n, (double)(now_us() - t0) / 1e6);
	if (pid > 0) {
		long rss = proc_status_kb(pid, "VmRSS:");

		printf("reporter with %d streams: VmRSS %ld kB (%.1f kB per "
		    "stream), VmHWM %ld kB\n", live, rss, live > 0 ?
		    (double)(rss - rss0) / live : 0.0,
		    proc_status_kb(pid, "VmHWM:"));
	}
	for (int r = 0; r < rounds; r++) {
		long long want;
		PGresult *res;
		int got, m = 0;
		char sql[512];

		snprintf(sql, sizeof(sql), "UPDATE tallies SET votes = votes + 1 "
		    "WHERE poll = '%s' AND option = 'a'; NOTIFY tally_changed, "
		    "'%s'; SELECT sum(votes) FROM tallies WHERE poll = '%s'",
		    poll, poll, poll);
		res = PQexec(pg, sql);
		t0 = now_us();  /* the COMMIT has returned */
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "update: %s", PQerrorMessage(pg));
			return 1;
		}
		want = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		got = pump(ep, cl, n, want, t0 + 5000000);
		for (int i = 0; i < n; i++)
			if (cl[i].fd >= 0 && cl[i].total >= want)
				delays[m++] = cl[i].got_us - t0;
		qsort(delays, (size_t)m, sizeof(*delays), cmp_i64);
		printf("round %d: total %lld reached %d/%d streams; delay after "
		    "COMMIT ms: p50 %.1f p99 %.1f max %.1f\n", r + 1, want, got,
		    n, m ? delays[m / 2] / 1e3 : -1.0,
		    m ? delays[(m * 99) / 100] / 1e3 : -1.0,
		    m ? delays[m - 1] / 1e3 : -1.0);
		/* Past the per-poll rate limit, so each round is one update. */
		usleep(300000);
	}
	if (pid > 0) {
		long rss = proc_status_kb(pid, "VmRSS:");
		printf("reporter after: VmRSS %ld kB, VmHWM %ld kB\n", rss,
		    proc_status_kb(pid, "VmHWM:"));
	}
	/* Freed so that a sanitizer build reports real leaks only. */
	for (int i = 0; i < n; i++)
		if (cl[i].fd >= 0)
			close(cl[i].fd);
	close(ep);
	free(cl);
	free(delays);
	PQfinish(pg);
	return 0;
}
