/*
 * sig: the process's signal policy. SIGTERM and SIGINT ask for a drain (the
 * handler only sets a flag); a second one exits at once with status 1.
 * SIGPIPE is ignored, so a closed peer is an error return, never a death.
 */
#ifndef TALLY_SIG_H
#define TALLY_SIG_H

#include <stdatomic.h>
#include <stdbool.h>

/* Installs the handlers. Call once, early in main, before any thread starts. */
void sig_init(void);

/* True once SIGTERM or SIGINT has arrived. Async-signal-safe to read. */
bool sig_stop_requested(void);

/* Asks for a stop from inside the program (as a signal would). */
void sig_request_stop(void);

/* Sleeps up to timeout_ms, returning early when a stop is requested.
 * Returns true if a stop is requested. */
bool sig_sleep_ms(long timeout_ms);

/* The end of a drain: waits up to timeout_ms, stop requested or not, for
 * *in_flight (work other threads finish and count down) to fall to 0.
 * Returns what is left. */
long sig_wait_drained(_Atomic long *in_flight, long timeout_ms);

#endif
