/*
 * listen.c - LISTEN tally_changed, reload on notify, safety poll, reconnect.
 */
#define _POSIX_C_SOURCE 200809L
#include "listen.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pgconn.h"

/* How often the thread looks at its stop flag while idle. */
#define LISTENER_TICK_MS 200
/* While the tallies table is missing, look for it this often, so that the
 * reporter turns ready soon after the processor creates its schema. */
#define LISTENER_MISSING_POLL_MS 500

enum listener_state {
	LISTENER_DOWN,     /* no connection */
	LISTENER_MISSING,  /* connected, no tallies table yet */
	LISTENER_OK,
};

struct listener {
	struct listener_config cfg;  /* strings borrowed */
	const struct polls *polls;
	struct tallies *tallies;
	struct sse_hub *hub;
	struct reporter_metrics *m;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_int state;            /* enum listener_state */
	bool *dirty;                 /* per poll; listener thread only */
	int64_t (*votes)[POLL_OPTIONS_MAX]; /* per poll; scratch for reloads */
};

static int64_t
listener_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
listener_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms, waking early on stop. Returns true if stopping. */
static bool
listener_sleep_ms(struct listener *l, long ms)
{
	while (ms > 0 && !atomic_load(&l->stop)) {
		long slice = ms < 50 ? ms : 50;
		struct timespec ts = { 0, slice * 1000000L };

		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return atomic_load(&l->stop);
}

/* Stores poll i's counts from l->votes[i]; wakes its watchers if they
 * changed. */
static void
listener_store(struct listener *l, size_t i)
{
	if (tallies_set(l->tallies, i, l->votes[i], listener_wall_ms()))
		sse_hub_notify(l->hub, i);
}

/*
 * A failed query: 42P01 (undefined_table) means the processor has not
 * created the schema yet, which reads as zero votes. Returns 0 for that,
 * -1 for anything else (logged and counted).
 */
static int
listener_query_failed(struct listener *l, PGconn *pg, PGresult *res,
    const char *what)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (state != NULL && strcmp(state, "42P01") == 0) {
		if (atomic_exchange(&l->state, LISTENER_MISSING) !=
		    LISTENER_MISSING)
			log_info("postgres: no tallies table yet; showing zero "
			    "votes until the processor creates it");
		tallies_mark_refreshed(l->tallies);
		return 0;
	}
	/* Counted in pg_errors by the caller, which drops the connection. */
	log_warn("postgres: %s: %s", what, PQerrorMessage(pg));
	return -1;
}

/* Copies rows (option, votes) into l->votes[i], ignoring options that the
 * configuration does not name. */
static void
listener_fill(struct listener *l, size_t i, PGresult *res, int opt_col,
    int votes_col, int row)
{
	const struct poll *poll = polls_at(l->polls, i);
	const char *opt = PQgetvalue(res, row, opt_col);
	int k = poll_option_index(poll, opt, strlen(opt));

	if (k >= 0)
		l->votes[i][k] = strtoll(PQgetvalue(res, row, votes_col), NULL,
		    10);
}

/* Re-reads every poll. Returns 0, or -1 if the connection must go. */
static int
listener_reload_all(struct listener *l, PGconn *pg)
{
	size_t n = polls_count(l->polls);
	PGresult *res;
	int rc = 0;

	memset(l->votes, 0, n * sizeof(*l->votes));
	res = PQexec(pg, "SELECT poll, option, votes FROM tallies");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = listener_query_failed(l, pg, res, "reading all tallies");
		goto done;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		const char *id = PQgetvalue(res, r, 0);
		const struct poll *poll = polls_find(l->polls, id, strlen(id));

		/* Polls that are not configured here are not served. */
		if (poll != NULL)
			listener_fill(l, (size_t)(poll - polls_at(l->polls, 0)),
			    res, 1, 2, r);
	}
	atomic_store(&l->state, LISTENER_OK);
	tallies_mark_refreshed(l->tallies);
done:
	PQclear(res);
	if (rc == 0)
		for (size_t i = 0; i < n; i++)
			listener_store(l, i);
	return rc;
}

/* Re-reads poll i. Returns 0, or -1 if the connection must go. */
static int
listener_reload_one(struct listener *l, PGconn *pg, size_t i)
{
	const char *params[1] = { polls_at(l->polls, i)->id };
	PGresult *res;
	int rc = 0;

	memset(l->votes[i], 0, sizeof(l->votes[i]));
	res = PQexecParams(pg, "SELECT option, votes FROM tallies "
	    "WHERE poll = $1", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = listener_query_failed(l, pg, res, "reading a tally");
		goto done;
	}
	for (int r = 0; r < PQntuples(res); r++)
		listener_fill(l, i, res, 0, 1, r);
	atomic_store(&l->state, LISTENER_OK);
	tallies_mark_refreshed(l->tallies);
done:
	PQclear(res);
	metrics_inc(&l->m->poll_reloads);
	if (rc == 0)
		listener_store(l, i);
	return rc;
}

/* Moves queued notifications into l->dirty. Returns how many arrived. */
static int
listener_drain(struct listener *l, PGconn *pg)
{
	PGnotify *n;
	int count = 0;

	while ((n = PQnotifies(pg)) != NULL) {
		const struct poll *poll = polls_find(l->polls, n->extra,
		    strlen(n->extra));

		metrics_inc(&l->m->notifications);
		if (poll != NULL)
			l->dirty[poll - polls_at(l->polls, 0)] = true;
		PQfreemem(n);
		count++;
	}
	return count;
}

