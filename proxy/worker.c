/*
 * worker.c - worker threads, their listeners and the main thread's requests
 * to them (a new runtime, drain, stop) through an eventfd each.
 */
#include "worker.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "log.h"
#include "tls_certpool.h"

#define LISTEN_BACKLOG 511

/* What the main thread asks of a worker (gw_worker.notify). */
#define GW_WK_SWAP 1u                  /* take w->pending */
#define GW_WK_DRAIN 2u                 /* graceful stop */
#define GW_WK_STOP 4u                  /* end the loop now */

struct gw_workers {
    unsigned n;
    struct gw_worker *w;
    size_t n_listen;
    struct event *done_ev;
    unsigned running;                  /* atomic */
};

/* One listening socket for a; -1 with the cause in err. */
/*
 * 1 when some socket already listens on res's address: a bind without
 * SO_REUSEPORT fails then. Our own sockets share the address through
 * SO_REUSEPORT, which would as well let a second mtlsgate (or any process
 * of the same user) listen there too, and the kernel would split the
 * connections between the two; so this runs before the first of ours.
 * SO_REUSEADDR keeps connections in TIME_WAIT from counting.
 */
static int addr_in_use(const struct addrinfo *res)
{
    int fd, one = 1, busy = 0;

    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0; /* the real socket() reports it */
    if (res->ai_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 && errno == EADDRINUSE)
        busy = 1;
    close(fd);
    return busy;
}

/* One listening socket on a; first: the first of ours on a (checks that no
 * one else listens there). */
static int listen_one(const struct cfg_addr *a, int first, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    int fd = -1, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(a->host, a->port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "listen %s:%s: cannot resolve: %s", a->host, a->port,
                 rc ? gai_strerror(rc) : "no address");
        goto out;
    }
    if (first && strcmp(a->port, "0") != 0 && addr_in_use(res)) {
        snprintf(err, errlen, "listen %s:%s: the address is in use: another process listens "
                 "there (another mtlsgate?)", a->host, a->port);
        goto out;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen %s:%s: socket: %s", a->host, a->port, strerror(errno));
        goto out;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        (res->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
        snprintf(err, errlen, "listen %s:%s: setsockopt: %s", a->host, a->port, strerror(errno));
        goto fail;
    }
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        snprintf(err, errlen, "listen %s:%s: bind: %s", a->host, a->port, strerror(errno));
        goto fail;
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "listen %s:%s: listen: %s", a->host, a->port, strerror(errno));
        goto fail;
    }
    goto out;
fail:
    close(fd);
    fd = -1;
out:
    if (res)
        freeaddrinfo(res);
    return fd;
}

int gw_listen_open(const struct cfg *cfg, unsigned n_workers, int *fds, char *err, size_t errlen)
{
    size_t total = (size_t)n_workers * cfg->n_listen, i;

    for (i = 0; i < total; i++)
        fds[i] = -1;
    if (cfg->n_listen == 0 || cfg->n_listen > GW_MAX_LISTEN) {
        snprintf(err, errlen, "listen: need 1 to %d addresses", GW_MAX_LISTEN);
        return -1;
    }
    for (i = 0; i < total; i++) {
        fds[i] = listen_one(&cfg->listen[i % cfg->n_listen], i < cfg->n_listen, err, errlen);
        if (fds[i] < 0) {
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
    }
    return 0;
}

static unsigned per_worker_max(const struct gw_runtime *rt, unsigned n)
{
    unsigned max = rt->cfg->max_connections;

    return max == 0 ? 0 : (max + n - 1) / n;
}

static void set_accepting(struct gw_worker *w, int on)
{
    size_t i;

    if (w->accepting == on || w->draining)
        return;
    for (i = 0; i < w->n_listeners; i++) {
        if (on)
            evconnlistener_enable(w->listeners[i]);
        else
            evconnlistener_disable(w->listeners[i]);
    }
    w->accepting = on;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct gw_worker *w = arg;

    (void)l;
    if (w->draining) {
        evutil_closesocket(fd);
        return;
    }
    gw_conn_accept(w, fd, sa, salen);
    if (w->max_conns && w->n_conns >= w->max_conns)
        set_accepting(w, 0); /* new ones wait in the kernel's backlog */
}

/* accept() failed (EMFILE, ENFILE, ENOBUFS...): pause for a second instead
 * of spinning on a listener that stays readable. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct gw_worker *w = arg;
    struct timeval one_s = {1, 0};
    int e = EVUTIL_SOCKET_ERROR();

    (void)l;
    gw_log(w->log, CFG_LOG_WARN, 0, "worker %u: accept: %s; pausing accepts for 1 s", w->id,
           evutil_socket_error_to_string(e));
    set_accepting(w, 0);
    evtimer_add(w->resume_ev, &one_s);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;

    (void)fd;
    (void)what;
    if (w->max_conns == 0 || w->n_conns < w->max_conns)
        set_accepting(w, 1);
}

static void free_listeners(struct gw_worker *w)
{
    size_t i;

    for (i = 0; i < w->n_listeners; i++)
        evconnlistener_free(w->listeners[i]); /* LEV_OPT_CLOSE_ON_FREE */
    w->n_listeners = 0;
    w->accepting = 0;
}

