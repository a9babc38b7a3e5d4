/*
 * watchdog.c - per-connection receive deadlines, checked by one thread.
 *
 * Each TCP connection has a struct watch in MHD's socket_context, linked
 * into one list. Its deadline is an atomic the MHD thread sets and clears
 * without the lock; the watchdog thread cuts with a compare-and-swap, so a
 * request that arrives just as its time runs out is either served or cut,
 * never cut after it was handed on (a suspended vote is never cut).
 */
#define _POSIX_C_SOURCE 200809L
#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"

/* deadline_us values besides a time: */
#define WATCH_ANSWERING 0          /* request in: no deadline until done */
#define WATCH_CUT UINT64_MAX       /* cut by the watchdog thread */

/* How often the thread looks, at most; a cut comes this late at worst. */
#define WATCHDOG_TICK_MS 250

struct watch {
	struct watchdog *wd;
	struct watch *prev, *next; /* under wd->lock */
	int fd;
	_Atomic uint64_t deadline_us;
};

struct watchdog {
	uint64_t timeout_us;
	metrics_counter *cut;
	pthread_mutex_t lock;      /* the list, and the sockets in it */
	pthread_cond_t wake;       /* CLOCK_MONOTONIC */
	bool stopping;             /* under lock */
	struct watch *head;
	pthread_t thread;
};

static uint64_t
watchdog_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Cuts every connection past its deadline. Called with the lock held:
 * CLOSED waits for it, so every fd in the list is still the connection's. */
static void
watchdog_sweep(struct watchdog *wd, uint64_t now)
{
	for (struct watch *w = wd->head; w != NULL; w = w->next) {
		uint64_t d = atomic_load(&w->deadline_us);

		if (d == WATCH_ANSWERING || d == WATCH_CUT || d > now)
			continue;
		if (!atomic_compare_exchange_strong(&w->deadline_us, &d,
		    WATCH_CUT))
			continue; /* the request came in meanwhile */
		/* Both ways: MHD reads end-of-stream and closes in its own
		 * thread; the client gets a FIN at once. */
		if (shutdown(w->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
			log_debug("watchdog: shutdown: fd %d: errno %d", w->fd,
			    errno);
		if (wd->cut != NULL)
			metrics_inc(wd->cut);
		log_debug("watchdog: fd %d cut: request not in after %llu ms",
		    w->fd, (unsigned long long)(wd->timeout_us / 1000));
	}
}

static void *
watchdog_main(void *arg)
{
	struct watchdog *wd = arg;
	struct timespec until;

	pthread_mutex_lock(&wd->lock);
	while (!wd->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += WATCHDOG_TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&wd->wake, &wd->lock, &until);
		if (!wd->stopping)
			watchdog_sweep(wd, watchdog_now_us());
	}
	pthread_mutex_unlock(&wd->lock);
	return NULL;
}

struct watchdog *
watchdog_new(long timeout_ms, metrics_counter *cut)
{
	struct watchdog *wd;
	pthread_condattr_t ca;
	bool cond_ok = false;

	wd = calloc(1, sizeof(*wd));
	if (wd == NULL)
		return NULL;
	wd->timeout_us = (uint64_t)timeout_ms * 1000u;
	wd->cut = cut;
	if (pthread_mutex_init(&wd->lock, NULL) != 0) {
		free(wd);
		return NULL;
	}
	if (pthread_condattr_init(&ca) == 0) {
		cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
		    pthread_cond_init(&wd->wake, &ca) == 0;
		pthread_condattr_destroy(&ca);
	}
	if (!cond_ok)
		goto fail;
	if (pthread_create(&wd->thread, NULL, watchdog_main, wd) != 0) {
		pthread_cond_destroy(&wd->wake);
		goto fail;
	}
	return wd;
fail:
	log_error("watchdog: cannot start its thread");
	pthread_mutex_destroy(&wd->lock);
	free(wd);
	return NULL;
}

void
watchdog_free(struct watchdog *wd)
{
	if (wd == NULL)
		return;
	pthread_mutex_lock(&wd->lock);
	wd->stopping = true;
	pthread_cond_signal(&wd->wake);
	pthread_mutex_unlock(&wd->lock);
	pthread_join(wd->thread, NULL);
	/* MHD has stopped: it sent CLOSED for every connection, so the
	 * list is empty unless a STARTED had no CLOSED (never, by MHD's
	 * contract); free what is left anyway. */
	while (wd->head != NULL) {
		struct watch *w = wd->head;
		wd->head = w->next;
		free(w);
	}
	pthread_cond_destroy(&wd->wake);
	pthread_mutex_destroy(&wd->lock);
	free(wd);
}

void
watchdog_notify(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct watchdog *wd = cls;
	struct watch *w;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci;

		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		/* Out of memory: unwatched, MHD's idle timeout still holds. */
		if (ci == NULL || (w = calloc(1, sizeof(*w))) == NULL)
			return;
		w->wd = wd;
		w->fd = ci->connect_fd;
		atomic_init(&w->deadline_us, watchdog_now_us() +
		    wd->timeout_us);
		pthread_mutex_lock(&wd->lock);
		w->next = wd->head;
		if (wd->head != NULL)
			wd->head->prev = w;
		wd->head = w;
		pthread_mutex_unlock(&wd->lock);
		*socket_context = w;
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_CLOSED || *socket_context == NULL)
		return;
	w = *socket_context;
	*socket_context = NULL;
	pthread_mutex_lock(&wd->lock);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		wd->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&wd->lock);
	free(w);
}

/* c's watch, or NULL if it has none (no watchdog, or out of memory). */
static struct watch *
watchdog_watch_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

bool
watchdog_request_in(struct MHD_Connection *c)
{
	struct watch *w = watchdog_watch_of(c);
	uint64_t d;

	if (w == NULL)
		return true;
	d = atomic_load(&w->deadline_us);
	while (d != WATCH_CUT && !atomic_compare_exchange_weak(
	    &w->deadline_us, &d, WATCH_ANSWERING))
		;
	return d != WATCH_CUT;
}

void
watchdog_request_done(struct MHD_Connection *c)
{
	struct watch *w = watchdog_watch_of(c);
	uint64_t answering = WATCH_ANSWERING;

	/* Only from "answering": a cut stays cut, and a request that ended
	 * before it was all in (MHD closing it) keeps its running clock. */
	if (w != NULL)
		(void)atomic_compare_exchange_strong(&w->deadline_us,
		    &answering, watchdog_now_us() + w->wd->timeout_us);
}
