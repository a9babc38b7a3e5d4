/*
 * buf.c - growable byte buffer.
 */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
buf_fini(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

/* Makes room for need more bytes plus the NUL. */
static int
buf_reserve(struct buf *b, size_t need)
{
	size_t cap;
	char *p;

	if (b->failed)
		return -1;
	if (b->len + need + 1 <= b->cap)
		return 0;
	cap = b->cap != 0 ? b->cap : 256;
	while (cap < b->len + need + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) != 0)
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) != 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_put_html(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		const char *esc = NULL;
		switch (*s) {
		case '&': esc = "&amp;"; break;
		case '<': esc = "&lt;"; break;
		case '>': esc = "&gt;"; break;
		case '"': esc = "&quot;"; break;
		case '\'': esc = "&#39;"; break;
		}
		if ((esc != NULL ? buf_puts(b, esc) : buf_append(b, s, 1)) != 0)
			return -1;
	}
	return 0;
}

char *
buf_steal(struct buf *b)
{
	char *p = b->data;

	buf_init(b);
	return p;
}
