/*
 * routes.c - routing, validation and answers.
 *
 * Every request gets a struct request on MHD's first call. Bodies are
 * collected up to MAX_BODY_BYTES; on the last call the route answers at
 * once, or (votes, /visits) suspends until Redis and NATS are done.
 */
#define _POSIX_C_SOURCE 200809L
#include "routes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accesslog.h"
#include "buf.h"
#include "cast.h"
#include "httpd.h"
#include "log.h"
#include "page.h"
#include "parse.h"
#include "publish.h"
#include "ratelimit.h"
#include "request.h"
#include "watchdog.h"

#define COOKIE_NAME "voter_id"
#define COOKIE_ATTRS "; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"

static json_t *
routes_poll_json(const struct poll *p)
{
	json_t *opts = json_array();

	for (size_t i = 0; i < p->n_options; i++)
		json_array_append_new(opts, json_pack("{s:s, s:s}", "id",
		    p->options[i].id, "label", p->options[i].label));
	return json_pack("{s:s, s:s, s:o}", "id", p->id, "title", p->title,
	    "options", opts);
}

int
routes_init(struct gateway *gw)
{
	json_t *arr = json_array(), *root;

	for (size_t i = 0; i < polls_count(gw->polls); i++)
		json_array_append_new(arr, routes_poll_json(polls_at(gw->polls,
		    i)));
	root = json_pack("{s:o}", "polls", arr); /* takes arr */
	gw->polls_json = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return gw->polls_json != NULL ? 0 : -1;
}

void
routes_fini(struct gateway *gw)
{
	free(gw->polls_json);
	gw->polls_json = NULL;
}

/* Queues resp with status, remembering the status for metrics and logs. */
static enum MHD_Result
routes_queue(struct request *r, unsigned status, struct MHD_Response *resp)
{
	r->status = status;
	return httpd_queue(r->conn, status, resp);
}

static enum MHD_Result
routes_error(struct request *r, unsigned status, const char *code,
    const char *msg)
{
	return routes_queue(r, status, httpd_response_error(code, "%s", msg));
}