void gw_worker_conn_gone(struct gw_worker *w)
{
    if (w->draining) {
        if (w->n_conns == 0)
            event_base_loopexit(w->base, NULL);
        return;
    }
    if (!w->accepting && (w->max_conns == 0 || w->n_conns < w->max_conns))
        set_accepting(w, 1);
}

/* Worker thread: takes the runtime the main thread left in w->pending, if any. */
static void swap_runtime(struct gw_worker *w)
{
    struct gw_runtime *rt;

    pthread_mutex_lock(&w->lock);
    rt = w->pending;
    w->pending = NULL;
    pthread_mutex_unlock(&w->lock);
    if (!rt)
        return;
    gw_runtime_unref(w->rt);
    w->rt = rt;
    w->max_conns = per_worker_max(rt, w->set->n);
    /* Pooled upstream connections belong to the old runtime's servers. */
    gw_up_pool_flush(&w->pool);
    if (!w->accepting && (w->max_conns == 0 || w->n_conns < w->max_conns))
        set_accepting(w, 1);
    gw_log(w->log, CFG_LOG_DEBUG, 0, "worker %u: now on configuration generation %llu", w->id,
           (unsigned long long)rt->generation);
}

/* Worker thread: graceful stop; the loop ends when the last connection has gone. */
static void drain(struct gw_worker *w)
{
    free_listeners(w);
    evtimer_del(w->resume_ev);
    w->draining = 1;
    gw_up_pool_flush(&w->pool);
    gw_conn_drain_all(w);
    if (w->n_conns == 0)
        event_base_loopexit(w->base, NULL);
}

/*
 * The main thread wrote the eventfd. The counter is read before the bits
 * are taken: a bit set after that is followed by a write of its own, so
 * no request is lost (one that was already taken costs an empty call).
 */
static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    uint64_t n;
    unsigned bits;

    (void)what;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        gw_log(w->log, CFG_LOG_ERROR, 0, "worker %u: eventfd read: %s", w->id, strerror(errno));
    bits = __atomic_exchange_n(&w->notify, 0u, __ATOMIC_ACQ_REL);
    if (bits & GW_WK_SWAP)
        swap_runtime(w);
    if (bits & GW_WK_DRAIN)
        drain(w);
    if (bits & GW_WK_STOP)
        event_base_loopbreak(w->base);
}

