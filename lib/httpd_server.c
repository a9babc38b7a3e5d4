/*
 * httpd_server.c - the listening socket and the event loops that drive
 * libmicrohttpd daemons.
 *
 * Why not MHD's own threads: in libmicrohttpd 0.9.75 (Debian 12), MHD_epoll
 * keeps calling epoll_wait while a call returns its full 128 events, and it
 * calls it again with the same blocking timeout. When exactly 128 sockets
 * are ready at once (128 keep-alive clients sending together: a load
 * generator, a browser fleet behind a proxy), the second call finds nothing
 * new and sleeps until a connection times out (CONNECTION_TIMEOUT_S, 30 s)
 * while those 128 requests sit unread. Seen in the gateway with one HTTP
 * thread and 128 clients: every connection stalled for the whole timeout.
 * MHD_run, the external-loop entry point, passes a zero timeout, so the
 * repeat returns at once; the waiting is done here, on MHD's epoll fd.
 * Driven from outside, MHD has no wake-up channel of its own (it drops
 * MHD_USE_ITC), so a connection resumed from another thread must wake its
 * loop: httpd_resume does both.
 *
 * threads > 1 means as many daemons, one loop thread each, and one
 * listening socket each, bound to the same address with SO_REUSEPORT: the
 * kernel spreads new connections over them by their address hash. A
 * shared socket was tried first: whichever loop woke first accepted a
 * burst of connections (a load balancer or load generator opening its
 * pool), and one loop then served several times the others' share, which
 * caps a gateway at one core however many it has. SO_REUSEPORT would also
 * let another process of ours join the group, so the port is first bound
 * once without it: a port already in use fails there, as it always did.
 * The per-address limit spans all the loops, so it is kept here (MHD's
 * own is per daemon): an accept policy checks the count, the
 * connection-start notification counts it, the close notification
 * uncounts it.
 */
#define _DEFAULT_SOURCE
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define HTTPD_THREADS_MAX 64
/* Longest sleep of a loop with nothing to do (it wakes for any socket,
 * resume or stop before that; this only bounds a missed wake-up). */
#define HTTPD_IDLE_MS 1000

struct httpd_loop {
	struct httpd *h;
	struct MHD_Daemon *d;
	int listen_fd;             /* this loop's share of the port */
	int epoll_fd;              /* MHD's, borrowed */
	int wake_fd;               /* eventfd: a connection was resumed */
	atomic_bool wake_pending;  /* wake_fd written since the last run */
	pthread_t thread;
	bool started;
	bool registered;
};

/* Which loop runs which daemon, for httpd_resume: every server's loops. */
#define HTTPD_REGISTRY_MAX 256
static pthread_mutex_t httpd_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct httpd_loop *httpd_registry[HTTPD_REGISTRY_MAX];

/* Open connections of one client address (IPv4, network order). */
struct httpd_ip {
	uint32_t addr;
	unsigned count;            /* 0: free slot */
};

struct httpd {
	int stop_fd;               /* eventfd: wakes every loop to stop */
	atomic_bool stopping;
	bool quiesced;
	long n;
	struct httpd_loop loops[HTTPD_THREADS_MAX];
	MHD_NotifyConnectionCallback notify;
	void *notify_cls;
	unsigned per_ip_max;       /* 0: no limit */
	pthread_mutex_t ip_lock;
	struct httpd_ip *ips;      /* open addressing, ips_cap a power of 2 */
	size_t ips_cap, ips_used;
};

/* The slot of addr, or the free slot where it would go (ip_lock held). */
static struct httpd_ip *
httpd_ip_slot(struct httpd *h, uint32_t addr)
{
	size_t i = ((size_t)addr * 0x9e3779b1u) & (h->ips_cap - 1);

	while (h->ips[i].count != 0 && h->ips[i].addr != addr)
		i = (i + 1) & (h->ips_cap - 1);
	return &h->ips[i];
}

/* Removes a slot whose count reached 0 and re-seats the run after it, so
 * that lookups never stop early (ip_lock held). */
