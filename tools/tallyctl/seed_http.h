/*
 * seed_http: the load generator's HTTP/1.1 response reader. Stateless: it is
 * given everything read so far on a connection and says whether one whole
 * response is there. Answers are small, so rescanning a partial one on the
 * next read costs less than keeping parser state.
 */
#ifndef TALLYCTL_SEED_HTTP_H
#define TALLYCTL_SEED_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct seed_http_resp {
	int status;        /* 100..599 */
	bool close;        /* the server will close: "Connection: close" or HTTP/1.0 */
	bool unchanged;    /* the body says "unchanged" (a re-cast of the same option) */
	size_t length;     /* bytes of this response, head and body */
};

enum seed_http_result {
	SEED_HTTP_MORE,  /* not complete yet: read more */
	SEED_HTTP_DONE,  /* *out is filled; the response is out->length bytes */
	SEED_HTTP_BAD,   /* not an HTTP/1.x response we can frame */
};

/*
 * Looks for one complete response at the start of buf[0..len). Bodies are
 * framed by Content-Length or chunked transfer coding; a response with
 * neither (other than 1xx/204/304) is framed by the connection closing,
 * which a keep-alive load generator treats as SEED_HTTP_BAD.
 */
enum seed_http_result seed_http_parse(const char *buf, size_t len,
    struct seed_http_resp *out) __attribute__((warn_unused_result));

#endif
