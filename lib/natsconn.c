/*
 * natsconn.c - connect, reconnect forever, ensure the VOTES stream.
 */
#define _POSIX_C_SOURCE 200809L
#include "natsconn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "vote.h"

static void
natsconn_on_disconnected(natsConnection *nc, void *closure)
{
	(void)closure;
	/* Closing on purpose also "disconnects"; that is no news. */
	if (natsConnection_IsClosed(nc))
		return;
	log_warn("nats: disconnected; reconnecting");
}

/* The server nc is connected to, for a log line: nats.c gives its URL
 * as written, credentials and all. */
static void
natsconn_connected_url(natsConnection *nc, char *out, size_t cap)
{
	char url[512];

	if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK ||
	    url[0] == '\0')
		snprintf(url, sizeof(url), "?"); /* none, or gone again */
	natsconn_redact(url, out, cap);
}

static void
natsconn_on_reconnected(natsConnection *nc, void *closure)
{
	char url[512];

	(void)closure;
	natsconn_connected_url(nc, url, sizeof(url));
	log_info("nats: reconnected to %s", url);
}

static void
natsconn_on_connected(natsConnection *nc, void *closure)
{
	char url[512];

	(void)closure;
	natsconn_connected_url(nc, url, sizeof(url));
	log_info("nats: connected to %s", url);
}

static void
natsconn_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
    void *closure)
{
	(void)nc;
	(void)sub;
	(void)closure;
	log_warn("nats: asynchronous error: %s", natsStatus_GetText(err));
}

/*
 * True when an authority without '@' (a[0 .. len-1]) may still hold a
 * secret: one that starts with ':' (nats.c names a server whose URL had
 * ":password@" as "nats://:password" + host, without the '@'), or whose
 * port is not a number (a password cut at a comma: "nats://user:pa").
 */
static bool
natsconn_suspect(const char *a, size_t len)
{
	size_t colon = len;

	if (len > 0 && a[0] == ':')
		return true;
	for (size_t i = 0; i < len; i++)
		if (a[i] == ':')
			colon = i;
		else if (a[i] == ']')
			colon = len; /* an IPv6 literal's colons */
	for (size_t i = colon + 1; i < len; i++)
		if (a[i] < '0' || a[i] > '9')
			return true;
	return false;
}

void
natsconn_redact(const char *url, char *out, size_t cap)
{
	size_t n = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	for (const char *p = url;;) {
		size_t len = strcspn(p, ","), host = 0, at = len, auth;
		int k;

		for (size_t i = 0; i + 2 < len; i++)
			if (p[i] == ':' && p[i + 1] == '/' && p[i + 2] == '/') {
				host = i + 3;
				break;
			}
		/* The last '@' anywhere: a password may hold '@' and '/'
		 * (nats.c takes them as written); masking too much is fine. */
		for (size_t i = host; i < len; i++)
			if (p[i] == '@')
				at = i;
		auth = host + strcspn(p + host, "/,"); /* never past len */
		if (at < len)
			k = snprintf(out + n, cap - n, "%.*s***%.*s", (int)host,
			    p, (int)(len - at), p + at);
		else if (natsconn_suspect(p + host, auth - host))
			k = snprintf(out + n, cap - n, "%.*s***%.*s", (int)host,
			    p, (int)(len - auth), p + auth);
		else
			k = snprintf(out + n, cap - n, "%.*s", (int)len, p);
		if (k < 0 || (size_t)k >= cap - n || p[len] == '\0' ||
		    n + (size_t)k + 1 >= cap)
			return; /* done, or cut short (never inside a secret) */
		n += (size_t)k;
		out[n++] = ',';
		out[n] = '\0';
		p += len + 1;
	}
}

struct natsconn_config
natsconn_config_of(const struct natsconn_settings *s, const char *name)
{
	struct natsconn_config c = {
		.url = s->url, .user = s->user, .password = s->password,
		.token = s->token, .tls_ca = s->tls_ca, .name = name,
		.stream_replicas = s->stream_replicas,
	};

	return c;
}

/*
 * Gives nats.c the server URLs of list (comma-separated, spaces around
 * them allowed). natsOptions_SetURL takes one URL only: nats.c 3.4.1 parses
 * a list passed there as a single URL (host from the first, port up to the
 * first comma, a password up to the list's last '@'), so a list must go
 * through natsOptions_SetServers, which also reads each server's own
 * credentials.
 */
