/*
 * tallyctl init: creates or updates stream VOTES (and VOTES_DLQ, where the
 * processor copies poison messages) and applies the database schema.
 * Idempotent: running it again changes nothing that is already right.
 */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>

#include "cmd.h"
#include "config.h"
#include "deadletter.h"
#include "log.h"
#include "natsconn.h"
#include "pgconn.h"
#include "schema.h"

struct init_config {
	struct natsconn_settings nats;
	char *database_url;
};

#define F(x) offsetof(struct init_config, x)
static const struct config_entry init_table[] = {
	NATSCONN_CONFIG_ENTRIES(struct init_config, nats),
	{"DATABASE_URL", CONFIG_STR, F(database_url), NULL, 0, 0,
	    CONFIG_SECRET, "libpq connection string; empty: PG* variables"},
};
#undef F
#define INIT_TABLE_N (sizeof(init_table) / sizeof(init_table[0]))

/* Stream VOTES and VOTES_DLQ. Returns a CMD_EXIT_* status. */
static int
init_streams(const struct init_config *cfg)
{
	struct natsconn_config ncfg = natsconn_config_of(&cfg->nats,
	    "tallyctl-init");
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	int status = CMD_EXIT_UNAVAILABLE;

	if (natsconn_open(&ncfg, NULL, &nc, &js) != 0)
		return CMD_EXIT_CONFIG;
	/* natsconn keeps retrying in the background; an operator's command
	 * should answer instead: give NATS a few seconds. */
	for (int i = 0; i < 50 && !natsconn_connected(nc); i++)
		nats_Sleep(100);
	if (!natsconn_connected(nc)) {
		char url[512];

		natsconn_redact(cfg->nats.url, url, sizeof(url));
		fprintf(stderr, "tallyctl init: NATS at %s is unavailable\n",
		    url);
		goto out;
	}
	if (natsconn_stream_ensure(js, cfg->nats.stream_replicas) != 0 ||
	    deadletter_ensure(js, cfg->nats.stream_replicas) != 0) {
		fprintf(stderr, "tallyctl init: cannot create or update the "
		    "streams (see the log above)\n");
		goto out;
	}
	printf("stream %s: ok\nstream %s: ok\n", NATSCONN_STREAM,
	    DEADLETTER_STREAM);
	status = CMD_EXIT_OK;
out:
	natsconn_close(nc, js, 1000);
	return status;
}

/* The schema. Returns a CMD_EXIT_* status. */
static int
init_schema(const struct init_config *cfg)
{
	PGconn *pg;
	int applied;

	if ((pg = pgconn_open(cfg->database_url, "tallyctl-init")) == NULL) {
		fprintf(stderr, "tallyctl init: PostgreSQL is unavailable\n");
		return CMD_EXIT_UNAVAILABLE;
	}
	applied = schema_migrate(pg);
	pgconn_close(pg);
	if (applied < 0) {
		fprintf(stderr, "tallyctl init: schema migration failed (see "
		    "the log above)\n");
		return CMD_EXIT_FAILED;
	}
	printf("schema: version %d (%d migration%s applied now)\n",
	    schema_latest_version(), applied, applied == 1 ? "" : "s");
	return CMD_EXIT_OK;
}

int
cmd_init(int argc, char **argv)
{
	struct init_config cfg = {0};
	int status;

	if (cmd_config_load(init_table, INIT_TABLE_N, &cfg, argc, argv,
	    "tallyctl init: create or update stream VOTES (and VOTES_DLQ) "
	    "and apply the database schema; idempotent", &status) != 0)
		goto out;
	status = init_streams(&cfg);
	if (status == CMD_EXIT_OK)
		status = init_schema(&cfg);
out:
	config_fini(init_table, INIT_TABLE_N, &cfg);
	return status;
}
