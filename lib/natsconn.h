/*
 * natsconn: the NATS connection and the VOTES stream, as every part of tally
 * opens them. Connections retry and reconnect forever: a service starts and
 * stays up while NATS is down, and callers see errors, not a dead process.
 */
#ifndef TALLY_NATSCONN_H
#define TALLY_NATSCONN_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

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
 * The NATS settings every program reads, kept as one block of its config
 * struct so that their names, defaults and help are written once.
 */
struct natsconn_settings {
	char *url, *user, *password, *token, *tls_ca;
	long stream_replicas;
};

/* The config-table rows of the block: T is the program's config struct,
 * m the member of type struct natsconn_settings. */
#define NATSCONN_CONFIG_ENTRIES(T, m) \
	{"NATS_URL", CONFIG_STR, offsetof(T, m.url), "nats://127.0.0.1:4222", \
	    0, 0, 0, "comma-separated NATS server URLs"}, \
	{"NATS_USER", CONFIG_STR, offsetof(T, m.user), NULL, 0, 0, 0, \
	    "NATS user name (with NATS_PASSWORD)"}, \
	{"NATS_PASSWORD", CONFIG_STR, offsetof(T, m.password), NULL, 0, 0, \
	    CONFIG_SECRET, "NATS password"}, \
	{"NATS_TOKEN", CONFIG_STR, offsetof(T, m.token), NULL, 0, 0, \
	    CONFIG_SECRET, "NATS token"}, \
	{"NATS_TLS_CA", CONFIG_STR, offsetof(T, m.tls_ca), NULL, 0, 0, 0, \
	    "CA file; setting it turns TLS on"}, \
	{"STREAM_REPLICAS", CONFIG_INT, offsetof(T, m.stream_replicas), "1", \
	    1, 5, 0, "replicas of stream VOTES when this program creates it"}

/* A connection config borrowing s's strings; name (borrowed) is shown by
 * the server as the connection's name. */
/* Copies url (NATS_URL: one server URL or several, comma-separated) into
 * out with every "user:password@" replaced by "***@" (and an authority
 * that may hide a password without its '@' by "***"), so that credentials
 * never reach a log line or an error message. */
void natsconn_redact(const char *url, char *out, size_t cap);

struct natsconn_config natsconn_config_of(const struct natsconn_settings *s,
    const char *name);

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
 * Creates stream VOTES (limits retention, file storage, subjects votes.>,
 * 2 min duplicate window, replicas as given), or, if it exists, makes true
 * only what tally relies on (natsconn_stream_ensure_config with update):
 * votes.> among its subjects, a duplicate window of at least 2 min (the
 * gateway's Nats-Msg-Id dedup) and acks on. Its limits, discard policy,
 * description, replicas and the rest are the operator's and never touched;
 * a start that finds nothing to put back sends no update at all.
 * Idempotent; safe from several processes at once. Returns 0, or -1 and
 * logs why.
 */
int natsconn_stream_ensure(jsCtx *js, long replicas)
    __attribute__((warn_unused_result));

/* The names JetStream's JSON gives a storage type and a retention policy
 * ("file", "memory"; "limits", "interest", "workqueue"), for logs and
 * tallyctl's output. */
const char *natsconn_storage_name(jsStorageType t);
const char *natsconn_retention_name(jsRetentionPolicy r);

/*
 * Sets *sc to a stream as tally keeps them: name, the one subject *subject
 * (borrowed: sc points at it), limits retention, file storage, replicas (at
 * least 1) and description; the caller adds its own limits.
 */
void natsconn_stream_config_init(jsStreamConfig *sc, const char *name,
    const char **subject, long replicas, const char *description);

/*
 * Creates the stream sc describes (sc->Name) if it is missing. If it
 * exists, update true starts from the stream's own config and puts back
 * only what tally owns: sc's subjects (any of the stream's subjects inside
 * a missing one, such as votes.* inside votes.>, make way for it), a
 * duplicate window at least sc->Duplicates (or the stream's max age, if
 * shorter) and sc->NoAck; it calls the server only when one of these
 * differs, and logs what it puts back. A retention or storage other than
 * sc's cannot be changed in place: that is logged as an error and the
 * stream is used as it is (not an error: retrying would not help). Update
 * false leaves an existing stream alone, warning if it differs in those
 * settings; any failure to look it up is then answered by trying to create
 * it. Idempotent; safe from several processes at once (a stream created in
 * between counts as created). sc and what it points to are borrowed.
 * Returns 0, or -1 and logs why.
 */
int natsconn_stream_ensure_config(jsCtx *js, jsStreamConfig *sc, bool update)
    __attribute__((warn_unused_result));

/* Writes the subject for poll ("votes.<poll>") into out (cap bytes). */
void natsconn_subject(const char *poll, char *out, size_t cap);

struct vote;

/*
 * Makes the message of one cast as stream VOTES holds it (docs/STREAM.md):
 * subject votes.<poll>, a tally.v1.Vote as payload, and the readable headers
 * Content-Type, Tally-Poll and Tally-Option. Nats-Msg-Id is the publisher's
 * to set. On success the caller owns *msg; on failure *msg is NULL.
 */
natsStatus natsconn_vote_msg(natsMsg **msg, const struct vote *v)
    __attribute__((warn_unused_result));

#endif
