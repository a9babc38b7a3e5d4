/*
 * page.c - vote page HTML, CSS and JS.
 *
 * Colours keep a contrast ratio of at least 4.5:1 for text (WCAG AA),
 * including the faded buttons, which fade their background, not the text.
 */
#include "page.h"

#include <string.h>

static const char page_css[] =
    "*{box-sizing:border-box}\n"
    "html{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "Helvetica,Arial,sans-serif;background:#f3f4f6;color:#1f2937}\n"
    "body{margin:0;min-height:100vh;display:flex;align-items:center;"
    "justify-content:center}\n"
    "#content-container{width:100%;max-width:34rem;padding:1.5rem;"
    "text-align:center}\n"
    "h1{font-size:clamp(1.6rem,6vw,2.4rem);margin:0 0 1.5rem}\n"
    "#choice{display:flex;flex-direction:column;gap:1rem}\n"
    "#choice button{font:inherit;font-size:1.4rem;font-weight:600;"
    "width:100%;min-height:3.5rem;padding:.8rem 1rem;border:3px solid "
    "transparent;border-radius:.6rem;color:#fff;cursor:pointer}\n"
    "#choice button.o0{background:#0b6e75}\n"
    "#choice button.o1{background:#1558a8}\n"
    "#choice button.o2{background:#7a3e9d}\n"
    "#choice button.o3{background:#a13d2d}\n"
    "#choice button.o4{background:#3d6b1f}\n"
    "#choice button.o5{background:#6b4f00}\n"
    "#choice button:focus-visible{outline:3px solid #111827;"
    "outline-offset:3px}\n"
    "#choice button.faded{background:#e5e7eb;color:#374151;"
    "border-color:#9ca3af}\n"
    "#choice button.chosen{border-color:#111827}\n"
    "#choice button:disabled{cursor:progress}\n"
    ".check{margin-left:.5rem}\n"
    ".sr-only{position:absolute;width:1px;height:1px;overflow:hidden;"
    "clip:rect(0 0 0 0);white-space:nowrap}\n"
    "#tip{margin-top:1.5rem;color:#4b5563}\n"
    "#notice{background:#fee2e2;color:#7f1d1d;padding:.6rem;"
    "border-radius:.4rem}\n"
    "#status{font-weight:600}\n"
    "#hostname{font-size:.85rem;color:#4b5563;margin-top:2rem;"
    "word-break:break-all}\n";

/* Progressive enhancement only: the form works without it. It stops a
 * double submit while the first one is on its way. */
static const char page_js[] =
    "'use strict';\n"
    "document.addEventListener('DOMContentLoaded', function () {\n"
    "  var form = document.getElementById('choice');\n"
    "  if (!form) return;\n"
    "  form.addEventListener('submit', function (ev) {\n"
    "    if (form.dataset.sending) { ev.preventDefault(); return; }\n"
    "    form.dataset.sending = '1';\n"
    "    form.setAttribute('aria-busy', 'true');\n"
    "  });\n"
    "});\n";

void
page_render_vote(struct buf *b, const struct poll *poll, const char *chosen,
    const char *notice, const char *hostname)
{
	buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">\n<title>");
	buf_put_html(b, poll->title);
	buf_puts(b, "</title>\n<link rel=\"stylesheet\" "
	    "href=\"/static/vote.css\">\n"
	    "<script src=\"/static/vote.js\" defer></script>\n"
	    "</head>\n<body>\n<main id=\"content-container\">\n"
	    "<h1 id=\"question\">");
	buf_put_html(b, poll->title);
	buf_puts(b, "</h1>\n");
	if (notice != NULL) {
		buf_puts(b, "<p id=\"notice\" role=\"alert\">");
		buf_put_html(b, notice);
		buf_puts(b, "</p>\n");
	}
	buf_puts(b, "<form id=\"choice\" name=\"form\" method=\"POST\" "
	    "action=\"/\" aria-labelledby=\"question\">\n");
	for (size_t i = 0; i < poll->n_options; i++) {
		const struct poll_option *o = &poll->options[i];
		int is_chosen = chosen != NULL && strcmp(chosen, o->id) == 0;

		buf_printf(b, "<button id=\"%s\" type=\"submit\" name=\"vote\" "
		    "value=\"%s\" class=\"o%zu%s\" aria-pressed=\"%s\">",
		    o->id, o->id, i % 6, is_chosen ? " chosen" :
		    chosen != NULL ? " faded" : "", is_chosen ? "true" :
		    "false");
		buf_put_html(b, o->label);
		if (is_chosen)
			buf_puts(b, "<span class=\"check\" aria-hidden=\"true\">"
			    "&#10004;</span><span class=\"sr-only\"> (your "
			    "vote)</span>");
		buf_puts(b, "</button>\n");
	}
	buf_puts(b, "</form>\n");
	if (chosen != NULL) {
		const struct poll_option *o = NULL;
		for (size_t i = 0; i < poll->n_options; i++)
			if (strcmp(chosen, poll->options[i].id) == 0)
				o = &poll->options[i];
		if (o != NULL) {
			buf_puts(b, "<p id=\"status\" role=\"status\">"
			    "You voted for ");
			buf_put_html(b, o->label);
			buf_puts(b, ".</p>\n");
		}
	}
	buf_puts(b, "<p id=\"tip\">(Tip: you can change your vote)</p>\n"
	    "<p id=\"hostname\">Processed by container ID ");
	buf_put_html(b, hostname);
	buf_puts(b, "</p>\n</main>\n</body>\n</html>\n");
}

const char *
page_asset(const char *path, const char **content_type, size_t *len)
{
	if (strcmp(path, "/static/vote.css") == 0) {
		*content_type = "text/css; charset=utf-8";
		*len = sizeof(page_css) - 1;
		return page_css;
	}
	if (strcmp(path, "/static/vote.js") == 0) {
		*content_type = "text/javascript; charset=utf-8";
		*len = sizeof(page_js) - 1;
		return page_js;
	}
	return NULL;
}
