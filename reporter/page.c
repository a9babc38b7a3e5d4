/*
 * page.c - the results page, results.css and results.js.
 */
#define _POSIX_C_SOURCE 200809L
#include "page.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Bar colours cycle through this many classes (c0 .. c7). The first two
 * are the original app's. */
#define PAGE_COLOURS 8

void
page_shares(const int64_t *votes, size_t n, int *pct)
{
	int64_t total = 0, rem[POLL_OPTIONS_MAX];
	int left = 100;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		total += votes[i] > 0 ? votes[i] : 0;
	if (total == 0) {
		for (size_t i = 0; i < n; i++)
			pct[i] = (int)(100 / n) + (i < 100 % n ? 1 : 0);
		return;
	}
	for (size_t i = 0; i < n && i < POLL_OPTIONS_MAX; i++) {
		int64_t v = votes[i] > 0 ? votes[i] : 0;

		/* v * 100 fits: a count would need 9e16 votes to overflow. */
		pct[i] = (int)(v * 100 / total);
		rem[i] = v * 100 % total;
		left -= pct[i];
	}
	/* Hand the points lost to flooring to the largest remainders; a tie
	 * goes to the earlier option (so a 50.5/49.5 pair reads 51/49, as
	 * JavaScript's Math.round did in the original). */
	while (left-- > 0) {
		size_t best = 0;

		for (size_t i = 1; i < n; i++)
			if (rem[i] > rem[best])
				best = i;
		pct[best]++;
		rem[best] = -1;
	}
}

const char *
page_votes_text(int64_t total, char *out, size_t cap)
{
	if (total == 0)
		snprintf(out, cap, "No votes yet");
	else if (total == 1)
		snprintf(out, cap, "1 vote");
	else
		snprintf(out, cap, "%" PRId64 " votes", total);
	return out;
}

/* "Cats vs Dogs!" becomes "Cats vs Dogs -- Result", the original's title. */
static void
page_put_title(struct buf *b, const struct poll *poll)
{
	char title[POLL_LABEL_MAX + 1];
	size_t len = strlen(poll->title);

	memcpy(title, poll->title, len + 1);
	while (len > 0 && (title[len - 1] == '!' || title[len - 1] == ' '))
		title[--len] = '\0';
	buf_put_html(b, len > 0 ? title : poll->id);
	buf_puts(b, " -- Result");
}

int
page_render_results(struct buf *b, const struct poll *poll,
    const struct tally_snapshot *s)
{
	int pct[POLL_OPTIONS_MAX];
	char text[64];

	page_shares(s->votes, poll->n_options, pct);
	buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">\n<title>");
	page_put_title(b, poll);
	buf_puts(b, "</title>\n<link rel=\"stylesheet\" "
	    "href=\"/static/results.css\">\n"
	    "<script src=\"/static/results.js\" defer></script>\n"
	    "</head>\n<body data-poll=\"");
	buf_put_html(b, poll->id);
	buf_printf(b, "\" data-total=\"%" PRId64 "\">\n", s->total);
	/* The bars repeat what the list says, for sighted readers only. */
	buf_puts(b, "<div class=\"bars\" aria-hidden=\"true\">");
	for (size_t i = 0; i < poll->n_options; i++) {
		buf_printf(b, "<div class=\"bar c%zu w%d\" data-option=\"",
		    i % PAGE_COLOURS, pct[i]);
		buf_put_html(b, poll->options[i].id);
		buf_puts(b, "\"></div>");
	}
	buf_puts(b, "</div>\n<main class=\"panel\">\n<h1>");
	page_put_title(b, poll);
	buf_puts(b, "</h1>\n<ul class=\"choices\">\n");
	for (size_t i = 0; i < poll->n_options; i++) {
		buf_puts(b, "<li class=\"choice\" data-option=\"");
		buf_put_html(b, poll->options[i].id);
		buf_printf(b, "\"><span class=\"swatch c%zu\" "
		    "aria-hidden=\"true\"></span><span class=\"label\">",
		    i % PAGE_COLOURS);
		buf_put_html(b, poll->options[i].label);
		buf_printf(b, "</span> <span class=\"stat\">%d.0%%</span> "
		    "<span class=\"count\">%s</span></li>\n", pct[i],
		    page_votes_text(s->votes[i], text, sizeof(text)));
	}
	buf_printf(b, "</ul>\n<p id=\"result\" class=\"result\" "
	    "aria-live=\"polite\" aria-atomic=\"true\">%s</p>\n"
	    "<p id=\"live\" class=\"live\">Results update live.</p>\n"
	    "</main>\n</body>\n</html>\n",
	    page_votes_text(s->total, text, sizeof(text)));
	return b->failed ? -1 : 0;
}

