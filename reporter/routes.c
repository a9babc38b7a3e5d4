/*
 * routes.c - request routing and the small answers.
 */
#define _POSIX_C_SOURCE 200809L
#include "routes.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "httpd.h"
#include "listen.h"
#include "log.h"
#include "page.h"
#include "polls.h"
#include "sse.h"
#include "tallies.h"
#include "watchdog.h"

/* The poll named by segment [id, id + len), or NULL after answering 404. */
static const struct poll *
routes_find_poll(struct reporter *r, struct MHD_Connection *c,
    const char *id, size_t len, enum MHD_Result *ret)
{
	const struct poll *poll = NULL;

	if (vote_id_valid(id, len))
		poll = polls_find(r->polls, id, len);
	if (poll == NULL)
		*ret = httpd_send_error(c, MHD_HTTP_NOT_FOUND, "unknown_poll",
		    "no such poll");
	return poll;
}

static size_t
routes_poll_index(struct reporter *r, const struct poll *poll)
{
	return (size_t)(poll - polls_at(r->polls, 0));
}

static enum MHD_Result
routes_tally(struct reporter *r, struct MHD_Connection *c,
    const struct poll *poll)
{
	struct tally_snapshot s;
	struct MHD_Response *resp;
	char *json;

	tallies_get(r->tallies, routes_poll_index(r, poll), &s);
	json = tallies_json(poll, &s);
	if (json == NULL)
		return MHD_NO;
	resp = httpd_response_new(json, strlen(json), "application/json",
	    HTTPD_NO_STORE);
	free(json);
	return httpd_queue(c, MHD_HTTP_OK, resp);
}

/* {"polls": [{"id", "title", "options": [{"id", "label"}]}]}: the
 * POLLS_FILE shape. */
static enum MHD_Result
routes_polls(struct reporter *r, struct MHD_Connection *c)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < polls_count(r->polls); i++) {
		const struct poll *p = polls_at(r->polls, i);
		json_t *opts = json_array();

		for (size_t k = 0; opts != NULL && k < p->n_options; k++)
			json_array_append_new(opts, json_pack("{s:s, s:s}",
			    "id", p->options[k].id, "label",
			    p->options[k].label));
		json_array_append_new(arr, json_pack("{s:s, s:s, s:o*}", "id",
		    p->id, "title", p->title, "options", opts));
	}
	return httpd_send_json(c, MHD_HTTP_OK, json_pack("{s:o*}", "polls",
	    arr));
}

static enum MHD_Result
routes_page(struct reporter *r, struct MHD_Connection *c,
    const struct poll *poll)
{
	struct tally_snapshot s;
	struct buf b;
	enum MHD_Result ret;

	tallies_get(r->tallies, routes_poll_index(r, poll), &s);
	buf_init(&b);
	if (page_render_results(&b, poll, &s) != 0) {
		buf_fini(&b);
		return MHD_NO;
	}
	/* The page carries a live tally: never cache it. */
	ret = httpd_queue(c, MHD_HTTP_OK, httpd_response_new(b.data, b.len,
	    "text/html; charset=utf-8", HTTPD_PAGE | HTTPD_NO_STORE));
	buf_fini(&b);
	return ret;
}

static enum MHD_Result
routes_static(struct MHD_Connection *c, const char *body, size_t len,
    const char *type)
{
	struct MHD_Response *resp;

	resp = httpd_response_new(body, len, type, 0);
	if (resp != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
		    "public, max-age=300");
	return httpd_queue(c, MHD_HTTP_OK, resp);
}

static enum MHD_Result
routes_readyz(struct reporter *r, struct MHD_Connection *c)
{
	bool ready = listener_ready(r->listener);

	return httpd_send_json(c, ready ? MHD_HTTP_OK :
	    MHD_HTTP_SERVICE_UNAVAILABLE, json_pack("{s:b, s:s}", "ready",
	    ready, "postgres", listener_state(r->listener)));
}

