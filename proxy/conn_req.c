/*
 * conn_req.c - the request path: head, checks, identity, upstream connect,
 * request body (see conn_int.h for the states).
 */
#include "conn_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "identity.h"
#include "log.h"
#include "route.h"
#include "upstream.h"

/* The status for a parser result, and a word for the log. */
static int parse_status(enum http1_result r, const char **why)
{
    switch (r) {
    case HTTP1_E_TOO_LARGE:
        *why = "request head too large";
        return 431;
    case HTTP1_E_NOT_IMPLEMENTED:
        *why = "not implemented (method or transfer coding)";
        return 501;
    case HTTP1_E_VERSION:
        *why = "HTTP version not supported";
        return 505;
    default:
        *why = "malformed request head";
        return 400;
    }
}

static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/*
 * The path the request's checks and rules see: the target's, or "/" for an
 * absolute-form target without a path ("http://host" and "http://host?q"
 * mean "/" and "/?q", as rewrite.c forwards them; the query takes no part
 * in the checks).
 */
static void checked_path(const struct http1_head *h, const char **path, size_t *len)
{
    if (h->path_len == 0 || h->path[0] == '?') {
        *path = "/";
        *len = 1;
    } else {
        *path = h->path;
        *len = h->path_len;
    }
}

/* Authorized: rewrite the head for the upstream and go. */
static void proceed(struct gw_conn *c)
{
    struct gw_req *r = c->req;
    struct gw_runtime *rt = r->rt;
    char sha[2 * sizeof(c->sha256) + 1], ip[sizeof(c->client)];
    struct gw_fwd_info fi = {
        .names = &rt->names,
        .identity = r->identity,
        .cn = c->cn,
        .cert_sha256 = sha,
        .client_ip = ip,
        .request_id = r->request_id,
        .default_host = rt->servers[0].name,
    };
    struct evbuffer *in = gw_ts_input(c->ts);

    /* The connection keeps these compact (memory per idle connection). */
    gw_rw_hex(sha, c->sha256, c->has_sha256 ? sizeof(c->sha256) : 0);
    memcpy(ip, c->client + c->ip_off, c->ip_len);
    ip[c->ip_len] = '\0';

    if (gw_rw_request(&r->head, &fi, r->up_head) < 0) {
        gw_conn_error(c, 500, "out of memory");
        return;
    }
    /* The head's pointers die here: everything needed was copied. */
    evbuffer_drain(in, r->head_in_input);
    r->head_in_input = 0;
    r->body = r->head.body;
    switch (r->body) {
    case HTTP1_BODY_LENGTH:
        r->body_left = r->head.content_length;
        r->body_done = r->body_left == 0;
        break;
    case HTTP1_BODY_CHUNKED:
        http1_chunked_init(&r->chunk);
        break;
    default:
        r->body_done = 1;
        break;
    }
    if (r->head.expect_continue && !r->body_done) {
        /* curl waits for this before sending a large body; the upstream
         * never sees the Expect header. */
        evbuffer_add(gw_ts_output(c->ts), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    if (r->body_done) {
        gw_conn_arm_answer_wait(c);
    } else {
        r->body_deadline_us = gw_mono_us() + (uint64_t)rt->cfg->timeouts.body_ms * 1000;
        gw_conn_arm(c, CT_BODY, rt->cfg->timeouts.body_ms);
    }
    gw_req_upstream_start(c, 0);
}

static void identity_cb(void *arg, const struct gw_id_answer *a)
{
    struct gw_conn *c = arg;
    struct gw_req *r = c->req;
    const struct http1_head *h = &r->head;
    const char *path;
    size_t path_len;
    char why[256];

    c->id_pending = NULL;
    if (c->state != CONN_WAIT_IDENTITY)
        return;
    checked_path(h, &path, &path_len);
    if (a->status == GW_ID_ERROR) {
        gw_conn_error(c, 503, "identity source failed");
        return;
    }
    if (a->status == GW_ID_UNKNOWN) {
        gw_stat_add(&c->w->stats.requests_refused[TLS_REFUSE_UNKNOWN_IDENTITY], 1);
        snprintf(why, sizeof(why), "forbidden: unknown_identity: no identity for cn=%s",
                 c->cn);
        gw_conn_error(c, 403, why);
        return;
    }
    copy_field(r->identity, sizeof(r->identity), a->identity, strlen(a->identity));
    if (!gw_route_allowed(a->allow, a->n_allow, a->has_allow, h->method, h->method_len, path,
                          path_len)) {
        gw_stat_add(&c->w->stats.requests_refused[TLS_REFUSE_FORBIDDEN], 1);
        snprintf(why, sizeof(why), "forbidden: identity %s may not %s this path",
                 r->identity, r->method);
        gw_conn_error(c, 403, why);
        return;
    }
    proceed(c);
}

/*
 * The connection's client certificate against the request's runtime: its
 * trust set and CRL when a reload has replaced them since the certificate
 * was last checked, and the clock once its or its intermediate's notAfter
 * has passed. A client retired, revoked or expired since it connected gets
 * 403 and the connection closes; new handshakes are refused in the TLS
 * handshake itself. 0 when still admitted, -1 when answered.
 */
static int still_admitted(struct gw_conn *c, struct gw_runtime *rt)
{
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    struct tls_trust *t = tls_server_ctx_get0_trust(rt->server_ctx);
    enum tls_refusal res = TLS_REFUSE_UNTRUSTED_ISSUER;
    char detail[160], why[240];

    if (cert != NULL && t != NULL)
        res = tls_trust_check(t, cert, NULL, time(NULL), detail, sizeof(detail));
    else
        snprintf(detail, sizeof(detail), "no certificate or trust set to check it against");
    ERR_clear_error();
    if (res == TLS_OK) {
        c->trust_gen = (uint32_t)rt->generation;
        gw_conn_set_valid_until(c, t); /* the new set's intermediate */
        return 0;
    }
    gw_stat_add(&c->w->stats.requests_refused[res], 1);
    snprintf(why, sizeof(why), "client certificate no longer admitted: %s: %s",
             tls_refusal_name(res), detail);
    c->req->client_keep_alive = 0; /* answered with Connection: close */
    gw_conn_error(c, 403, why);
    return -1;
}

/* A complete head is in r->head: check it and ask who the client is. */
static void on_head(struct gw_conn *c)
{
    struct gw_req *r = c->req;
    struct http1_head *h = &r->head;
    struct gw_runtime *rt = r->rt;
    const char *path;
    size_t path_len;

    checked_path(h, &path, &path_len);
    c->had_request = 1;
    r->head_in_input = h->head_len;
    gw_stat_add(&c->w->stats.bytes_in, h->head_len);
    copy_field(r->method, sizeof(r->method), h->method, h->method_len);
    if (h->path_len > 0 && h->path[0] == '?') { /* logged as forwarded: "/?q" */
        r->path[0] = '/';
        copy_field(r->path + 1, sizeof(r->path) - 1, h->path, h->path_len);
    } else {
        copy_field(r->path, sizeof(r->path), path, path_len);
    }
    r->minor = h->minor_version;
    r->client_keep_alive = h->keep_alive;
    r->is_head = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
    r->body = h->body;
    if (((uint32_t)rt->generation != c->trust_gen || (uint64_t)time(NULL) >= c->not_after) &&
        still_admitted(c, rt) < 0)
        return;
    if (rt->cfg->limits.max_headers && h->n_headers > rt->cfg->limits.max_headers) {
        gw_conn_error(c, 431, "too many header fields");
        return;
    }
    if (!gw_route_path_safe(path, path_len)) {
        gw_conn_error(c, 400, "request-target with dot-segments, encoded '.', '/' or '\\', "
                              "or a backslash");
        return;
    }
    if (h->body == HTTP1_BODY_LENGTH && rt->cfg->limits.max_body_bytes &&
        h->content_length > rt->cfg->limits.max_body_bytes) {
        gw_conn_error(c, 413, "Content-Length above limits.max_body_bytes");
        return;
    }
    c->state = CONN_WAIT_IDENTITY;
    c->id_rt = rt;
    /* Client reads go off only while the request waits for something (an
     * identity answer, an upstream connect): the head must stay where the
     * parser saw it, and the body waits in the socket. A synchronous lookup
     * and a pooled upstream never turn them off (no epoll_ctl). */
    if (gw_id_lookup(rt->ids, c->w->base, c->cn, identity_cb, c, &c->id_pending) < 0)
        gw_conn_error(c, 503, "identity source unavailable");
    else if (c->id_pending && c->state == CONN_WAIT_IDENTITY)
        gw_conn_pause_client(c, 1);
}

void gw_req_try_head(struct gw_conn *c)
{
    struct evbuffer *in = gw_ts_input(c->ts);
    size_t len = evbuffer_get_length(in), max, n;
    struct gw_runtime *rt;
    enum http1_result res;
    const char *why;
    unsigned char *p;
    int status;

    if (len == 0)
        return;
    if (c->state == CONN_KEEPALIVE_IDLE) {
        c->req = gw_conn_req_new(c);
        if (!c->req) {
            gw_conn_close(c, "out of memory");
            return;
        }
        c->state = CONN_READ_HEAD;
        gw_conn_arm(c, CT_HEADER, c->req->rt->cfg->timeouts.header_ms);
    }
    rt = c->req->rt;
    max = rt->cfg->limits.max_header_bytes;
    n = len < max ? len : max;
    p = evbuffer_pullup(in, (ev_ssize_t)n);
    if (!p) {
        gw_conn_close(c, "out of memory");
        return;
    }
    res = http1_parse_request((const char *)p, n, max, &c->req->head);
    if (res == HTTP1_INCOMPLETE) {
        /* Nothing more comes after the client's half-close. */
        if (c->client_eof)
            gw_conn_close(c, "client closed in the middle of a request head");
        return;
    }
    if (res != HTTP1_OK) {
        status = parse_status(res, &why);
        gw_conn_pause_client(c, 1);
        gw_conn_error(c, status, why);
        return;
    }
    on_head(c);
}

void gw_req_upstream_start(struct gw_conn *c, int fresh)
{
    struct gw_req *r = c->req;
    char err[256];

    if (!r->t_up_us)
        r->t_up_us = gw_mono_us();
    c->up = gw_up_connect(&c->w->pool, r->rt, fresh, &r->tried, err, sizeof(err));
    if (!c->up) {
        gw_stat_add(&c->w->stats.upstream_connect_fail, 1);
        gw_conn_error(c, 502, err);
        return;
    }
    if (c->up->reused) {
        gw_resp_attach(c);
        gw_req_send(c);
        return;
    }
    gw_resp_attach(c);
    gw_conn_pause_client(c, 1); /* the body waits in the socket */
    c->state = CONN_UPSTREAM_CONNECT;
    gw_conn_arm_up(c, UT_CONNECT, r->rt->cfg->timeouts.upstream_connect_ms);
}

void gw_req_upstream_connect_failed(struct gw_conn *c, const char *why)
{
    struct gw_runtime *rt = c->req->rt;

    /* "marked failed" once per failure period; a server tried again while
     * marked (no healthy one left) says so instead of claiming a new mark. */
    int again = gw_up_mark_failed(rt, c->up->server);

    gw_log(c->w->log, CFG_LOG_WARN, c->id, "upstream %s: %s; %s %u ms",
           rt->servers[c->up->server].name, why,
           again ? "failed again, skipped for another" : "marked failed for",
           rt->cfg->upstream.fail_timeout_ms);
    gw_stat_add(&c->w->stats.upstream_connect_fail, 1);
    gw_conn_drop_upstream(c);
    gw_req_upstream_start(c, 1);
}

void gw_req_send(struct gw_conn *c)
{
    struct gw_req *r = c->req;
    struct evbuffer *out = bufferevent_get_output(c->up->bev);
    size_t n = evbuffer_get_length(r->up_head);

    /* A copy: the head stays for one retry on a fresh connection when a
     * pooled one turns out to be closed. */
    if (evbuffer_add(out, evbuffer_pullup(r->up_head, -1), n) < 0) {
        gw_conn_error(c, 500, "out of memory");
        return;
    }
    gw_up_push(c->up);
    if (r->body_done) {
        c->state = CONN_READ_RESPONSE;
        gw_conn_arm_up(c, UT_READ, r->rt->cfg->timeouts.upstream_read_ms);
        gw_conn_pause_client(c, 0); /* notice a close; pipelined bytes wait */
        return;
    }
    c->state = CONN_FORWARD;
    gw_conn_pause_client(c, 0);
    gw_req_forward_body(c);
    gw_conn_kick_read(c);
}

/*
 * The upstream takes no more body bytes (its output is at the high mark):
 * client reads off until it has taken half (gw_req_upstream_drained). From
 * here the upstream is the one waited for: the client's body deadline
 * stops and timeouts.upstream_read bounds the stall (504 when it ends), so
 * a stalled upstream is not answered as a slow client (408).
 */
static void wait_upstream(struct gw_conn *c)
{
    struct gw_req *r = c->req;

    gw_conn_pause_client(c, 1);
    if (r->up_stall_us)
        return;
    r->up_stall_us = gw_mono_us();
    gw_conn_arm(c, CT_NONE, 0);
    gw_conn_arm_up(c, UT_WRITE, r->rt->cfg->timeouts.upstream_read_ms);
}

void gw_req_upstream_drained(struct gw_conn *c)
{
    struct gw_req *r = c->req;
    uint64_t now;

    if (c->state != CONN_FORWARD || !c->client_paused)
        return;
    if (r->up_stall_us) {
        /* the stall does not count against the client's body deadline */
        now = gw_mono_us();
        r->body_deadline_us += now - r->up_stall_us;
        r->up_stall_us = 0;
        gw_conn_arm_up(c, UT_NONE, 0);
        gw_conn_arm(c, CT_BODY, r->body_deadline_us > now ?
                    (unsigned)((r->body_deadline_us - now + 999) / 1000) : 0);
    }
    gw_conn_pause_client(c, 0);
    gw_req_forward_body(c);
    gw_conn_kick_read(c);
}

int gw_req_body_cut(const struct gw_conn *c)
{
    const struct gw_req *r = c->req;
    size_t in;

    if (!r || r->body_done || !c->client_eof)
        return 0;
    in = evbuffer_get_length(gw_ts_input(c->ts));
    return in == 0 || (r->body == HTTP1_BODY_LENGTH && in < r->body_left);
}

/* One step of a chunked body: 1 to go on, 0 when input is used up, -1 when
 * the connection got an answer or was closed. */
static int forward_chunked(struct gw_conn *c, struct evbuffer *in, struct evbuffer *out)
{
    struct gw_req *r = c->req;
    struct evbuffer_iovec v;
    size_t consumed = 0, off = 0, dlen = 0;
    uint64_t max = r->rt->cfg->limits.max_body_bytes;
    enum http1_chunk_result res;

    if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
        return 0;
    res = http1_chunked_feed(&r->chunk, v.iov_base, v.iov_len, &consumed, &off, &dlen);
    switch (res) {
    case HTTP1_CHUNK_ERROR:
        gw_conn_error(c, 400, "malformed chunked request body");
        return -1;
    case HTTP1_CHUNK_DATA:
        if (max && r->chunk.total > max) {
            gw_conn_error(c, 413, "chunked body above limits.max_body_bytes");
            return -1;
        }
        evbuffer_drain(in, off);
        if (gw_rw_chunk_header(out, dlen) < 0 || evbuffer_remove_buffer(in, out, dlen) < 0 ||
            evbuffer_add(out, "\r\n", 2) < 0) {
            gw_conn_close(c, "out of memory");
            return -1;
        }
        break;
    case HTTP1_CHUNK_DONE:
        evbuffer_drain(in, consumed);
        if (evbuffer_add(out, "0\r\n\r\n", 5) < 0) {
            gw_conn_close(c, "out of memory");
            return -1;
        }
        r->body_done = 1;
        break;
    case HTTP1_CHUNK_MORE:
        evbuffer_drain(in, consumed);
        break;
    }
    gw_stat_add(&c->w->stats.bytes_in, consumed);
    return 1;
}

void gw_req_forward_body(struct gw_conn *c)
{
    struct gw_req *r = c->req;
    struct evbuffer *in = gw_ts_input(c->ts);
    struct evbuffer *out;

    if (!c->up || r->body_done)
        return;
    out = bufferevent_get_output(c->up->bev);
    while (!r->body_done && evbuffer_get_length(in) > 0) {
        if (evbuffer_get_length(out) >= GW_HIGH_MARK) {
            gw_up_push(c->up);
            if (evbuffer_get_length(out) < GW_HIGH_MARK)
                continue;
            wait_upstream(c);
            return;
        }
        if (r->body == HTTP1_BODY_LENGTH) {
            size_t n = evbuffer_get_length(in);

            if (n > r->body_left)
                n = (size_t)r->body_left;
            /* moves the chains, no copy */
            if (evbuffer_remove_buffer(in, out, n) < 0) {
                gw_conn_close(c, "out of memory");
                return;
            }
            r->body_left -= n;
            r->body_done = r->body_left == 0;
            gw_stat_add(&c->w->stats.bytes_in, n);
        } else if (forward_chunked(c, in, out) < 0) {
            return;
        }
    }
    gw_up_push(c->up);
    if (gw_req_body_cut(c)) {
        gw_conn_close(c, "client closed during the request body");
        return;
    }
    if (r->body_done && c->state == CONN_FORWARD) {
        gw_conn_arm_answer_wait(c);
        c->state = CONN_READ_RESPONSE;
        gw_conn_arm_up(c, UT_READ, r->rt->cfg->timeouts.upstream_read_ms);
    }
}