static void
httpd_ip_remove(struct httpd *h, struct httpd_ip *slot)
{
	size_t i = (size_t)(slot - h->ips);

	h->ips_used--;
	for (size_t j = (i + 1) & (h->ips_cap - 1); h->ips[j].count != 0;
	    j = (j + 1) & (h->ips_cap - 1)) {
		struct httpd_ip e = h->ips[j];

		h->ips[j].count = 0;
		*httpd_ip_slot(h, e.addr) = e;
	}
}

static bool
httpd_ip_of(const struct sockaddr *sa, uint32_t *addr)
{
	if (sa == NULL || sa->sa_family != AF_INET)
		return false;
	*addr = ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr;
	return true;
}

/* MHD's accept policy: refuse an address already at its limit. */
static enum MHD_Result
httpd_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct httpd *h = cls;
	uint32_t addr;
	bool ok;

	(void)len;
	if (!httpd_ip_of(sa, &addr))
		return MHD_YES;
	pthread_mutex_lock(&h->ip_lock);
	ok = httpd_ip_slot(h, addr)->count < h->per_ip_max;
	pthread_mutex_unlock(&h->ip_lock);
	return ok ? MHD_YES : MHD_NO;
}

/* Counts (delta +1) or uncounts (-1) c's address. A table more than half
 * full doubles; if it cannot, the connection goes uncounted. */
static void
httpd_ip_count(struct httpd *h, struct MHD_Connection *c, int delta)
{
	const union MHD_ConnectionInfo *ci;
	struct httpd_ip *slot;
	uint32_t addr;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || !httpd_ip_of(ci->client_addr, &addr))
		return;
	pthread_mutex_lock(&h->ip_lock);
	slot = httpd_ip_slot(h, addr);
	if (delta < 0) {
		if (slot->count > 0 && --slot->count == 0)
			httpd_ip_remove(h, slot);
	} else if (slot->count > 0) {
		slot->count++;
	} else {
		if (2 * (h->ips_used + 1) > h->ips_cap) {
			struct httpd_ip *old = h->ips, *grown;
			size_t old_cap = h->ips_cap;

			grown = calloc(2 * old_cap, sizeof(*grown));
			if (grown == NULL)
				goto out;
			h->ips = grown;
			h->ips_cap = 2 * old_cap;
			for (size_t i = 0; i < old_cap; i++)
				if (old[i].count != 0)
					*httpd_ip_slot(h, old[i].addr) = old[i];
			free(old);
			slot = httpd_ip_slot(h, addr);
		}
		slot->addr = addr;
		slot->count = 1;
		h->ips_used++;
	}
out:
	pthread_mutex_unlock(&h->ip_lock);
}

static void
httpd_notify(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct httpd *h = cls;

	if (h->per_ip_max > 0)
		httpd_ip_count(h, c, code == MHD_CONNECTION_NOTIFY_STARTED ?
		    1 : -1);
	if (h->notify != NULL)
		h->notify(h->notify_cls, c, socket_context, code);
}

static bool
httpd_register(struct httpd_loop *l)
{
	bool ok = false;

	pthread_mutex_lock(&httpd_registry_lock);
	for (size_t i = 0; i < HTTPD_REGISTRY_MAX && !ok; i++)
		if (httpd_registry[i] == NULL) {
			httpd_registry[i] = l;
			ok = true;
		}
	pthread_mutex_unlock(&httpd_registry_lock);
	return ok;
}

static void
httpd_unregister(struct httpd_loop *l)
{
	pthread_mutex_lock(&httpd_registry_lock);
	for (size_t i = 0; i < HTTPD_REGISTRY_MAX; i++)
		if (httpd_registry[i] == l)
			httpd_registry[i] = NULL;
	pthread_mutex_unlock(&httpd_registry_lock);
}

