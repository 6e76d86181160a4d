/*
 * conn.c - client connection lifecycle: accept, TLS handshake, timers,
 * the gateway's own error answers, end of a request, close.
 * The request path lives in conn_req.c, the response path in conn_resp.c.
 */
#include "conn_int.h"

#include <errno.h>
#include <stddef.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "timer.h"
#include "upstream.h"

static uint64_t next_conn_id; /* atomic: ids are unique across workers */

static void wait_request(struct gw_conn *c, unsigned ms);
static void park(struct gw_conn *c);

static void ms_to_tv(unsigned ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

void gw_conn_set_valid_until(struct gw_conn *c, const struct tls_trust *t)
{
    time_t until = tls_trust_valid_until(t, SSL_get0_peer_certificate(c->ssl));

    c->not_after = until <= 0 ? 0 : until > (time_t)UINT32_MAX ? UINT32_MAX : (uint32_t)until;
}

struct gw_runtime *gw_conn_rt(const struct gw_conn *c)
{
    return c->req ? c->req->rt : c->w->rt;
}

/* Arms the client-side timer for kind (CT_NONE: disarms). Lazily
 * (timer.h): a keep-alive connection changes kinds several times per
 * request, and this way most of them cost no event_add or event_del. */
void gw_conn_arm(struct gw_conn *c, enum gw_ctimer kind, unsigned ms)
{
    uint64_t now;

    c->ctimer = kind;
    if (kind == CT_NONE)
        return;
    now = gw_mono_us();
    c->cdeadline_us = now + (uint64_t)ms * 1000;
    gw_timer_set(c->timer, &c->ctimer_at, c->cdeadline_us, now);
}

void gw_conn_arm_up(struct gw_conn *c, enum gw_utimer kind, unsigned ms)
{
    uint64_t now;

    c->utimer = kind;
    if (kind == UT_NONE)
        return;
    now = gw_mono_us();
    c->udeadline_us = now + (uint64_t)ms * 1000;
    gw_timer_set(c->up_timer, &c->utimer_at, c->udeadline_us, now);
}

#define HDRS_AT (offsetof(struct gw_req, head) + offsetof(struct http1_head, headers))
#define HDRS_END (HDRS_AT + sizeof(((struct http1_head *)0)->headers))

/* Request objects come from a small per-worker cache. */
static struct gw_req *req_get(struct gw_conn *c)
{
    struct gw_worker *w = c->w;
    struct gw_req *r = w->req_cache;
    struct evbuffer *keep;

    if (r) {
        w->req_cache = r->next_free;
        w->n_req_cache--;
    } else {
        r = calloc(1, sizeof(*r));
        if (!r)
            return NULL;
        r->up_head = evbuffer_new();
        if (!r->up_head) {
            free(r);
            return NULL;
        }
    }
    /* Everything to zero except the head's header array (3 KiB, filled
     * by the parser up to n_headers; n_headers itself is zeroed). */
    keep = r->up_head;
    memset(r, 0, HDRS_AT);
    memset((char *)r + HDRS_END, 0, sizeof(*r) - HDRS_END);
    r->up_head = keep;
    evbuffer_drain(keep, evbuffer_get_length(keep));
    r->rt = w->rt;
    gw_runtime_ref(r->rt);
    r->t_start_us = gw_mono_us();
    gw_rw_request_id(r->request_id);
    return r;
}

static void req_put(struct gw_worker *w, struct gw_req *r)
{
    if (!r)
        return;
    gw_runtime_unref(r->rt);
    r->rt = NULL;
    if (w->n_req_cache < GW_REQ_CACHE && !w->draining) {
        r->next_free = w->req_cache;
        w->req_cache = r;
        w->n_req_cache++;
        return;
    }
    evbuffer_free(r->up_head);
    free(r);
}

void gw_conn_req_cache_free(struct gw_worker *w)
{
    while (w->req_cache) {
        struct gw_req *r = w->req_cache;

        w->req_cache = r->next_free;
        evbuffer_free(r->up_head);
        free(r);
    }
    w->n_req_cache = 0;
}

struct gw_req *gw_conn_req_new(struct gw_conn *c)
{
    return req_get(c);
}

void gw_conn_drop_upstream(struct gw_conn *c)
{
    gw_up_free(c->up);
    c->up = NULL;
    c->up_paused = 0;
    gw_conn_arm_up(c, UT_NONE, 0);
}

void gw_conn_pause_client(struct gw_conn *c, int pause)
{
    if (pause && !c->client_paused) {
        gw_ts_disable(c->ts, EV_READ);
        c->client_paused = 1;
        /* resume when the upstream has taken half of what is queued */
        if (c->up)
            bufferevent_setwatermark(c->up->bev, EV_WRITE, GW_HIGH_MARK / 2, 0);
    } else if (!pause && c->client_paused) {
        c->client_paused = 0;
        if (c->up)
            bufferevent_setwatermark(c->up->bev, EV_WRITE, 0, 0);
        if (!c->client_eof)
            gw_ts_enable(c->ts, EV_READ); /* reads what OpenSSL holds, too */
    }
}

void gw_conn_pause_upstream(struct gw_conn *c, int pause)
{
    if (!c->up)
        return;
    if (pause && !c->up_paused) {
        gw_up_read(c->up, 0);
        c->up_paused = 1;
        gw_ts_set_write_low(c->ts, GW_HIGH_MARK / 2);
        if (c->utimer == UT_SILENCE) /* the client is the one waited for */
            gw_conn_arm_up(c, UT_NONE, 0);
    } else if (!pause && c->up_paused) {
        c->up_paused = 0;
        gw_ts_set_write_low(c->ts, 0);
        gw_up_read(c->up, 1);
        if (c->state == CONN_STREAM_RESPONSE)
            gw_conn_arm_up(c, UT_SILENCE, c->req->rt->cfg->timeouts.upstream_read_ms);
    }
}

/* Frees c now. Never called from a callback of c's own stream or events. */
static void conn_free(struct gw_conn *c)
{
    struct gw_worker *w = c->w;

    if (c->id_pending)
        gw_id_cancel(c->id_rt->ids, c->id_pending);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    gw_stat_sub(&w->stats.conns_open, 1);
    if (c->parked)
        gw_stat_sub(&w->stats.conns_parked, 1);
    req_put(w, c->req);
    gw_up_free(c->up);
    if (c->hs) {
        tls_server_detach_peer(c->ssl);
        free(c->hs);
    }
    /* OpenSSL drops from the session cache the session of a connection
     * freed before it sent close_notify; ours end by keep-alive timeout,
     * by the client's close, or after our response: all fine to resume.
     * A connection that ended on a TLS error lost its session already,
     * when the fatal alert was sent or received. */
    if (c->ssl && SSL_is_init_finished(c->ssl))
        SSL_set_shutdown(c->ssl, SSL_get_shutdown(c->ssl) | SSL_SENT_SHUTDOWN);
    if (c->ts)
        gw_ts_free(c->ts); /* neither the socket nor the SSL */
    SSL_free(c->ssl);
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    if (c->timer)
        event_free(c->timer);
    if (c->up_timer)
        event_free(c->up_timer);
    c->magic = 0;
    free(c);
    gw_worker_conn_gone(w);
}

/*
 * Client SSLs read ahead: one read takes whatever the socket holds (a whole
 * flight of handshake records, or a record with the next one behind it)
 * instead of a header read and a body read per record. Then bytes can wait
 * inside OpenSSL with nothing left in the socket, where the socket's
 * readiness does not announce them. So wherever reading may go on, this
 * reads them in this loop iteration (tstream.h).
 */
void gw_conn_kick_read(struct gw_conn *c)
{
    if (c->state == CONN_CLOSING || !c->handshake_done || !c->ts)
        return;
    gw_ts_kick_read(c->ts);
}

void gw_conn_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    struct gw_conn *c;

    (void)fd;
    (void)what;
    while ((c = w->closed) != NULL) {
        w->closed = c->reap_next;
        conn_free(c);
    }
}

