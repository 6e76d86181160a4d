/*
 * admin.c - /healthz, /readyz and /metrics over plain HTTP (see admin.h).
 *
 * A small HTTP/1.1 server on bufferevents: the head is parsed by http1.h
 * (the gateway's own strict parser), every answer has a Content-Length, and
 * a connection lives until the client closes it, an error, or
 * GW_ADMIN_IDLE_MS without progress. libevent frees a bufferevent safely
 * from inside its own callback; every callback here returns right after
 * such a free.
 */
#include "admin.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "tls_server.h"

#define ACCEPT_RETRY_MS 1000
#define LISTEN_BACKLOG 64

struct admin_conn {
    struct gw_admin *a;
    struct bufferevent *bev;
    struct admin_conn *prev, *next;
    int closing;                   /* close once the output is written */
};

struct probe {
    struct gw_admin *a;
    struct bufferevent *bev;       /* NULL when this probe has finished */
    char name[300];
};

struct gw_admin {
    struct event_base *base;
    struct gw_admin_hooks hooks;
    struct evconnlistener *listener;
    struct event *accept_retry_ev;
    int port;
    struct admin_conn *conns;
    unsigned n_conns;
    /* Requests by identity, summed over the workers: kept for the life of
     * the listener (counts cleared per scrape) so that an identity keeps
     * its series (idstats.h, "Stable series"). */
    struct gw_idstats *ids;

    /* Upstream probe: the round in flight... */
    struct event *tick_ev;         /* every GW_ADMIN_PROBE_INTERVAL_MS */
    struct event *deadline_ev;     /* GW_ADMIN_PROBE_TIMEOUT_MS after a round starts */
    struct probe probes[GW_MAX_UPSTREAMS];
    size_t n_probes, pending, round_ok;
    int round_running;
    int reprobe;                   /* start another round once this one ends */
    uint64_t round_gen;            /* the configuration generation probed */
    char round_err[512];
    /* ...and the last finished one. */
    int res_done;                  /* at least one round finished */
    uint64_t res_gen;
    size_t res_ok, res_total;
    char res_err[512];
};

static void ms_to_tv(unsigned ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* ---- upstream probe ---------------------------------------------------- */

static void probe_finish_round(struct gw_admin *a)
{
    event_del(a->deadline_ev);
    a->round_running = 0;
    a->res_done = 1;
    a->res_gen = a->round_gen;
    a->res_ok = a->round_ok;
    a->res_total = a->n_probes;
    memcpy(a->res_err, a->round_err, sizeof(a->res_err));
    /* From the loop, not from here: a caller may still walk this round. */
    if (a->reprobe)
        event_active(a->tick_ev, EV_TIMEOUT, 1);
}

/* Appends "name: why" to the round's causes (as many as fit). */
static void probe_note(struct gw_admin *a, const char *name, const char *why)
{
    size_t used = strlen(a->round_err);

    if (used + 8 < sizeof(a->round_err))
        snprintf(a->round_err + used, sizeof(a->round_err) - used, "%s%s: %s",
                 used ? "; " : "", name, why);
}

/* One probe is over: frees its connection, closes the round after the last. */
static void probe_done(struct probe *p, int ok, const char *why)
{
    struct gw_admin *a = p->a;

    bufferevent_free(p->bev);
    p->bev = NULL;
    if (ok)
        a->round_ok++;
    else
        probe_note(a, p->name, why);
    if (--a->pending == 0)
        probe_finish_round(a);
}

static void probe_event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct probe *p = arg;
    int e = EVUTIL_SOCKET_ERROR();

    (void)bev;
    if (events & BEV_EVENT_CONNECTED)
        probe_done(p, 1, NULL);
    else
        probe_done(p, 0, e ? strerror(e) : "connect failed");
}

static void probe_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_admin *a = arg;
    size_t i;

    (void)fd;
    (void)what;
    for (i = 0; i < a->n_probes && a->round_running; i++)
        if (a->probes[i].bev)
            probe_done(&a->probes[i], 0, "connect timed out");
}