void
httpd_resume(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	struct MHD_Daemon *d;
	struct httpd_loop *l = NULL;
	uint64_t one = 1;

	/* The daemon is copied out first: the info points into the
	 * connection, which once resumed may be answered and freed by its
	 * loop at any moment. */
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
	d = ci != NULL ? ci->daemon : NULL;
	MHD_resume_connection(c);
	if (d == NULL)
		return;
	pthread_mutex_lock(&httpd_registry_lock);
	for (size_t i = 0; i < HTTPD_REGISTRY_MAX && l == NULL; i++)
		if (httpd_registry[i] != NULL && httpd_registry[i]->d == d)
			l = httpd_registry[i];
	/* One write per run of the loop is enough: it takes every resumed
	 * connection at once. The flag is cleared by the loop before it
	 * runs MHD, so a resume after that writes again. */
	if (l != NULL && !atomic_exchange(&l->wake_pending, true) &&
	    write(l->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("http: cannot wake an event loop: %s",
		    strerror(errno));
	pthread_mutex_unlock(&httpd_registry_lock);
}

static void *
httpd_loop_main(void *arg)
{
	struct httpd_loop *l = arg;
	struct httpd *h = l->h;

	while (!atomic_load(&h->stopping)) {
		struct pollfd p[3] = {
			{.fd = l->epoll_fd, .events = POLLIN},
			{.fd = l->wake_fd, .events = POLLIN},
			{.fd = h->stop_fd, .events = POLLIN},
		};
		MHD_UNSIGNED_LONG_LONG t;
		uint64_t n;
		int ms = HTTPD_IDLE_MS;

		/* MHD's timeout is 0 when it still has buffered work
		 * (edge-triggered sockets with data left). */
		if (atomic_load(&l->wake_pending))
			ms = 0;
		else if (MHD_get_timeout(l->d, &t) == MHD_YES &&
		    t < HTTPD_IDLE_MS)
			ms = (int)t;
		if (poll(p, 3, ms) < 0 && errno != EINTR) {
			log_error("http: poll: %s", strerror(errno));
			break;
		}
		if (atomic_load(&h->stopping))
			break;
		if (p[1].revents & POLLIN)
			(void)read(l->wake_fd, &n, sizeof(n));
		atomic_store(&l->wake_pending, false);
		if (MHD_run(l->d) != MHD_YES)
			log_warn("http: MHD_run failed");
	}
	return NULL;
}

/* A socket bound to cfg's address; listening unless probe. reuseport:
 * one of a group of sockets sharing the port. -1 (logged) on failure. */
static int
httpd_listen(const struct httpd_config *cfg, bool reuseport, bool probe)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)cfg->port);
	if (inet_pton(AF_INET, cfg->addr, &sa.sin_addr) != 1) {
		log_error("BIND_ADDR \"%s\" is not an IPv4 address", cfg->addr);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("cannot make a socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
	    sizeof(one)) != 0) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    (!probe && listen(fd, 1024) != 0)) {
		log_error("cannot listen on %s:%ld: %s", cfg->addr, cfg->port,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct httpd *
httpd_start(const struct httpd_config *cfg, MHD_AccessHandlerCallback handle,
    MHD_RequestCompletedCallback completed, void *cls)
{
	struct httpd *h;
	long n = cfg->threads < 1 ? 1 : cfg->threads;

	if (n > HTTPD_THREADS_MAX)
		n = HTTPD_THREADS_MAX;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		log_error("http: out of memory");
		return NULL;
	}
	h->stop_fd = -1;
	for (long i = 0; i < HTTPD_THREADS_MAX; i++)
		h->loops[i].wake_fd = h->loops[i].listen_fd = -1;
	h->notify = cfg->notify_connection;
	h->notify_cls = cfg->notify_cls;
	h->per_ip_max = (unsigned)cfg->max_connections_per_ip;
	pthread_mutex_init(&h->ip_lock, NULL);
	h->ips_cap = 64;
	if ((h->ips = calloc(h->ips_cap, sizeof(*h->ips))) == NULL) {
		log_error("http: out of memory");
		goto fail;
	}
	if (n > 1) {
		/* Is the port free? (No one can join our group later.) */
		int probe = httpd_listen(cfg, false, true);
		if (probe < 0)
			goto fail;
		close(probe);
	}
	if ((h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		log_error("http: eventfd: %s", strerror(errno));
		goto fail;
	}
	for (long i = 0; i < n; i++) {
		struct httpd_loop *l = &h->loops[i];
		/* The connection limit is shared out as MHD's pool does. */
		unsigned limit = (unsigned)(cfg->max_connections / n +
		    (i < cfg->max_connections % n ? 1 : 0));
		const union MHD_DaemonInfo *di;

		l->h = h;
		if ((l->listen_fd = httpd_listen(cfg, n > 1, false)) < 0)
			goto fail;
		l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (l->wake_fd < 0) {
			log_error("http: eventfd: %s", strerror(errno));
			goto fail;
		}
		l->d = MHD_start_daemon(MHD_USE_EPOLL |
		    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
		    h->per_ip_max > 0 ? httpd_accept : NULL, h, handle, cls,
		    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->listen_fd,
		    MHD_OPTION_CONNECTION_LIMIT, limit > 0 ? limit : 1u,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)cfg->max_header_bytes,
		    MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)cfg->connection_timeout_s,
		    MHD_OPTION_NOTIFY_CONNECTION, httpd_notify, h,
		    MHD_OPTION_NOTIFY_COMPLETED, completed, cls,
		    MHD_OPTION_END);
		if (l->d == NULL) {
			log_error("http: cannot start a daemon on %s:%ld",
			    cfg->addr, cfg->port);
			goto fail;
		}
		di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
		if (di == NULL) {
			log_error("http: no epoll fd from libmicrohttpd");
			goto fail;
		}
		l->epoll_fd = di->epoll_fd;
		h->n = i + 1;
		if (!(l->registered = httpd_register(l))) {
			log_error("http: too many event loops in one process");
			goto fail;
		}
	}
	for (long i = 0; i < h->n; i++) {
		if (pthread_create(&h->loops[i].thread, NULL, httpd_loop_main,
		    &h->loops[i]) != 0) {
			log_error("http: cannot start an event loop thread");
			goto fail;
		}
		h->loops[i].started = true;
	}
	return h;
fail:
	httpd_stop(h);
	return NULL;
}

