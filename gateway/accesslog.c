/*
 * accesslog.c - the access-log line, without printf.
 */
#define _POSIX_C_SOURCE 200809L
#include "accesslog.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "httpd.h"
#include "log.h"

/* A line under construction; puts past the end are dropped, so an
 * overlong path truncates the line instead of overflowing it. */
struct accesslog_line {
	char text[512];
	size_t len;
};

static void
accesslog_put(struct accesslog_line *l, const char *s, size_t n)
{
	if (n > sizeof(l->text) - 1 - l->len)
		n = sizeof(l->text) - 1 - l->len;
	memcpy(l->text + l->len, s, n);
	l->len += n;
}

static void
accesslog_puts(struct accesslog_line *l, const char *s)
{
	accesslog_put(l, s, strlen(s));
}

static void
accesslog_putu(struct accesslog_line *l, unsigned long long u, int min_digits)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0 || n < min_digits);
	while (n > 0)
		accesslog_put(l, &tmp[--n], 1);
}

/* The client's IPv4 address in dotted form (inet_ntop cost a fifth of
 * the line); anything else through httpd_client_addr. */
static void
accesslog_addr(struct accesslog_line *l, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	char other[64];

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL &&
	    ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin =
		    (const struct sockaddr_in *)(const void *)ci->client_addr;
		const unsigned char *b =
		    (const unsigned char *)&sin->sin_addr.s_addr;
		for (int i = 0; i < 4; i++) {
			if (i > 0)
				accesslog_put(l, ".", 1);
			accesslog_putu(l, b[i], 1);
		}
		return;
	}
	httpd_client_addr(c, other, sizeof(other));
	accesslog_puts(l, other);
}

void
accesslog_write(const struct request *r, struct MHD_Connection *c,
    uint64_t now_us)
{
	struct accesslog_line l;
	/* Milliseconds with two decimals, rounded to the nearest. */
	unsigned long long centi_ms = (now_us - r->start_us + 5) / 10;

	l.len = 0;
	accesslog_puts(&l, r->method);
	accesslog_put(&l, " ", 1);
	accesslog_puts(&l, r->path);
	accesslog_put(&l, " ", 1);
	accesslog_putu(&l, r->status, 1);
	accesslog_put(&l, " ", 1);
	accesslog_putu(&l, centi_ms / 100, 1);
	accesslog_put(&l, ".", 1);
	accesslog_putu(&l, centi_ms % 100, 2);
	accesslog_put(&l, "ms ", 3);
	accesslog_addr(&l, c);
	/* An Idempotency-Key is the client's own token: not logged. */
	if (r->vote.cast_id[0] != '\0' && !r->has_idem) {
		accesslog_put(&l, " cast=", 6);
		accesslog_puts(&l, r->vote.cast_id);
	}
	l.text[l.len] = '\0';
	log_info("%s", l.text);
}
