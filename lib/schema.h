/*
 * schema: tally's PostgreSQL schema as numbered migrations. Each migration
 * runs once, in order, recorded in schema_migrations(version, applied_at).
 * The whole run holds a transaction-scoped advisory lock, so several
 * processors (and tallyctl init) starting at once on an empty database
 * apply each migration exactly once: the others wait, then find nothing
 * left to do.
 */
#ifndef TALLY_SCHEMA_H
#define TALLY_SCHEMA_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Key of the advisory lock held while migrating ("tally" in ASCII). */
#define SCHEMA_LOCK_KEY 0x74616c6c79LL

/* The version this build's code needs (the highest migration it knows). */
int schema_latest_version(void);

/*
 * Applies every missing migration in one transaction under the advisory
 * lock. Returns the number applied (0: already up to date), or -1 and logs
 * why (the transaction is rolled back; the connection stays usable unless
 * it broke).
 */
int schema_migrate(PGconn *pg) __attribute__((warn_unused_result));

/*
 * Reads the applied version into *version (0 when the schema was never
 * applied). Returns 0, or -1 and logs why.
 */
int schema_version(PGconn *pg, int *version)
    __attribute__((warn_unused_result));

/* True when the database holds at least this build's version (readiness). */
bool schema_ready(PGconn *pg);

#endif