static void account(struct gw_conn *c, struct gw_req *r);

/*
 * A request whose head was read and that ends with its connection (the
 * client went away, the upstream cut its answer, a limit) is counted and
 * access-logged too: with the status it was being answered with, or 499
 * (nginx's "client closed request") when no answer had started.
 */
void gw_conn_close(struct gw_conn *c, const char *reason)
{
    struct gw_req *r = c->req;

    if (c->state == CONN_CLOSING)
        return;
    gw_log(c->w->log, CFG_LOG_DEBUG, c->id, "close %s: %s", c->client, reason);
    if (r && r->method[0] && !r->accounted) {
        if (!r->resp_started || !r->status)
            r->status = 499;
        account(c, r);
    }
    if (c->id_pending) {
        gw_id_cancel(c->id_rt->ids, c->id_pending);
        c->id_pending = NULL;
    }
    c->state = CONN_CLOSING;
    event_del(c->timer); /* a timer, or the socket watch while parked */
    c->ctimer_at = 0;
    if (c->up_timer)
        evtimer_del(c->up_timer);
    c->utimer_at = 0;
    if (c->ts)
        gw_ts_disable(c->ts, EV_READ | EV_WRITE);
    if (c->up) {
        gw_up_read(c->up, 0);
        bufferevent_disable(c->up->bev, EV_READ | EV_WRITE);
    }
    /* Freed later in this loop iteration, outside every callback of c. */
    c->reap_next = c->w->closed;
    c->w->closed = c;
    event_active(c->w->reap_ev, EV_TIMEOUT, 0);
}

/* The last answer is written: close_notify and a FIN (the client sees a
 * clean end at once), then close now, or linger first when the client
 * may still be sending (an unread request body, buffered bytes), so that
 * the kernel does not answer those bytes with a reset that destroys our
 * answer in the client's receive buffer. When the socket cannot take the
 * close_notify yet, the connection stays in CONN_FLUSH_CLOSE (CT_FLUSH
 * bounds it) and client_write_cb comes back here once it is out. */
