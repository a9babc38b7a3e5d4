/*
 * test_natsconn.c - NATS_URL as it may appear in logs: credentials masked
 * in every server of a list.
 */
#include <string.h>

#include "check.h"
#include "natsconn.h"

static void
redact(const char *url, const char *want)
{
	char out[256];

	natsconn_redact(url, out, sizeof(out));
	CHECK_STR(out, want);
}

static void
test_redact(void)
{
	redact("nats://127.0.0.1:4222", "nats://127.0.0.1:4222");
	redact("nats://alice:s3cret@h1:4222", "nats://***@h1:4222");
	redact("nats://tok@h1:4222", "nats://***@h1:4222");
	redact("alice:s3cret@h1:4222", "***@h1:4222");
	/* Several servers: each one's credentials. */
	redact("nats://alice:s3cret@h1:4222,nats://alice:s3cret@h2:4222",
	    "nats://***@h1:4222,nats://***@h2:4222");
	redact("nats://h1:4222,tls://bob:pw@h2:4222",
	    "nats://h1:4222,tls://***@h2:4222");
	/* An '@' in the password: nothing of it is kept. */
	redact("nats://alice:p@ss@h1:4222", "nats://***@h1:4222");
	/* '/' in the password (nats.c takes it as written): masked too,
	 * and an '@' after a path would be (too much is fine). */
	redact("nats://alice:p/w@h1:4222", "nats://***@h1:4222");
	redact("nats://h1:4222/x@y", "nats://***@y");
	/* How nats.c names a server whose URL had ":password@" (no user):
	 * without the '@'. */
	redact("nats://:s3cret127.0.0.1:4222", "nats://***");
	/* A password cut at a comma leaves a port that is no number. */
	redact("nats://alice:pa,ss@h1:4222", "nats://***,***@h1:4222");
	/* Ports, IPv6 literals and paths without secrets stay readable. */
	redact("nats://[::1]:4222,nats://h2", "nats://[::1]:4222,nats://h2");
	redact("nats://h1:4222/", "nats://h1:4222/");
}

static void
test_redact_short(void)
{
	char out[12];

	/* Cut short: never a piece of a secret. */
	natsconn_redact("nats://alice:s3cret@h1:4222", out, sizeof(out));
	CHECK(strstr(out, "s3cret") == NULL && strstr(out, "alice") == NULL);
	CHECK(strlen(out) < sizeof(out));
	natsconn_redact("nats://h1:4222,nats://alice:s3cret@h2:4222", out,
	    sizeof(out));
	CHECK(strstr(out, "alice") == NULL);
}

int
main(void)
{
	test_redact();
	test_redact_short();
	return check_done("test_natsconn");
}
