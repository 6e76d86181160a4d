/*
 * upstream.c - upstream connects, failure marks, per-worker idle pool.
 */
#include "upstream.h"

#include <errno.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "timer.h"
#include "tls_client.h"

static void pool_timer_cb(evutil_socket_t fd, short what, void *arg);

int gw_up_pool_init(struct gw_up_pool *p, struct event_base *base)
{
    memset(p, 0, sizeof(*p));
    p->base = base;
    p->timer = evtimer_new(base, pool_timer_cb, p);
    return p->timer ? 0 : -1;
}

void gw_up_free(struct gw_up_conn *u)
{
    if (!u)
        return;
    if (u->rev)
        event_free(u->rev);
    bufferevent_free(u->bev); /* BEV_OPT_CLOSE_ON_FREE: closes fd, frees SSL */
    free(u);
}

/* Bytes per read: the bufferevent's own default (libevent 2.1). */
#define UP_READ_MAX 16384

/* Plain TCP: the socket is readable. One readv into the bufferevent's
 * input (whose end the bufferevent keeps frozen, as it does around its own
 * reads), then the callback; u may be freed inside it. */
static void plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_up_conn *u = arg;
    struct evbuffer *in = bufferevent_get_input(u->bev);
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    ssize_t r;
    size_t left;
    int n, i;

    (void)what;
    evbuffer_unfreeze(in, 0);
    n = evbuffer_reserve_space(in, UP_READ_MAX, v, 2);
    if (n <= 0) {
        r = -1;
        errno = ENOMEM;
    } else {
        for (i = 0; i < n; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        do
            r = readv(fd, iov, n);
        while (r < 0 && errno == EINTR);
    }
    if (r > 0) {
        left = (size_t)r;
        for (i = 0; i < n && left > 0; i++) {
            if (v[i].iov_len > left)
                v[i].iov_len = left;
            left -= v[i].iov_len;
        }
        (void)evbuffer_commit_space(in, v, i);
    }
    evbuffer_freeze(in, 0);
    if (r > 0) {
        u->on_read(u->bev, u->cb_arg);
    } else if (r == 0) {
        gw_up_read(u, 0);
        u->on_event(u->bev, BEV_EVENT_READING | BEV_EVENT_EOF, u->cb_arg);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        u->read_errno = errno;
        gw_up_read(u, 0);
        u->on_event(u->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, u->cb_arg);
    }
}

void gw_up_setcb(struct gw_up_conn *u, bufferevent_data_cb read, bufferevent_data_cb write,
                 bufferevent_event_cb event, void *arg)
{
    if (u->tls) {
        bufferevent_setcb(u->bev, read, write, event, arg);
        return;
    }
    u->on_read = read;
    u->on_event = event;
    u->cb_arg = arg;
    bufferevent_setcb(u->bev, NULL, write, event, arg);
}

void gw_up_read(struct gw_up_conn *u, int on)
{
    if (u->tls) {
        if (on)
            bufferevent_enable(u->bev, EV_READ);
        else
            bufferevent_disable(u->bev, EV_READ);
        return;
    }
    u->want_read = on;
    if (on && !u->reading && u->connected && u->rev) {
        if (event_add(u->rev, NULL) == 0)
            u->reading = 1;
    } else if (!on && u->reading) {
        event_del(u->rev);
        u->reading = 0;
    }
}

void gw_up_connected(struct gw_up_conn *u)
{
    u->connected = 1;
    if (!u->tls) /* TLS reads stay with the bufferevent, which knows */
        gw_up_read(u, u->want_read);
}

/* Unlinks u from its pool's idle list. */
static void pool_unlink(struct gw_up_conn *u)
{
    struct gw_up_pool *p = u->pool;
    struct gw_up_conn **pp;

    for (pp = &p->idle; *pp; pp = &(*pp)->next) {
        if (*pp == u) {
            *pp = u->next;
            p->n_idle--;
            break;
        }
    }
    u->next = NULL;
    u->pool = NULL;
}

/* An idle connection must stay silent: any byte, EOF, error or the idle
 * timeout means it cannot carry the next request. Callee frees u and
 * returns to libevent. */
static void idle_read_cb(struct bufferevent *bev, void *arg)
{
    struct gw_up_conn *u = arg;

    (void)bev;
    pool_unlink(u);
    gw_up_free(u);
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    idle_read_cb(bev, arg);
}

