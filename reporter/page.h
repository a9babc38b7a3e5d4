/*
 * page: the results page and its two assets, all served from the binary
 * (no CDN, no external asset). The page is rendered with the current tally,
 * so it reads right without JavaScript; /static/results.js then keeps it
 * live through EventSource. Nothing is inline: the CSP forbids inline
 * script and style, so widths are classes (w0 .. w100) from results.css.
 */
#ifndef TALLY_REPORTER_PAGE_H
#define TALLY_REPORTER_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "polls.h"
#include "tallies.h"

/*
 * Whole-percent shares of votes[0..n) that sum to 100 (largest remainder,
 * ties to the earlier option). For two options this is the original app's
 * a = round(a / (a + b) * 100), b = 100 - a. With no votes, shares are
 * equal (50/50; 34/33/33). pct holds n ints.
 */
void page_shares(const int64_t *votes, size_t n, int *pct);

/* "No votes yet", "1 vote" or "N votes" into out (cap bytes); returns out. */
const char *page_votes_text(int64_t total, char *out, size_t cap);

/* Appends the results page of poll with tally s. Returns 0, or -1 when out
 * of memory. */
int page_render_results(struct buf *b, const struct poll *poll,
    const struct tally_snapshot *s) __attribute__((warn_unused_result));

/* The stylesheet and script; static, never freed. */
const char *page_css(size_t *len);
const char *page_js(size_t *len);

#endif