/* Starts a round over the servers of the runtime in service. */
static void probe_start_round(struct gw_admin *a)
{
    struct gw_admin_state st;
    const struct gw_runtime *rt;
    struct probe *p;
    struct timeval tv;
    size_t i;

    if (a->round_running)
        return;
    a->reprobe = 0;
    memset(&st, 0, sizeof(st));
    a->hooks.state(a->hooks.arg, &st);
    rt = st.rt;
    a->round_gen = st.generation;
    a->round_err[0] = '\0';
    a->round_ok = 0;
    a->n_probes = rt ? rt->n_servers : 0;
    if (a->n_probes > GW_MAX_UPSTREAMS)
        a->n_probes = GW_MAX_UPSTREAMS;
    a->pending = a->n_probes;
    a->round_running = 1;
    if (a->n_probes == 0) {
        snprintf(a->round_err, sizeof(a->round_err), "%s",
                 rt ? "no upstream server configured" : "no configuration in service");
        probe_finish_round(a);
        return;
    }
    ms_to_tv(GW_ADMIN_PROBE_TIMEOUT_MS, &tv);
    event_add(a->deadline_ev, &tv);
    for (i = 0; i < a->n_probes; i++) {
        p = &a->probes[i];
        p->a = a;
        snprintf(p->name, sizeof(p->name), "%s", rt->servers[i].name);
        p->bev = bufferevent_socket_new(a->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!p->bev) {
            probe_note(a, p->name, "out of memory");
            if (--a->pending == 0)
                probe_finish_round(a);
            continue;
        }
        bufferevent_setcb(p->bev, NULL, NULL, probe_event_cb, p);
        /* An immediate refusal is reported later through probe_event_cb;
         * -1 means the connect could not even start. */
        if (bufferevent_socket_connect(p->bev, (const struct sockaddr *)&rt->servers[i].addr,
                                       (int)rt->servers[i].addrlen) < 0) {
            int e = EVUTIL_SOCKET_ERROR();

            probe_done(p, 0, e ? strerror(e) : "connect failed");
        }
    }
}

static void probe_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe_start_round(arg);
}

void gw_admin_reprobe(struct gw_admin *a)
{
    if (!a)
        return;
    if (a->round_running)
        a->reprobe = 1;
    else
        probe_start_round(a);
}

/* ---- HTTP -------------------------------------------------------------- */

static void conn_free(struct admin_conn *c)
{
    struct gw_admin *a;

    if (!c)
        return;
    a = c->a;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->n_conns--;
    bufferevent_free(c->bev);
    free(c);
    if (a->listener && a->n_conns == GW_ADMIN_MAX_CONNS - 1)
        evconnlistener_enable(a->listener);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/*
 * Queues one response. body is drained into the output (or dropped for
 * HEAD); ctype NULL = text/plain. With close_after, the connection is
 * closed once it is written and nothing more is read.
 */
static void respond(struct admin_conn *c, int status, const char *ctype, struct evbuffer *body,
                    int head_only, int close_after)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len = evbuffer_get_length(body);

    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\n%s%s\r\n",
                        status, reason_phrase(status), ctype ? ctype : "text/plain; charset=utf-8",
                        len, status == 405 ? "Allow: GET, HEAD\r\n" : "",
                        close_after ? "Connection: close\r\n" : "");
    if (head_only)
        evbuffer_drain(body, len);
    else
        evbuffer_add_buffer(out, body);
    if (close_after) {
        c->closing = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
}

static int readyz(struct gw_admin *a, struct evbuffer *body)
{
    struct gw_admin_state st;
    const char *stale;

    memset(&st, 0, sizeof(st));
    a->hooks.state(a->hooks.arg, &st);
    if (st.draining) {
        evbuffer_add_printf(body, "not ready: stopping (draining connections)\n");
        return 503;
    }
    if (!st.rt) {
        evbuffer_add_printf(body, "not ready: no configuration in service\n");
        return 503;
    }
    if (!a->res_done) {
        evbuffer_add_printf(body, "not ready: first upstream probe still running\n");
        return 503;
    }
    stale = a->res_gen != st.generation ? " (probed before the reload; probing the new "
                                          "configuration's upstreams now)" : "";
    if (a->res_ok == 0) {
        evbuffer_add_printf(body, "not ready: no upstream server reachable (0 of %zu): %s%s\n",
                            a->res_total, a->res_err, stale);
        return 503;
    }
    evbuffer_add_printf(body, "ready: %zu of %zu upstream servers reachable%s%s%s\n", a->res_ok,
                        a->res_total, a->res_err[0] ? "; unreachable: " : "", a->res_err, stale);
    return 200;
}

/* Renders /metrics into body; 200, or 500 with the cause in body. */
static int metrics(struct gw_admin *a, struct evbuffer *body)
{
    struct gw_admin_state st;
    struct gw_stats sum;
    struct gw_metrics_input in;
    int status = 500;

    memset(&st, 0, sizeof(st));
    memset(&sum, 0, sizeof(sum));
    memset(&in, 0, sizeof(in));
    gw_idstats_clear_counts(a->ids);
    a->hooks.stats(a->hooks.arg, &sum, a->ids);
    a->hooks.state(a->hooks.arg, &st);
    in.stats = &sum;
    in.ids = a->ids;
    in.reloads_ok = st.reloads_ok;
    in.reloads_failed = st.reloads_failed;
    in.config_loaded = st.config_loaded;
    in.now = time(NULL);
    in.has_log_dropped = 1;
    in.log_dropped = gw_log_dropped();
    in.has_tls_sessions = st.has_tls_sessions;
    in.tls_sessions = st.tls_sessions;
    if (st.rt)
        in.generation = st.rt->generation;
    if (st.rt && st.rt->server_ctx) {
        in.server_cert = SSL_CTX_get0_certificate(st.rt->server_ctx);
        in.trust = tls_server_ctx_get0_trust(st.rt->server_ctx);
    }
    if (gw_metrics_render(body, &in) < 0)
        goto oom;
    status = 200;
    goto out;
oom:
    evbuffer_drain(body, evbuffer_get_length(body));
    evbuffer_add_printf(body, "out of memory\n");
out:
    return status;
}

