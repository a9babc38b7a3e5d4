/*
 * natsconn: the NATS connection and the VOTES stream, as every part of tally
 * opens them. Connections retry and reconnect forever: a service starts and
 * stays up while NATS is down, and callers see errors, not a dead process.
 */
#ifndef TALLY_NATSCONN_H
#define TALLY_NATSCONN_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

#define NATSCONN_STREAM "VOTES"
#define NATSCONN_SUBJECTS "votes.>"
#define NATSCONN_SUBJECT_PREFIX "votes."
#define NATSCONN_DUPLICATE_WINDOW_MS (2 * 60 * 1000)

struct natsconn_config {
	const char *url;      /* comma-separated server URLs */
	const char *user;     /* user/password login, or empty */
	const char *password;
	const char *token;    /* token login, or empty */
	const char *tls_ca;   /* CA file; non-empty turns TLS on */
	const char *name;     /* connection name shown by the server */
	long stream_replicas; /* replicas of VOTES when this creates it */
};

/*
 * Connects (or keeps trying in the background: the connection is returned
 * even while the server is down) and makes a JetStream context. jso may be
 * NULL for defaults; it is copied. On success *nc and *js belong to the
 * caller (natsconn_close). Returns 0, or -1 and logs why (a bad URL, a TLS
 * file that cannot be read).
 */
int natsconn_open(const struct natsconn_config *cfg, jsOptions *jso,
    natsConnection **nc, jsCtx **js) __attribute__((warn_unused_result));

/* Drains nothing; flushes what is buffered (bounded by timeout_ms) and
 * closes. Accepts NULLs. */
void natsconn_close(natsConnection *nc, jsCtx *js, int64_t timeout_ms);

/* True while the connection is up (not reconnecting, not closed). */
bool natsconn_connected(natsConnection *nc);

/*
 * Creates stream VOTES, or updates it to our settings if it exists (limits
 * retention, file storage, subjects votes.>, 2 min duplicate window; an
 * existing stream's replicas are left as they are). Idempotent; safe from
 * several processes at once. Returns 0, or -1 and logs why.
 */
int natsconn_stream_ensure(jsCtx *js, long replicas)
    __attribute__((warn_unused_result));

/* Writes the subject for poll ("votes.<poll>") into out (cap bytes). */
void natsconn_subject(const char *poll, char *out, size_t cap);

#endif