/* Handles every queued notification, including those that arrive while
 * reloading. Returns 0, or -1 if the connection must go. */
static int
listener_handle_notifies(struct listener *l, PGconn *pg)
{
	size_t n = polls_count(l->polls);

	while (listener_drain(l, pg) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (!l->dirty[i])
				continue;
			l->dirty[i] = false;
			if (listener_reload_one(l, pg, i) != 0)
				return -1;
		}
	}
	return 0;
}

/* Connects with backoff until it works or we stop; LISTENs, full reload. */
static PGconn *
listener_connect(struct listener *l)
{
	long backoff_ms = 100;
	PGconn *pg;

	while (!atomic_load(&l->stop)) {
		pg = pgconn_open(l->cfg.conninfo, "tally-reporter");
		if (pg != NULL) {
			/* LISTEN before reading, so no change falls between. */
			if (pgconn_exec(pg, "LISTEN tally_changed",
			    "LISTEN tally_changed") == 0 &&
			    listener_reload_all(l, pg) == 0) {
				metrics_inc(&l->m->pg_connects);
				log_info("postgres: connected, listening on "
				    "tally_changed");
				return pg;
			}
			metrics_inc(&l->m->pg_errors);
			pgconn_close(pg);
		}
		if (listener_sleep_ms(l, pgconn_jitter_ms(backoff_ms)))
			break;
		backoff_ms = backoff_ms * 2 < l->cfg.max_backoff_ms ?
		    backoff_ms * 2 : l->cfg.max_backoff_ms;
	}
	return NULL;
}

static void *
listener_run(void *arg)
{
	struct listener *l = arg;
	PGconn *pg = NULL;
	int64_t next_safety = 0;

	while (!atomic_load(&l->stop)) {
		struct pollfd pfd;
		int64_t now, wait_ms;

		if (pg == NULL) {
			pg = listener_connect(l);
			if (pg == NULL)
				break;
			next_safety = listener_mono_ms() + l->cfg.safety_poll_ms;
		}
		if (listener_handle_notifies(l, pg) != 0)
			goto lost;
		now = listener_mono_ms();
		if (atomic_load(&l->state) == LISTENER_MISSING &&
		    next_safety > now + LISTENER_MISSING_POLL_MS)
			next_safety = now + LISTENER_MISSING_POLL_MS;
		if (now >= next_safety) {
			metrics_inc(&l->m->safety_polls);
			if (listener_reload_all(l, pg) != 0)
				goto lost;
			next_safety = now + l->cfg.safety_poll_ms;
			continue;
		}
		wait_ms = next_safety - now;
		if (wait_ms > LISTENER_TICK_MS)
			wait_ms = LISTENER_TICK_MS;
		pfd.fd = PQsocket(pg);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (pfd.fd < 0)
			goto lost;
		if (poll(&pfd, 1, (int)wait_ms) < 0 && errno != EINTR)
			goto lost;
		if (pfd.revents != 0 && PQconsumeInput(pg) == 0)
			goto lost;
		continue;
lost:
		/* The connection is gone or unusable: every notification sent
		 * meanwhile is lost too, hence the full reload on reconnect. */
		metrics_inc(&l->m->pg_errors);
		log_warn("postgres: connection lost (%s); reconnecting",
		    pg != NULL ? PQerrorMessage(pg) : "?");
		atomic_store(&l->state, LISTENER_DOWN);
		pgconn_close(pg);
		pg = NULL;
	}
	atomic_store(&l->state, LISTENER_DOWN);
	pgconn_close(pg);
	return NULL;
}

struct listener *
listener_new(const struct listener_config *cfg, const struct polls *polls,
    struct tallies *t, struct sse_hub *hub, struct reporter_metrics *m)
{
	struct listener *l;
	size_t n = polls_count(polls);

	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->cfg = *cfg;
	l->polls = polls;
	l->tallies = t;
	l->hub = hub;
	l->m = m;
	atomic_init(&l->stop, false);
	atomic_init(&l->state, LISTENER_DOWN);
	l->dirty = calloc(n, sizeof(*l->dirty));
	l->votes = calloc(n, sizeof(*l->votes));
	if (l->dirty == NULL || l->votes == NULL) {
		listener_free(l);
		return NULL;
	}
	return l;
}

int
listener_start(struct listener *l)
{
	int rc = pthread_create(&l->thread, NULL, listener_run, l);

	if (rc != 0) {
		log_error("listener: cannot start its thread: %s",
		    strerror(rc));
		return -1;
	}
	l->started = true;
	return 0;
}

bool
listener_ready(struct listener *l)
{
	return atomic_load(&l->state) == LISTENER_OK;
}

const char *
listener_state(struct listener *l)
{
	switch (atomic_load(&l->state)) {
	case LISTENER_OK:
		return "ok";
	case LISTENER_MISSING:
		return "tallies table missing";
	default:
		return "postgres unreachable";
	}
}

void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	if (l->started) {
		atomic_store(&l->stop, true);
		pthread_join(l->thread, NULL);
	}
	free(l->dirty);
	free(l->votes);
	free(l);
}
