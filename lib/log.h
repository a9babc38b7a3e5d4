/*
 * log: one line per event on stderr, with a time stamp, the service name and
 * a level. Safe to call from any thread: each line is written with a single
 * write(2), so lines from different threads never interleave.
 */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Sets the service name (borrowed: must outlive logging) and the threshold. */
void log_init(const char *service, enum log_level level);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out)
    __attribute__((warn_unused_result));

/* Writes one line if level is at or above the threshold. A trailing newline
 * in fmt is not needed; lines longer than 2 KiB are truncated. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

/* True if a message at level would be written (to skip costly formatting). */
int log_enabled(enum log_level level);

#endif