static enum MHD_Result
routes_method_not_allowed(struct request *r, const char *allow)
{
	struct MHD_Response *resp;

	resp = httpd_response_error("method_not_allowed",
	    "%s is not allowed here; use %s", r->method, allow);
	if (resp != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	return routes_queue(r, 405, resp);
}

static enum MHD_Result
routes_retry_later(struct request *r, unsigned status, const char *code,
    const char *msg)
{
	struct MHD_Response *resp;

	resp = httpd_response_error(code, "%s", msg);
	if (resp != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	return routes_queue(r, status, resp);
}

static enum MHD_Result
routes_unavailable(struct request *r, const char *why)
{
	return routes_retry_later(r, 503, "unavailable", why);
}

static bool
routes_is(const char *method, const char *m)
{
	return strcmp(method, m) == 0;
}

static bool
routes_get(const char *method)
{
	return routes_is(method, "GET") || routes_is(method, "HEAD");
}

/* The voter cookie, or a new random id (an invalid cookie is replaced,
 * never echoed: no header injection through it). Read once per request. */
static const char *
routes_voter_cookie(struct request *r)
{
	const char *v;

	if (r->cookie_voter[0] != '\0')
		return r->cookie_voter;
	v = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, COOKIE_NAME);
	if (v != NULL && vote_copy_token(r->cookie_voter, v, strlen(v)) == 0)
		return r->cookie_voter;
	if (vote_cast_id_new(r->cookie_voter) != 0)
		snprintf(r->cookie_voter, sizeof(r->cookie_voter), "anonymous");
	return r->cookie_voter;
}

/* Set on every page answer, as the original app did. */
static void
routes_set_cookie(struct request *r, struct MHD_Response *resp)
{
	char cookie[VOTE_TOKEN_MAX + 96];

	if (resp == NULL)
		return;
	snprintf(cookie, sizeof(cookie), COOKIE_NAME "=%s" COOKIE_ATTRS,
	    routes_voter_cookie(r));
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
}

/* The vote page, with a chosen option and/or a notice. */
static enum MHD_Result
routes_page(struct request *r, unsigned status, const char *chosen,
    const char *notice)
{
	struct MHD_Response *resp;
	struct buf b;

	buf_init(&b);
	page_render_vote(&b, polls_default(r->gw->polls), chosen, notice,
	    r->gw->hostname);
	resp = b.failed ? NULL : httpd_response_new(b.data, b.len,
	    "text/html; charset=utf-8", HTTPD_PAGE | HTTPD_NO_STORE);
	buf_fini(&b);
	routes_set_cookie(r, resp);
	if (resp != NULL && (status == 503 || status == 429))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	return routes_queue(r, status, resp);
}

/* An error for a vote: JSON for the API, the page with a notice for the
 * form; 429 and 503 say when to retry. */
static enum MHD_Result
routes_vote_error(struct request *r, unsigned status, const char *code,
    const char *msg)
{
	if (r->form)
		return routes_page(r, status, NULL, msg);
	if (status == 503 || status == 429)
		return routes_retry_later(r, status, code, msg);
	return routes_error(r, status, code, msg);
}

/* Called after the resume: the outcome is final. */
static enum MHD_Result
routes_answer_vote(struct request *r)
{
	char body[1024];
	size_t n;

	switch (r->outcome) {
	case OUTCOME_ACCEPTED:
	case OUTCOME_UNCHANGED:
		if (r->form)
			return routes_page(r, 200, r->vote.option, NULL);
		n = cast_answer_json(r, body, sizeof(body));
		return routes_queue(r, 200, httpd_response_new(body, n,
		    "application/json", HTTPD_NO_STORE));
	case OUTCOME_REPLAY: {
		/* "<status> <body>" as stored by the first answer. */
		char *sp = strchr(r->replay, ' ');
		unsigned status = (unsigned)strtoul(r->replay, NULL, 10);
		struct MHD_Response *resp;

		if (sp == NULL || status < 200 || status > 299)
			return routes_unavailable(r, "bad idempotency record");
		resp = httpd_response_new(sp + 1, strlen(sp + 1),
		    "application/json", HTTPD_NO_STORE);
		if (resp != NULL)
			MHD_add_response_header(resp, "Idempotent-Replayed",
			    "true");
		return routes_queue(r, status, resp);
	}
	case OUTCOME_VISITS:
		snprintf(body, sizeof(body), "Hello from Redis! I have been "
		    "seen %lld times.\n", r->count);
		return routes_queue(r, 200, httpd_response_new(body,
		    strlen(body), "text/plain; charset=utf-8",
		    HTTPD_NO_STORE));
	case OUTCOME_UNAVAILABLE:
	case OUTCOME_NONE:
		break;
	}
	if (r->route == GW_ROUTE_VISITS)
		return routes_unavailable(r, r->why != NULL ? r->why :
		    "Redis is unavailable");
	return routes_vote_error(r, 503, "unavailable", r->why != NULL ?
	    r->why : "the vote could not be taken");
}

static const struct {
	enum parse_result r;
	unsigned status;
	const char *code;
} routes_parse_errors[] = {
	{PARSE_MALFORMED, 400, "bad_request"},
	{PARSE_BAD_VOTER, 422, "bad_voter"},
	{PARSE_UNKNOWN_OPTION, 422, "unknown_option"},
};

/* 413: the vote page for the form, JSON elsewhere. */
static enum MHD_Result
routes_too_large(struct request *r)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "the body is over %ld bytes",
	    r->gw->cfg.max_body_bytes);
	return routes_vote_error(r, 413, "payload_too_large", msg);
}

