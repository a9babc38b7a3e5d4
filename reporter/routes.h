/*
 * routes: the reporter's HTTP surface (see docs/REPORTER.md).
 *   GET /healthz, /readyz, /metrics
 *   GET /api/v1/polls                       poll definitions
 *   GET /api/v1/polls/{poll}/tally          tally JSON, from memory
 *   GET /api/v1/polls/{poll}/events         Server-Sent Events
 *   GET /, /polls/{poll}                    results page
 *   GET /static/results.css, /static/results.js
 */
#ifndef TALLY_REPORTER_ROUTES_H
#define TALLY_REPORTER_ROUTES_H

#include <microhttpd.h>

#include "reporter.h"

/* MHD access handler; cls is the struct reporter. Never blocks. */
enum MHD_Result routes_handle(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls);

/* MHD's request-completed callback: the connection's next request starts
 * its watchdog deadline (lib/watchdog.h). */
void routes_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe);

#endif
