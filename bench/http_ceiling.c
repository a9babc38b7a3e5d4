/*
 * http_ceiling - the HTTP ceiling for the gateway benchmark.
 *
 * A minimal libmicrohttpd server that answers the gateway's vote request
 * (a POST with a small JSON body) with a small JSON answer, and does nothing
 * else: no parsing, no Redis, no NATS. It uses the same daemon settings as
 * the gateway (lib/httpd.c), so the ratio gateway / ceiling measures what the
 * gateway's own work costs, on the same machine in the same run.
 *
 * usage: http_ceiling PORT [THREADS]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"
#include "sig.h"

static const char answer[] =
    "{\"status\":\"accepted\",\"poll\":\"default\",\"option\":\"a\","
    "\"seq\":1}";

static enum MHD_Result
ceiling_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req)
{
	static int first;
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	/* MHD calls once for headers, then with body chunks, then with 0. */
	if (*req == NULL) {
		*req = &first;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(sizeof(answer) - 1,
	    (void *)answer, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

int
main(int argc, char **argv)
{
	struct httpd_config cfg = {
		.addr = "127.0.0.1",
		.threads = 1,
		.max_connections = 10000,
		.max_header_bytes = 16384,
		.connection_timeout_s = 30,
	};
	struct httpd *d;

	if (argc < 2) {
		fprintf(stderr, "usage: http_ceiling PORT [THREADS]\n");
		return 2;
	}
	cfg.port = atol(argv[1]);
	if (argc > 2)
		cfg.threads = atol(argv[2]);
	log_init("http-ceiling", LOG_LEVEL_INFO);
	sig_init();
	d = httpd_start(&cfg, ceiling_handle, NULL, NULL);
	if (d == NULL)
		return 1;
	log_info("listening on 127.0.0.1:%ld with %ld thread(s)", cfg.port,
	    cfg.threads);
	while (!sig_sleep_ms(1000))
		;
	httpd_stop(d);
	return 0;
}
