/*
 * httpd: the libmicrohttpd setup and answer helpers the three services share.
 *
 * A server runs one event-loop thread per HTTP thread (httpd_server.c, which
 * says why not MHD's own) and may suspend connections, so a handler never
 * blocks a thread while it waits for Redis, NATS or PostgreSQL: it suspends,
 * and resumes when the answer is ready.
 */
#ifndef TALLY_HTTPD_H
#define TALLY_HTTPD_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct httpd_config {
	const char *addr;          /* IPv4 address to listen on */
	long port;
	long threads;              /* event-loop threads, 1..64 */
	long max_connections;      /* beyond this, connections are refused */
	long max_header_bytes;     /* per-connection memory for headers */
	long connection_timeout_s; /* idle or slow (slowloris) connections */
	long max_connections_per_ip; /* 0: no per-address limit */
	/* MHD_OPTION_NOTIFY_CONNECTION, or NULL; notify_cls is its closure */
	MHD_NotifyConnectionCallback notify_connection;
	void *notify_cls;
};

/*
 * Config-table rows of the HTTP settings (docs/CONTRACTS.md), so that their
 * names, types and bounds are written once; T is the program's config
 * struct. The listen rows fill T's members bind_addr and bind_port; port is
 * the program's default port, as text.
 */
#define HTTPD_CONFIG_LISTEN_ENTRIES(T, port) \
	{"BIND_ADDR", CONFIG_STR, offsetof(T, bind_addr), "127.0.0.1", 0, 0, \
	    0, "IPv4 address to listen on (0.0.0.0 in containers)"}, \
	{"BIND_PORT", CONFIG_INT, offsetof(T, bind_port), port, 1, 65535, 0, \
	    "TCP port to listen on"}

/* The tuning rows, one each, filling member m of T. Programs tune them
 * differently, so the default (def, as text) and the help are theirs. */
#define HTTPD_CONFIG_THREADS(T, m, def, help) \
	{"HTTP_THREADS", CONFIG_INT, offsetof(T, m), def, 1, 64, 0, help}
/* min: the fewest connections the program can run with. */
#define HTTPD_CONFIG_MAX_CONNECTIONS(T, m, def, min, help) \
	{"MAX_CONNECTIONS", CONFIG_INT, offsetof(T, m), def, min, 1000000, 0, \
	    help}
#define HTTPD_CONFIG_MAX_HEADER_BYTES(T, m, def, help) \
	{"MAX_HEADER_BYTES", CONFIG_INT, offsetof(T, m), def, 4096, 1048576, \
	    0, help}
#define HTTPD_CONFIG_CONNECTION_TIMEOUT_S(T, m, def, help) \
	{"CONNECTION_TIMEOUT_S", CONFIG_INT, offsetof(T, m), def, 1, 3600, 0, \
	    help}

struct httpd;

/*
 * Listens and starts cfg->threads event loops, each with a libmicrohttpd
 * daemon (suspend/resume enabled) on the one socket. handle is the MHD
 * access handler; completed (may be NULL) runs when a request ends, for
 * access logs and freeing per-request state. Handlers and notifications
 * of one connection always run on the same thread. Returns NULL and logs
 * why.
 */
struct httpd *httpd_start(const struct httpd_config *cfg,
    MHD_AccessHandlerCallback handle, MHD_RequestCompletedCallback completed,
    void *cls) __attribute__((warn_unused_result));

/* Stops accepting connections (new ones are refused); those open are
 * served on. */
void httpd_quiesce(struct httpd *h);
/* Stops the loops and closes every connection. Accepts NULL. */
void httpd_stop(struct httpd *h);

/* MHD_resume_connection, and a wake-up for the loop that runs c: the only
 * way to resume a connection of an httpd server, from any thread. */
void httpd_resume(struct MHD_Connection *c);

enum httpd_response_flag {
	HTTPD_NO_STORE = 1 << 0, /* Cache-Control: no-store (API answers) */
	HTTPD_PAGE = 1 << 1,     /* HTML: Content-Security-Policy and friends */
};

/* A response holding a copy of body. Returns NULL when out of memory. */
struct MHD_Response *httpd_response_new(const void *body, size_t len,
    const char *content_type, unsigned flags);
/* A response whose body is the serialised j; takes ownership of j. */
struct MHD_Response *httpd_response_json(json_t *j, unsigned flags);
/* {"error": code, "message": ...}, no-store. */
struct MHD_Response *httpd_response_error(const char *code, const char *fmt,
    ...) __attribute__((format(printf, 2, 3)));

/* Queues resp with status and drops our reference to it. A NULL resp (out
 * of memory) fails the request. Returns MHD's verdict. */
enum MHD_Result httpd_queue(struct MHD_Connection *c, unsigned status,
    struct MHD_Response *resp);

/* Shorthands for answers without extra headers. */
enum MHD_Result httpd_send_json(struct MHD_Connection *c, unsigned status,
    json_t *j);
enum MHD_Result httpd_send_error(struct MHD_Connection *c, unsigned status,
    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum MHD_Result httpd_send_text(struct MHD_Connection *c, unsigned status,
    const char *content_type, const char *text, unsigned flags);

/*
 * Matches path against pattern, segment by segment; "*" in the pattern
 * matches one non-empty segment, whose start and length are stored in
 * caps[i] / cap_lens[i] (up to max_caps). A query string ends the path.
 * Returns true on a match.
 */
bool httpd_path_match(const char *path, const char *pattern,
    const char **caps, size_t *cap_lens, size_t max_caps);

/* A request body collected across MHD's upload callbacks. */
struct httpd_body {
	char *data;      /* owned, NUL-terminated, NULL until data arrives */
	size_t len;
	size_t max_bytes;
	bool too_large;  /* more than max_bytes arrived; the rest is dropped */
};

void httpd_body_init(struct httpd_body *b, size_t max_bytes);
/* Appends; past max_bytes sets too_large and keeps nothing more.
 * Returns -1 only when out of memory. */
int httpd_body_add(struct httpd_body *b, const char *data, size_t len)
    __attribute__((warn_unused_result));
void httpd_body_fini(struct httpd_body *b);

/* The client's address as text ("127.0.0.1"); out holds 64 bytes. */
void httpd_client_addr(struct MHD_Connection *c, char *out, size_t cap);

#endif
