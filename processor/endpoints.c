/*
 * endpoints.c - /healthz, /readyz, /metrics.
 */
#include "endpoints.h"

#include <string.h>

static enum MHD_Result
endpoints_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req)
{
	struct worker *w = cls;
	enum MHD_Result rc;
	struct buf b;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return httpd_send_error(c, 405, "method_not_allowed",
		    "only GET");
	if (strcmp(url, "/healthz") == 0)
		return httpd_send_text(c, 200, "text/plain", "ok\n",
		    HTTPD_NO_STORE);
	if (strcmp(url, "/readyz") == 0) {
		if (worker_ready(w))
			return httpd_send_text(c, 200, "text/plain",
			    "ready\n", HTTPD_NO_STORE);
		return httpd_send_text(c, 503, "text/plain",
		    "not ready: NATS, consumer or PostgreSQL unavailable\n",
		    HTTPD_NO_STORE);
	}
	if (strcmp(url, "/metrics") == 0) {
		buf_init(&b);
		worker_write_metrics(w, &b);
		rc = httpd_queue(c, 200, b.failed ? NULL :
		    httpd_response_new(b.data != NULL ? b.data : "", b.len,
		    "text/plain; version=0.0.4", HTTPD_NO_STORE));
		buf_fini(&b);
		return rc;
	}
	return httpd_send_error(c, 404, "not_found", "no such endpoint");
}

struct httpd *
endpoints_start(const char *addr, long port, struct worker *w)
{
	struct httpd_config hc = {
		.addr = addr,
		.port = port,
		.threads = 1,
		.max_connections = 64,
		.max_header_bytes = 16384,
		.connection_timeout_s = 10,
	};

	return httpd_start(&hc, endpoints_handle, NULL, w);
}
