/*
 * admin.h - the admin listener: plain HTTP on the main thread's event base.
 *
 *   GET /healthz  200 "ok": the process and its main loop are alive.
 *   GET /readyz   200 when a configuration is in service, the gateway is not
 *                 draining, and the last upstream probe reached at least one
 *                 upstream server; else 503 with the reason in the body.
 *   GET /metrics  200, the Prometheus text format 0.0.4 (metrics.h).
 *   Other paths 404; methods other than GET and HEAD 405 (with Allow).
 *   A query string is ignored. HTTP/1.1 keep-alive and pipelining are
 *   supported; requests are parsed by http1.h (strict); a request with a
 *   body is answered and the connection closed without reading the body.
 *
 * Reachability: every GW_ADMIN_PROBE_INTERVAL_MS a non-blocking TCP connect
 * (bufferevent_socket_connect, no TLS, no request) goes to each resolved
 * address of the runtime in service (runtime.h servers[]), bounded by
 * GW_ADMIN_PROBE_TIMEOUT_MS; the connection is closed as soon as it is up.
 * Nothing here ever blocks the loop except the bind at start.
 *
 * Exposure: the listener binds exactly admin.listen. The config default is
 * off and the documented value is loopback ("127.0.0.1:9090"); a
 * non-loopback address (e.g. 0.0.0.0 so that Prometheus can scrape a
 * container from outside) is accepted, with a warning in the error log,
 * since the endpoints have no authentication.
 *
 * Everything runs on the thread of the base given to gw_admin_start; the
 * hooks are called on that thread (the main thread, which owns the runtime
 * pointer and the reload counters), so they need no lock.
 */
#ifndef MTLS_PROXY_ADMIN_H
#define MTLS_PROXY_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "idstats.h"
#include "runtime.h"
#include "stats.h"

#define GW_ADMIN_MUSTCHECK __attribute__((warn_unused_result))

#define GW_ADMIN_PROBE_INTERVAL_MS 2000
#define GW_ADMIN_PROBE_TIMEOUT_MS 1500
#define GW_ADMIN_MAX_CONNS 32          /* more are accepted and closed at once */
#define GW_ADMIN_IDLE_MS 10000         /* read/write timeout of a connection */
#define GW_ADMIN_MAX_HEAD 8192         /* request head limit (431 beyond) */

struct event_base;
struct gw_admin; /* opaque */

/* What the gateway reports about itself, filled by hooks->state. */
struct gw_admin_state {
    struct gw_runtime *rt;         /* borrowed: the runtime in service, or NULL */
    uint64_t generation;           /* rt's configuration generation (1, 2, ...) */
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    time_t config_loaded;          /* when rt's configuration was loaded; 0 = unknown */
    int draining;                  /* 1 once a graceful or immediate stop began */
    int has_tls_sessions;          /* 1: tls_sessions is the session cache's size */
    uint64_t tls_sessions;
};

struct gw_admin_hooks {
    void *arg;
    /* Fills *st (zeroed by the caller). Required. */
    void (*state)(void *arg, struct gw_admin_state *st);
    /*
     * Adds every worker's counters into *sum and every worker's identity
     * table into ids (gw_idstats_snapshot_add). *sum is zero on entry; ids
     * has zero counts but keeps the named rows of earlier scrapes (one
     * table for the life of the listener, idstats.h "Stable series").
     * Required.
     */
    void (*stats)(void *arg, struct gw_stats *sum, struct gw_idstats *ids);
};

/*
 * Binds listen (blocking getaddrinfo: call it at start, before dropping
 * privileges for a port below 1024), starts serving on base and runs the
 * first upstream probe at once. hooks is copied. NULL with one line in err
 * naming the address and the cause.
 */
struct gw_admin *gw_admin_start(struct event_base *base, const struct cfg_addr *listen,
                                const struct gw_admin_hooks *hooks, char *err,
                                size_t errlen) GW_ADMIN_MUSTCHECK;

/* The port the listener is bound to (useful after binding port "0"). */
int gw_admin_port(const struct gw_admin *a);

/*
 * A new configuration is in service: probe its upstreams now (after the
 * round in flight, if any) rather than at the next tick. Until that round
 * ends, /readyz says its result is from before the reload. NULL is fine.
 */
void gw_admin_reprobe(struct gw_admin *a);

/*
 * Closes the listener, every admin connection and every probe in flight.
 * On the base's thread; NULL is fine.
 */
void gw_admin_free(struct gw_admin *a);

#endif