static enum MHD_Result
routes_metrics(struct reporter *r, struct MHD_Connection *c)
{
	struct reporter_metrics *m = r->metrics;
	struct buf b;
	enum MHD_Result ret;
	double age = tallies_refresh_age_s(r->tallies);

	buf_init(&b);
	metrics_write_gauge(&b, "tally_reporter_sse_clients",
	    "Server-Sent Events streams open now.", "",
	    (double)atomic_load(&m->sse_clients));
	metrics_write_counter(&b, "tally_reporter_sse_connections_total",
	    "Event streams opened.", "", metrics_get(&m->sse_connects));
	metrics_write_counter(&b, "tally_reporter_sse_updates_sent_total",
	    "Tally events written to clients.", "",
	    metrics_get(&m->sse_events));
	metrics_write_counter(&b, "tally_reporter_sse_heartbeats_sent_total",
	    "Heartbeat comments written to clients.", "",
	    metrics_get(&m->sse_heartbeats));
	metrics_write_counter(&b, "tally_reporter_sse_broadcasts_total",
	    "Tally changes fanned out to a poll's watchers.", "",
	    metrics_get(&m->sse_broadcasts));
	metrics_write_gauge(&b, "tally_reporter_tally_age_seconds",
	    "Seconds since the tallies were last read from PostgreSQL "
	    "(-1: never).", "", age);
	metrics_write_counter(&b, "tally_reporter_notifications_total",
	    "NOTIFY tally_changed received.", "",
	    metrics_get(&m->notifications));
	metrics_write_counter(&b, "tally_reporter_poll_reloads_total",
	    "Single-poll reloads after a notification.", "",
	    metrics_get(&m->poll_reloads));
	metrics_write_counter(&b, "tally_reporter_safety_polls_total",
	    "Full reloads on the safety timer.", "",
	    metrics_get(&m->safety_polls));
	metrics_write_counter(&b, "tally_reporter_pg_errors_total",
	    "Failed PostgreSQL queries and lost connections.", "",
	    metrics_get(&m->pg_errors));
	metrics_write_counter(&b, "tally_reporter_pg_connects_total",
	    "Successful PostgreSQL (re)connections.", "",
	    metrics_get(&m->pg_connects));
	metrics_write_counter(&b, "tally_reporter_connections_cut_total",
	    "Connections cut because a request did not arrive in full within "
	    "CONNECTION_TIMEOUT_S (slowloris).", "",
	    metrics_get(&m->connections_cut));
	metrics_write_gauge(&b, "tally_reporter_ready",
	    "1 when PostgreSQL is connected and the tallies table readable.",
	    "", listener_ready(r->listener) ? 1 : 0);
	metrics_write_counter(&b, "tally_reporter_http_requests_total",
	    "HTTP requests received.", "", metrics_get(&m->http_requests));
	ret = httpd_queue(c, MHD_HTTP_OK, httpd_response_new(b.data, b.len,
	    "text/plain; version=0.0.4; charset=utf-8", HTTPD_NO_STORE));
	buf_fini(&b);
	return ret;
}

enum MHD_Result
routes_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct reporter *r = cls;
	const char *cap[1];
	size_t cap_len[1];
	const struct poll *poll;
	enum MHD_Result ret = MHD_NO;
	size_t len;
	const char *body;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	/* Every route is a GET: answer on the first call. A body, if any,
	 * is never read; MHD discards it after the answer. From here the
	 * request is answered, never cut; MHD_NO if the watchdog was first. */
	*upload_data_size = 0;
	if (!watchdog_request_in(c))
		return MHD_NO;
	metrics_inc(&r->metrics->http_requests);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		struct MHD_Response *resp = httpd_response_error(
		    "method_not_allowed", "only GET and HEAD are served here");
		if (resp != NULL)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
			    "GET, HEAD");
		return httpd_queue(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
	}
	if (httpd_path_match(url, "/healthz", NULL, NULL, 0))
		return httpd_send_json(c, MHD_HTTP_OK, json_pack("{s:s}",
		    "status", "ok"));
	if (httpd_path_match(url, "/readyz", NULL, NULL, 0))
		return routes_readyz(r, c);
	if (httpd_path_match(url, "/metrics", NULL, NULL, 0))
		return routes_metrics(r, c);
	if (httpd_path_match(url, "/api/v1/polls", NULL, NULL, 0))
		return routes_polls(r, c);
	if (httpd_path_match(url, "/api/v1/polls/*/tally", cap, cap_len, 1)) {
		if ((poll = routes_find_poll(r, c, cap[0], cap_len[0], &ret)))
			ret = routes_tally(r, c, poll);
		return ret;
	}
	if (httpd_path_match(url, "/api/v1/polls/*/events", cap, cap_len, 1)) {
		if ((poll = routes_find_poll(r, c, cap[0], cap_len[0], &ret)))
			ret = sse_hub_serve(r->hub, c,
			    routes_poll_index(r, poll),
			    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
			    "Last-Event-ID"));
		return ret;
	}
	if (httpd_path_match(url, "/", NULL, NULL, 0))
		return routes_page(r, c, polls_default(r->polls));
	if (httpd_path_match(url, "/polls/*", cap, cap_len, 1)) {
		if ((poll = routes_find_poll(r, c, cap[0], cap_len[0], &ret)))
			ret = routes_page(r, c, poll);
		return ret;
	}
	if (httpd_path_match(url, "/static/results.css", NULL, NULL, 0)) {
		body = page_css(&len);
		return routes_static(c, body, len, "text/css; charset=utf-8");
	}
	if (httpd_path_match(url, "/static/results.js", NULL, NULL, 0)) {
		body = page_js(&len);
		return routes_static(c, body, len,
		    "text/javascript; charset=utf-8");
	}
	/* Browsers ask for it on their own; "nothing" keeps logs clean. */
	if (httpd_path_match(url, "/favicon.ico", NULL, NULL, 0))
		return httpd_queue(c, MHD_HTTP_NO_CONTENT,
		    httpd_response_new("", 0, NULL, 0));
	return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "not_found",
	    "no such resource");
}

void
routes_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)con_cls;
	(void)toe;
	/* The next request on a kept-alive connection gets a fresh deadline. */
	watchdog_request_done(c);
}