static natsStatus
natsconn_set_servers(natsOptions *opts, const char *list)
{
	const char **urls = NULL;
	char *copy, *save = NULL;
	int n = 1;
	natsStatus s;

	if (strchr(list, ',') == NULL)
		return natsOptions_SetURL(opts, list);
	for (const char *p = list; *p != '\0'; p++)
		n += *p == ',';
	copy = strdup(list);
	urls = calloc((size_t)n, sizeof(*urls));
	if (copy == NULL || urls == NULL) {
		free(copy);
		free(urls);
		return NATS_NO_MEMORY;
	}
	n = 0;
	for (char *u = strtok_r(copy, ",", &save); u != NULL;
	    u = strtok_r(NULL, ",", &save)) {
		size_t len;

		u += strspn(u, " \t");
		for (len = strlen(u); len > 0 && (u[len - 1] == ' ' ||
		    u[len - 1] == '\t'); len--)
			u[len - 1] = '\0';
		if (len > 0)
			urls[n++] = u;
	}
	s = n > 0 ? natsOptions_SetServers(opts, urls, n) : NATS_INVALID_ARG;
	free(urls);
	free(copy);
	return s;
}

int
natsconn_open(const struct natsconn_config *cfg, jsOptions *jso,
    natsConnection **nc, jsCtx **js)
{
	natsOptions *opts = NULL;
	char url[512];
	natsStatus s;

	*nc = NULL;
	*js = NULL;
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsconn_set_servers(opts, cfg->url);
	if (s != NATS_OK) {
		natsconn_redact(cfg->url, url, sizeof(url));
		log_error("NATS_URL \"%s\": %s", url, natsStatus_GetText(s));
		goto fail;
	}
	if (s == NATS_OK && cfg->name != NULL)
		s = natsOptions_SetName(opts, cfg->name);
	if (s == NATS_OK && cfg->user != NULL && cfg->user[0] != '\0')
		s = natsOptions_SetUserInfo(opts, cfg->user, cfg->password);
	if (s == NATS_OK && cfg->token != NULL && cfg->token[0] != '\0')
		s = natsOptions_SetToken(opts, cfg->token);
	if (s == NATS_OK && cfg->tls_ca != NULL && cfg->tls_ca[0] != '\0') {
		s = natsOptions_SetSecure(opts, true);
		if (s == NATS_OK)
			s = natsOptions_LoadCATrustedCertificates(opts,
			    cfg->tls_ca);
		if (s != NATS_OK) {
			log_error("NATS_TLS_CA \"%s\": %s", cfg->tls_ca,
			    natsStatus_GetText(s));
			goto fail;
		}
	}
	/* Never give up: a service outlives any NATS outage. */
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, 250);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectJitter(opts, 100, 1000);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(opts, natsconn_on_disconnected,
		    NULL);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(opts, natsconn_on_reconnected,
		    NULL);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(opts, natsconn_on_error, NULL);
	if (s != NATS_OK) {
		log_error("nats options: %s", natsStatus_GetText(s));
		goto fail;
	}
	natsconn_redact(cfg->url, url, sizeof(url));
	/* One plain attempt first: retry-on-failed-connect hides the reason
	 * (a refused password, a TLS error), and an operator needs it. */
	s = natsOptions_SetRetryOnFailedConnect(opts, false, NULL, NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(nc, opts);
	if (s == NATS_OK) {
		char cur[512];

		natsconn_connected_url(*nc, cur, sizeof(cur));
		log_info("nats: connected to %s", cur);
	} else {
		const char *why = nats_GetLastError(NULL);

		log_warn("nats: %s not reachable yet (%s); retrying in the "
		    "background", url, why != NULL && why[0] != '\0' ? why :
		    natsStatus_GetText(s));
		s = natsOptions_SetRetryOnFailedConnect(opts, true,
		    natsconn_on_connected, NULL);
		if (s == NATS_OK)
			s = natsConnection_Connect(nc, opts);
		if (s == NATS_NOT_YET_CONNECTED)
			s = NATS_OK;
	}
	if (s != NATS_OK) {
		log_error("nats: cannot connect to %s: %s", url,
		    natsStatus_GetText(s));
		goto fail;
	}
	s = natsConnection_JetStream(js, *nc, jso);
	if (s != NATS_OK) {
		log_error("nats: JetStream context: %s", natsStatus_GetText(s));
		goto fail;
	}
	natsOptions_Destroy(opts);
	return 0;
fail:
	natsconn_close(*nc, *js, 0);
	*nc = NULL;
	*js = NULL;
	natsOptions_Destroy(opts);
	return -1;
}

void
natsconn_close(natsConnection *nc, jsCtx *js, int64_t timeout_ms)
{
	if (nc != NULL && timeout_ms > 0 && natsconn_connected(nc))
		(void)natsConnection_FlushTimeout(nc, timeout_ms);
	jsCtx_Destroy(js);
	if (nc != NULL) {
		natsConnection_Close(nc);
		natsConnection_Destroy(nc);
	}
}

bool
natsconn_connected(natsConnection *nc)
{
	return nc != NULL &&
	    natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}