static void start_linger(struct gw_conn *c)
{
    struct evbuffer *in = gw_ts_input(c->ts);
    int unread = c->req && !c->req->body_done;
    int shut = gw_ts_shutdown(c->ts), queued = 0, more;

    if (shut == 0)
        return;
    if (shut < 0) {
        gw_conn_close(c, "client gone (write failed)");
        return;
    }
    /* What the client sent and nothing has read yet: a body, bytes in the
     * input, in OpenSSL's buffer, or still in the socket (a pipelined
     * request behind this one). A failed FIONREAD cannot tell: linger. */
    more = unread || evbuffer_get_length(in) > 0 || SSL_has_pending(c->ssl) ||
           ioctl(c->fd, FIONREAD, &queued) != 0 || queued > 0;
    if (c->client_eof || !more) {
        gw_conn_close(c, "answer sent");
        return;
    }
    evbuffer_drain(in, evbuffer_get_length(in));
    c->state = CONN_LINGER;
    c->client_paused = 0;
    gw_ts_enable(c->ts, EV_READ);
    gw_conn_arm(c, CT_LINGER, GW_LINGER_MS);
}

/* Close once the output is written (bounded by timeouts.body). */
static void flush_close(struct gw_conn *c)
{
    struct gw_runtime *rt = gw_conn_rt(c);

    gw_conn_drop_upstream(c);
    /* What the client still sends is read (and dropped: client_read_cb):
     * a client that writes its whole body before it reads must not block
     * on its own write, with the answer and then our close_notify waiting
     * behind it until CT_FLUSH, and a close with its bytes unread would
     * reset the connection. */
    gw_conn_pause_client(c, 0);
    c->state = CONN_FLUSH_CLOSE;
    gw_conn_arm(c, CT_FLUSH, rt->cfg->timeouts.body_ms);
    gw_ts_set_write_low(c->ts, 0);
    gw_ts_enable(c->ts, EV_WRITE);
    if (evbuffer_get_length(gw_ts_output(c->ts)) == 0)
        start_linger(c);
}

static void access_log(struct gw_conn *c, struct gw_req *r)
{
    uint64_t now = gw_mono_us();
    struct gw_access_rec rec = {
        .client = c->client,
        .cn = c->cn[0] ? c->cn : NULL,
        .identity = r->identity[0] ? r->identity : NULL,
        .method = r->method[0] ? r->method : NULL,
        .path = r->path[0] ? r->path : NULL,
        .status = r->status,
        .bytes = r->bytes_out,
        .upstream_ms = r->t_up_us ? (int64_t)((now - r->t_up_us) / 1000) : -1,
        .total_ms = (int64_t)((now - r->t_start_us) / 1000),
        .tls_version = c->tls_version,
        .request_id = r->request_id,
    };

    gw_log_access(c->w->log, &rec);
}

/* Counts and logs the finished request r of c. */
static void account(struct gw_conn *c, struct gw_req *r)
{
    r->accounted = 1;
    gw_stats_count_status(&c->w->stats, r->status);
    gw_idstats_count(c->w->idstats, r->identity, r->status);
    gw_stat_add(&c->w->stats.bytes_out, r->bytes_out);
    if (r->t_up_us && r->status < 500)
        gw_stats_observe_latency(&c->w->stats, gw_mono_us() - r->t_up_us);
    access_log(c, r);
}

/*
 * OpenSSL's record buffers. The context frees them after every record
 * (SSL_MODE_RELEASE_BUFFERS): an idle connection then holds no 2 x 17 KB of
 * them, but a busy keep-alive connection pays a malloc and a free of each
 * per request. A connection that has answered two requests keeps them; it
 * sheds them when it parks, and when a request of its own waits longer than
 * GW_PARK_MS for its answer (CT_SHED: a long poll holds no buffers either).
 * One that handshakes, asks once and waits never keeps them.
 */
static void keep_buffers_if_busy(struct gw_conn *c)
{
    if (c->served < 2 && ++c->served == 2)
        SSL_clear_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
}

/* Frees OpenSSL's buffers now and after every record from here on. 0 when
 * one still holds bytes (a part of a record, or a write of OpenSSL's own
 * waiting for the socket): it goes once they are used. With an OpenSSL
 * whose SSL_free_buffers would free a part of a record (CVE-2024-4741) the
 * buffers are only left to the mode, and 0 means a write of its own waits. */
static int shed_buffers(struct gw_conn *c)
{
    SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    c->served = 0;
    if (!tls_free_buffers_safe(OpenSSL_version_num()))
        return !SSL_want_write(c->ssl);
    return SSL_free_buffers(c->ssl);
}

void gw_conn_arm_answer_wait(struct gw_conn *c)
{
    gw_conn_arm(c, c->served == 2 ? CT_SHED : CT_NONE, GW_PARK_MS);
}

