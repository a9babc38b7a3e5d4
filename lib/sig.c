/*
 * sig.c - signal handlers that only set a flag.
 */
#define _POSIX_C_SOURCE 200809L
#include "sig.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t sig_count;

static void
sig_handler(int signo)
{
	(void)signo;
	/* A second signal means "now": skip the drain. */
	if (sig_count > 0)
		_exit(1);
	sig_count = 1;
}

void
sig_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

bool
sig_stop_requested(void)
{
	return sig_count != 0;
}

void
sig_request_stop(void)
{
	sig_count = 1;
}

bool
sig_sleep_ms(long timeout_ms)
{
	struct timespec ts;

	/* Sleep in slices of at most 50 ms so that a stop is noticed soon. */
	while (timeout_ms > 0 && !sig_stop_requested()) {
		long slice = timeout_ms < 50 ? timeout_ms : 50;
		ts.tv_sec = 0;
		ts.tv_nsec = slice * 1000000L;
		nanosleep(&ts, NULL);
		timeout_ms -= slice;
	}
	return sig_stop_requested();
}

long
sig_wait_drained(_Atomic long *in_flight, long timeout_ms)
{
	long left;

	while ((left = atomic_load(in_flight)) > 0 && timeout_ms > 0) {
		struct timespec ts = {0, 10 * 1000000L};

		nanosleep(&ts, NULL);
		timeout_ms -= 10;
	}
	return left;
}