int
natsconn_stream_ensure(jsCtx *js, long replicas)
{
	jsStreamConfig sc;
	const char *subject = NATSCONN_SUBJECTS;

	natsconn_stream_config_init(&sc, NATSCONN_STREAM, &subject, replicas,
	    "tally votes: one tally.v1.Vote per cast");
	sc.Duplicates = (int64_t)NATSCONN_DUPLICATE_WINDOW_MS * 1000000;
	return natsconn_stream_ensure_config(js, &sc, true);
}

void
natsconn_stream_config_init(jsStreamConfig *sc, const char *name,
    const char **subject, long replicas, const char *description)
{
	jsStreamConfig_Init(sc);
	sc->Name = name;
	sc->Subjects = subject;
	sc->SubjectsLen = 1;
	sc->Retention = js_LimitsPolicy;
	sc->Storage = js_FileStorage;
	sc->Replicas = replicas > 0 ? replicas : 1;
	sc->Description = description;
}

/* True if subject s lies inside w, a wildcard "x.>": "votes.>" holds
 * "votes.a" and "votes.*". Other w hold nothing (tally needs no more). */
static bool
natsconn_subject_within(const char *s, const char *w)
{
	size_t n = strlen(w);

	return n >= 2 && strcmp(w + n - 2, ".>") == 0 &&
	    strncmp(s, w, n - 1) == 0 && s[n - 1] != '\0';
}

static bool
natsconn_subject_listed(const jsStreamConfig *c, const char *subject)
{
	for (int i = 0; i < c->SubjectsLen; i++)
		if (strcmp(c->Subjects[i], subject) == 0)
			return true;
	return false;
}

/* Appends "; " (unless first) and what to why, cap bytes, truncating. */
static void
natsconn_why_add(char *why, size_t cap, const char *what)
{
	size_t len = strlen(why);

	if (len + 1 < cap)
		snprintf(why + len, cap - len, "%s%s", len > 0 ? "; " : "",
		    what);
}

const char *
natsconn_retention_name(jsRetentionPolicy r)
{
	switch (r) {
	case js_LimitsPolicy:
		return "limits";
	case js_InterestPolicy:
		return "interest";
	case js_WorkQueuePolicy:
		return "workqueue";
	}
	return "unknown";
}

const char *
natsconn_storage_name(jsStorageType t)
{
	switch (t) {
	case js_FileStorage:
		return "file";
	case js_MemoryStorage:
		return "memory";
	}
	return "unknown";
}

/*
 * Writes into why (cap bytes; empty if they match) how cur, an existing
 * stream's config, differs from want in what the server cannot change in
 * place: retention and storage.
 */
static void
natsconn_stream_fixed(const jsStreamConfig *cur, const jsStreamConfig *want,
    char *why, size_t cap)
{
	char what[96];

	why[0] = '\0';
	if (cur->Retention != want->Retention) {
		snprintf(what, sizeof(what), "%s retention, not %s",
		    natsconn_retention_name(cur->Retention),
		    natsconn_retention_name(want->Retention));
		natsconn_why_add(why, cap, what);
	}
	if (cur->Storage != want->Storage) {
		snprintf(what, sizeof(what), "%s storage, not %s",
		    natsconn_storage_name(cur->Storage),
		    natsconn_storage_name(want->Storage));
		natsconn_why_add(why, cap, what);
	}
}

/*
 * Sets *out to cur, an existing stream's config, with what tally owns put
 * back as want has it, and writes into why (cap bytes) what that changed;
 * why is empty when nothing did. Tally owns: want's subjects (each must be
 * listed; when one is missing, cur's subjects inside it are dropped, as the
 * server refuses overlapping ones), a duplicate window at least want's (or
 * cur's max age, if shorter: the server allows no longer one) and acks
 * (NoAck). Everything else stays cur's: the operator's.
 *
 * out borrows from cur and want, and from *subjects, which the caller
 * frees (NULL if the subjects did not change). Returns 0, or -1 when out
 * of memory.
 */
