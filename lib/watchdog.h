/*
 * watchdog: a deadline on receiving each request, whole.
 *
 * libmicrohttpd 0.9.75's connection timeout counts from the last byte
 * received, so a client that sends a header byte every few hundred
 * milliseconds (slowloris), or a body byte at a time, holds its connection
 * for ever. The watchdog gives every request timeout_ms, counted from the
 * connection's start or the end of its previous answer, to arrive in full
 * (request line, headers and body); a connection still receiving past that
 * is cut. While a request is being answered (suspended for Redis or NATS,
 * or sending) it has no deadline; between requests the deadline is the
 * idle timeout too.
 *
 * Cutting is shutdown(2) on the socket from the watchdog's own thread, not
 * a call into libmicrohttpd (none of its functions may be called from an
 * outside thread on a running connection): MHD then sees an ordinary
 * end-of-stream and closes the connection in its own thread. The socket is
 * only touched under the lock that MHD_CONNECTION_NOTIFY_CLOSED takes
 * before MHD closes the descriptor, so it can never be a reused one.
 */
#ifndef TALLY_WATCHDOG_H
#define TALLY_WATCHDOG_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"

struct watchdog;

/* Starts the watchdog's thread. cut (borrowed, may be NULL) counts the
 * connections it cuts. NULL when out of memory or threads. */
struct watchdog *watchdog_new(long timeout_ms, metrics_counter *cut)
    __attribute__((warn_unused_result));

/* Stops the thread and frees everything. Call only after MHD has stopped
 * (its connections point into the watchdog). Accepts NULL. */
void watchdog_free(struct watchdog *w);

/* MHD_NotifyConnectionCallback (MHD_OPTION_NOTIFY_CONNECTION); cls is the
 * struct watchdog. Starts the first request's clock, or forgets the
 * connection. */
void watchdog_notify(void *cls, struct MHD_Connection *c,
    void **socket_context, enum MHD_ConnectionNotificationCode code);

/* The request on c has arrived in full: its clock stops. Returns false if
 * the watchdog cut the connection first (then answer nothing: return
 * MHD_NO). MHD thread of c only. */
bool watchdog_request_in(struct MHD_Connection *c)
    __attribute__((warn_unused_result));

/* The answer on c is done: the next request's clock starts. MHD thread of
 * c only. */
void watchdog_request_done(struct MHD_Connection *c);

#endif