/*
 * First call of a request whose Content-Length is over MAX_BODY_BYTES, on
 * any route: answered before the body is read. MHD (0.9.75) takes a
 * response queued on the first call as "early": it reads no body, adds
 * "Connection: close" and closes after the answer, so the unread body can
 * never be taken for a next request on a kept-alive connection.
 */
static enum MHD_Result
routes_declared_too_large(struct request *r, const char *url)
{
	const char *cap[1];
	size_t cap_len[1];

	if (strcmp(url, "/") == 0 && routes_is(r->method, "POST")) {
		r->route = GW_ROUTE_FORM;
		r->form = true;
	} else if (httpd_path_match(url, "/api/v1/polls/*/votes", cap,
	    cap_len, 1)) {
		r->route = GW_ROUTE_VOTES;
	}
	return routes_too_large(r);
}

/* POST / and POST /api/v1/polls/{poll}/votes, once the body is in. */
static enum MHD_Result
routes_vote(struct request *r)
{
	struct gateway *gw = r->gw;
	const char *ct, *idem, *why = NULL;
	enum parse_format f;
	enum parse_result pr;
	char client[64];

	if (atomic_load(&gw->draining))
		return routes_vote_error(r, 503, "unavailable",
		    "the gateway is shutting down");
	if (r->body.too_large)
		return routes_too_large(r);
	if (gw->rl != NULL) {
		httpd_client_addr(r->conn, client, sizeof(client));
		if (!ratelimit_allow(gw->rl, client, metrics_now_us())) {
			char msg[96];

			snprintf(msg, sizeof(msg), "too many votes from %s",
			    client);
			metrics_inc(&gw->metrics.rate_limited);
			return routes_vote_error(r, 429, "rate_limited", msg);
		}
	}
	ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	f = parse_content_type(ct);
	if (r->form && f == PARSE_FORMAT_NONE)
		f = PARSE_FORMAT_FORM; /* the original's clients always send
		                        * a form, some without saying so */
	if (f == PARSE_FORMAT_NONE || f == PARSE_FORMAT_OTHER ||
	    (r->form && f != PARSE_FORMAT_FORM))
		return routes_vote_error(r, 415, "unsupported_media_type",
		    r->form ? "send application/x-www-form-urlencoded" :
		    "send application/json, application/x-www-form-urlencoded "
		    "or application/x-protobuf");
	pr = parse_vote(f, r->body.data, r->body.len, &r->vote, &why);
	if (r->form) {
		/* The form's voter is the cookie, whatever the body says. */
		const char *voter = routes_voter_cookie(r);
		memcpy(r->vote.voter, voter, strlen(voter) + 1);
	}
	if (pr == PARSE_OK)
		pr = parse_vote_check(r->poll, &r->vote, &why);
	if (pr != PARSE_OK) {
		for (size_t i = 0; i < sizeof(routes_parse_errors) /
		    sizeof(routes_parse_errors[0]); i++)
			if (routes_parse_errors[i].r == pr)
				return routes_vote_error(r,
				    routes_parse_errors[i].status,
				    routes_parse_errors[i].code, why);
		return routes_vote_error(r, 400, "bad_request", why);
	}
	idem = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "Idempotency-Key");
	if (idem != NULL && !r->form) {
		if (vote_copy_token(r->vote.cast_id, idem, strlen(idem)) != 0)
			return routes_error(r, 400, "bad_request",
			    "Idempotency-Key must be 1 to 128 characters of "
			    "[A-Za-z0-9._:@-]");
		r->has_idem = true;
	}
	if (cast_start(r))
		return MHD_YES; /* answered after the resume */
	return routes_answer_vote(r);
}

static void
routes_on_visit(struct dedup_job *job, void *cls)
{
	struct request *r = cls;

	if (job->status == DEDUP_OK) {
		r->outcome = OUTCOME_VISITS;
		r->count = job->count;
	} else {
		r->outcome = OUTCOME_UNAVAILABLE;
		r->why = "Redis is unavailable";
	}
	request_resume(r);
}