/* Between requests: the next pipelined one, or wait for one. */
static void next_request(struct gw_conn *c)
{
    struct gw_runtime *rt;

    req_put(c->w, c->req);
    c->req = NULL;
    gw_conn_drop_upstream(c);
    rt = c->w->rt;
    /* After the client's half-close, requests it sent before (pipelined,
     * already buffered) are still answered; then the connection closes. */
    if (c->w->draining ||
        (c->client_eof && evbuffer_get_length(gw_ts_input(c->ts)) == 0)) {
        flush_close(c);
        return;
    }
    keep_buffers_if_busy(c);
    c->state = CONN_KEEPALIVE_IDLE;
    gw_conn_pause_client(c, 0);
    c->client_paused = 0;
    if (c->in_capped && evbuffer_get_length(gw_ts_input(c->ts)) == 0) {
        gw_ts_set_read_high(c->ts, 0);
        c->in_capped = 0;
    }
    if (!c->client_eof)
        gw_ts_enable(c->ts, EV_READ); /* reads what OpenSSL holds, too */
    /* A pipelined request already buffered is parsed from a fresh loop
     * iteration, so a long pipeline never deepens the stack. */
    if (evbuffer_get_length(gw_ts_input(c->ts)) > 0)
        gw_conn_arm(c, CT_NEXT, 0);
    else if (evbuffer_get_length(gw_ts_output(c->ts)) > 0)
        /* The wait for the next request starts when this answer is
         * written (client_write_cb); until then the stream's write
         * timeout (timeouts.body) bounds a client that does not read. */
        gw_conn_arm(c, CT_NONE, 0);
    else
        wait_request(c, rt->cfg->timeouts.keepalive_ms);
}

void gw_conn_response_done(struct gw_conn *c)
{
    struct gw_req *r = c->req;

    gw_conn_arm_up(c, UT_NONE, 0);
    account(c, r);
    if (c->up && r->up_reusable) {
        gw_up_release(&c->w->pool, c->up, c->w->rt);
        c->up = NULL;
    }
    c->up_paused = 0;
    gw_ts_set_write_low(c->ts, 0);
    if (r->close_after) {
        flush_close(c);
        return;
    }
    next_request(c);
}

void gw_conn_error(struct gw_conn *c, int status, const char *why)
{
    struct gw_req *r = c->req;
    struct gw_runtime *rt = gw_conn_rt(c);
    struct evbuffer *out = gw_ts_output(c->ts);
    size_t before = evbuffer_get_length(out);
    int keep;

    gw_log(c->w->log, status >= 500 && status <= 504 && status != 501 ? CFG_LOG_WARN : CFG_LOG_INFO,
           c->id, "%d %s: %s%s%s",
           status, c->client, why, r && r->path[0] ? " path=" : "", r ? r->path : "");
    gw_conn_drop_upstream(c);
    if (r && r->resp_started) {
        gw_conn_close(c, why); /* too late to answer: the client sees a cut */
        return;
    }
    /* after a half-close only while a pipelined request follows this one */
    keep = status == 403 && r && r->body == HTTP1_BODY_NONE && r->client_keep_alive &&
           !c->w->draining &&
           (!c->client_eof ||
            evbuffer_get_length(gw_ts_input(c->ts)) > r->head_in_input);
    if (r && keep) {
        evbuffer_drain(gw_ts_input(c->ts), r->head_in_input);
        r->head_in_input = 0;
    }
    if (gw_rw_error(out, status, keep, rt->names.request_id, r ? r->request_id : NULL) < 0) {
        gw_conn_close(c, "out of memory");
        return;
    }
    if (!r) {
        flush_close(c);
        return;
    }
    r->status = status;
    r->resp_started = 1;
    r->bytes_out = evbuffer_get_length(out) - before;
    account(c, r);
    if (keep)
        next_request(c);
    else
        flush_close(c);
}

/* The handshake failed: count, log with the reason and subject, close. */
static void handshake_failed(struct gw_conn *c, short what)
{
    unsigned long e = gw_ts_ssl_error(c->ts);
    const char *detail;
    char sys[128];
    BIO *rbio;

    while (gw_ts_ssl_error(c->ts) != 0)
        ; /* drain the rest */
    tls_server_peer_failed(c->ssl, c->hs, e);
    rbio = SSL_get_rbio(c->ssl);
    if (c->hs->refusal == TLS_REFUSE_PROTOCOL && rbio != NULL && BIO_number_read(rbio) == 0) {
        /* Not a TLS peer at all: a TCP health check or port probe that
         * closed without sending a byte. Not a refused handshake. */
        gw_log(c->w->log, CFG_LOG_DEBUG, c->id, "%s closed before sending any byte", c->client);
        ERR_clear_error();
        gw_conn_close(c, "closed before the handshake");
        return;
    }
    detail = c->hs->detail;
    if (!detail[0]) {
        if (what & GW_TS_EOF)
            detail = "connection closed during the handshake";
        else {
            snprintf(sys, sizeof(sys), "%s", e ? "TLS error" : strerror(errno));
            detail = sys;
        }
    }
    gw_stat_add(&c->w->stats.handshakes[c->hs->refusal], 1);
    gw_log(c->w->log, c->hs->refusal == TLS_REFUSE_PROTOCOL ? CFG_LOG_INFO : CFG_LOG_WARN,
           c->id, "refused %s: %s: %s subject=%s", c->client,
           tls_refusal_name(c->hs->refusal), detail,
           c->hs->subject[0] ? c->hs->subject : "-");
    ERR_clear_error();
    gw_conn_close(c, "handshake failed");
}

