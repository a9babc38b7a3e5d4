/*
 * httpd_server.c on loopback: MAX_CONNECTIONS_PER_IP counted across two
 * event loops, for many client addresses (127.0.0.0/8 is all loopback on
 * Linux, so each client binds its own source address). Enough addresses to
 * make the count table grow, then half of them leave and come back, which
 * exercises removal from the open-addressing table.
 *
 * Then the spread of connections over the loops: a burst of connections
 * opened at once (a load balancer filling its pool) must reach both loops
 * (each has its own SO_REUSEPORT socket), and a second server cannot take
 * a port a first one holds.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "httpd.h"
#include "log.h"

#define ADDRS 80           /* client addresses: 127.0.1.1 .. */
#define PER_IP 2
#define BURST 64           /* connections opened at once */

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data,
    size_t *data_size, void **req)
{
	(void)cls; (void)url; (void)method; (void)version; (void)data;
	(void)data_size;
	if (*req == NULL) {
		*req = c; /* headers in; answer on the next call */
		return MHD_YES;
	}
	return httpd_send_text(c, 200, "text/plain", "ok", 0);
}

/* Answers with the serving thread, to see which loop has a connection. */
static enum MHD_Result
answer_thread(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data,
    size_t *data_size, void **req)
{
	char text[32];

	(void)cls; (void)url; (void)method; (void)version; (void)data;
	(void)data_size;
	if (*req == NULL) {
		*req = c;
		return MHD_YES;
	}
	snprintf(text, sizeof(text), "t%ju", (uintmax_t)pthread_self());
	return httpd_send_text(c, 200, "text/plain", text, 0);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A connection from 127.0.1.<host> to port, or -1. */
static int
client(int host, long port)
{
	struct sockaddr_in src, dst;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f000100u + (uint32_t)host);
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends a GET on fd and copies the body of a 200 into out; false if none
 * comes whole within 3 s. */
static bool
body_of(int fd, char *out, size_t cap)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
	char buf[512];
	size_t have = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0)
		return false;
	while (have < sizeof(buf) - 1 && poll(&p, 1, 3000) == 1) {
		ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		const char *end, *len;

		if (n <= 0)
			return false;
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) == NULL ||
		    (len = strstr(buf, "Content-Length: ")) == NULL)
			continue;
		if (strlen(end + 4) < strtoul(len + 16, NULL, 10))
			continue;
		snprintf(out, cap, "%s", end + 4);
		return strncmp(buf, "HTTP/1.1 200", 12) == 0;
	}
	return false;
}

/* Sends a GET on fd; true if an HTTP 200 with "ok" comes back within 3 s,
 * false on EOF or reset (the server refused the connection). */
static bool
served(int fd)
{
	char body[8];

	return body_of(fd, body, sizeof(body)) && strcmp(body, "ok") == 0;
}

/* A port that was free a moment ago. */
static long
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	long port = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Opens PER_IP + 1 connections from host into fds; true if exactly the
 * first PER_IP are served and the one past the limit is refused. */
static bool
fill(int host, long port, int *fds)
{
	bool ok = true;

	for (int k = 0; k <= PER_IP; k++) {
		fds[k] = client(host, port);
		if (fds[k] < 0 || served(fds[k]) != (k < PER_IP))
			ok = false;
	}
	close(fds[PER_IP]);
	fds[PER_IP] = -1;
	return ok;
}

