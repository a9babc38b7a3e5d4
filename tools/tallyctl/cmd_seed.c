/*
 * tallyctl seed - a load generator for the gateway.
 *
 * Its defaults are the original app's seed (3 x `ab -n 1000 -c 50`): 3,000
 * form POSTs, 2:1 for a and b, 50 at a time, each from a new voter. It is
 * also the benchmark's client, so it must cost little: each thread runs one
 * epoll loop over its share of non-blocking keep-alive connections, with one
 * request in flight per connection (no pipelining, like a browser or ab).
 *
 * Exactness: a voter never has two casts in flight at once, so the order in
 * which their answers arrive is the order of their stream sequences, and the
 * expected tally computed from the 2xx answers is what the pipeline must
 * show (as long as no request failed at the transport level).
 */
#define _GNU_SOURCE /* epoll_pwait2 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "codec.h"
#include "polls.h"
#include "seed_args.h"
#include "seed_hist.h"
#include "seed_http.h"
#include "sig.h"
#include "vote.h"

#define SEED_RING 1024           /* recent 2xx casts a duplicate may repeat */
#define SEED_RBUF_MIN 4096       /* read buffer per connection, bytes */
#define SEED_RBUF_MAX (1 << 20)  /* largest answer we accept, bytes */
#define SEED_REQ_MAX 1024        /* largest request we build, bytes */
#define SEED_STATUS_MAX 600
#define SEED_RETRY_NS (100 * 1000000ULL) /* back-off after a failed connect */
/* Without any connection for this long, a worker gives up (ns). */
#define SEED_GIVE_UP_NS(cfg) \
	((uint64_t)((cfg)->timeout_ms < 5000 ? (cfg)->timeout_ms : 5000) * \
	1000000ULL)

enum seed_api { SEED_API_FORM, SEED_API_JSON, SEED_API_PROTOBUF };

static const char *const seed_api_names[] = {"form", "json", "protobuf"};

struct seed_cfg {
	char url_text[300];
	struct seed_url url;
	char api_prefix[256];     /* URL path without its trailing '/' */
	enum seed_api api;
	uint64_t votes;           /* casts to send; UINT64_MAX with --duration */
	double duration_s;        /* 0: until votes are sent */
	long concurrency;         /* connections in all */
	long threads;
	double rate;              /* votes/s in all; 0 = closed loop */
	uint64_t voters;          /* pool size; 0 = a new voter per fresh cast */
	double change_share;
	double dup_share;
	struct seed_list polls;
	struct seed_list options;
	unsigned weights[SEED_MAX_LIST];
	long timeout_ms;          /* per request */
	bool json;
	bool quiet;
	bool no_cookie;           /* form casts by new voters carry no cookie */
	bool send_keys;           /* every cast carries an Idempotency-Key */
	char run_id[16];          /* makes voter ids and keys unique per run */
};

/* One cast: which poll, voter and option, and what kind. */
struct seed_cast {
	unsigned poll;
	unsigned option;
	uint64_t voter;
	uint64_t key;  /* Idempotency-Key number, if keys are sent */
	bool dup;      /* an exact repeat of an earlier 2xx cast */
	bool change;   /* a re-vote by a voter who has voted */
};

enum seed_conn_state { CONN_CLOSED, CONN_CONNECTING, CONN_IDLE, CONN_BUSY };

struct seed_conn {
	int fd;
	enum seed_conn_state st;
	bool want_out;     /* EPOLLOUT is registered */
	char req[SEED_REQ_MAX];
	size_t req_len, req_off;
	char *rbuf;
	size_t rlen, rcap;
	struct seed_cast cast;
	uint64_t t0_ns;    /* latency start: send time, or due time (open loop) */
	uint64_t sent_ns;  /* when the request went out: --timeout counts here */
	uint64_t retry_ns; /* CLOSED: do not reconnect before this */
};

struct seed_worker {
	pthread_t tid;
	unsigned id;
	const struct seed_cfg *cfg;
	int ep;
	struct seed_conn *conns;
	unsigned nconns;
	unsigned *idle;        /* stack of IDLE connection indexes */
	unsigned nidle;
	unsigned nbusy;
	unsigned nclosed;
	uint64_t quota;        /* casts this thread sends */
	uint64_t issued;
	uint64_t next_key;
	uint64_t rng;
	double interval_ns;    /* open loop: between due times */
	uint64_t start_ns;
	/* Voters owned by this thread: ids "<run>-<thread>-<index>". */
	uint64_t pool;         /* fixed pool size, 0 = grows */
	uint64_t created;      /* voters [0, created) may have voted */
	uint64_t cap;
	int8_t *state;         /* [poll * cap + voter]: current option, -1 none */
	uint8_t *busy;         /* [voter]: a cast is in flight */
	struct seed_cast ring[SEED_RING];
	unsigned ring_n, ring_head;
	long long wrr[SEED_MAX_LIST];
	unsigned poll_rr;
	/* Results. */
	struct seed_hist hist;
	uint64_t status[SEED_STATUS_MAX];
	uint64_t unchanged, errors, uncertain, dup_sent, change_sent;
	uint64_t connect_failures, answers;
	uint64_t unsent;       /* due (or owed by --votes) but never sent */
	int last_errno;
	_Atomic uint64_t p_sent, p_done, p_err; /* read by the progress line */
	_Atomic bool finished;
	bool failed;           /* could not start (no memory, no epoll) */
	bool gave_up;          /* stopped early: no connection to the gateway */
	uint64_t progress_ns;  /* last connect or answer */
};

static uint64_t
seed_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap, good enough to pick voters and shares. */
static uint64_t
seed_rand(struct seed_worker *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ULL;
}

static double
seed_rand01(struct seed_worker *w)
{
	return (double)(seed_rand(w) >> 11) / 9007199254740992.0;
}

/* Makes room for voter index v (unbounded pools grow by doubling). */
static int
seed_voters_reserve(struct seed_worker *w, uint64_t v)
{
	unsigned np = w->cfg->polls.n;
	uint64_t ncap;
	int8_t *st;
	uint8_t *busy;

	if (v < w->cap)
		return 0;
	ncap = w->cap != 0 ? w->cap : 4096;
	while (ncap <= v)
		ncap *= 2;
	st = malloc((size_t)(ncap * np));
	busy = realloc(w->busy, (size_t)ncap);
	if (st == NULL || busy == NULL) {
		free(st);
		if (busy != NULL)
			w->busy = busy;
		return -1;
	}
	memset(st, -1, (size_t)(ncap * np));
	for (unsigned p = 0; p < np && w->state != NULL; p++)
		memcpy(st + p * ncap, w->state + p * w->cap, (size_t)w->cap);
	memset(busy + w->cap, 0, (size_t)(ncap - w->cap));
	free(w->state);
	w->state = st;
	w->busy = busy;
	w->cap = ncap;
	return 0;
}

static int8_t *
seed_state(struct seed_worker *w, unsigned poll, uint64_t voter)
{
	return &w->state[poll * w->cap + voter];
}