/* 1 when the method (len bytes) is s. */
static int method_is(const struct http1_head *h, const char *s)
{
    return h->method_len == strlen(s) && memcmp(h->method, s, h->method_len) == 0;
}

/* 1 when the path of h, without its query, is s. */
static int path_is(const struct http1_head *h, const char *s)
{
    const char *q = memchr(h->path, '?', h->path_len);
    size_t len = q ? (size_t)(q - h->path) : h->path_len;

    if (len == 0 && h->target_form == HTTP1_TARGET_ABSOLUTE)
        return strcmp(s, "/") == 0;
    return len == strlen(s) && memcmp(h->path, s, len) == 0;
}

/* Answers one parsed request on c. */
static void handle(struct admin_conn *c, const struct http1_head *h)
{
    struct gw_admin *a = c->a;
    struct evbuffer *body = evbuffer_new();
    const char *ctype = NULL;
    int head_only = method_is(h, "HEAD"), status;
    int close_after = !h->keep_alive || h->body != HTTP1_BODY_NONE;

    if (!body) {
        c->closing = 1;
        return;
    }
    if (!method_is(h, "GET") && !head_only) {
        status = 405;
        evbuffer_add_printf(body, "only GET and HEAD\n");
    } else if (path_is(h, "/healthz")) {
        status = 200;
        evbuffer_add_printf(body, "ok\n");
    } else if (path_is(h, "/readyz")) {
        status = readyz(a, body);
    } else if (path_is(h, "/metrics")) {
        status = metrics(a, body);
        if (status == 200)
            ctype = GW_METRICS_CONTENT_TYPE;
    } else {
        status = 404;
        evbuffer_add_printf(body, "not found: try /healthz, /readyz or /metrics\n");
    }
    respond(c, status, ctype, body, head_only, close_after);
    evbuffer_free(body);
}

/* Writes an error answer for a head that does not parse, then closes. */
static void bad_request(struct admin_conn *c, enum http1_result rc)
{
    struct evbuffer *body = evbuffer_new();
    int status = rc == HTTP1_E_TOO_LARGE         ? 431
                 : rc == HTTP1_E_NOT_IMPLEMENTED ? 501
                 : rc == HTTP1_E_VERSION         ? 505
                                                 : 400;

    if (!body) {
        c->closing = 1;
        return;
    }
    evbuffer_add_printf(body, "%s\n", reason_phrase(status));
    respond(c, status, NULL, body, 0, 1);
    evbuffer_free(body);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct admin_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct http1_head head;
    enum http1_result rc;
    size_t len;
    unsigned char *data;

    while (!c->closing && (len = evbuffer_get_length(in)) > 0) {
        if (len > GW_ADMIN_MAX_HEAD)
            len = GW_ADMIN_MAX_HEAD;
        data = evbuffer_pullup(in, (ev_ssize_t)len);
        if (!data) {
            c->closing = 1;
            break;
        }
        rc = http1_parse_request((const char *)data, len, GW_ADMIN_MAX_HEAD, &head);
        if (rc == HTTP1_INCOMPLETE)
            break;
        if (rc != HTTP1_OK) {
            bad_request(c, rc);
            break;
        }
        handle(c, &head);
        evbuffer_drain(in, head.head_len);
    }
    /* closing with nothing queued (out of memory): nothing to wait for. */
    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct admin_conn *c = arg;

    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void conn_event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct admin_conn *c = arg;

    /* A client that half-closes after its request still gets the answer. */
    if ((events & BEV_EVENT_EOF) && evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        c->closing = 1;
        bufferevent_disable(bev, EV_READ);
        return;
    }
    conn_free(c); /* error, timeout, or EOF with nothing left to write */
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct gw_admin *a = arg;
    struct admin_conn *c = NULL;
    struct timeval tv;

    (void)l;
    (void)sa;
    (void)salen;
    if (a->n_conns >= GW_ADMIN_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
        evutil_closesocket(fd);
        return;
    }
    c->a = a;
    c->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    if (++a->n_conns >= GW_ADMIN_MAX_CONNS)
        evconnlistener_disable(a->listener); /* the kernel backlog holds the rest */
    ms_to_tv(GW_ADMIN_IDLE_MS, &tv);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* accept() failed (EMFILE...): pause instead of spinning on the ready socket. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct gw_admin *a = arg;
    struct timeval tv;
    int e = EVUTIL_SOCKET_ERROR();

    evconnlistener_disable(l);
    gw_log(NULL, CFG_LOG_WARN, 0, "admin listener: accept: %s; retrying in %d ms",
           strerror(e), ACCEPT_RETRY_MS);
    ms_to_tv(ACCEPT_RETRY_MS, &tv);
    event_add(a->accept_retry_ev, &tv);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_admin *a = arg;

    (void)fd;
    (void)what;
    if (a->n_conns < GW_ADMIN_MAX_CONNS)
        evconnlistener_enable(a->listener);
}