static void handshake_done(struct gw_conn *c)
{
    struct gw_runtime *rt = c->w->rt;
    struct tls_peer *p = c->hs;
    size_t n;

    c->handshake_done = 1;
    if (tls_server_peer_finish(c->ssl, p) < 0) {
        gw_stat_add(&c->w->stats.handshakes[p->refusal], 1);
        gw_log(c->w->log, CFG_LOG_WARN, c->id, "refused %s: %s: %s subject=%s", c->client,
               tls_refusal_name(p->refusal), p->detail, p->subject[0] ? p->subject : "-");
        ERR_clear_error();
        gw_conn_close(c, "refused after handshake");
        return;
    }
    gw_stat_add(&c->w->stats.handshakes[TLS_OK], 1);
    if (p->resumed)
        gw_stat_add(&c->w->stats.handshakes_resumed, 1);
    /* What the connection keeps of the report: the rest (refusal detail,
     * subject) was for a refusal. */
    memcpy(c->cn, p->cn, sizeof(c->cn));
    c->has_sha256 = OPENSSL_hexstr2buf_ex(c->sha256, sizeof(c->sha256), &n, p->sha256, '\0') == 1 &&
                    n == sizeof(c->sha256);
    ERR_clear_error();
    c->tls_version = p->version ? p->version : "-";
    /* Checked against the trust set of the context the handshake ran in:
     * when a reload has replaced it since, the first request re-checks. */
    c->trust_gen = SSL_get_SSL_CTX(c->ssl) == rt->server_ctx ? (uint32_t)rt->generation : 0;
    gw_conn_set_valid_until(c, tls_server_ctx_get0_trust(SSL_get_SSL_CTX(c->ssl)));
    gw_log(c->w->log, CFG_LOG_DEBUG, c->id, "handshake %s: cn=%s %s%s", c->client, c->cn,
           c->tls_version, p->resumed ? " resumed" : "");
    tls_server_detach_peer(c->ssl);
    free(p);
    c->hs = NULL;
    c->state = CONN_KEEPALIVE_IDLE;
    /* While draining: the request its client sent with (TLS 1.3) or a
     * round trip after (TLS 1.2) its Finished, answered with Connection:
     * close (also for one admitted just before, drain_first_wait). */
    wait_request(c, c->w->draining && rt->cfg->timeouts.header_ms > GW_DRAIN_FIRST_REQUEST_MS
                        ? GW_DRAIN_FIRST_REQUEST_MS
                        : rt->cfg->timeouts.header_ms);
    if (evbuffer_get_length(gw_ts_input(c->ts)) > 0)
        gw_req_try_head(c);
    gw_conn_kick_read(c);
}

static void client_read_cb(struct gw_ts *ts, void *arg)
{
    struct gw_conn *c = arg;
    struct evbuffer *in = gw_ts_input(ts);
    size_t bound;

    switch (c->state) {
    case CONN_KEEPALIVE_IDLE:
    case CONN_READ_HEAD:
        gw_req_try_head(c);
        break;
    case CONN_FORWARD:
        gw_req_forward_body(c);
        break;
    case CONN_FLUSH_CLOSE:
    case CONN_LINGER:
        evbuffer_drain(in, evbuffer_get_length(in));
        break;
    default:
        if (c->req && c->req->early) /* the rest of a body answered early */
            evbuffer_drain(in, evbuffer_get_length(in));
        break; /* else the next request waits in the buffer */
    }
    /* Bytes the gateway does not take yet (pipelined requests, a body
     * while the upstream is slow) stop the reading at a bound. The
     * bound is set only then: while set, the input's every change runs a
     * callback (tstream.c). next_request takes it off. */
    bound = GW_HIGH_MARK + c->w->rt->cfg->limits.max_header_bytes;
    if (!c->in_capped && c->ts && evbuffer_get_length(in) >= bound) {
        gw_ts_set_read_high(c->ts, bound);
        c->in_capped = 1;
    }
    gw_conn_kick_read(c);
}

static void client_write_cb(struct gw_ts *ts, void *arg)
{
    struct gw_conn *c = arg;

    if (c->state == CONN_FLUSH_CLOSE) {
        if (evbuffer_get_length(gw_ts_output(ts)) == 0)
            start_linger(c);
        return;
    }
    if (c->up_paused && c->state == CONN_STREAM_RESPONSE)
        gw_resp_resume(c);
    else if (c->state == CONN_KEEPALIVE_IDLE && c->ctimer == CT_NONE &&
             evbuffer_get_length(gw_ts_output(ts)) == 0)
        wait_request(c, gw_conn_rt(c)->cfg->timeouts.keepalive_ms); /* see next_request */
}

/*
 * The client closed its side (close_notify, or a bare FIN: see
 * SSL_OP_IGNORE_UNEXPECTED_EOF in gw_conn_accept). A half-close is not an
 * abort: what it sent before, a complete request or several pipelined, is
 * answered, then the connection closes. HTTP's own framing tells whether
 * what arrived is complete; a cut head or body ends the connection.
 */