/* Picks the next cast. Returns 0, or -1 when out of memory. */
static int
seed_cast_pick(struct seed_worker *w, struct seed_cast *c)
{
	const struct seed_cfg *cfg = w->cfg;
	double r = seed_rand01(w);

	memset(c, 0, sizeof(*c));
	c->poll = w->poll_rr++ % cfg->polls.n;
	if (r < cfg->dup_share && w->ring_n > 0) {
		*c = w->ring[seed_rand(w) % w->ring_n];
		c->dup = true;
		return 0;
	}
	if (r < cfg->dup_share + cfg->change_share && w->created > 0 &&
	    cfg->options.n > 1) {
		for (int tries = 0; tries < 8; tries++) {
			uint64_t v = seed_rand(w) % w->created;
			int8_t cur = *seed_state(w, c->poll, v);
			unsigned o;

			if (w->busy[v] || cur < 0)
				continue;
			/* Any other option, uniformly. */
			o = (unsigned)(seed_rand(w) % (cfg->options.n - 1));
			c->option = o >= (unsigned)cur ? o + 1 : o;
			c->voter = v;
			c->change = true;
			goto keyed;
		}
	}
	/* A fresh cast: a new voter, or any idle voter of a fixed pool. */
	if (w->pool == 0) {
		c->voter = w->created;
		if (seed_voters_reserve(w, c->voter) != 0)
			return -1;
		w->created++;
	} else {
		uint64_t v = seed_rand(w) % w->pool;
		/* The pool is larger than the connections, so one is idle. */
		while (w->busy[v])
			v = (v + 1) % w->pool;
		c->voter = v;
	}
	c->option = seed_wrr_next(cfg->weights, w->wrr, cfg->options.n);
keyed:
	if (cfg->send_keys)
		c->key = w->next_key++;
	return 0;
}

/* Writes the HTTP request for c into conn->req. Returns 0, or -1 if it does
 * not fit (ids are bounded, so this only guards a long URL path). */
static int
seed_request_build(struct seed_worker *w, struct seed_conn *conn,
    const struct seed_cast *c)
{
	const struct seed_cfg *cfg = w->cfg;
	char voter[64], key[64] = "", cookie[96] = "", keyhdr[96] = "";
	char body[CODEC_VOTE_MAX_BYTES + 128];
	const char *ctype;
	size_t blen = 0;
	int n;

	snprintf(voter, sizeof(voter), "%s-%u-%llu", cfg->run_id, w->id,
	    (unsigned long long)c->voter);
	if (cfg->send_keys) {
		snprintf(key, sizeof(key), "%s-%u-k%llu", cfg->run_id, w->id,
		    (unsigned long long)c->key);
		snprintf(keyhdr, sizeof(keyhdr), "Idempotency-Key: %s\r\n", key);
	}
	switch (cfg->api) {
	case SEED_API_FORM:
		ctype = "application/x-www-form-urlencoded";
		blen = (size_t)snprintf(body, sizeof(body), "vote=%s",
		    cfg->options.id[c->option]);
		if (!cfg->no_cookie)
			snprintf(cookie, sizeof(cookie),
			    "Cookie: voter_id=%s\r\n", voter);
		n = snprintf(conn->req, sizeof(conn->req),
		    "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
		    "Content-Length: %zu\r\n%s%s\r\n%s", cfg->url.path,
		    cfg->url.host, cfg->url.port, ctype, blen, cookie, keyhdr,
		    body);
		break;
	case SEED_API_JSON:
	case SEED_API_PROTOBUF:
		if (cfg->api == SEED_API_JSON) {
			ctype = "application/json";
			blen = (size_t)snprintf(body, sizeof(body),
			    "{\"voter\":\"%s\",\"option\":\"%s\"}", voter,
			    cfg->options.id[c->option]);
		} else {
			struct vote v;

			ctype = "application/x-protobuf";
			memset(&v, 0, sizeof(v));
			snprintf(v.poll, sizeof(v.poll), "%s",
			    cfg->polls.id[c->poll]);
			snprintf(v.voter, sizeof(v.voter), "%s", voter);
			snprintf(v.option, sizeof(v.option), "%s",
			    cfg->options.id[c->option]);
			snprintf(v.cast_id, sizeof(v.cast_id), "%s", key);
			v.source = VOTE_SOURCE_PROTOBUF;
			blen = codec_vote_encode(&v, (uint8_t *)body,
			    sizeof(body));
			if (blen == 0)
				return -1;
		}
		n = snprintf(conn->req, sizeof(conn->req),
		    "POST %s/api/v1/polls/%s/votes HTTP/1.1\r\nHost: %s:%d\r\n"
		    "Content-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
		    cfg->api_prefix, cfg->polls.id[c->poll], cfg->url.host,
		    cfg->url.port, ctype, blen, keyhdr);
		/* The protobuf body may hold NUL bytes: append it raw. */
		if (n > 0 && (size_t)n + blen < sizeof(conn->req)) {
			memcpy(conn->req + n, body, blen);
			n += (int)blen;
		} else
			n = -1;
		break;
	default:
		return -1;
	}
	if (n < 0 || (size_t)n >= sizeof(conn->req))
		return -1;
	conn->req_len = (size_t)n;
	conn->req_off = 0;
	return 0;
}

static void
seed_conn_watch(struct seed_worker *w, struct seed_conn *conn, bool out)
{
	struct epoll_event ev;

	if (conn->want_out == out)
		return;
	ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
	ev.data.u32 = (uint32_t)(conn - w->conns);
	(void)epoll_ctl(w->ep, EPOLL_CTL_MOD, conn->fd, &ev);
	conn->want_out = out;
}

static void
seed_conn_close(struct seed_worker *w, struct seed_conn *conn,
    uint64_t retry_ns)
{
	if (conn->st == CONN_IDLE) {
		/* Take it off the idle stack so it is never there twice. */
		unsigned me = (unsigned)(conn - w->conns);
		for (unsigned i = 0; i < w->nidle; i++) {
			if (w->idle[i] == me) {
				w->idle[i] = w->idle[--w->nidle];
				break;
			}
		}
	}
	if (conn->fd >= 0)
		close(conn->fd); /* also removes it from the epoll set */
	conn->fd = -1;
	conn->st = CONN_CLOSED;
	conn->rlen = 0;
	conn->retry_ns = retry_ns;
	w->nclosed++;
}

/* Starts a non-blocking connect. The connection is CONNECTING, or CLOSED
 * with a back-off if the socket could not even be made. */
static void
seed_conn_open(struct seed_worker *w, struct seed_conn *conn, uint64_t now)
{
	struct sockaddr_in sa;
	struct epoll_event ev;
	int one = 1;

	w->nclosed--;
	conn->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (conn->fd < 0)
		goto fail;
	(void)setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)w->cfg->url.port);
	(void)inet_pton(AF_INET, w->cfg->url.ip, &sa.sin_addr);
	if (connect(conn->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
	    errno != EINPROGRESS)
		goto fail;
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.u32 = (uint32_t)(conn - w->conns);
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, conn->fd, &ev) != 0)
		goto fail;
	conn->want_out = true;
	conn->st = CONN_CONNECTING;
	conn->rlen = 0;
	return;