/* Main thread: asks worker w for what bit says (see notify_cb). */
static void worker_notify(struct gw_worker *w, unsigned bit)
{
    const uint64_t one = 1;

    __atomic_fetch_or(&w->notify, bit, __ATOMIC_ACQ_REL);
    /* Fails only when the counter would overflow: it is then non-zero and
     * the worker is woken anyway. */
    if (write(w->notify_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        gw_log(NULL, CFG_LOG_ERROR, 0, "worker %u: eventfd write: %s", w->id, strerror(errno));
}

static void *worker_main(void *arg)
{
    struct gw_worker *w = arg;

    w->log = gw_logbuf_new();
    event_base_dispatch(w->base);
    /* The loop is over: everything of this worker goes, on its thread. */
    w->draining = 1;
    evtimer_del(w->resume_ev);
    gw_conn_free_all(w);
    gw_up_pool_flush(&w->pool);
    free_listeners(w);
    gw_conn_req_cache_free(w);
    __atomic_sub_fetch(&w->set->running, 1, __ATOMIC_ACQ_REL);
    event_active(w->set->done_ev, EV_READ, 0);
    return NULL;
}

/*
 * A worker's event base. With epoll, changes are batched per loop iteration
 * (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST): a connection that turns its reads
 * off and on again within one iteration, as every proxied request does,
 * costs no epoll_ctl at all. Safe here: no descriptor is ever dup()ed.
 * No lock (EVENT_BASE_FLAG_NOLOCK): only its thread touches it, so every
 * event_add, event_del and loop turn would lock and unlock for nothing.
 * NULL when out of memory.
 */
static struct event_base *new_base(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base = NULL;

    if (!ec)
        goto out;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    /* Not EVENT_BASE_FLAG_PRECISE_TIMER: with epoll it adds a timerfd_settime
     * to every loop turn. The connection timers check their own deadlines
     * and set themselves again when woken early (timer_due in conn.c). */
    base = event_base_new_with_config(ec);
out:
    event_config_free(ec);
    return base;
}

/* Sets up worker k (not started); 0 / -1. Takes fds[0..n_listen). */
static int worker_init(struct gw_workers *ws, unsigned k, struct gw_runtime *rt, int *fds,
                       char *err, size_t errlen)
{
    struct gw_worker *w = &ws->w[k];
    size_t i;

    w->id = k;
    w->set = ws;
    pthread_mutex_init(&w->lock, NULL);
    for (i = 0; i < ws->n_listen; i++)
        w->fds[i] = fds[i];
    w->base = new_base();
    if (!w->base)
        goto fail;
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->notify_fd < 0) {
        snprintf(err, errlen, "worker %u: eventfd: %s", k, strerror(errno));
        goto out;
    }
    w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, notify_cb, w);
    w->resume_ev = evtimer_new(w->base, resume_cb, w);
    w->reap_ev = event_new(w->base, -1, 0, gw_conn_reap_cb, w);
    w->idstats = gw_idstats_new();
    w->certpool = tls_certpool_new(GW_CERTPOOL_SIZE);
    if (!w->idstats || !w->certpool || !w->notify_ev || !w->resume_ev || !w->reap_ev ||
        gw_up_pool_init(&w->pool, w->base) < 0 || event_add(w->notify_ev, NULL) < 0)
        goto fail;
    for (i = 0; i < ws->n_listen; i++) {
        w->listeners[i] = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE,
                                             -1, fds[i]);
        if (!w->listeners[i])
            goto fail;
        w->fds[i] = -1;
        w->n_listeners++;
        evconnlistener_set_error_cb(w->listeners[i], accept_error_cb);
    }
    w->accepting = 1;
    gw_runtime_ref(rt);
    w->rt = rt;
    w->max_conns = per_worker_max(rt, ws->n);
    return 0;
fail:
    snprintf(err, errlen, "worker %u: cannot set up its event loop (out of memory)", k);
out:
    return -1;
}

/* Frees what worker_init made (thread already joined or never started). */
static void worker_fini(struct gw_worker *w)
{
    size_t i;

    if (!w->set)
        return;
    free_listeners(w);
    for (i = 0; i < GW_MAX_LISTEN; i++)
        if (w->fds[i] >= 0)
            close(w->fds[i]);
    if (w->notify_ev)
        event_free(w->notify_ev);
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    if (w->resume_ev)
        event_free(w->resume_ev);
    if (w->reap_ev)
        event_free(w->reap_ev);
    gw_up_pool_free(&w->pool);
    if (w->base)
        event_base_free(w->base);
    gw_runtime_unref(w->rt);
    gw_runtime_unref(w->pending);
    gw_idstats_free(w->idstats);
    tls_certpool_free(w->certpool);
    pthread_mutex_destroy(&w->lock);
}

