/*
 * sse: Server-Sent Events fan-out of tally changes to many watchers.
 *
 * Each stream is an MHD response whose content reader writes what is
 * pending for its client and, when nothing is, suspends the connection
 * (MHD 0.9.75 allows MHD_suspend_connection from a content reader; returning
 * 0 without it would make the internal epoll thread spin). A fan-out thread
 * resumes the clients of a poll when its tally changes, at most once per
 * min_interval_ms per poll, and every client once per heartbeat_ms.
 *
 * A client never queues history: it holds at most the event being written
 * and the newest tally, because a tally is state, not a log. A slow client
 * therefore skips intermediate states and costs bounded memory.
 */
#ifndef TALLY_REPORTER_SSE_H
#define TALLY_REPORTER_SSE_H

#include <microhttpd.h>
#include <stddef.h>

#include "polls.h"
#include "reporter.h"
#include "tallies.h"

struct sse_hub;

/*
 * polls and tallies are borrowed and must outlive the hub; metrics too.
 * Returns NULL when out of memory.
 */
struct sse_hub *sse_hub_new(const struct polls *polls, struct tallies *t,
    long heartbeat_ms, long min_interval_ms, struct reporter_metrics *m)
    __attribute__((warn_unused_result));

/* Starts the fan-out thread. Returns 0, or -1 and logs why. */
int sse_hub_start(struct sse_hub *h) __attribute__((warn_unused_result));

/* Says poll poll_index's tally may have changed. Cheap; any thread. */
void sse_hub_notify(struct sse_hub *h, size_t poll_index);

/*
 * Answers c with an event stream for poll poll_index. last_event_id is the
 * client's Last-Event-ID header or NULL: if it names the current tally, the
 * first event is skipped; otherwise the current tally is sent first.
 */
enum MHD_Result sse_hub_serve(struct sse_hub *h, struct MHD_Connection *c,
    size_t poll_index, const char *last_event_id);

/*
 * Ends every stream cleanly (the client sees the end of the response and
 * reconnects, to another replica if this one is going away) and refuses
 * new ones. Waits up to timeout_ms for the streams to be gone; returns the
 * number still open.
 */
long sse_hub_close_all(struct sse_hub *h, long timeout_ms);

/* Stops the fan-out thread and frees. Every stream must be gone (after
 * sse_hub_close_all, or once the daemon is stopped). Accepts NULL. */
void sse_hub_free(struct sse_hub *h);

/* Streams open now. */
long sse_hub_clients(struct sse_hub *h);

#endif
