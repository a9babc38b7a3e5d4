/*
 * schema.c - versioned migrations under an advisory lock.
 *
 * Migrations are append-only: a released one is never edited, a change is a
 * new entry. Each is plain SQL that runs inside the migrating transaction.
 */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "pgconn.h"

struct schema_migration {
	int version;
	const char *what;
	const char *sql;
};

static const struct schema_migration schema_migrations[] = {
	{1, "votes and tallies",
	    /* One row per (poll, voter): the latest cast by stream sequence.
	     * prev_option is the option the row held before its last change;
	     * the processor reads it back (RETURNING) to compute exact tally
	     * deltas even when several processors race on one row. */
	    "CREATE TABLE votes ("
	    " poll text NOT NULL,"
	    " voter text NOT NULL,"
	    " option text NOT NULL,"
	    " seq bigint NOT NULL,"
	    " prev_option text,"
	    " cast_at timestamptz,"
	    " updated_at timestamptz NOT NULL DEFAULT now(),"
	    " PRIMARY KEY (poll, voter));"
	    /* Kept by deltas in the same transaction as votes, so reading a
	     * tally costs O(options). */
	    "CREATE TABLE tallies ("
	    " poll text NOT NULL,"
	    " option text NOT NULL,"
	    " votes bigint NOT NULL DEFAULT 0,"
	    " PRIMARY KEY (poll, option));"},
	{2, "vote_stream",
	    /* The stream the stored votes' sequences come from, named by its
	     * creation time (jsStreamInfo.Created, ns since the epoch): a
	     * recreated stream VOTES starts again at sequence 1, so a
	     * different one here means every stored row predates it (see
	     * store_stream_use). One row at most; batches lock it FOR SHARE
	     * to check that their stream is still this one. Empty until the
	     * first processor binds (or replay runs): an upgraded database's
	     * rows then come from the stream it finds. */
	    "CREATE TABLE vote_stream ("
	    " id boolean PRIMARY KEY DEFAULT true CHECK (id),"
	    " created_ns bigint NOT NULL,"
	    " recorded_at timestamptz NOT NULL DEFAULT now());"},
	{3, "ids in byte order",
	    /* Ids are ASCII tokens, so byte order ("C") is the only order
	     * they need, and the database's default collation is whatever
	     * the cluster was made with: en_US.UTF-8 in most images and
	     * managed services. There every probe of the (poll, voter) key
	     * calls strcoll: the processor's batch statement took 40 % longer
	     * than on a C cluster (docs/PROCESSOR.md "Collation"). A libc
	     * collation can also change under an OS upgrade and leave a text
	     * index silently out of order; byte order never changes. Only
	     * the indexes are rebuilt (the rows keep their bytes), under an
	     * ACCESS EXCLUSIVE lock held for that time. */
	    "ALTER TABLE votes"
	    " ALTER COLUMN poll TYPE text COLLATE \"C\","
	    " ALTER COLUMN voter TYPE text COLLATE \"C\","
	    " ALTER COLUMN option TYPE text COLLATE \"C\","
	    " ALTER COLUMN prev_option TYPE text COLLATE \"C\";"
	    "ALTER TABLE tallies"
	    " ALTER COLUMN poll TYPE text COLLATE \"C\","
	    " ALTER COLUMN option TYPE text COLLATE \"C\";"},
};

#define SCHEMA_N (sizeof(schema_migrations) / sizeof(schema_migrations[0]))

int
schema_latest_version(void)
{
	return schema_migrations[SCHEMA_N - 1].version;
}

/* The applied version, read inside the caller's transaction; -1 on error. */
static int
schema_read_version(PGconn *pg)
{
	PGresult *res;
	int v = -1;

	res = PQexec(pg, "SELECT coalesce(max(version), 0) FROM "
	    "schema_migrations");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = atoi(PQgetvalue(res, 0, 0));
	else
		log_warn("postgres: read schema version: %s",
		    PQerrorMessage(pg));
	PQclear(res);
	return v;
}

int
schema_migrate(PGconn *pg)
{
	char sql[128];
	int current, applied = 0;

	if (pgconn_exec(pg, "BEGIN", "begin migration") != 0)
		return -1;
	/* Held until COMMIT or ROLLBACK: concurrent starters queue here. */
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
	    (long long)SCHEMA_LOCK_KEY);
	if (pgconn_exec(pg, sql, "take the migration lock") != 0)
		goto fail;
	if (pgconn_exec(pg, "SET LOCAL client_min_messages = warning",
	    "quiet notices") != 0)
		goto fail;
	if (pgconn_exec(pg, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    " version int PRIMARY KEY,"
	    " applied_at timestamptz NOT NULL DEFAULT now())",
	    "create schema_migrations") != 0)
		goto fail;
	if ((current = schema_read_version(pg)) < 0)
		goto fail;
	if (current > schema_latest_version())
		log_warn("postgres: schema version %d is newer than this "
		    "build's %d; carrying on", current,
		    schema_latest_version());
	for (size_t i = 0; i < SCHEMA_N; i++) {
		const struct schema_migration *m = &schema_migrations[i];

		if (m->version <= current)
			continue;
		if (pgconn_exec(pg, m->sql, m->what) != 0)
			goto fail;
		snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations "
		    "(version) VALUES (%d)", m->version);
		if (pgconn_exec(pg, sql, "record migration") != 0)
			goto fail;
		log_info("postgres: applied migration %d (%s)", m->version,
		    m->what);
		applied++;
	}
	if (pgconn_exec(pg, "COMMIT", "commit migration") != 0)
		goto fail;
	return applied;
fail:
	/* A failed ROLLBACK leaves nothing more to undo: the server ends
	 * the transaction with the session. */
	if (!pgconn_broken(pg) &&
	    pgconn_exec(pg, "ROLLBACK", "roll back migration") != 0)
		log_warn("postgres: migration rollback failed");
	return -1;
}

int
schema_version(PGconn *pg, int *version)
{
	PGresult *res;
	int rc = -1;

	*version = 0;
	/* to_regclass: no error (and no aborted transaction) when absent;
	 * a subquery on a missing table would fail at parse time. */
	res = PQexec(pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		log_warn("postgres: read schema version: %s",
		    PQerrorMessage(pg));
		goto done;
	}
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		rc = 0;
		goto done;
	}
	PQclear(res);
	res = PQexec(pg, "SELECT coalesce(max(version), 0) FROM "
	    "schema_migrations");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		*version = atoi(PQgetvalue(res, 0, 0));
		rc = 0;
	} else {
		log_warn("postgres: read schema version: %s",
		    PQerrorMessage(pg));
	}
done:
	PQclear(res);
	return rc;
}

bool
schema_ready(PGconn *pg)
{
	int v;

	return !pgconn_broken(pg) && schema_version(pg, &v) == 0 &&
	    v >= schema_latest_version();
}
