/*
 * upstream.h - connections to the upstream servers, and a per-worker pool.
 *
 * Servers are taken round robin; one whose connect failed is skipped for
 * upstream.fail_timeout (unless every server is marked failed). Each worker
 * keeps up to upstream.keepalive idle connections, looked up by the picked
 * server (the pick comes first); an idle one that the server closes, that
 * receives any byte, or that waits longer than timeouts.keepalive (60 s at
 * most; one timer per pool) is dropped. A connection in use carries no
 * bufferevent timeouts or read watermark (each would cost an event_add per
 * buffer change): the connection's own timers bound it (conn_int.h). Plain TCP, or TLS
 * with the upstream's certificate and name verified (tls_client.h).
 * Everything here runs on the worker's own thread; no locks.
 */
#ifndef MTLS_PROXY_UPSTREAM_H
#define MTLS_PROXY_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#define GW_UP_MUSTCHECK __attribute__((warn_unused_result))

#include <event2/bufferevent.h>

struct event;
struct event_base;

struct gw_up_conn {
    struct bufferevent *bev;      /* owned; plain socket or OpenSSL filter */
    /* Plain TCP reads go around the bufferevent (gw_up_setcb): one
     * readv into bev's input, no FIONREAD ioctl, no deferred callback. */
    struct event *rev;            /* plain: the socket's read event, else NULL */
    bufferevent_data_cb on_read;  /* plain: the read callback */
    bufferevent_event_cb on_event;/* plain: EOF / error while reading */
    void *cb_arg;
    int want_read;                /* gw_up_read(u, 1) asked for reads */
    int reading;                  /* rev is added */
    int read_errno;               /* plain: the errno of a failed read, else 0 */
    const struct gw_runtime *rt;  /* the runtime it was made for (not a ref) */
    size_t server;                /* index in rt->servers */
    int reused;                   /* taken from the pool */
    int tls;                      /* u->bev is an OpenSSL bufferevent */
    int connected;                /* the connect (and TLS handshake) is done */
    struct gw_up_conn *next;      /* pool list */
    struct gw_up_pool *pool;      /* set while idle in the pool */
    uint64_t idle_until_us;       /* in the pool: dropped at this time */
};

struct gw_up_pool {
    struct event_base *base;
    struct gw_up_conn *idle;      /* most recently released first */
    unsigned n_idle;
    size_t rr;                    /* round-robin cursor */
    struct event *timer;          /* drops idle connections that waited too long */
    uint64_t timer_at;            /* when it is set to fire; 0: off */
};

/* 0, or -1 (out of memory). */
int gw_up_pool_init(struct gw_up_pool *p, struct event_base *base) GW_UP_MUSTCHECK;

/* Frees every idle connection (a runtime swap). */
void gw_up_pool_flush(struct gw_up_pool *p);

/* Flushes the pool and frees its timer (worker stop). */
void gw_up_pool_free(struct gw_up_pool *p);

/*
 * The upstream connection for a request. Picks the next usable server not
 * yet in *tried, round robin; then, unless fresh is set, takes an idle
 * pooled connection to THAT server made for rt (u->reused and u->connected
 * are 1; the caller sets its own callbacks with gw_up_setcb and reads), so
 * that keep-alive does not pin traffic to one server. Otherwise starts a
 * new connection to it and adds it to *tried (a bitmask of server indexes);
 * the connect completes later with BEV_EVENT_CONNECTED on u->bev (after the
 * TLS handshake with TLS), whose callbacks the caller sets (gw_up_setcb). Servers whose
 * connect fails at once are marked failed and the next one is tried. NULL
 * with the last cause in err when no server is left.
 */
struct gw_up_conn *gw_up_connect(struct gw_up_pool *p, struct gw_runtime *rt, int fresh,
                                 uint64_t *tried, char *err, size_t errlen) GW_UP_MUSTCHECK;

/*
 * Marks server idx of rt failed for upstream.fail_timeout from now. Returns
 * 1 when it was already marked (tried anyway because no healthy server was
 * left, or picked by another worker just before the mark), 0 otherwise.
 */
int gw_up_mark_failed(struct gw_runtime *rt, size_t idx);

/*
 * Gives a connection back after a complete response: pooled when current
 * is the runtime it was made for, the pool has room and nothing is
 * buffered; freed otherwise.
 */
void gw_up_release(struct gw_up_pool *p, struct gw_up_conn *u, const struct gw_runtime *current);

/*
 * Sends what u's output buffer holds. On a connected plain TCP connection
 * whose write event is off, writes to the socket at once (no wait for the
 * next loop iteration, no epoll_ctl); whatever is left, and every case that
 * cannot write through (TLS, connecting, a write already pending), turns
 * the bufferevent's writes on so that libevent sends it and reports errors
 * through the event callback as usual.
 */
void gw_up_push(struct gw_up_conn *u);

/*
 * The callbacks for u, with bufferevent's signatures and u->bev as their
 * first argument: read (bytes were added to bufferevent_get_input(u->bev)),
 * write and event as bufferevent_setcb. On plain TCP the reads run on u's
 * own event: EOF or a read error reach event (BEV_EVENT_READING with
 * BEV_EVENT_EOF / BEV_EVENT_ERROR) and turn reading off; the connect and
 * writes stay with the bufferevent.
 */
void gw_up_setcb(struct gw_up_conn *u, bufferevent_data_cb read, bufferevent_data_cb write,
                 bufferevent_event_cb event, void *arg);

/* Reading on (1) or off (0); on a connection still connecting, from the
 * connect on (gw_up_connected). */
void gw_up_read(struct gw_up_conn *u, int on);

/* The connect (and TLS handshake) completed: BEV_EVENT_CONNECTED. */
void gw_up_connected(struct gw_up_conn *u);

/* Closes and frees a connection that is not in the pool; NULL is fine. */
void gw_up_free(struct gw_up_conn *u);

/*
 * Describes a failed TLS handshake of u in buf (always NUL-terminated) and
 * returns buf: "TLS handshake failed: <reason of OpenSSL error e>", and when
 * the upstream's certificate did not verify, OpenSSL's verify result in
 * parentheses: "TLS handshake failed: certificate verify failed (hostname
 * mismatch)". e is the error bufferevent_get_openssl_error reported (0: none,
 * "unknown error"). The caller names the peer (server host:port).
 */
const char *gw_up_tls_failure(const struct gw_up_conn *u, unsigned long e, char *buf,
                              size_t len);

#endif