void
httpd_quiesce(struct httpd *h)
{
	if (h == NULL || h->quiesced)
		return;
	h->quiesced = true;
	/* Each daemon drops its socket from its epoll set. Shut down, the
	 * socket refuses new connections at once; it is closed only in
	 * httpd_stop, after the loops, so that no loop can accept() on a
	 * number the kernel has given to another file meanwhile. */
	for (long i = 0; i < h->n; i++)
		(void)MHD_quiesce_daemon(h->loops[i].d);
	for (long i = 0; i < HTTPD_THREADS_MAX; i++)
		if (h->loops[i].listen_fd >= 0)
			(void)shutdown(h->loops[i].listen_fd, SHUT_RDWR);
}

void
httpd_stop(struct httpd *h)
{
	uint64_t one = 1;

	if (h == NULL)
		return;
	/* Quiesced first, so that no daemon closes its socket. */
	httpd_quiesce(h);
	atomic_store(&h->stopping, true);
	if (h->stop_fd >= 0 && write(h->stop_fd, &one, sizeof(one)) < 0)
		log_warn("http: cannot wake the event loops: %s",
		    strerror(errno));
	for (long i = 0; i < h->n; i++)
		if (h->loops[i].started)
			pthread_join(h->loops[i].thread, NULL);
	for (long i = 0; i < h->n; i++) {
		if (h->loops[i].registered)
			httpd_unregister(&h->loops[i]);
		MHD_stop_daemon(h->loops[i].d);
	}
	for (long i = 0; i < HTTPD_THREADS_MAX; i++) {
		if (h->loops[i].wake_fd >= 0)
			close(h->loops[i].wake_fd);
		if (h->loops[i].listen_fd >= 0)
			close(h->loops[i].listen_fd);
	}
	if (h->stop_fd >= 0)
		close(h->stop_fd);
	pthread_mutex_destroy(&h->ip_lock);
	free(h->ips);
	free(h);
}