int
main(void)
{
	struct httpd_config cfg = {
		.addr = "127.0.0.1", .threads = 2, .max_connections = 1000,
		.max_header_bytes = 8192, .connection_timeout_s = 30,
		.max_connections_per_ip = PER_IP,
	};
	static int fds[ADDRS][PER_IP + 1];
	struct httpd *h = NULL;
	int bad = 0;

	log_init("test", LOG_LEVEL_WARN);
	for (int tries = 0; h == NULL && tries < 5; tries++) {
		cfg.port = free_port();
		if (cfg.port > 0)
			h = httpd_start(&cfg, answer, NULL, NULL);
	}
	CHECK(h != NULL);
	if (h == NULL)
		return check_done("test_httpd_server");

	/* Every address gets PER_IP, not one more: the table grows from 64
	 * slots on the way. */
	for (int i = 0; i < ADDRS; i++)
		if (!fill(i + 1, cfg.port, fds[i]))
			bad++;
	CHECK_MSG(bad == 0, "%d of %d addresses not held to %d connections",
	    bad, ADDRS, PER_IP);

	/* Every other address leaves; once the server has seen the closes,
	 * each may come back to its full share, while the others stay full. */
	for (int i = 0; i < ADDRS; i += 2)
		for (int k = 0; k < PER_IP; k++)
			close(fds[i][k]);
	sleep_ms(300);
	bad = 0;
	for (int i = 0; i < ADDRS; i += 2) {
		bool ok = false;

		/* The loops see the closes a little later on a busy machine. */
		for (int tries = 0; !ok && tries < 20; tries++) {
			ok = fill(i + 1, cfg.port, fds[i]);
			if (!ok) {
				for (int k = 0; k < PER_IP; k++)
					if (fds[i][k] >= 0)
						close(fds[i][k]);
				sleep_ms(100);
			}
		}
		if (!ok)
			bad++;
	}
	CHECK_MSG(bad == 0, "%d addresses not served again after leaving",
	    bad);
	bad = 0;
	for (int i = 1; i < ADDRS; i += 2) {
		int fd = client(i + 1, cfg.port);

		if (fd < 0 || served(fd))
			bad++;
		if (fd >= 0)
			close(fd);
	}
	CHECK_MSG(bad == 0, "%d full addresses let one more in", bad);
	/* The kept connections are still served. */
	bad = 0;
	for (int i = 0; i < ADDRS; i++)
		for (int k = 0; k < PER_IP; k++)
			if (!served(fds[i][k]))
				bad++;
	CHECK_MSG(bad == 0, "%d kept connections no longer served", bad);

	for (int i = 0; i < ADDRS; i++)
		for (int k = 0; k < PER_IP; k++)
			close(fds[i][k]);

	/* The port is taken: a second server refuses to start on it. */
	{
		struct httpd *again = httpd_start(&cfg, answer, NULL, NULL);
		CHECK_MSG(again == NULL, "a second server shared port %ld",
		    cfg.port);
		httpd_stop(again);
	}
	httpd_stop(h);

	/* A burst reaches both loops. Each connection has its own source
	 * port, so the kernel's hash spreads them; 64 connections leave a
	 * loop fewer than 12 with a probability below 1e-6. */
	cfg.max_connections_per_ip = 0;
	h = NULL;
	for (int tries = 0; h == NULL && tries < 5; tries++) {
		cfg.port = free_port();
		if (cfg.port > 0)
			h = httpd_start(&cfg, answer_thread, NULL, NULL);
	}
	CHECK(h != NULL);
	if (h != NULL) {
		int burst[BURST];
		char first[32] = "", body[32];
		int same = 0, other = 0;

		for (int i = 0; i < BURST; i++)
			burst[i] = client(1, cfg.port);
		for (int i = 0; i < BURST; i++) {
			if (burst[i] < 0 || !body_of(burst[i], body,
			    sizeof(body)))
				continue;
			if (first[0] == '\0')
				snprintf(first, sizeof(first), "%s", body);
			if (strcmp(body, first) == 0)
				same++;
			else
				other++;
		}
		CHECK_MSG(same + other == BURST, "%d of %d connections served",
		    same + other, BURST);
		CHECK_MSG(same >= 12 && other >= 12, "one loop served %d "
		    "connections of a burst, the other %d", same, other);
		for (int i = 0; i < BURST; i++)
			if (burst[i] >= 0)
				close(burst[i]);
		httpd_stop(h);
	}
	return check_done("test_httpd_server");
}
