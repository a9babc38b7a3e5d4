/*
 * endpoints: the processor's small HTTP port: GET /healthz (alive),
 * GET /readyz (NATS connected, consumer bound, PostgreSQL up) and
 * GET /metrics (Prometheus text). Answers come from the worker's atomics;
 * no request ever touches NATS or PostgreSQL.
 */
#ifndef TALLY_PROCESSOR_ENDPOINTS_H
#define TALLY_PROCESSOR_ENDPOINTS_H

#include "httpd.h"
#include "worker.h"

/* Starts serving; w is borrowed and must outlive the daemon. Returns NULL
 * and logs why. Stop with httpd_stop. */
struct httpd *endpoints_start(const char *addr, long port,
    struct worker *w) __attribute__((warn_unused_result));

#endif