fail:
	w->last_errno = errno;
	w->connect_failures++;
	seed_conn_close(w, conn, now + SEED_RETRY_NS);
}

/* The cast on conn got no answer: count it and free its voter. */
static void
seed_cast_fail(struct seed_worker *w, struct seed_conn *conn, int err)
{
	w->errors++;
	w->last_errno = err;
	if (!conn->cast.dup) {
		/* Published or not, we cannot know: the expected tally may be
		 * off by this cast. */
		w->uncertain++;
		w->busy[conn->cast.voter] = 0;
	}
	atomic_fetch_add_explicit(&w->p_err, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->p_done, 1, memory_order_relaxed);
	w->nbusy--;
}

static void
seed_cast_done(struct seed_worker *w, struct seed_conn *conn,
    const struct seed_http_resp *resp, uint64_t now)
{
	struct seed_cast *c = &conn->cast;

	w->progress_ns = now;
	w->status[resp->status]++;
	w->answers++;
	if (resp->status >= 200 && resp->status < 300) {
		/* The percentiles are the accept's: a quick 503 or 422 must
		 * not make them look better (status[] counts those). */
		seed_hist_record(&w->hist, (now - conn->t0_ns) / 1000);
		/* The form's answer is the same page either way: only the
		 * API's body says "unchanged". */
		if (resp->unchanged && w->cfg->api != SEED_API_FORM)
			w->unchanged++;
		if (!c->dup) {
			*seed_state(w, c->poll, c->voter) = (int8_t)c->option;
			/* Only 2xx casts that carried a key can be repeated. */
			if (w->cfg->send_keys) {
				w->ring[w->ring_head] = *c;
				w->ring_head = (w->ring_head + 1) % SEED_RING;
				if (w->ring_n < SEED_RING)
					w->ring_n++;
			}
		}
	}
	if (!c->dup)
		w->busy[c->voter] = 0;
	atomic_fetch_add_explicit(&w->p_done, 1, memory_order_relaxed);
	w->nbusy--;
}

/* Sends what is left of the request. Returns 0, or -1 on a write error. */
static int
seed_conn_flush(struct seed_worker *w, struct seed_conn *conn)
{
	while (conn->req_off < conn->req_len) {
		ssize_t n = send(conn->fd, conn->req + conn->req_off,
		    conn->req_len - conn->req_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				seed_conn_watch(w, conn, true);
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -1;
		}
		conn->req_off += (size_t)n;
	}
	seed_conn_watch(w, conn, false);
	return 0;
}

/* Starts cast c on the IDLE connection conn. Returns 0, or -1 when out of
 * memory or the request cannot be built. */
static int
seed_cast_start(struct seed_worker *w, struct seed_conn *conn,
    uint64_t t0_ns)
{
	if (seed_cast_pick(w, &conn->cast) != 0 ||
	    seed_request_build(w, conn, &conn->cast) != 0)
		return -1;
	if (!conn->cast.dup)
		w->busy[conn->cast.voter] = 1;
	if (conn->cast.dup)
		w->dup_sent++;
	if (conn->cast.change)
		w->change_sent++;
	conn->st = CONN_BUSY;
	conn->t0_ns = t0_ns;
	conn->sent_ns = seed_now_ns();
	w->nbusy++;
	w->issued++;
	atomic_fetch_add_explicit(&w->p_sent, 1, memory_order_relaxed);
	if (seed_conn_flush(w, conn) != 0) {
		seed_cast_fail(w, conn, errno);
		seed_conn_close(w, conn, 0);
	}
	return 0;
}

static void
seed_conn_idle(struct seed_worker *w, struct seed_conn *conn)
{
	conn->st = CONN_IDLE;
	w->idle[w->nidle++] = (unsigned)(conn - w->conns);
}

/* Reads from a BUSY (or unexpectedly talking IDLE) connection. */
static void
seed_conn_read(struct seed_worker *w, struct seed_conn *conn, uint64_t now)
{
	struct seed_http_resp resp;
	ssize_t n;

	if (conn->rlen == conn->rcap) {
		size_t ncap = conn->rcap * 2;
		char *nb;

		if (ncap > SEED_RBUF_MAX || (nb = realloc(conn->rbuf, ncap)) ==
		    NULL)
			goto broken;
		conn->rbuf = nb;
		conn->rcap = ncap;
	}
	n = recv(conn->fd, conn->rbuf + conn->rlen, conn->rcap - conn->rlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		errno = n == 0 ? ECONNRESET : errno;
		goto broken;
	}
	if (conn->st != CONN_BUSY) {
		/* Bytes nobody asked for: the stream is out of step. */
		errno = EPROTO;
		goto broken;
	}
	conn->rlen += (size_t)n;
	switch (seed_http_parse(conn->rbuf, conn->rlen, &resp)) {
	case SEED_HTTP_MORE:
		return;
	case SEED_HTTP_BAD:
		errno = EPROTO;
		goto broken;
	case SEED_HTTP_DONE:
		break;
	}
	seed_cast_done(w, conn, &resp, now);
	if (resp.length != conn->rlen || resp.close) {
		/* Extra bytes would be a response to nothing; a close is
		 * announced. Either way start over on a new connection. */
		seed_conn_close(w, conn, 0);
		return;
	}
	conn->rlen = 0;
	seed_conn_idle(w, conn);
	return;
broken:
	if (conn->st == CONN_BUSY)
		seed_cast_fail(w, conn, errno);
	seed_conn_close(w, conn, 0);
}

static void
seed_conn_event(struct seed_worker *w, struct seed_conn *conn, uint32_t ev,
    uint64_t now)
{
	if (conn->st == CONN_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == 0 && (ev & (EPOLLERR | EPOLLHUP)) != 0)
			err = ECONNREFUSED;
		if (err != 0) {
			w->last_errno = err;
			w->connect_failures++;
			seed_conn_close(w, conn, now + SEED_RETRY_NS);
			return;
		}
		seed_conn_watch(w, conn, false);
		w->progress_ns = now;
		seed_conn_idle(w, conn);
		return;
	}
	if ((ev & EPOLLOUT) != 0 && conn->st == CONN_BUSY &&
	    conn->req_off < conn->req_len) {
		if (seed_conn_flush(w, conn) != 0) {
			seed_cast_fail(w, conn, errno);
			seed_conn_close(w, conn, 0);
			return;
		}
	}
	if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
		seed_conn_read(w, conn, now);
}

/* Due time of cast number k in open loop, or now in closed loop. */
static uint64_t
seed_due_ns(const struct seed_worker *w, uint64_t now)
{
	if (w->cfg->rate <= 0)
		return now;
	return w->start_ns + (uint64_t)((double)w->issued * w->interval_ns);
}

