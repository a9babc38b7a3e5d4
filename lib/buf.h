/*
 * buf: a growable byte buffer for building answers (HTML, JSON, metrics
 * text). Always NUL-terminated after a successful append.
 */
#ifndef TALLY_BUF_H
#define TALLY_BUF_H

#include <stddef.h>

struct buf {
	char *data;  /* owned; NULL until the first append */
	size_t len;  /* bytes used, not counting the NUL */
	size_t cap;  /* bytes allocated */
	int failed;  /* set once an allocation failed; appends then do nothing */
};

/* Zeroes b (no allocation). */
void buf_init(struct buf *b);
/* Frees b's data; b may be reused after buf_init. */
void buf_fini(struct buf *b);
/* Appends len bytes. Returns 0, or -1 (and sets failed) when out of memory. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s with & < > " ' escaped for HTML text and attribute values. */
int buf_put_html(struct buf *b, const char *s);
/* Hands the data to the caller (free() it) and empties b. May be NULL. */
char *buf_steal(struct buf *b);

#endif