static const char page_css_base[] =
    "*{box-sizing:border-box}\n"
    "html,body{margin:0;min-height:100%}\n"
    "body{font-family:\"Helvetica Neue\",Helvetica,Arial,sans-serif;"
    "color:#1b1b1b;background:#eceff1;min-height:100vh;"
    "overflow-x:hidden;display:flow-root}\n"
    /* Full-height bars behind everything, sized to the shares, as in the
     * original; the text sits on a white panel for contrast. */
    ".bars{position:fixed;top:0;left:0;right:0;bottom:0;display:flex;"
    "z-index:0}\n"
    ".bar{height:100%;min-width:0;transition:width .5s ease}\n"
    ".c0{background:#2196f3}.c1{background:#00cbca}"
    ".c2{background:#ff9800}.c3{background:#9c27b0}"
    ".c4{background:#4caf50}.c5{background:#e91e63}"
    ".c6{background:#795548}.c7{background:#607d8b}\n"
    ".panel{position:relative;z-index:1;max-width:42rem;margin:12vh auto 2rem;"
    "background:#fff;border-radius:10px;padding:1.5rem 2rem;"
    "box-shadow:0 2px 14px rgba(0,0,0,.3)}\n"
    "h1{font-size:1.6rem;margin:0 0 1rem;text-align:center}\n"
    ".choices{list-style:none;margin:0;padding:0;display:flex;"
    "flex-wrap:wrap;gap:1rem;justify-content:center}\n"
    ".choice{flex:1 1 9rem;text-align:center;padding:.5rem}\n"
    ".swatch{display:inline-block;width:1rem;height:1rem;border-radius:50%;"
    "vertical-align:middle;margin-right:.4rem;border:1px solid #1b1b1b}\n"
    ".label{font-size:1.4rem;font-weight:600;overflow-wrap:anywhere}\n"
    ".stat{display:block;font-size:2.6rem;font-weight:300;margin:.3rem 0}\n"
    ".count{display:block;color:#424242}\n"
    ".result{text-align:center;font-size:1.25rem;font-weight:600;"
    "margin:1.5rem 0 .25rem}\n"
    ".live{text-align:center;font-size:.85rem;color:#424242;margin:0}\n"
    "@media (max-width:600px){.panel{margin:5vh .75rem 1rem;"
    "padding:1rem}h1{font-size:1.3rem}.stat{font-size:2rem}"
    ".choice{flex-basis:6rem}}\n"
    "@media (prefers-reduced-motion:reduce){.bar{transition:none}}\n";