/* Open loop: how many casts fall due before t_ns (cast k is due at
 * start + k * interval), at most the quota. */
static uint64_t
seed_due_before(const struct seed_worker *w, uint64_t t_ns)
{
	double x;
	uint64_t n;

	if (t_ns <= w->start_ns)
		return 0;
	x = (double)(t_ns - w->start_ns) / w->interval_ns;
	if (x >= (double)w->quota)
		return w->quota;
	n = (uint64_t)x;
	return (double)n < x ? n + 1 : n;
}

/*
 * The casts this worker owed but never sent, once it has stopped at stop_ns
 * (end_ns: the end of --duration, 0 if none). An open loop owes every cast
 * due before it stopped, or, if it gave up, every cast due before the end:
 * without this count a run that fell behind would hide them (coordinated
 * omission). A closed loop owes nothing when it stops on time; when it gave
 * up it owes the rest of --votes, and with --duration only the number is
 * unknown, so 0 here and gave_up tells.
 */
static uint64_t
seed_unsent(const struct seed_worker *w, uint64_t stop_ns, uint64_t end_ns)
{
	uint64_t owed = w->issued;

	if (w->cfg->rate > 0) {
		if (!w->gave_up)
			owed = seed_due_before(w, stop_ns);
		else if (end_ns != 0)
			owed = seed_due_before(w, end_ns);
		else
			owed = w->quota;
	} else if (w->gave_up && w->quota != UINT64_MAX)
		owed = w->quota;
	return owed > w->issued ? owed - w->issued : 0;
}

/* epoll_wait with a nanosecond timeout, so that an open loop keeps its
 * schedule below a millisecond; plain epoll_wait on kernels before 5.11. */
static int
seed_epoll_wait(int ep, struct epoll_event *evs, int max, uint64_t timeout_ns)
{
	static _Atomic bool no_pwait2;
	struct timespec ts;
	int n;

	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000ULL);
		ts.tv_nsec = (long)(timeout_ns % 1000000000ULL);
		n = epoll_pwait2(ep, evs, max, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		atomic_store(&no_pwait2, true);
	}
	return epoll_wait(ep, evs, max, (int)((timeout_ns + 999999) / 1000000));
}

static void *
seed_worker_run(void *arg)
{
	struct seed_worker *w = arg;
	const struct seed_cfg *cfg = w->cfg;
	struct epoll_event evs[256];
	uint64_t end_ns = 0, drain_until = 0, last_sweep = 0, stop_ns = 0;

	w->start_ns = seed_now_ns();
	w->progress_ns = w->start_ns;
	if (cfg->duration_s > 0)
		end_ns = w->start_ns + (uint64_t)(cfg->duration_s * 1e9);
	w->nclosed = w->nconns;
	for (unsigned i = 0; i < w->nconns; i++)
		seed_conn_open(w, &w->conns[i], w->start_ns);
	for (;;) {
		uint64_t now = seed_now_ns();
		bool stopping = sig_stop_requested() ||
		    (end_ns != 0 && now >= end_ns) || w->issued >= w->quota;
		uint64_t timeout_ns = 100000000ULL;
		int n;

		if (stopping) {
			/* Casts due before the stop and not sent are owed. */
			if (stop_ns == 0)
				stop_ns = end_ns != 0 && now >= end_ns ? end_ns :
				    now;
			if (w->nbusy == 0)
				break;
			if (drain_until == 0)
				drain_until = now + (uint64_t)cfg->timeout_ms *
				    1000000ULL;
		}
		/* Reconnect closed connections whose back-off is over. */
		if (!stopping && w->nclosed > 0) {
			for (unsigned i = 0; i < w->nconns; i++) {
				struct seed_conn *c = &w->conns[i];
				if (c->st == CONN_CLOSED && c->retry_ns <= now)
					seed_conn_open(w, c, now);
			}
		}
		/* Hand due casts to idle connections. */
		while (!stopping && w->nidle > 0 && w->issued < w->quota) {
			uint64_t due = seed_due_ns(w, now);
			struct seed_conn *c;

			if (due > now) {
				if (due - now < timeout_ns)
					timeout_ns = due - now;
				break;
			}
			c = &w->conns[w->idle[--w->nidle]];
			if (c->st != CONN_IDLE)
				continue; /* closed since it was idled */
			if (seed_cast_start(w, c, due) != 0) {
				w->failed = true;
				sig_request_stop();
				break;
			}
		}
		/* Requests without an answer in time fail (checked ~10/s).
		 * The time counts from the send, not from the due time: an
		 * open loop running late must not give up on requests the
		 * gateway has only just received (closing their connections
		 * would waste its work and collapse its rate). */
		if (now - last_sweep > 100000000ULL) {
			last_sweep = now;
			for (unsigned i = 0; i < w->nconns; i++) {
				struct seed_conn *c = &w->conns[i];
				/* sent_ns may be a little after now, read at
				 * the top of this round. */
				if (c->st == CONN_BUSY && now > c->sent_ns &&
				    now - c->sent_ns >
				    (uint64_t)cfg->timeout_ms * 1000000ULL) {
					seed_cast_fail(w, c, ETIMEDOUT);
					seed_conn_close(w, c, 0);
				}
			}
		}
		if (drain_until != 0 && now > drain_until)
			break;
		/* Nothing connects and nothing is in flight: the gateway is
		 * gone. Give up after a few seconds instead of spinning, and
		 * say so: the casts left are counted as unsent. */
		if (w->nidle == 0 && w->nbusy == 0 && now - w->progress_ns >
		    SEED_GIVE_UP_NS(cfg)) {
			w->gave_up = true;
			break;
		}
		if (w->nidle > 0 && !stopping && w->issued < w->quota &&
		    cfg->rate <= 0)
			timeout_ns = 0;
		n = seed_epoll_wait(w->ep, evs, 256, timeout_ns);
		if (n < 0 && errno != EINTR)
			break;
		now = seed_now_ns();
		for (int i = 0; i < n; i++) {
			struct seed_conn *c = &w->conns[evs[i].data.u32];
			if (c->st != CONN_CLOSED)
				seed_conn_event(w, c, evs[i].events, now);
		}
	}
	for (unsigned i = 0; i < w->nconns; i++) {
		if (w->conns[i].st == CONN_BUSY)
			seed_cast_fail(w, &w->conns[i], ETIMEDOUT);
		if (w->conns[i].fd >= 0)
			close(w->conns[i].fd);
		w->conns[i].fd = -1;
	}
	w->unsent = seed_unsent(w, stop_ns != 0 ? stop_ns : seed_now_ns(),
	    end_ns);
	atomic_store(&w->finished, true);
	return NULL;
}