static enum MHD_Result
routes_visits(struct request *r)
{
	memset(&r->dj, 0, sizeof(r->dj));
	r->dj.op = DEDUP_OP_INCR;
	r->dj.done = routes_on_visit;
	r->dj.cls = r;
	if (!request_suspend(r))
		return routes_unavailable(r, "the gateway is shutting down");
	if (dedup_submit(r->gw->dedup, &r->dj) != 0) {
		r->outcome = OUTCOME_UNAVAILABLE;
		r->why = "too many requests waiting for Redis";
		request_resume(r);
	}
	return MHD_YES;
}

static enum MHD_Result
routes_readyz(struct request *r)
{
	struct gateway *gw = r->gw;
	bool nats = publish_ready(gw->pub), redis = dedup_up(gw->dedup);
	bool ready = nats && (redis || !gw->cfg.dedup_fail_closed) &&
	    !atomic_load(&gw->draining);
	json_t *j;

	j = json_pack("{s:s, s:b, s:b, s:b}", "status", ready ? "ready" :
	    "not_ready", "nats", nats, "redis", redis, "draining",
	    atomic_load(&gw->draining));
	return routes_queue(r, ready ? 200 : 503, httpd_response_json(j,
	    HTTPD_NO_STORE));
}

static enum MHD_Result
routes_metrics(struct request *r)
{
	struct gateway *gw = r->gw;
	struct MHD_Response *resp;
	struct buf b;

	atomic_store(&gw->metrics.votes_in_flight,
	    atomic_load(&gw->suspended));
	buf_init(&b);
	gwmetrics_write(&gw->metrics, &b, publish_ready(gw->pub),
	    dedup_up(gw->dedup));
	resp = b.failed ? NULL : httpd_response_new(b.data, b.len,
	    "text/plain; version=0.0.4; charset=utf-8", HTTPD_NO_STORE);
	buf_fini(&b);
	return routes_queue(r, 200, resp);
}

/* Last call of a request whose body (if any) is in. */
static enum MHD_Result
routes_dispatch(struct request *r, const char *url)
{
	struct gateway *gw = r->gw;
	const char *m = r->method;
	const char *cap[1];
	size_t cap_len[1];

	if (strcmp(url, "/") == 0) {
		if (routes_get(m)) {
			r->route = GW_ROUTE_PAGE;
			return routes_page(r, 200, NULL, NULL);
		}
		r->route = GW_ROUTE_FORM;
		if (!routes_is(m, "POST"))
			return routes_method_not_allowed(r, "GET, HEAD, POST");
		r->form = true;
		r->poll = polls_default(gw->polls);
		return routes_vote(r);
	}
	if (strncmp(url, "/static/", 8) == 0) {
		const char *type, *body;
		size_t len;

		r->route = GW_ROUTE_STATIC;
		body = page_asset(url, &type, &len);
		if (body == NULL)
			return routes_error(r, 404, "not_found", "no such file");
		if (!routes_get(m))
			return routes_method_not_allowed(r, "GET, HEAD");
		return routes_queue(r, 200, httpd_response_new(body, len, type,
		    0));
	}
	if (strncmp(url, "/api/v1/polls", 13) == 0) {
		r->route = GW_ROUTE_POLLS;
		if (strcmp(url, "/api/v1/polls") == 0) {
			if (!routes_get(m))
				return routes_method_not_allowed(r, "GET, HEAD");
			return routes_queue(r, 200, httpd_response_new(
			    gw->polls_json, strlen(gw->polls_json),
			    "application/json", HTTPD_NO_STORE));
		}
		if (httpd_path_match(url, "/api/v1/polls/*", cap, cap_len, 1) ||
		    httpd_path_match(url, "/api/v1/polls/*/votes", cap,
		    cap_len, 1)) {
			bool votes = cap[0][cap_len[0]] != '\0';

			if (votes)
				r->route = GW_ROUTE_VOTES;
			r->poll = polls_find(gw->polls, cap[0], cap_len[0]);
			if (r->poll == NULL)
				return routes_error(r, 404, "unknown_poll",
				    "no such poll");
			if (!votes) {
				if (!routes_get(m))
					return routes_method_not_allowed(r,
					    "GET, HEAD");
				return routes_queue(r, 200, httpd_response_json(
				    routes_poll_json(r->poll), HTTPD_NO_STORE));
			}
			if (!routes_is(m, "POST"))
				return routes_method_not_allowed(r, "POST");
			return routes_vote(r);
		}
	} else if (strcmp(url, "/visits") == 0) {
		/* GET only: a GET is a visit (INCR hits). A HEAD must have
		 * no side effect, and without the INCR it has no count to
		 * give the Content-Length a GET would have. */
		r->route = GW_ROUTE_VISITS;
		if (!routes_is(m, "GET"))
			return routes_method_not_allowed(r, "GET");
		return routes_visits(r);
	} else if (strcmp(url, "/healthz") == 0) {
		r->route = GW_ROUTE_HEALTHZ;
		if (!routes_get(m))
			return routes_method_not_allowed(r, "GET, HEAD");
		return routes_queue(r, 200, httpd_response_new(
		    "{\"status\":\"ok\"}", 15, "application/json",
		    HTTPD_NO_STORE));
	} else if (strcmp(url, "/readyz") == 0) {
		r->route = GW_ROUTE_READYZ;
		if (!routes_get(m))
			return routes_method_not_allowed(r, "GET, HEAD");
		return routes_readyz(r);
	} else if (strcmp(url, "/metrics") == 0) {
		r->route = GW_ROUTE_METRICS;
		if (!routes_get(m))
			return routes_method_not_allowed(r, "GET, HEAD");
		return routes_metrics(r);
	}
	r->route = GW_ROUTE_OTHER;
	return routes_error(r, 404, "not_found", "no such route");
}