/* ---- start / stop ------------------------------------------------------ */

static int is_loopback(const struct sockaddr *sa)
{
    const struct sockaddr_in6 *s6;

    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family != AF_INET6)
        return 0;
    s6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
        return 1;
    return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127;
}

/* A bound, listening, non-blocking socket for l; -1 with the cause in err. */
static int bind_admin(const struct cfg_addr *l, int *port, int *loopback, char *err,
                      size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    int fd = -1, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(l->host, l->port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "admin.listen %s:%s: cannot resolve: %s", l->host, l->port,
                 rc ? gai_strerror(rc) : "no address");
        goto out;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "admin.listen %s:%s: socket: %s", l->host, l->port,
                 strerror(errno));
        goto out;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(err, errlen, "admin.listen %s:%s: %s", l->host, l->port, strerror(errno));
        close(fd);
        fd = -1;
        goto out;
    }
    *loopback = is_loopback(res->ai_addr);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
out:
    if (res)
        freeaddrinfo(res);
    return fd;
}

struct gw_admin *gw_admin_start(struct event_base *base, const struct cfg_addr *listen,
                                const struct gw_admin_hooks *hooks, char *err, size_t errlen)
{
    struct gw_admin *a = NULL;
    struct timeval tv;
    int fd = -1, loopback = 0;

    if (!base || !listen || !hooks || !hooks->state || !hooks->stats) {
        snprintf(err, errlen, "admin listener: missing base, address or hooks");
        goto fail;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "admin listener: out of memory");
        goto fail;
    }
    a->base = base;
    a->hooks = *hooks;
    a->ids = gw_idstats_new();
    if (!a->ids) {
        snprintf(err, errlen, "admin listener: out of memory");
        goto fail;
    }
    fd = bind_admin(listen, &a->port, &loopback, err, errlen);
    if (fd < 0)
        goto fail;
    a->listener = evconnlistener_new(base, accept_cb, a,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (!a->listener) {
        close(fd);
        snprintf(err, errlen, "admin.listen %s:%s: cannot set up the listener", listen->host,
                 listen->port);
        goto fail;
    }
    evconnlistener_set_error_cb(a->listener, accept_error_cb);
    a->accept_retry_ev = evtimer_new(base, accept_retry_cb, a);
    a->tick_ev = event_new(base, -1, EV_PERSIST, probe_tick_cb, a);
    a->deadline_ev = evtimer_new(base, probe_deadline_cb, a);
    ms_to_tv(GW_ADMIN_PROBE_INTERVAL_MS, &tv);
    if (!a->accept_retry_ev || !a->tick_ev || !a->deadline_ev || event_add(a->tick_ev, &tv) < 0) {
        snprintf(err, errlen, "admin listener: out of memory");
        goto fail;
    }
    if (!loopback)
        gw_log(NULL, CFG_LOG_WARN, 0,
               "admin.listen %s:%s is not a loopback address: /metrics and /readyz are "
               "reachable from the network without authentication",
               listen->host, listen->port);
    gw_log(NULL, CFG_LOG_INFO, 0, "admin listener on %s:%d (/healthz /readyz /metrics)",
           listen->host, a->port);
    probe_start_round(a);
    return a;
fail:
    gw_admin_free(a);
    return NULL;
}

int gw_admin_port(const struct gw_admin *a)
{
    return a ? a->port : -1;
}

void gw_admin_free(struct gw_admin *a)
{
    size_t i;

    if (!a)
        return;
    if (a->listener)
        evconnlistener_free(a->listener);
    a->listener = NULL;
    while (a->conns)
        conn_free(a->conns);
    for (i = 0; i < a->n_probes; i++)
        if (a->probes[i].bev)
            bufferevent_free(a->probes[i].bev);
    if (a->accept_retry_ev)
        event_free(a->accept_retry_ev);
    if (a->tick_ev)
        event_free(a->tick_ev);
    if (a->deadline_ev)
        event_free(a->deadline_ev);
    gw_idstats_free(a->ids);
    free(a);
}