/* Sets up worker i's share of connections, casts and voters. */
static int
seed_worker_init(struct seed_worker *w, unsigned i, const struct seed_cfg *cfg)
{
	unsigned nt = (unsigned)cfg->threads;

	memset(w, 0, sizeof(*w));
	w->id = i;
	w->cfg = cfg;
	w->ep = -1;
	w->nconns = (unsigned)(cfg->concurrency / nt) +
	    (i < (unsigned)(cfg->concurrency % nt) ? 1 : 0);
	if (cfg->votes == UINT64_MAX)
		w->quota = UINT64_MAX;
	else
		w->quota = cfg->votes / nt + (i < cfg->votes % nt ? 1 : 0);
	if (cfg->rate > 0)
		w->interval_ns = 1e9 * (double)nt / cfg->rate;
	if (cfg->voters > 0) {
		w->pool = cfg->voters / nt + (i < cfg->voters % nt ? 1 : 0);
		w->created = w->pool;
		if (seed_voters_reserve(w, w->pool - 1) != 0)
			return -1;
	}
	if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng))
		w->rng = seed_now_ns();
	w->rng |= 1;
	seed_hist_init(&w->hist);
	w->conns = calloc(w->nconns, sizeof(*w->conns));
	w->idle = calloc(w->nconns, sizeof(*w->idle));
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->conns == NULL || w->idle == NULL || w->ep < 0)
		return -1;
	for (unsigned c = 0; c < w->nconns; c++) {
		w->conns[c].fd = -1;
		w->conns[c].rcap = SEED_RBUF_MIN;
		w->conns[c].rbuf = malloc(SEED_RBUF_MIN);
		if (w->conns[c].rbuf == NULL)
			return -1;
	}
	return 0;
}

static void
seed_worker_fini(struct seed_worker *w)
{
	for (unsigned c = 0; w->conns != NULL && c < w->nconns; c++)
		free(w->conns[c].rbuf);
	free(w->conns);
	free(w->idle);
	free(w->state);
	free(w->busy);
	if (w->ep >= 0)
		close(w->ep);
}

static void
seed_usage(FILE *f)
{
	fprintf(f,
"usage: tallyctl seed [options]\n"
"\n"
"Casts votes against a running tally-gateway and reports what happened.\n"
"Without options it is the original app's seed: 3,000 form POSTs to\n"
"http://127.0.0.1:8080/, a and b 2:1, 50 at a time, each from a new voter.\n"
"\n"
"What to send:\n"
"  --url URL             gateway (http://IPv4-or-localhost[:port][/path]);\n"
"                        default http://127.0.0.1:8080/\n"
"  --api form|json|protobuf\n"
"                        form: POST <path> vote=<option>, cookie voter_id;\n"
"                        json: POST /api/v1/polls/<poll>/votes\n"
"                        {\"voter\",\"option\"}; protobuf: the same route with a\n"
"                        tally.v1.Vote body (default form)\n"
"  --poll ID, --polls A,B,...\n"
"                        poll(s) to vote in, round robin (default \"default\";\n"
"                        the form API votes in the gateway's default poll\n"
"                        only, so it takes no other)\n"
"  --options A,B,...     option ids (default a,b)\n"
"  --split W:W...        weights of the options for fresh casts (default 2:1\n"
"                        for a,b; else equal)\n"
"\n"
"How much, how fast:\n"
"  --votes N             casts to send (default 3000)\n"
"  --duration S          send for S seconds instead (with --votes: whichever\n"
"                        ends first)\n"
"  --concurrency C       connections, one request in flight each (default 50)\n"
"  --rate R              open loop: R casts/s in all, latency counted from\n"
"                        each cast's due time; 0 = closed loop, as fast as\n"
"                        answers come (default 0)\n"
"  --threads T           event-loop threads (default 1)\n"
"  --timeout S           seconds to wait for one answer (default 30)\n"
"\n"
"Who votes:\n"
"  --voters N            voter pool size; each fresh cast picks one at random\n"
"                        (may re-cast the same option: \"unchanged\"). 0 = a new\n"
"                        voter for every fresh cast (default 0)\n"
"  --change-share F      fraction of casts that re-vote an earlier voter for\n"
"                        another option (default 0)\n"
"  --duplicate-share F   fraction of casts that repeat an earlier accepted cast\n"
"                        exactly, same Idempotency-Key (default 0; with F > 0\n"
"                        every cast carries an Idempotency-Key)\n"
"\n"
"Output:\n"
"  --json                summary as one JSON object on stdout\n"
"  --quiet               no progress line on stderr\n"
"\n"
"The summary gives sent, unsent, accepted (2xx), unchanged, answers per\n"
"status, transport errors, elapsed time, votes/s, latency percentiles of\n"
"the 2xx answers, and the expected tally per poll and option computed from\n"
"the 2xx answers (exact when there were no transport errors: a voter never\n"
"has two casts in flight). A progress line goes to stderr every second.\n"
"  unsent     open loop: casts due before the end but never sent, because\n"
"             every connection was waiting (raise --concurrency); any loop:\n"
"             casts not sent because seed gave up (no connection to the\n"
"             gateway for min(--timeout, 5) s). With --json, null when a\n"
"             closed --duration run gave up (the count is not known).\n"
"  unchanged  re-casts of a voter's current option, as the json and\n"
"             protobuf answers say; n/a (null in --json) for the form API,\n"
"             whose answer is the same page either way.\n"
"\n"
"Exit status: 0 every request sent got an answer, of any status (an open\n"
"loop that fell behind still exits 0: see unsent); 1 some requests got no\n"
"answer, or seed gave up because the gateway stopped taking connections (a\n"
"restart or a drain); 2 usage error; 69 the gateway could not be reached at\n"
"all.\n");
}

/* Parses a non-negative number with strtod; -1 if bad. */
static double
seed_number(const char *s)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(d >= 0) || d > 1e15)
		return -1;
	return d;
}

/* Fills cfg from argv. Returns 0, 1 if --help was printed, or -1 (usage
 * error, already reported). */
