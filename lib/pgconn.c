/*
 * pgconn.c - libpq connections with retry and backoff.
 */
#define _DEFAULT_SOURCE
#include "pgconn.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "sig.h"

PGconn *
pgconn_open(const char *conninfo, const char *application_name)
{
	/*
	 * A server that vanishes without a reset (its host lost, a failover
	 * that moves its address) would otherwise hold a query for the
	 * kernel's keepalive default, over two hours, with the caller stuck
	 * in it and still reporting ready: keepalive probes after 10 s idle
	 * and 30 s of unacknowledged data end it in well under a minute.
	 */
	const char *keys[] = {"application_name", "connect_timeout",
	    "keepalives", "keepalives_idle", "keepalives_interval",
	    "keepalives_count", "tcp_user_timeout", "dbname", NULL};
	const char *vals[] = {application_name, "5", "1", "10", "5", "3",
	    "30000", conninfo != NULL ? conninfo : "", NULL};
	PGconn *pg;
	char *msg, *nl;

	/* expand_dbname: dbname may be a whole URL or key=value string;
	 * it comes last, so that its settings win over the defaults before
	 * it (libpq: a later keyword overrides an earlier one). */
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg != NULL && PQstatus(pg) == CONNECTION_OK)
		return pg;
	msg = strdup(pg != NULL ? PQerrorMessage(pg) : "out of memory");
	if (msg != NULL && (nl = strrchr(msg, '\n')) != NULL && nl[1] == '\0')
		*nl = '\0';
	log_warn("postgres: cannot connect: %s", msg != NULL ? msg : "?");
	free(msg);
	PQfinish(pg);
	return NULL;
}

long
pgconn_jitter_ms(long ms)
{
	unsigned int r = 0;

	if (ms <= 1)
		return ms;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = 0;
	return ms / 2 + (long)(r % (unsigned long)(ms / 2 + 1));
}

PGconn *
pgconn_open_retry(const char *conninfo, const char *application_name,
    long max_backoff_ms)
{
	long backoff_ms = 100;
	PGconn *pg;

	while (!sig_stop_requested()) {
		pg = pgconn_open(conninfo, application_name);
		if (pg != NULL)
			return pg;
		if (sig_sleep_ms(pgconn_jitter_ms(backoff_ms)))
			break;
		backoff_ms = backoff_ms * 2 < max_backoff_ms ? backoff_ms * 2 :
		    max_backoff_ms;
	}
	return NULL;
}

void
pgconn_close(PGconn *pg)
{
	if (pg != NULL)
		PQfinish(pg);
}

int
pgconn_exec(PGconn *pg, const char *sql, const char *what)
{
	PGresult *res;
	int rc = 0;

	res = PQexec(pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("postgres: %s: %s", what, PQerrorMessage(pg));
		rc = -1;
	}
	PQclear(res);
	return rc;
}

bool
pgconn_broken(PGconn *pg)
{
	return pg == NULL || PQstatus(pg) != CONNECTION_OK;
}
