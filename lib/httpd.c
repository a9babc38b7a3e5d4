/*
 * httpd.c - libmicrohttpd daemon and answers.
 */
#define _POSIX_C_SOURCE 200809L
#include "httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* Pages load nothing from elsewhere: every asset is served by the binary. */
#define HTTPD_CSP "default-src 'self'; img-src 'self' data:; " \
	"style-src 'self'; script-src 'self'; connect-src 'self'; " \
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

struct MHD_Response *
httpd_response_new(const void *body, size_t len, const char *content_type,
    unsigned flags)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(len, (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return NULL;
	if (content_type != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
		    content_type);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (flags & HTTPD_NO_STORE)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
		    "no-store");
	if (flags & HTTPD_PAGE) {
		MHD_add_response_header(r, "Content-Security-Policy",
		    HTTPD_CSP);
		MHD_add_response_header(r, "Referrer-Policy", "same-origin");
		MHD_add_response_header(r, "X-Frame-Options", "DENY");
	}
	return r;
}

struct MHD_Response *
httpd_response_json(json_t *j, unsigned flags)
{
	struct MHD_Response *r;
	char *text;

	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL)
		return NULL;
	r = httpd_response_new(text, strlen(text), "application/json", flags);
	free(text);
	return r;
}

static struct MHD_Response *
httpd_response_verror(const char *code, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static struct MHD_Response *
httpd_response_verror(const char *code, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return httpd_response_json(json_pack("{s:s, s:s}", "error", code,
	    "message", msg), HTTPD_NO_STORE);
}

struct MHD_Response *
httpd_response_error(const char *code, const char *fmt, ...)
{
	struct MHD_Response *r;
	va_list ap;

	va_start(ap, fmt);
	r = httpd_response_verror(code, fmt, ap);
	va_end(ap);
	return r;
}

enum MHD_Result
httpd_queue(struct MHD_Connection *c, unsigned status,
    struct MHD_Response *resp)
{
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
httpd_send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
	return httpd_queue(c, status, httpd_response_json(j, HTTPD_NO_STORE));
}

enum MHD_Result
httpd_send_error(struct MHD_Connection *c, unsigned status, const char *code,
    const char *fmt, ...)
{
	struct MHD_Response *r;
	va_list ap;

	va_start(ap, fmt);
	r = httpd_response_verror(code, fmt, ap);
	va_end(ap);
	return httpd_queue(c, status, r);
}

enum MHD_Result
httpd_send_text(struct MHD_Connection *c, unsigned status,
    const char *content_type, const char *text, unsigned flags)
{
	return httpd_queue(c, status, httpd_response_new(text, strlen(text),
	    content_type, flags));
}

bool
httpd_path_match(const char *path, const char *pattern, const char **caps,
    size_t *cap_lens, size_t max_caps)
{
	size_t ncap = 0;

	for (;;) {
		size_t plen, slen;

		/* Both sides are at a '/' or at their ends. */
		if (*pattern == '\0')
			return *path == '\0' || *path == '?';
		if (*path != '/' || *pattern != '/')
			return false;
		path++;
		pattern++;
		plen = strcspn(pattern, "/");
		slen = strcspn(path, "/?");
		if (plen == 1 && pattern[0] == '*') {
			if (slen == 0)
				return false;
			if (ncap < max_caps) {
				caps[ncap] = path;
				cap_lens[ncap] = slen;
			}
			ncap++;
		} else if (plen != slen || memcmp(pattern, path, slen) != 0) {
			return false;
		}
		pattern += plen;
		path += slen;
	}
}

void
httpd_body_init(struct httpd_body *b, size_t max_bytes)
{
	memset(b, 0, sizeof(*b));
	b->max_bytes = max_bytes;
}

int
httpd_body_add(struct httpd_body *b, const char *data, size_t len)
{
	char *p;

	if (b->too_large || len == 0)
		return 0;
	if (len > b->max_bytes - b->len) {
		b->too_large = true;
		return 0;
	}
	p = realloc(b->data, b->len + len + 1);
	if (p == NULL)
		return -1;
	memcpy(p + b->len, data, len);
	b->data = p;
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void
httpd_body_fini(struct httpd_body *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

void
httpd_client_addr(struct MHD_Connection *c, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr_in *sin;

	snprintf(out, cap, "-");
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	sin = (const struct sockaddr_in *)(const void *)ci->client_addr;
	if (sin->sin_family == AF_INET)
		inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)cap);
}