static int
seed_parse(int argc, char **argv, struct seed_cfg *cfg)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},
		{"api", required_argument, NULL, 'a'},
		{"poll", required_argument, NULL, 'p'},
		{"polls", required_argument, NULL, 'p'},
		{"options", required_argument, NULL, 'o'},
		{"split", required_argument, NULL, 's'},
		{"votes", required_argument, NULL, 'n'},
		{"duration", required_argument, NULL, 'd'},
		{"concurrency", required_argument, NULL, 'c'},
		{"rate", required_argument, NULL, 'r'},
		{"threads", required_argument, NULL, 't'},
		{"timeout", required_argument, NULL, 'T'},
		{"voters", required_argument, NULL, 'V'},
		{"change-share", required_argument, NULL, 'C'},
		{"duplicate-share", required_argument, NULL, 'D'},
		{"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *url = "http://127.0.0.1:8080/", *split = NULL, *why = NULL;
	bool votes_set = false;
	unsigned char rnd[3];
	double d;
	int ch;

	memset(cfg, 0, sizeof(*cfg));
	cfg->votes = 3000;
	cfg->concurrency = 50;
	cfg->threads = 1;
	cfg->timeout_ms = 30000;
	if (seed_list_parse("default", &cfg->polls, &why) != 0 ||
	    seed_list_parse("a,b", &cfg->options, &why) != 0)
		return -1;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			url = optarg;
			break;
		case 'a':
			if (strcmp(optarg, "form") == 0)
				cfg->api = SEED_API_FORM;
			else if (strcmp(optarg, "json") == 0)
				cfg->api = SEED_API_JSON;
			else if (strcmp(optarg, "protobuf") == 0)
				cfg->api = SEED_API_PROTOBUF;
			else {
				fprintf(stderr, "tallyctl seed: --api must be "
				    "form, json or protobuf, not \"%s\"\n",
				    optarg);
				return -1;
			}
			break;
		case 'p':
			if (seed_list_parse(optarg, &cfg->polls, &why) != 0) {
				fprintf(stderr, "tallyctl seed: --polls \"%s\" "
				    "%s\n", optarg, why);
				return -1;
			}
			break;
		case 'o':
			if (seed_list_parse(optarg, &cfg->options, &why) != 0) {
				fprintf(stderr, "tallyctl seed: --options \"%s\" "
				    "%s\n", optarg, why);
				return -1;
			}
			break;
		case 's':
			split = optarg;
			break;
		case 'n':
		case 'd':
		case 'c':
		case 'r':
		case 't':
		case 'T':
		case 'V':
		case 'C':
		case 'D':
			d = seed_number(optarg);
			if (d < 0) {
				fprintf(stderr, "tallyctl seed: %s needs a "
				    "number >= 0, not \"%s\"\n", argv[optind - 1],
				    optarg);
				return -1;
			}
			if (ch == 'n') {
				cfg->votes = (uint64_t)d;
				votes_set = true;
			} else if (ch == 'd')
				cfg->duration_s = d;
			else if (ch == 'c')
				cfg->concurrency = (long)d;
			else if (ch == 'r')
				cfg->rate = d;
			else if (ch == 't')
				cfg->threads = (long)d;
			else if (ch == 'T')
				cfg->timeout_ms = (long)(d * 1000);
			else if (ch == 'V')
				cfg->voters = (uint64_t)d;
			else if (ch == 'C')
				cfg->change_share = d;
			else
				cfg->dup_share = d;
			break;
		case 'j':
			cfg->json = true;
			break;
		case 'q':
			cfg->quiet = true;
			break;
		case 'h':
			seed_usage(stdout);
			return 1;
		default:
			fprintf(stderr, "tallyctl seed: unknown or incomplete "
			    "option \"%s\" (see tallyctl seed --help)\n",
			    argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tallyctl seed: unexpected argument \"%s\" (see "
		    "tallyctl seed --help)\n", argv[optind]);
		return -1;
	}
	if (seed_url_parse(url, &cfg->url, &why) != 0) {
		fprintf(stderr, "tallyctl seed: --url \"%s\" %s\n", url, why);
		return -1;
	}
	snprintf(cfg->url_text, sizeof(cfg->url_text), "%s", url);
	snprintf(cfg->api_prefix, sizeof(cfg->api_prefix), "%s", cfg->url.path);
	if (cfg->api_prefix[strlen(cfg->api_prefix) - 1] == '/')
		cfg->api_prefix[strlen(cfg->api_prefix) - 1] = '\0';
	if (split != NULL) {
		if (seed_split_parse(split, cfg->options.n, cfg->weights,
		    &why) != 0) {
			fprintf(stderr, "tallyctl seed: --split \"%s\" %s\n",
			    split, why);
			return -1;
		}
	} else if (cfg->options.n == 2 && strcmp(cfg->options.id[0], "a") == 0
	    && strcmp(cfg->options.id[1], "b") == 0) {
		cfg->weights[0] = 2; /* the original seed: a twice, b once */
		cfg->weights[1] = 1;
	} else {
		for (unsigned i = 0; i < cfg->options.n; i++)
			cfg->weights[i] = 1;
	}
	if (cfg->duration_s > 0 && !votes_set)
		cfg->votes = UINT64_MAX;
	if (cfg->votes == 0) {
		fprintf(stderr, "tallyctl seed: --votes must be at least 1\n");
		return -1;
	}
	if (cfg->threads < 1 || cfg->threads > 64) {
		fprintf(stderr, "tallyctl seed: --threads must be 1..64\n");
		return -1;
	}
	if (cfg->concurrency < cfg->threads || cfg->concurrency > 100000) {
		fprintf(stderr, "tallyctl seed: --concurrency must be at least "
		    "--threads (%ld) and at most 100000\n", cfg->threads);
		return -1;
	}
	if (cfg->timeout_ms < 1) {
		fprintf(stderr, "tallyctl seed: --timeout must be above 0\n");
		return -1;
	}
	if (cfg->change_share + cfg->dup_share > 1) {
		fprintf(stderr, "tallyctl seed: --change-share plus "
		    "--duplicate-share must be at most 1\n");
		return -1;
	}
	/* One cast in flight per voter keeps the expected tally exact, so
	 * each thread's slice of the pool must outnumber its connections. */
	if (cfg->voters > 0 && cfg->voters / (uint64_t)cfg->threads <=
	    (uint64_t)(cfg->concurrency / cfg->threads + 1)) {
		fprintf(stderr, "tallyctl seed: --voters (%llu) must be larger "
		    "than --concurrency (%ld) plus --threads: a voter has at "
		    "most one cast in flight\n",
		    (unsigned long long)cfg->voters, cfg->concurrency);
		return -1;
	}
	/* The form route takes no poll: its votes land in the default one,
	 * so the expected tally may be printed under no other name. */
	if (cfg->api == SEED_API_FORM && (cfg->polls.n > 1 ||
	    strcmp(cfg->polls.id[0], POLLS_DEFAULT_ID) != 0)) {
		fprintf(stderr, "tallyctl seed: the form API votes in the "
		    "gateway's default poll only (reported as \"%s\"); drop "
		    "--poll, or use --api json to vote in other or several "
		    "polls\n", POLLS_DEFAULT_ID);
		return -1;
	}
	cfg->send_keys = cfg->dup_share > 0;
	/* Like ab in the original seed: new voters send no cookie and the
	 * gateway makes one up, unless we must find the voter again. */
	cfg->no_cookie = cfg->api == SEED_API_FORM && cfg->voters == 0 &&
	    cfg->change_share == 0;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 0x5e, sizeof(rnd));
	snprintf(cfg->run_id, sizeof(cfg->run_id), "s%02x%02x%02x", rnd[0],
	    rnd[1], rnd[2]);
	return 0;
}

/* Everything the threads found, added up. */
struct seed_total {
	struct seed_hist hist;
	uint64_t status[SEED_STATUS_MAX];
	uint64_t sent, answers, accepted, unchanged, errors, uncertain;
	uint64_t dup_sent, change_sent, connect_failures;
	uint64_t unsent;
	bool gave_up;
	uint64_t expected[SEED_MAX_LIST][SEED_MAX_LIST];
	int last_errno;
	double elapsed_s;
};