static const char page_js_text[] =
    "/* results.js: keeps the results page live through EventSource. */\n"
    "(function () {\n"
    "  'use strict';\n"
    "  var poll = document.body.getAttribute('data-poll');\n"
    "  var COLOURS = 8;\n"
    "  function votesText(n) {\n"
    "    return n === 0 ? 'No votes yet' : n === 1 ? '1 vote' : n + ' votes';\n"
    "  }\n"
    "  /* Whole percents summing to 100, largest remainder, ties to the\n"
    "   * earlier option: the same as the server (page_shares). */\n"
    "  function shares(votes) {\n"
    "    var n = votes.length, total = 0, pct = [], rem = [], left = 100, i;\n"
    "    for (i = 0; i < n; i++) total += Math.max(0, votes[i]);\n"
    "    if (total === 0) {\n"
    "      for (i = 0; i < n; i++) pct.push(Math.floor(100 / n) + (i < 100 % n ? 1 : 0));\n"
    "      return pct;\n"
    "    }\n"
    "    for (i = 0; i < n; i++) {\n"
    "      var v = Math.max(0, votes[i]) * 100;\n"
    "      pct.push(Math.floor(v / total));\n"
    "      rem.push(v % total);\n"
    "      left -= pct[i];\n"
    "    }\n"
    "    while (left-- > 0) {\n"
    "      var best = 0;\n"
    "      for (i = 1; i < n; i++) if (rem[i] > rem[best]) best = i;\n"
    "      pct[best]++;\n"
    "      rem[best] = -1;\n"
    "    }\n"
    "    return pct;\n"
    "  }\n"
    "  function render(t) {\n"
    "    var pct = shares(t.options.map(function (o) { return o.votes; }));\n"
    "    t.options.forEach(function (o, i) {\n"
    "      var bar = document.querySelector('.bar[data-option=\"' + o.id + '\"]');\n"
    "      var li = document.querySelector('.choice[data-option=\"' + o.id + '\"]');\n"
    "      if (bar) bar.className = 'bar c' + (i % COLOURS) + ' w' + pct[i];\n"
    "      if (li) {\n"
    "        li.querySelector('.stat').textContent = pct[i].toFixed(1) + '%';\n"
    "        li.querySelector('.count').textContent = votesText(o.votes);\n"
    "      }\n"
    "    });\n"
    "    var result = document.getElementById('result');\n"
    "    var text = votesText(t.total);\n"
    "    /* Touch the live region only on change, so readers are not\n"
    "     * interrupted by repeats. */\n"
    "    if (result.textContent !== text) result.textContent = text;\n"
    "    document.body.setAttribute('data-total', String(t.total));\n"
    "  }\n"
    "  if (!poll || !window.EventSource) return;\n"
    "  var live = document.getElementById('live');\n"
    "  var url = '/api/v1/polls/' + encodeURIComponent(poll) + '/events';\n"
    "  var delay = 1000;\n"
    "  function connect() {\n"
    "    var es = new EventSource(url);\n"
    "    es.addEventListener('tally', function (e) {\n"
    "      try { render(JSON.parse(e.data)); } catch (err) { /* keep the last state */ }\n"
    "    });\n"
    "    es.onopen = function () {\n"
    "      delay = 1000;\n"
    "      live.textContent = 'Results update live.';\n"
    "      document.body.setAttribute('data-live', 'open');\n"
    "    };\n"
    "    es.onerror = function () {\n"
    "      live.textContent = 'Reconnecting\\u2026';\n"
    "      document.body.setAttribute('data-live', 'reconnecting');\n"
    "      /* The browser retries a lost stream by itself, but gives up\n"
    "       * for good on an answer other than 200 (a draining replica,\n"
    "       * a proxy's 502 or 503): start a new one, with jitter. */\n"
    "      if (es.readyState !== EventSource.CLOSED) return;\n"
    "      setTimeout(connect, delay / 2 + Math.random() * delay / 2);\n"
    "      delay = Math.min(delay * 2, 30000);\n"
    "    };\n"
    "  }\n"
    "  connect();\n"
    "})();\n";

static char page_css_text[sizeof(page_css_base) + 101 * 24];
static size_t page_css_len;
static pthread_once_t page_css_once = PTHREAD_ONCE_INIT;

/* Appends .w0 .. .w100, one width class per whole percent. */
static void
page_css_build(void)
{
	size_t cap = sizeof(page_css_text), len;

	memcpy(page_css_text, page_css_base, sizeof(page_css_base));
	len = sizeof(page_css_base) - 1;
	for (int w = 0; w <= 100 && len < cap; w++) {
		int k = snprintf(page_css_text + len, cap - len,
		    ".w%d{width:%d%%}%s", w, w, w % 10 == 9 ? "\n" : "");
		if (k < 0)
			break;
		len += (size_t)k;
	}
	page_css_len = len < cap ? len : cap - 1;
}

const char *
page_css(size_t *len)
{
	pthread_once(&page_css_once, page_css_build);
	*len = page_css_len;
	return page_css_text;
}

const char *
page_js(size_t *len)
{
	*len = sizeof(page_js_text) - 1;
	return page_js_text;
}