void gw_up_pool_flush(struct gw_up_pool *p)
{
    while (p->idle) {
        struct gw_up_conn *u = p->idle;

        pool_unlink(u);
        gw_up_free(u);
    }
}

void gw_up_pool_free(struct gw_up_pool *p)
{
    gw_up_pool_flush(p);
    if (p->timer)
        event_free(p->timer);
    p->timer = NULL;
}

/* Drops the idle connections whose time is up; set again for the next one
 * (or for the rest, when libevent's coarse clock woke it early). */
static void pool_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_up_pool *p = arg;
    uint64_t now = gw_mono_us(), next = 0;
    struct gw_up_conn *u, *nx;

    (void)fd;
    (void)what;
    p->timer_at = 0;
    for (u = p->idle; u; u = nx) {
        nx = u->next;
        if (u->idle_until_us <= now) {
            pool_unlink(u);
            gw_up_free(u);
        } else if (next == 0 || u->idle_until_us < next) {
            next = u->idle_until_us;
        }
    }
    if (next)
        gw_timer_set(p->timer, &p->timer_at, next, now);
}

/* The most recently released idle connection to server idx made for rt,
 * out of the pool and ready for the caller's callbacks; NULL when none.
 * One with bytes already in its input is freed, not taken: they arrived
 * while it was idle (a TLS read hands them to idle_read_cb only later in
 * the loop, as a deferred callback) and would be read as the next
 * request's response. */
static struct gw_up_conn *take_idle(struct gw_up_pool *p, const struct gw_runtime *rt,
                                    size_t idx)
{
    struct gw_up_conn *u, *nx;

    for (u = p->idle; u; u = nx) {
        nx = u->next;
        if (u->rt != rt || u->server != idx)
            continue;
        if (evbuffer_get_length(bufferevent_get_input(u->bev)) == 0)
            break;
        pool_unlink(u);
        gw_up_free(u);
    }
    if (!u)
        return NULL;
    pool_unlink(u); /* the caller sets its callbacks next (gw_resp_attach) */
    u->reused = 1;
    u->connected = 1;
    return u;
}

int gw_up_mark_failed(struct gw_runtime *rt, size_t idx)
{
    uint64_t now = gw_mono_us() / 1000;
    uint64_t was = __atomic_exchange_n(&rt->servers[idx].failed_until_ms,
                                       now + rt->cfg->upstream.fail_timeout_ms, __ATOMIC_RELAXED);

    return was > now;
}

/* Next server index not in tried: healthy ones first, then any. -1 if none. */
static long pick_server(struct gw_up_pool *p, const struct gw_runtime *rt, uint64_t tried)
{
    uint64_t now = gw_mono_us() / 1000;
    size_t n = rt->n_servers, k;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        for (k = 0; k < n; k++) {
            size_t idx = (p->rr + k) % n;

            if (tried & ((uint64_t)1 << idx))
                continue;
            if (pass == 0 &&
                __atomic_load_n(&rt->servers[idx].failed_until_ms, __ATOMIC_RELAXED) > now)
                continue;
            p->rr = idx + 1;
            return (long)idx;
        }
    }
    return -1;
}