static void
seed_total_add(struct seed_total *t, const struct seed_worker *w,
    const struct seed_cfg *cfg)
{
	seed_hist_merge(&t->hist, &w->hist);
	for (int s = 0; s < SEED_STATUS_MAX; s++) {
		t->status[s] += w->status[s];
		if (s >= 200 && s < 300)
			t->accepted += w->status[s];
	}
	t->sent += w->issued;
	t->answers += w->answers;
	t->unchanged += w->unchanged;
	t->errors += w->errors;
	t->uncertain += w->uncertain;
	t->dup_sent += w->dup_sent;
	t->change_sent += w->change_sent;
	t->connect_failures += w->connect_failures;
	t->unsent += w->unsent;
	if (w->gave_up)
		t->gave_up = true;
	if (w->last_errno != 0)
		t->last_errno = w->last_errno;
	for (unsigned p = 0; p < cfg->polls.n; p++) {
		for (uint64_t v = 0; v < w->created; v++) {
			int8_t o = w->state[p * w->cap + v];
			if (o >= 0)
				t->expected[p][o]++;
		}
	}
}

static double
seed_ms(uint64_t us)
{
	return (double)us / 1000.0;
}

/* A closed --duration run that gave up: what it would still have sent in
 * the time left is not known (unsent counts only what --votes owed). */
static bool
seed_unsent_unknown(const struct seed_cfg *cfg, const struct seed_total *t)
{
	return t->gave_up && cfg->rate <= 0 && cfg->votes == UINT64_MAX;
}

/* Seconds of --duration not run. */
static double
seed_time_left_s(const struct seed_cfg *cfg, const struct seed_total *t)
{
	return cfg->duration_s > t->elapsed_s ? cfg->duration_s - t->elapsed_s :
	    0.0;
}

/* The "unsent" line: in an open loop always (what the offered rate lost),
 * in a closed loop only if seed gave up. */
static void
seed_report_unsent(const struct seed_cfg *cfg, const struct seed_total *t)
{
	double give_up_s = (double)SEED_GIVE_UP_NS(cfg) / 1e9;

	if (!t->gave_up && cfg->rate <= 0)
		return;
	if (!t->gave_up)
		printf("  unsent      %llu (due before the end, never sent: "
		    "every connection was waiting for an answer)\n",
		    (unsigned long long)t->unsent);
	else if (!seed_unsent_unknown(cfg, t))
		printf("  unsent      %llu (gave up: no connection to the "
		    "gateway for %.1f s)\n", (unsigned long long)t->unsent,
		    give_up_s);
	else
		printf("  unsent      ? (gave up: no connection to the gateway "
		    "for %.1f s, %.1f s of --duration left)\n", give_up_s,
		    seed_time_left_s(cfg, t));
}

static void
seed_report_text(const struct seed_cfg *cfg, const struct seed_total *t)
{
	static const double qs[] = {0.5, 0.9, 0.99, 0.999};
	static const char *const qn[] = {"p50", "p90", "p99", "p99.9"};

	printf("tallyctl seed: %s, api %s, %ld connections, %ld thread%s, %s\n",
	    cfg->url_text, seed_api_names[cfg->api], cfg->concurrency,
	    cfg->threads, cfg->threads == 1 ? "" : "s",
	    cfg->rate > 0 ? "open loop" : "closed loop");
	printf("  sent        %llu (changes %llu, duplicates %llu)\n",
	    (unsigned long long)t->sent, (unsigned long long)t->change_sent,
	    (unsigned long long)t->dup_sent);
	seed_report_unsent(cfg, t);
	if (cfg->api == SEED_API_FORM)
		printf("  accepted    %llu (2xx; of which unchanged n/a: the "
		    "form's answer does not say)\n",
		    (unsigned long long)t->accepted);
	else
		printf("  accepted    %llu (2xx; of which unchanged %llu)\n",
		    (unsigned long long)t->accepted,
		    (unsigned long long)t->unchanged);
	printf("  status     ");
	for (int s = 0; s < SEED_STATUS_MAX; s++) {
		if (t->status[s] != 0)
			printf(" %d: %llu", s, (unsigned long long)t->status[s]);
	}
	printf("%s\n", t->answers == 0 ? " (no answers)" : "");
	printf("  errors      %llu (no answer: refused, reset, timed out)\n",
	    (unsigned long long)t->errors);
	printf("  elapsed     %.3f s\n", t->elapsed_s);
	printf("  rate        %.0f answers/s\n",
	    t->elapsed_s > 0 ? (double)t->answers / t->elapsed_s : 0.0);
	printf("  latency ms ");
	for (int i = 0; i < 4; i++)
		printf(" %s %.3f", qn[i], seed_ms(seed_hist_quantile(&t->hist,
		    qs[i])));
	printf("  max %.3f  mean %.3f  (2xx only)\n", seed_ms(t->hist.max_us),
	    t->hist.total ? seed_ms(t->hist.sum_us / t->hist.total) : 0.0);
	for (unsigned p = 0; p < cfg->polls.n; p++) {
		printf("  expected    %s:", cfg->polls.id[p]);
		for (unsigned o = 0; o < cfg->options.n; o++)
			printf(" %s=%llu", cfg->options.id[o],
			    (unsigned long long)t->expected[p][o]);
		printf("\n");
	}
	if (t->uncertain > 0)
		printf("  note        %llu casts got no answer: the expected "
		    "tally may be off by that many\n",
		    (unsigned long long)t->uncertain);
}

