/*
 * page: the vote page (the original app's look, without its CDN assets)
 * and the two static files it loads. Everything is compiled into the binary;
 * the page has no inline script or style, so the strict CSP holds.
 */
#ifndef TALLY_GATEWAY_PAGE_H
#define TALLY_GATEWAY_PAGE_H

#include <stddef.h>

#include "buf.h"
#include "polls.h"

/*
 * Appends the page for poll: its title as title and heading, one button per
 * option (name=vote, value=<option id>), the tip and the host name. chosen
 * (NULL: none) is the option just voted for: it gets the check mark and the
 * others are faded. notice (NULL: none) is shown as an alert.
 */
void page_render_vote(struct buf *b, const struct poll *poll,
    const char *chosen, const char *notice, const char *hostname);

/* The static file at path ("/static/vote.css"), or NULL. Static storage. */
const char *page_asset(const char *path, const char **content_type,
    size_t *len);

#endif