static void client_eof(struct gw_conn *c)
{
    c->client_eof = 1;
    switch (c->state) {
    case CONN_KEEPALIVE_IDLE:
    case CONN_READ_HEAD:
        if (evbuffer_get_length(gw_ts_input(c->ts)) > 0)
            gw_req_try_head(c); /* a complete head goes on, a cut one closes */
        else if (evbuffer_get_length(gw_ts_output(c->ts)) > 0)
            flush_close(c); /* the last answer is not all written yet */
        else {
            /* A close_notify is answered with ours (RFC 8446 6.1), if
             * the socket takes it now: the client is leaving anyway. */
            if (SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN)
                (void)gw_ts_shutdown(c->ts);
            gw_conn_close(c, "client closed");
        }
        break;
    case CONN_LINGER:
        gw_conn_close(c, "client closed");
        break;
    case CONN_FORWARD:
        if (gw_req_body_cut(c))
            gw_conn_close(c, "client closed during the request body");
        break;
    default:
        break; /* the response is still delivered (FLUSH_CLOSE: the last one) */
    }
}

static void client_event_cb(struct gw_ts *ts, short what, void *arg)
{
    struct gw_conn *c = arg;

    (void)ts;
    if (c->state == CONN_CLOSING)
        return;
    if (what & GW_TS_CONNECTED) {
        handshake_done(c);
        return;
    }
    if (c->state == CONN_HANDSHAKE) {
        handshake_failed(c, what);
        return;
    }
    if ((what & GW_TS_EOF) && (what & GW_TS_WRITING)) {
        /* A write that failed without an OpenSSL error (EPIPE, a reset):
         * nothing can reach this client any more. */
        gw_conn_close(c, "client gone (write failed)");
    } else if (what & GW_TS_EOF) {
        client_eof(c); /* answers already queued still go out */
    } else if (what & GW_TS_ERROR) {
        while (gw_ts_ssl_error(c->ts) != 0)
            ;
        ERR_clear_error();
        gw_conn_close(c, "client connection error");
    } else if (what & GW_TS_TIMEOUT)
        gw_conn_close(c, "client does not read its answer (write timeout)");
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    struct gw_runtime *rt = gw_conn_rt(c);
    enum gw_ctimer kind = c->ctimer;
    char why[96];

    (void)fd;
    (void)what;
    if (c->state == CONN_CLOSING || kind == CT_NONE) {
        c->ctimer_at = 0;
        return;
    }
    if (!gw_timer_due(c->timer, &c->ctimer_at, c->cdeadline_us))
        return;
    c->ctimer = CT_NONE;
    switch (kind) {
    case CT_HANDSHAKE:
        gw_stat_add(&c->w->stats.handshakes[TLS_REFUSE_PROTOCOL], 1);
        gw_log(c->w->log, CFG_LOG_INFO, c->id, "refused %s: protocol: no handshake within %u ms "
               "subject=-", c->client, rt->cfg->timeouts.handshake_ms);
        gw_conn_close(c, "handshake timeout");
        break;
    case CT_IDLE:
        gw_conn_close(c, "idle timeout");
        break;
    case CT_PARK:
        park(c);
        break;
    case CT_HEADER:
        if (c->state == CONN_WAIT_IDENTITY) {
            gw_conn_error(c, 503, "identity lookup did not answer in time");
            break;
        }
        snprintf(why, sizeof(why), "request head not complete within %u ms",
                 rt->cfg->timeouts.header_ms);
        gw_conn_error(c, 408, why);
        break;
    case CT_BODY:
        snprintf(why, sizeof(why), "request body not complete within %u ms",
                 rt->cfg->timeouts.body_ms);
        gw_conn_error(c, 408, why);
        break;
    case CT_FLUSH:
        gw_conn_close(c, "answer not taken in time");
        break;
    case CT_LINGER:
        gw_conn_close(c, "linger over");
        break;
    case CT_SHED:
        (void)shed_buffers(c); /* one in use goes once it is used */
        break;
    case CT_NEXT:
        if (c->state == CONN_KEEPALIVE_IDLE)
            gw_req_try_head(c);
        gw_conn_kick_read(c);
        break;
    case CT_NONE:
        break;
    }
}

static void up_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    struct gw_runtime *rt = gw_conn_rt(c);
    enum gw_utimer kind = c->utimer;
    char why[400];

    (void)fd;
    (void)what;
    if (c->state == CONN_CLOSING || kind == UT_NONE) {
        c->utimer_at = 0;
        return;
    }
    if (!gw_timer_due(c->up_timer, &c->utimer_at, c->udeadline_us))
        return;
    c->utimer = UT_NONE;
    if (kind == UT_CONNECT && c->state == CONN_UPSTREAM_CONNECT) {
        snprintf(why, sizeof(why), "connect not done within %u ms",
                 rt->cfg->timeouts.upstream_connect_ms);
        gw_req_upstream_connect_failed(c, why);
    } else if (kind == UT_READ) {
        snprintf(why, sizeof(why), "upstream %s sent no response head within %u ms",
                 c->up ? rt->servers[c->up->server].name : "-",
                 rt->cfg->timeouts.upstream_read_ms);
        gw_conn_error(c, 504, why);
    } else if (kind == UT_SILENCE) {
        gw_resp_silent(c);
    } else if (kind == UT_WRITE && c->state == CONN_FORWARD) {
        snprintf(why, sizeof(why), "upstream %s took no request body bytes within %u ms",
                 c->up ? rt->servers[c->up->server].name : "-",
                 rt->cfg->timeouts.upstream_read_ms);
        gw_conn_error(c, 504, why);
    }
}