static int
seed_report_json(const struct seed_cfg *cfg, const struct seed_total *t)
{
	json_t *o = json_object(), *st = json_object(), *lat = json_object();
	json_t *exp = json_object();
	char key[8];
	char *s;

	for (int i = 0; i < SEED_STATUS_MAX; i++) {
		if (t->status[i] == 0)
			continue;
		snprintf(key, sizeof(key), "%d", i);
		json_object_set_new(st, key, json_integer((json_int_t)t->status[i]));
	}
	json_object_set_new(lat, "p50", json_real(seed_ms(seed_hist_quantile(
	    &t->hist, 0.5))));
	json_object_set_new(lat, "p90", json_real(seed_ms(seed_hist_quantile(
	    &t->hist, 0.9))));
	json_object_set_new(lat, "p99", json_real(seed_ms(seed_hist_quantile(
	    &t->hist, 0.99))));
	json_object_set_new(lat, "p999", json_real(seed_ms(seed_hist_quantile(
	    &t->hist, 0.999))));
	json_object_set_new(lat, "max", json_real(seed_ms(t->hist.max_us)));
	json_object_set_new(lat, "mean", json_real(t->hist.total ?
	    seed_ms(t->hist.sum_us / t->hist.total) : 0.0));
	for (unsigned p = 0; p < cfg->polls.n; p++) {
		json_t *po = json_object();
		for (unsigned op = 0; op < cfg->options.n; op++)
			json_object_set_new(po, cfg->options.id[op],
			    json_integer((json_int_t)t->expected[p][op]));
		json_object_set_new(exp, cfg->polls.id[p], po);
	}
	json_object_set_new(o, "url", json_string(cfg->url_text));
	json_object_set_new(o, "api", json_string(seed_api_names[cfg->api]));
	json_object_set_new(o, "concurrency", json_integer(cfg->concurrency));
	json_object_set_new(o, "threads", json_integer(cfg->threads));
	json_object_set_new(o, "rate", json_real(cfg->rate));
	json_object_set_new(o, "sent", json_integer((json_int_t)t->sent));
	/* null: not known (a closed --duration run gave up). */
	json_object_set_new(o, "unsent", seed_unsent_unknown(cfg, t) ?
	    json_null() : json_integer((json_int_t)t->unsent));
	json_object_set_new(o, "changes", json_integer((json_int_t)t->change_sent));
	json_object_set_new(o, "duplicates", json_integer((json_int_t)t->dup_sent));
	json_object_set_new(o, "accepted", json_integer((json_int_t)t->accepted));
	/* null: the form's answer (the page) does not say. */
	json_object_set_new(o, "unchanged", cfg->api == SEED_API_FORM ?
	    json_null() : json_integer((json_int_t)t->unchanged));
	json_object_set_new(o, "status", st);
	json_object_set_new(o, "errors", json_integer((json_int_t)t->errors));
	json_object_set_new(o, "connect_failures",
	    json_integer((json_int_t)t->connect_failures));
	json_object_set_new(o, "gave_up", json_boolean(t->gave_up));
	json_object_set_new(o, "elapsed_s", json_real(t->elapsed_s));
	json_object_set_new(o, "votes_per_s", json_real(t->elapsed_s > 0 ?
	    (double)t->answers / t->elapsed_s : 0.0));
	json_object_set_new(o, "latency_ms", lat);
	json_object_set_new(o, "expected", exp);
	json_object_set_new(o, "expected_exact", json_boolean(t->uncertain == 0));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(9));
	json_decref(o);
	if (s == NULL)
		return -1;
	printf("%s\n", s);
	free(s);
	return 0;
}

/* A run cut short by a gateway that took no more connections (a restart or
 * a drain) is a failure, even if every request sent got its answer. */
static void
seed_report_gave_up(const struct seed_cfg *cfg, const struct seed_total *t)
{
	fprintf(stderr, "tallyctl seed: gave up after %.1f s: the gateway at "
	    "%s took no connection for %.1f s (last error: %s); ",
	    t->elapsed_s, cfg->url_text, (double)SEED_GIVE_UP_NS(cfg) / 1e9,
	    strerror(t->last_errno != 0 ? t->last_errno : ECONNREFUSED));
	if (seed_unsent_unknown(cfg, t))
		fprintf(stderr, "the last %.1f s of --duration were not run\n",
		    seed_time_left_s(cfg, t));
	else
		fprintf(stderr, "%llu casts not sent\n",
		    (unsigned long long)t->unsent);
}

int
cmd_seed(int argc, char **argv)
{
	struct seed_cfg cfg;
	struct seed_worker *ws = NULL;
	struct seed_total *t = NULL;
	uint64_t start, last_print, now;
	long started = 0;
	int r, rc = CMD_EXIT_FAILED;

	r = seed_parse(argc, argv, &cfg);
	if (r != 0)
		return r > 0 ? CMD_EXIT_OK : CMD_EXIT_USAGE;
	sig_init();
	ws = calloc((size_t)cfg.threads, sizeof(*ws));
	t = calloc(1, sizeof(*t));
	if (ws == NULL || t == NULL)
		goto nomem;
	for (long i = 0; i < cfg.threads; i++) {
		if (seed_worker_init(&ws[i], (unsigned)i, &cfg) != 0)
			goto nomem;
	}
	start = last_print = seed_now_ns();
	for (; started < cfg.threads; started++) {
		if (pthread_create(&ws[started].tid, NULL, seed_worker_run,
		    &ws[started]) != 0) {
			fprintf(stderr, "tallyctl seed: cannot start a thread\n");
			sig_request_stop();
			break;
		}
	}
	/* Progress once a second, on long runs only. */
	for (;;) {
		bool all = true;
		uint64_t sent = 0, done = 0, err = 0;

		for (long i = 0; i < started; i++)
			all = all && atomic_load(&ws[i].finished);
		if (all)
			break;
		(void)sig_sleep_ms(50);
		now = seed_now_ns();
		if (cfg.quiet || now - last_print < 1000000000ULL)
			continue;
		for (long i = 0; i < started; i++) {
			sent += atomic_load_explicit(&ws[i].p_sent,
			    memory_order_relaxed);
			done += atomic_load_explicit(&ws[i].p_done,
			    memory_order_relaxed);
			err += atomic_load_explicit(&ws[i].p_err,
			    memory_order_relaxed);
		}
		fprintf(stderr, "seed: %6.1f s  sent %llu  answered %llu  "
		    "errors %llu  %.0f/s%s\n", (double)(now - start) / 1e9,
		    (unsigned long long)sent, (unsigned long long)(done - err),
		    (unsigned long long)err,
		    (double)(done - err) / ((double)(now - start) / 1e9),
		    sig_stop_requested() ? "  (stopping)" : "");
		last_print = now;
	}
	for (long i = 0; i < started; i++)
		pthread_join(ws[i].tid, NULL);
	t->elapsed_s = (double)(seed_now_ns() - start) / 1e9;
	for (long i = 0; i < started; i++) {
		seed_total_add(t, &ws[i], &cfg);
		if (ws[i].failed)
			goto nomem;
	}
	if (cfg.json) {
		if (seed_report_json(&cfg, t) != 0)
			goto nomem;
	} else
		seed_report_text(&cfg, t);
	fflush(stdout);
	if (t->answers == 0 && t->errors + t->connect_failures > 0) {
		fprintf(stderr, "tallyctl seed: cannot reach the gateway at %s "
		    "(%s): is tally-gateway running? Use --url to point at it.\n",
		    cfg.url_text, strerror(t->last_errno != 0 ? t->last_errno :
		    ECONNREFUSED));
		rc = CMD_EXIT_UNAVAILABLE;
	} else {
		rc = CMD_EXIT_OK;
		if (t->errors > 0) {
			fprintf(stderr, "tallyctl seed: %llu of %llu requests "
			    "got no answer (last error: %s)\n",
			    (unsigned long long)t->errors,
			    (unsigned long long)t->sent,
			    strerror(t->last_errno));
			rc = CMD_EXIT_FAILED;
		}
		if (t->gave_up) {
			seed_report_gave_up(&cfg, t);
			rc = CMD_EXIT_FAILED;
		}
	}
	goto out;
nomem:
	fprintf(stderr, "tallyctl seed: out of memory or file descriptors "
	    "(lower --concurrency, --voters or raise ulimit -n)\n");
	rc = CMD_EXIT_FAILED;
out:
	for (long i = 0; ws != NULL && i < cfg.threads; i++)
		seed_worker_fini(&ws[i]);
	free(ws);
	free(t);
	return rc;
}
