/* Unit tests for config.c: defaults, environment, flags, errors, --help. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

struct cfg {
	char *addr;
	long port;
	bool fail_closed;
	char *password;
};

static const struct config_entry table[] = {
	{"T_BIND_ADDR", CONFIG_STR, offsetof(struct cfg, addr), "127.0.0.1",
	    0, 0, 0, "address"},
	{"T_BIND_PORT", CONFIG_INT, offsetof(struct cfg, port), "8080", 1,
	    65535, 0, "port"},
	{"T_FAIL_CLOSED", CONFIG_BOOL, offsetof(struct cfg, fail_closed),
	    "false", 0, 0, 0, "fail closed"},
	{"T_PASSWORD", CONFIG_STR, offsetof(struct cfg, password), NULL, 0, 0,
	    CONFIG_SECRET, "password"},
};
#define N (sizeof(table) / sizeof(table[0]))

/* Runs config_load with argv and returns the result; err text in errbuf. */
static enum config_result
load(struct cfg *c, int argc, char **argv, char *outbuf, char *errbuf)
{
	FILE *out = fmemopen(outbuf, 4096, "w");
	FILE *err = fmemopen(errbuf, 1024, "w");
	enum config_result r;

	memset(c, 0, sizeof(*c));
	r = config_load(table, N, c, argc, argv, "usage line", out, err);
	fclose(out);
	fclose(err);
	return r;
}

int
main(void)
{
	struct cfg c;
	char out[4096], err[1024];
	static const struct {
		const char *env_port;
		const char *flag;
		enum config_result want;
		long want_port;
		const char *err_has;
	} cases[] = {
		{NULL, NULL, CONFIG_OK, 8080, NULL},
		{"9000", NULL, CONFIG_OK, 9000, NULL},
		{"9000", "--t-bind-port=9100", CONFIG_OK, 9100, NULL},
		{"0", NULL, CONFIG_INVALID, 0, "T_BIND_PORT"},
		{"70000", NULL, CONFIG_INVALID, 0, "outside"},
		{"80x", NULL, CONFIG_INVALID, 0, "not a whole number"},
		{"", NULL, CONFIG_INVALID, 0, "T_BIND_PORT"},
		{NULL, "--t-bind-port=-1", CONFIG_INVALID, 0, "T_BIND_PORT"},
		{NULL, "--no-such-flag=1", CONFIG_INVALID, 0, "unknown flag"},
		{NULL, "stray", CONFIG_INVALID, 0, "unexpected argument"},
		{NULL, "--t-bind-port", CONFIG_INVALID, 0, "needs a value"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = {"prog", (char *)cases[i].flag, NULL};
		enum config_result r;

		if (cases[i].env_port != NULL)
			setenv("T_BIND_PORT", cases[i].env_port, 1);
		else
			unsetenv("T_BIND_PORT");
		err[0] = '\0';
		r = load(&c, cases[i].flag != NULL ? 2 : 1, argv, out, err);
		CHECK_MSG(r == cases[i].want, "case %zu: result %d", i, r);
		if (r == CONFIG_OK)
			CHECK_MSG(c.port == cases[i].want_port, "case %zu", i);
		if (cases[i].err_has != NULL)
			CHECK_MSG(strstr(err, cases[i].err_has) != NULL,
			    "case %zu: error \"%s\"", i, err);
		config_fini(table, N, &c);
	}
	unsetenv("T_BIND_PORT");

	/* Separate-word flag form, strings and booleans. */
	setenv("T_FAIL_CLOSED", "yes", 1);
	{
		char *argv[] = {"prog", "--t-bind-addr", "0.0.0.0", NULL};
		CHECK(load(&c, 3, argv, out, err) == CONFIG_OK);
		CHECK_STR(c.addr, "0.0.0.0");
		CHECK(c.fail_closed);
		CHECK(c.password != NULL && c.password[0] == '\0');
		config_fini(table, N, &c);
		CHECK(c.addr == NULL);
	}
	setenv("T_FAIL_CLOSED", "maybe", 1);
	{
		char *argv[] = {"prog", NULL};
		CHECK(load(&c, 1, argv, out, err) == CONFIG_INVALID);
		CHECK(strstr(err, "T_FAIL_CLOSED") != NULL);
		config_fini(table, N, &c);
	}
	unsetenv("T_FAIL_CLOSED");

	/* --help lists every setting and its default, never a secret. */
	setenv("T_PASSWORD", "hunter2", 1);
	{
		char *argv[] = {"prog", "--help", NULL};
		CHECK(load(&c, 2, argv, out, err) == CONFIG_HELP);
		CHECK(strstr(out, "usage line") != NULL);
		CHECK(strstr(out, "T_BIND_PORT") != NULL);
		CHECK(strstr(out, "--t-bind-port") != NULL);
		CHECK(strstr(out, "8080") != NULL);
		CHECK(strstr(out, "(secret)") != NULL);
		CHECK(strstr(out, "hunter2") == NULL);
		config_fini(table, N, &c);
	}
	{
		char *argv[] = {"prog", NULL};
		CHECK(load(&c, 1, argv, out, err) == CONFIG_OK);
		CHECK_STR(c.password, "hunter2");
		config_fini(table, N, &c);
	}
	return check_done("test_config");
}
