/*
 * log.c - one line per event, to stderr.
 *
 * Format: "2026-11-29T07:46:26.123Z gateway info: message". The time is UTC
 * with milliseconds so that lines from several services sort together.
 */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_service = "tally";
static enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void
log_init(const char *service, enum log_level level)
{
	log_service = service;
	log_threshold = level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_enabled(enum log_level level)
{
	return level >= log_threshold;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t n;
	int r;

	if (level < log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s: ",
	    ts.tv_nsec / 1000000, log_service, log_names[level]);
	if (r > 0)
		n += (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r;
	/* Truncated lines keep room for the newline. */
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* Strip any newline the caller left, then end the line. */
	while (n > 0 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';
	/* One write(2) per line keeps lines whole across threads. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