/*
 * The client's stream on c->fd and c->ssl (tstream.h), accepting for a new
 * connection, open when a parked one wakes up. It owns neither the socket
 * nor the SSL: a parked connection keeps both.
 */
static int client_ts_new(struct gw_conn *c, int accepting)
{
    c->ts = gw_ts_new(c->w->base, c->fd, c->ssl, accepting, c->w->rt->cfg->timeouts.body_ms,
                      client_read_cb, client_write_cb, client_event_cb, c);
    c->in_capped = 0; /* no read bound until client_read_cb sets one */
    return c->ts ? 0 : -1;
}

/*
 * Parking. A connection waiting for a request holds, besides its SSL, a
 * stream (tstream.h: two evbuffers, three events) and an upstream timer:
 * about 1 KB that nothing uses while it waits (issue 5's idle memory). Once
 * it has waited GW_PARK_MS with nothing buffered (neither in the stream nor
 * inside OpenSSL), park() frees them and turns the client timer into a
 * watch on the socket that keeps the idle deadline too. Bytes arriving
 * wake it: a new open stream on the same SSL reads them at once. A busy
 * keep-alive connection never waits GW_PARK_MS, so never pays for this; a
 * parked one pays for a stream and a timer per wake-up.
 */

/* KEEPALIVE_IDLE with nothing buffered: wait up to ms for a request. */
static void wait_request(struct gw_conn *c, unsigned ms)
{
    c->idle_end_us = gw_mono_us() + (uint64_t)ms * 1000;
    if (ms > GW_PARK_MS)
        gw_conn_arm(c, CT_PARK, GW_PARK_MS);
    else
        gw_conn_arm(c, CT_IDLE, ms);
}

/* What is left of the wait, rounded up to whole milliseconds. */
static unsigned idle_left_ms(const struct gw_conn *c)
{
    uint64_t now = gw_mono_us();

    return c->idle_end_us > now ? (unsigned)((c->idle_end_us - now + 999) / 1000) : 0;
}

/* The parked connection's socket is readable, or the wait is over. */
static void parked_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    unsigned left;

    (void)fd;
    if ((what & EV_TIMEOUT) && !(what & EV_READ)) {
        uint64_t now = gw_mono_us();

        if (now < c->idle_end_us) {
            /* libevent's coarse clock woke us early: watch on for the rest
             * (when that fails, it ends as idle below) */
            uint64_t armed = 0;

            gw_timer_set(c->timer, &armed, c->idle_end_us, now);
            if (armed)
                return;
        }
    }
    /* c->timer is not pending inside its own callback: it may become the
     * client timer again here. */
    event_assign(c->timer, c->w->base, -1, 0, timer_cb, c);
    c->ctimer = CT_NONE;
    c->ctimer_at = 0;
    c->parked = 0;
    gw_stat_sub(&c->w->stats.conns_parked, 1);
    if (what & EV_TIMEOUT) {
        gw_conn_close(c, "idle timeout");
        return;
    }
    if (client_ts_new(c, 0) < 0 ||
        !(c->up_timer = evtimer_new(c->w->base, up_timer_cb, c))) {
        gw_log(c->w->log, CFG_LOG_ERROR, c->id, "%s: cannot wake the parked connection "
               "(out of memory)", c->client);
        gw_conn_close(c, "out of memory");
        return;
    }
    /* Parks again if what woke it was no request (a stray record). */
    left = idle_left_ms(c);
    if (left > GW_PARK_MS)
        gw_conn_arm(c, CT_PARK, GW_PARK_MS);
    else
        gw_conn_arm(c, CT_IDLE, left ? left : 1);
}

/* CT_PARK: park c, or when something is still buffered, wait on. */
static void park(struct gw_conn *c)
{
    unsigned left = idle_left_ms(c);
    struct timeval tv;

    /* A close_notify read already (the EOF reported or not) keeps it. */
    if (c->state != CONN_KEEPALIVE_IDLE || c->client_eof || c->req || c->up ||
        evbuffer_get_length(gw_ts_input(c->ts)) > 0 ||
        evbuffer_get_length(gw_ts_output(c->ts)) > 0 || SSL_has_pending(c->ssl) ||
        (SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN) ||
        /* OpenSSL's buffers go now; one in use (its own write, such as a
         * KeyUpdate's answer, waiting for the socket) keeps the stream */
        !shed_buffers(c)) {
        if (left > GW_PARK_MS)
            gw_conn_arm(c, CT_PARK, GW_PARK_MS);
        else
            gw_conn_arm(c, CT_IDLE, left);
        return;
    }
    gw_ts_free(c->ts);
    c->ts = NULL;
    event_free(c->up_timer);
    c->up_timer = NULL;
    c->utimer = UT_NONE;
    c->utimer_at = 0;
    c->parked = 1;
    gw_stat_add(&c->w->stats.conns_parked, 1);
    event_assign(c->timer, c->w->base, c->fd, EV_READ, parked_cb, c);
    c->ctimer = CT_IDLE;
    ms_to_tv(left, &tv);
    event_add(c->timer, &tv);
}