struct gw_workers *gw_workers_start(unsigned n, struct gw_runtime *rt, int *fds, size_t n_listen,
                                    struct event *done_ev, char *err, size_t errlen)
{
    struct gw_workers *ws = calloc(1, sizeof(*ws));
    sigset_t all, old;
    unsigned k;
    size_t i;

    if (!ws || n == 0 || !(ws->w = calloc(n, sizeof(*ws->w)))) {
        snprintf(err, errlen, "workers: out of memory");
        for (i = 0; i < n * n_listen; i++)
            close(fds[i]);
        free(ws);
        return NULL;
    }
    ws->n = n;
    ws->n_listen = n_listen;
    ws->done_ev = done_ev;
    for (k = 0; k < n; k++) {
        ws->w[k].notify_fd = -1;
        for (i = 0; i < GW_MAX_LISTEN; i++)
            ws->w[k].fds[i] = -1;
    }
    for (k = 0; k < n; k++) {
        if (worker_init(ws, k, rt, fds + (size_t)k * n_listen, err, errlen) < 0) {
            /* the sockets of the workers not yet set up */
            for (i = (size_t)(k + 1) * n_listen; i < (size_t)n * n_listen; i++)
                close(fds[i]);
            goto fail;
        }
    }
    /* Signals are for the main thread's loop only. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (k = 0; k < n; k++) {
        __atomic_add_fetch(&ws->running, 1, __ATOMIC_ACQ_REL);
        if (pthread_create(&ws->w[k].thread, NULL, worker_main, &ws->w[k]) != 0) {
            __atomic_sub_fetch(&ws->running, 1, __ATOMIC_ACQ_REL);
            snprintf(err, errlen, "worker %u: cannot start thread", k);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            gw_workers_stop(ws);
            gw_workers_free(ws);
            return NULL;
        }
        ws->w[k].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ws;
fail:
    gw_workers_free(ws);
    return NULL;
}

void gw_workers_publish(struct gw_workers *ws, struct gw_runtime *rt)
{
    unsigned k;

    for (k = 0; k < ws->n; k++) {
        struct gw_worker *w = &ws->w[k];
        struct gw_runtime *old;

        gw_runtime_ref(rt);
        pthread_mutex_lock(&w->lock);
        old = w->pending;
        w->pending = rt;
        pthread_mutex_unlock(&w->lock);
        gw_runtime_unref(old);
        worker_notify(w, GW_WK_SWAP);
    }
}

void gw_workers_drain(struct gw_workers *ws)
{
    unsigned k;

    for (k = 0; k < ws->n; k++)
        worker_notify(&ws->w[k], GW_WK_DRAIN);
}

void gw_workers_stop(struct gw_workers *ws)
{
    unsigned k;

    for (k = 0; k < ws->n; k++)
        if (ws->w[k].notify_ev)
            worker_notify(&ws->w[k], GW_WK_STOP);
}

unsigned gw_workers_running(struct gw_workers *ws)
{
    return __atomic_load_n(&ws->running, __ATOMIC_ACQUIRE);
}

void gw_workers_free(struct gw_workers *ws)
{
    unsigned k;

    if (!ws)
        return;
    for (k = 0; k < ws->n; k++)
        if (ws->w[k].started)
            pthread_join(ws->w[k].thread, NULL);
    for (k = 0; k < ws->n; k++)
        worker_fini(&ws->w[k]);
    free(ws->w);
    free(ws);
}

void gw_workers_stats(struct gw_workers *ws, struct gw_stats *sum, struct gw_idstats *ids)
{
    unsigned k;

    if (!ws)
        return;
    for (k = 0; k < ws->n; k++) {
        gw_stats_snapshot_add(sum, &ws->w[k].stats);
        if (ids)
            gw_idstats_snapshot_add(ids, ws->w[k].idstats);
    }
}