/* A new, unconnected bufferevent for server s (TLS when rt says so). */
static struct bufferevent *new_bev(struct gw_up_pool *p, struct gw_runtime *rt,
                                   const struct gw_upstream_server *s, char *err, size_t errlen)
{
    const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    struct bufferevent *bev;
    SSL *ssl;

    if (!rt->upstream_ctx) {
        bev = bufferevent_socket_new(p->base, -1, opts);
        if (!bev)
            snprintf(err, errlen, "%s: out of memory", s->name);
        return bev;
    }
    ssl = SSL_new(rt->upstream_ctx);
    if (!ssl || tls_client_prepare(ssl, rt->cfg->upstream.tls_server_name
                                            ? rt->cfg->upstream.tls_server_name
                                            : s->host) < 0) {
        snprintf(err, errlen, "%s: cannot set up TLS", s->name);
        SSL_free(ssl);
        return NULL;
    }
    bev = bufferevent_openssl_socket_new(p->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
    if (!bev) {
        snprintf(err, errlen, "%s: out of memory", s->name);
        SSL_free(ssl);
    }
    return bev;
}

struct gw_up_conn *gw_up_connect(struct gw_up_pool *p, struct gw_runtime *rt, int fresh,
                                 uint64_t *tried, char *err, size_t errlen)
{
    struct gw_up_conn *u = NULL;
    long idx;

    if (errlen > 0)
        err[0] = '\0'; /* written on failure only: this runs for every request */
    while ((idx = pick_server(p, rt, *tried)) >= 0) {
        const struct gw_upstream_server *s = &rt->servers[idx];
        int one = 1;

        /* Not marked tried: a reused connection found closed is retried
         * with fresh set, and must be able to pick this server again. */
        if (!fresh && (u = take_idle(p, rt, (size_t)idx)) != NULL)
            break;
        *tried |= (uint64_t)1 << idx;
        u = calloc(1, sizeof(*u));
        if (!u) {
            snprintf(err, errlen, "out of memory");
            break;
        }
        u->rt = rt;
        u->server = (size_t)idx;
        u->tls = rt->upstream_ctx != NULL;
        u->bev = new_bev(p, rt, s, err, errlen);
        if (!u->bev) {
            free(u);
            u = NULL;
            break;
        }
        if (bufferevent_socket_connect(u->bev, (const struct sockaddr *)&s->addr,
                                       (int)s->addrlen) < 0) {
            snprintf(err, errlen, "%s: connect: %s", s->name, strerror(errno));
            (void)gw_up_mark_failed(rt, (size_t)idx);
            gw_up_free(u);
            u = NULL;
            continue;
        }
        /* Heads and small bodies go out at once. */
        setsockopt(bufferevent_getfd(u->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!u->tls &&
            !(u->rev = event_new(p->base, bufferevent_getfd(u->bev), EV_READ | EV_PERSIST,
                                 plain_read_cb, u))) {
            snprintf(err, errlen, "%s: out of memory", s->name);
            gw_up_free(u);
            u = NULL;
        }
        break;
    }
    if (!u && errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "no upstream server left to try");
    return u;
}

void gw_up_push(struct gw_up_conn *u)
{
    struct evbuffer *out = bufferevent_get_output(u->bev);

    if (evbuffer_get_length(out) == 0)
        return;
    if (!u->tls && u->connected && !(bufferevent_get_enabled(u->bev) & EV_WRITE)) {
        /* The bufferevent keeps its output's start frozen except while it
         * writes itself. Errors are left to libevent: the bytes stay and
         * it retries, and reports the failure through the event callback. */
        evbuffer_unfreeze(out, 1);
        (void)evbuffer_write(out, bufferevent_getfd(u->bev));
        evbuffer_freeze(out, 1);
        if (evbuffer_get_length(out) == 0)
            return;
    }
    bufferevent_enable(u->bev, EV_WRITE);
}

void gw_up_release(struct gw_up_pool *p, struct gw_up_conn *u, const struct gw_runtime *current)
{
    unsigned max = current->cfg->upstream.keepalive;
    unsigned idle_ms = current->cfg->timeouts.keepalive_ms;
    uint64_t now;

    if (!u)
        return;
    if (u->rt != current || p->n_idle >= max ||
        evbuffer_get_length(bufferevent_get_input(u->bev)) > 0) {
        gw_up_free(u);
        return;
    }
    if (idle_ms == 0 || idle_ms > 60000)
        idle_ms = 60000;
    now = gw_mono_us();
    u->idle_until_us = now + (uint64_t)idle_ms * 1000;
    gw_timer_set(p->timer, &p->timer_at, u->idle_until_us, now);
    bufferevent_setwatermark(u->bev, EV_WRITE, 0, 0);
    gw_up_setcb(u, idle_read_cb, NULL, idle_event_cb, u);
    gw_up_read(u, 1);
    u->next = p->idle;
    u->pool = p;
    p->idle = u;
    p->n_idle++;
}

const char *gw_up_tls_failure(const struct gw_up_conn *u, unsigned long e, char *buf,
                              size_t len)
{
    SSL *ssl = u && u->tls ? bufferevent_openssl_get_ssl(u->bev) : NULL;
    const char *reason = e ? ERR_reason_error_string(e) : "unknown error";
    char packed[160];
    long vr;

    if (!reason) {
        ERR_error_string_n(e, packed, sizeof(packed));
        reason = packed;
    }
    /* The verify result stays X509_V_OK unless the chain or the name check
     * (SSL_set1_host in tls_client_prepare) failed. */
    vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK)
        snprintf(buf, len, "TLS handshake failed: %s (%s)", reason,
                 X509_verify_cert_error_string(vr));
    else
        snprintf(buf, len, "TLS handshake failed: %s", reason);
    return buf;
}