/* "ip:port" ("[ip]:port" for IPv6) of sa into c->client, and where the
 * address is in it. */
static void format_peer(struct gw_conn *c, const struct sockaddr *sa, int salen)
{
    char ip[INET6_ADDRSTRLEN], port[8];
    int v6 = sa->sa_family == AF_INET6;

    if (getnameinfo(sa, (socklen_t)salen, ip, sizeof(ip), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(ip, sizeof(ip), "?");
        snprintf(port, sizeof(port), "?");
    }
    snprintf(c->client, sizeof(c->client), v6 ? "[%s]:%s" : "%s:%s", ip, port);
    c->ip_off = v6 ? 1 : 0;
    c->ip_len = (unsigned char)strlen(ip);
}

void gw_conn_accept(struct gw_worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
    struct gw_runtime *rt = w->rt;
    const struct cfg *cfg = rt->cfg;
    struct gw_conn *c = calloc(1, sizeof(*c));
    SSL *ssl = NULL;
    int one = 1;

    if (!c)
        goto fail;
    c->magic = GW_CONN_MAGIC;
    c->id = __atomic_add_fetch(&next_conn_id, 1, __ATOMIC_RELAXED);
    c->w = w;
    c->fd = -1;
    format_peer(c, sa, salen);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ssl = SSL_new(rt->server_ctx);
    c->hs = malloc(sizeof(*c->hs));
    if (!ssl || !c->hs || tls_server_attach_peer(ssl, c->hs) < 0)
        goto fail;
    c->hs->certpool = w->certpool;
    SSL_set_read_ahead(ssl, 1); /* see gw_conn_kick_read */
    /* A client that half-closes TCP after its request (a FIN without
     * close_notify) still gets its answer: OpenSSL 3 otherwise turns the
     * FIN into a fatal "unexpected eof" and the connection dies with the
     * request in
     * flight. A truncation cannot pass unnoticed: HTTP's framing (the head's
     * end, Content-Length, the last chunk) says whether a request is whole. */
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    c->timer = evtimer_new(w->base, timer_cb, c);
    c->up_timer = evtimer_new(w->base, up_timer_cb, c);
    if (!c->timer || !c->up_timer)
        goto fail;
    c->fd = fd;
    c->ssl = ssl;
    if (client_ts_new(c, 1) < 0)
        goto fail;
    /* From here the connection owns the socket and the SSL. */
    ssl = NULL;
    fd = -1;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    gw_stat_add(&w->stats.conns_open, 1);
    gw_stat_add(&w->stats.conns_total, 1);
    c->state = CONN_HANDSHAKE;
    gw_conn_arm(c, CT_HANDSHAKE, cfg->timeouts.handshake_ms);
    return;
fail:
    gw_log(w->log, CFG_LOG_ERROR, c ? c->id : 0, "accept: cannot set up a connection "
           "(out of memory)");
    SSL_free(ssl);
    ERR_clear_error();
    if (c) {
        free(c->hs);
        if (c->timer)
            event_free(c->timer);
        if (c->up_timer)
            event_free(c->up_timer);
        free(c);
    }
    if (fd >= 0)
        evutil_closesocket(fd);
}

/*
 * Draining: an admitted connection that has not sent a request yet may be a
 * TLS 1.2 client whose first request is a round trip behind the server's
 * Finished. It waits GW_DRAIN_FIRST_REQUEST_MS at most (less when its
 * timeout comes sooner), parked or not, instead of closing now.
 */
static void drain_first_wait(struct gw_conn *c)
{
    uint64_t now = gw_mono_us(), end = now + (uint64_t)GW_DRAIN_FIRST_REQUEST_MS * 1000;
    struct timeval tv;

    if (c->idle_end_us <= end)
        return; /* its timeout ends it sooner */
    if (!c->parked) {
        wait_request(c, GW_DRAIN_FIRST_REQUEST_MS);
        return;
    }
    c->idle_end_us = end;
    ms_to_tv(GW_DRAIN_FIRST_REQUEST_MS, &tv);
    event_add(c->timer, &tv); /* the parked watch, with the shorter timeout */
}

void gw_conn_drain_all(struct gw_worker *w)
{
    struct gw_conn *c;

    for (c = w->conns; c; c = c->next) {
        if (c->state == CONN_KEEPALIVE_IDLE && c->ts &&
            evbuffer_get_length(gw_ts_input(c->ts)) == 0 &&
            evbuffer_get_length(gw_ts_output(c->ts)) > 0)
            flush_close(c); /* its last answer is not all written yet */
        else if (c->state == CONN_KEEPALIVE_IDLE &&
                 (!c->ts || evbuffer_get_length(gw_ts_input(c->ts)) == 0)) {
            if (c->had_request)
                gw_conn_close(c, "shutting down");
            else
                drain_first_wait(c);
        }
        /* A handshake goes on: a TLS 1.3 client sends its first request with
         * its Finished, and takes the connection for established. Its
         * request is served (handshake_done); timeouts.handshake and
         * timeouts.drain bound it. */
    }
}

void gw_conn_free_all(struct gw_worker *w)
{
    while (w->conns)
        conn_free(w->conns); /* the closed ones too */
    w->closed = NULL;
}