enum MHD_Result
routes_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct gateway *gw = cls;
	struct request *r = *con_cls;

	(void)version;
	if (r == NULL) {
		const char *cl;

		r = request_new(gw, c, url, method);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		/* MHD has checked that a Content-Length is all digits (else
		 * 400); one too long for strtoull saturates, still "over". */
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) >
		    (unsigned long long)gw->cfg.max_body_bytes) {
			if (!watchdog_request_in(c))
				return MHD_NO;
			return routes_declared_too_large(r, url);
		}
		return MHD_YES;
	}
	if (r->suspended) {
		r->suspended = false;
		return routes_answer_vote(r);
	}
	if (*upload_data_size > 0) {
		/* A chunked body past the limit is dropped as it comes: MHD
		 * 0.9.75 refuses a response queued in the middle of a body
		 * (MHD_queue_response fails outside the first and the last
		 * call), so the 413 goes out at its end. */
		if (httpd_body_add(&r->body, upload_data,
		    *upload_data_size) != 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* All in: from here the request is answered, never cut. */
	if (!watchdog_request_in(c))
		return MHD_NO;
	return routes_dispatch(r, url);
}

void
routes_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct gateway *gw = cls;
	struct request *r = *con_cls;

	(void)toe;
	if (r == NULL)
		return;
	*con_cls = NULL;
	gwmetrics_count_request(&gw->metrics, r->route, r->status);
	if (r->route == GW_ROUTE_FORM || r->route == GW_ROUTE_VOTES) {
		if (r->status == 503)
			metrics_inc(&gw->metrics.votes_unavailable);
		else if (r->status >= 400 && r->status < 500)
			metrics_inc(&gw->metrics.votes_rejected);
		metrics_hist_observe(&gw->metrics.request_seconds,
		    (double)(metrics_now_us() - r->start_us) / 1e6);
	}
	if (gw->access_log)
		accesslog_write(r, c, metrics_now_us());
	request_free(r);
	watchdog_request_done(c);
}
