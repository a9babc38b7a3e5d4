/*
 * routes: the gateway's HTTP surface (docs/API.md): MHD's access handler,
 * its completion callback (metrics and the access log), and the answers.
 */
#ifndef TALLY_GATEWAY_ROUTES_H
#define TALLY_GATEWAY_ROUTES_H

#include <microhttpd.h>

#include "gateway.h"

/* Prepares what the routes serve from memory (the polls list). Returns 0,
 * or -1 when out of memory. */
int routes_init(struct gateway *gw) __attribute__((warn_unused_result));
void routes_fini(struct gateway *gw);

/* MHD_AccessHandlerCallback; cls is the struct gateway. */
enum MHD_Result routes_handle(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls);

/* MHD_RequestCompletedCallback: counts, logs and frees the request. */
void routes_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe);

#endif