static int
natsconn_stream_mend(const jsStreamConfig *cur, const jsStreamConfig *want,
    jsStreamConfig *out, const char ***subjects, char *why, size_t cap)
{
	int64_t dup_ns = want->Duplicates;
	char what[128];
	int n = 0;

	*out = *cur;
	*subjects = NULL;
	why[0] = '\0';
	for (int i = 0; i < want->SubjectsLen; i++) {
		if (natsconn_subject_listed(cur, want->Subjects[i]))
			continue;
		snprintf(what, sizeof(what), "subject %s was missing",
		    want->Subjects[i]);
		natsconn_why_add(why, cap, what);
	}
	if (why[0] != '\0') {
		*subjects = calloc((size_t)cur->SubjectsLen +
		    (size_t)want->SubjectsLen, sizeof(**subjects));
		if (*subjects == NULL)
			return -1;
		for (int i = 0; i < cur->SubjectsLen; i++) {
			bool inside = false;

			for (int j = 0; j < want->SubjectsLen && !inside; j++)
				inside = natsconn_subject_within(
				    cur->Subjects[i], want->Subjects[j]) ||
				    strcmp(cur->Subjects[i],
				    want->Subjects[j]) == 0;
			if (!inside)
				(*subjects)[n++] = cur->Subjects[i];
		}
		for (int j = 0; j < want->SubjectsLen; j++)
			(*subjects)[n++] = want->Subjects[j];
		out->Subjects = *subjects;
		out->SubjectsLen = n;
	}
	if (cur->MaxAge > 0 && cur->MaxAge < dup_ns)
		dup_ns = cur->MaxAge;
	if (cur->Duplicates < dup_ns) {
		snprintf(what, sizeof(what), "duplicate window %" PRId64
		    " ms < %" PRId64 " ms", cur->Duplicates / 1000000,
		    dup_ns / 1000000);
		natsconn_why_add(why, cap, what);
		out->Duplicates = dup_ns;
	}
	if (cur->NoAck != want->NoAck) {
		natsconn_why_add(why, cap, want->NoAck ? "acks were on" :
		    "acks were off (no_ack)");
		out->NoAck = want->NoAck;
	}
	return 0;
}

int
natsconn_stream_ensure_config(jsCtx *js, jsStreamConfig *sc, bool update)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig fix;
	const char **subjects = NULL;
	const char *verb = "look up";
	jsErrCode jerr = 0;
	char fixed[256], why[512];
	natsStatus s;
	int rc = -1;

	s = js_GetStreamInfo(&si, js, sc->Name, NULL, &jerr);
	if (s == NATS_OK) {
		natsconn_stream_fixed(si->Config, sc, fixed, sizeof(fixed));
		if (natsconn_stream_mend(si->Config, sc, &fix, &subjects, why,
		    sizeof(why)) != 0) {
			log_error("nats: stream %s: out of memory", sc->Name);
			goto out;
		}
		if (!update) {
			if (fixed[0] != '\0')
				natsconn_why_add(why, sizeof(why), fixed);
			if (why[0] != '\0')
				log_warn("nats: stream %s is not as tally "
				    "would make it (%s); left as it is",
				    sc->Name, why);
			rc = 0;
			goto out;
		}
		/* Not worth a retry loop: nothing we do can change these.
		 * The stream still takes and serves votes. */
		if (fixed[0] != '\0')
			log_error("nats: stream %s has %s; that cannot be "
			    "changed in place, so it is used as it is: recreate "
			    "it to fix it (docs/STREAM.md)", sc->Name, fixed);
		if (why[0] == '\0') {
			rc = 0;
			goto out;
		}
		log_warn("nats: stream %s: putting back what tally relies on: "
		    "%s", sc->Name, why);
		verb = "update";
		/* fix borrows si's strings: si lives until after the call. */
		s = js_UpdateStream(NULL, js, &fix, NULL, &jerr);
	} else if (!update || s == NATS_NOT_FOUND ||
	    jerr == JSStreamNotFoundErr) {
		/* Without update, any failed look-up tries the create: its
		 * error is the one worth logging. */
		verb = "create";
		s = js_AddStream(NULL, js, sc, NULL, &jerr);
		/* Another process may have created it in between. */
		if (s != NATS_OK && jerr == JSStreamNameExistErr)
			s = NATS_OK;
	}
	if (s != NATS_OK) {
		log_warn("nats: cannot %s stream %s: %s (JetStream error %d)",
		    verb, sc->Name, natsStatus_GetText(s), (int)jerr);
		goto out;
	}
	rc = 0;
out:
	free(subjects);
	jsStreamInfo_Destroy(si);
	return rc;
}

void
natsconn_subject(const char *poll, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s", NATSCONN_SUBJECT_PREFIX, poll);
}

natsStatus
natsconn_vote_msg(natsMsg **msg, const struct vote *v)
{
	uint8_t payload[CODEC_VOTE_MAX_BYTES];
	char subject[sizeof(NATSCONN_SUBJECT_PREFIX) + VOTE_ID_MAX];
	size_t len;
	natsStatus s;

	*msg = NULL;
	if ((len = codec_vote_encode(v, payload, sizeof(payload))) == 0)
		return NATS_ERR;
	natsconn_subject(v->poll, subject, sizeof(subject));
	s = natsMsg_Create(msg, subject, NULL, (const char *)payload,
	    (int)len);
	/* Readable copies for people using `nats stream view`. */
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*msg, "Content-Type",
		    "application/x-protobuf");
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*msg, "Tally-Poll", v->poll);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*msg, "Tally-Option", v->option);
	if (s != NATS_OK) {
		natsMsg_Destroy(*msg);
		*msg = NULL;
	}
	return s;
}
