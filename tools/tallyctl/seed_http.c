/*
 * seed_http.c - framing of HTTP/1.1 responses on a keep-alive connection.
 */
#define _GNU_SOURCE /* memmem */
#include "seed_http.h"

#include <string.h>
#include <strings.h>

#define SEED_HTTP_NAME_IS(p, n, lit) \
	((n) == sizeof(lit) - 1 && strncasecmp((p), (lit), (n)) == 0)

/* True if the comma-separated header value v[0..n) holds token tok. */
static bool
seed_http_has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i + tl <= n; i++) {
		if (strncasecmp(v + i, tok, tl) == 0 &&
		    (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
		    (i + tl == n || v[i + tl] == ',' || v[i + tl] == ' '))
			return true;
	}
	return false;
}

/* Parses a decimal (base 10) or hex (base 16) size; -1 if none or huge. */
static long long
seed_http_number(const char *p, size_t n, int base, size_t *used)
{
	long long v = 0;
	size_t i = 0;

	for (; i < n; i++) {
		int d;
		char c = p[i];
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		if (v > (1LL << 40))
			return -1;
		v = v * base + d;
	}
	if (i == 0)
		return -1;
	*used = i;
	return v;
}

/* Walks the chunks from body[0..len). Returns the bytes they take including
 * the last chunk and trailer, 0 if incomplete, -1 if malformed. */
static long long
seed_http_chunked(const char *body, size_t len)
{
	size_t off = 0;

	for (;;) {
		const char *eol;
		size_t used;
		long long size;

		eol = memmem(body + off, len - off, "\r\n", 2);
		if (eol == NULL)
			return 0;
		size = seed_http_number(body + off, (size_t)(eol - body) - off,
		    16, &used);
		if (size < 0)
			return -1;
		off = (size_t)(eol - body) + 2;
		if (size == 0) {
			/* Trailer fields, then an empty line. */
			for (;;) {
				eol = memmem(body + off, len - off, "\r\n", 2);
				if (eol == NULL)
					return 0;
				if (eol == body + off)
					return (long long)(off + 2);
				off = (size_t)(eol - body) + 2;
			}
		}
		if (len - off < (size_t)size + 2)
			return 0;
		off += (size_t)size;
		if (body[off] != '\r' || body[off + 1] != '\n')
			return -1;
		off += 2;
	}
}

enum seed_http_result
seed_http_parse(const char *buf, size_t len, struct seed_http_resp *out)
{
	const char *end, *p, *eol;
	long long clen = -1, blen;
	bool chunked = false;
	size_t head, used;

	memset(out, 0, sizeof(*out));
	if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0)
		return SEED_HTTP_BAD;
	end = memmem(buf, len, "\r\n\r\n", 4);
	if (end == NULL)
		return len > 65536 ? SEED_HTTP_BAD : SEED_HTTP_MORE;
	head = (size_t)(end - buf) + 4;
	/* Status line: HTTP/1.x SP 3DIGIT SP reason */
	if (head < 14 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return SEED_HTTP_BAD;
	if (seed_http_number(buf + 9, 3, 10, &used) < 0 || used != 3)
		return SEED_HTTP_BAD;
	out->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 +
	    (buf[11] - '0');
	if (out->status < 100 || out->status > 599)
		return SEED_HTTP_BAD;
	out->close = buf[7] == '0';
	/* Header fields, one per line, up to the empty line. */
	p = (const char *)memchr(buf, '\n', head) + 1;
	while (p < end + 2) {
		const char *colon, *v;
		size_t vn;

		eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		if (eol == NULL)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL)
			return SEED_HTTP_BAD;
		v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		vn = (size_t)(eol - v);
		while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
			vn--;
		if (SEED_HTTP_NAME_IS(p, (size_t)(colon - p), "content-length")) {
			clen = seed_http_number(v, vn, 10, &used);
			if (clen < 0 || used != vn)
				return SEED_HTTP_BAD;
		} else if (SEED_HTTP_NAME_IS(p, (size_t)(colon - p),
		    "transfer-encoding")) {
			chunked = seed_http_has_token(v, vn, "chunked");
		} else if (SEED_HTTP_NAME_IS(p, (size_t)(colon - p),
		    "connection")) {
			if (seed_http_has_token(v, vn, "close"))
				out->close = true;
			else if (seed_http_has_token(v, vn, "keep-alive"))
				out->close = false;
		}
		p = eol + 2;
	}
	if (out->status < 200 || out->status == 204 || out->status == 304)
		blen = 0;
	else if (chunked) {
		blen = seed_http_chunked(buf + head, len - head);
		if (blen < 0)
			return SEED_HTTP_BAD;
		if (blen == 0)
			return SEED_HTTP_MORE;
	} else if (clen >= 0) {
		if (len - head < (size_t)clen)
			return SEED_HTTP_MORE;
		blen = clen;
	} else
		return SEED_HTTP_BAD;
	out->length = head + (size_t)blen;
	out->unchanged = out->status >= 200 && out->status < 300 &&
	    blen > 0 && memmem(buf + head, (size_t)blen, "unchanged", 9) != NULL;
	return SEED_HTTP_DONE;
}
