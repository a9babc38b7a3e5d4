/*
 * accesslog: the one line per request that LOG_LEVEL=info writes:
 *
 *   <method> <path> <status> <ms>ms <client address>[ cast=<cast id>]
 *
 * Built by hand rather than by printf: with the access log on (the
 * default) the line was a tenth of the gateway's instructions per vote.
 */
#ifndef TALLY_GATEWAY_ACCESSLOG_H
#define TALLY_GATEWAY_ACCESSLOG_H

#include <microhttpd.h>
#include <stdint.h>

#include "request.h"

/* Writes r's line through the log module; now_us is the end time. */
void accesslog_write(const struct request *r, struct MHD_Connection *c,
    uint64_t now_us);

#endif
