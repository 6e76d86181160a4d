/*
 * worker.h - the worker threads: one event loop each, own listeners.
 *
 * Each worker has its own listening socket per listen address, bound with
 * SO_REUSEPORT so that the kernel spreads new connections over the workers
 * (no accept lock), its own counters, upstream keep-alive pool, log buffer
 * and request-object cache. Nothing on the request path is shared between
 * workers except the reference-counted runtime.
 *
 * A worker's event base has no lock (EVENT_BASE_FLAG_NOLOCK): only the
 * worker's own thread may touch it or anything on it. The main thread talks
 * to a worker through one eventfd: it sets a bit in `notify` ("take this
 * new runtime", "drain", "stop now") and writes the eventfd, whose read
 * event runs on the worker.
 */
#ifndef MTLS_PROXY_WORKER_H
#define MTLS_PROXY_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "idstats.h"
#include "runtime.h"
#include "stats.h"
#include "upstream.h"

#define GW_WK_MUSTCHECK __attribute__((warn_unused_result))
#define GW_MAX_LISTEN 16
#define GW_REQ_CACHE 64         /* request objects kept per worker */
#define GW_CERTPOOL_SIZE 64     /* client certificates pooled per worker */

struct event;
struct event_base;
struct evconnlistener;
struct gw_conn;
struct gw_req;
struct gw_logbuf;
struct gw_workers;

struct tls_certpool;

struct gw_worker {
    unsigned id;
    struct gw_workers *set;
    pthread_t thread;
    int started;
    struct event_base *base;
    int fds[GW_MAX_LISTEN];            /* listening sockets until listeners own them */
    struct evconnlistener *listeners[GW_MAX_LISTEN];
    size_t n_listeners;
    int accepting;                     /* listeners enabled */

    /* Owned by the worker thread. */
    struct gw_runtime *rt;             /* current runtime (one reference) */
    struct gw_stats stats;
    struct gw_idstats *idstats;        /* requests by identity (metrics) */
    struct tls_certpool *certpool;     /* clients' parsed leaves, shared by
                                          this worker's connections */
    struct gw_up_pool pool;
    struct gw_logbuf *log;
    struct gw_conn *conns;             /* every open client connection */
    struct gw_conn *closed;            /* of those, closed: freed by reap_ev */
    struct event *reap_ev;             /* gw_conn_reap_cb (conn.h) */
    unsigned n_conns;
    unsigned max_conns;                /* 0 = unlimited */
    int draining;
    struct gw_req *req_cache;
    unsigned n_req_cache;

    /* Handed over by the main thread. */
    pthread_mutex_t lock;              /* guards pending */
    struct gw_runtime *pending;
    unsigned notify;                   /* requests (bits, worker.c); atomic */
    int notify_fd;                     /* eventfd the main thread writes */
    struct event *notify_ev;           /* its read event, on the worker */
    struct event *resume_ev;           /* accepts paused after an accept error */
};

/*
 * Opens the listening sockets: n_workers sockets per listen address, each
 * with SO_REUSEADDR and SO_REUSEPORT, bound and listening, non-blocking.
 * Refuses an address that another socket listens on already (SO_REUSEPORT
 * would let both listen and split the connections).
 * fds is an array of n_workers * cfg->n_listen (worker-major). Blocking;
 * main thread, before dropping privileges. 0 / -1 with the address in err.
 */
int gw_listen_open(const struct cfg *cfg, unsigned n_workers, int *fds, char *err,
                   size_t errlen) GW_WK_MUSTCHECK;

/*
 * Creates n workers around rt (each takes a reference) and the sockets in
 * fds (taken over, closed on failure too), and starts their threads. When
 * a worker's loop has ended it activates done_ev (an event of the main
 * thread's base). NULL with the cause in err.
 */
struct gw_workers *gw_workers_start(unsigned n, struct gw_runtime *rt, int *fds, size_t n_listen,
                                    struct event *done_ev, char *err,
                                    size_t errlen) GW_WK_MUSTCHECK;

/* Hands a new runtime to every worker (each takes its own reference). */
void gw_workers_publish(struct gw_workers *ws, struct gw_runtime *rt);

/* Graceful stop: close listeners now, finish in-flight requests, end loops. */
void gw_workers_drain(struct gw_workers *ws);

/* Immediate stop: end the loops now (connections are freed at join). */
void gw_workers_stop(struct gw_workers *ws);

/* Number of workers whose loop is still running. */
unsigned gw_workers_running(struct gw_workers *ws);

/* Joins the threads and frees everything; NULL is fine. */
void gw_workers_free(struct gw_workers *ws);

/*
 * Sums every worker's counters into sum and, when ids is not NULL, every
 * worker's requests-by-identity table into ids (any thread; ws NULL adds
 * nothing).
 */
void gw_workers_stats(struct gw_workers *ws, struct gw_stats *sum, struct gw_idstats *ids);

/* Called by conn.c when a connection is gone: re-enables accepting below
 * the limit, ends a draining loop at zero. Worker thread only. */
void gw_worker_conn_gone(struct gw_worker *w);

#endif
