/*
 * conn_resp.c - the response path: upstream events, the response head,
 * the response body (see conn_int.h for the states).
 */
#include "conn_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "log.h"
#include "route.h"
#include "upstream.h"

static const char *up_name(const struct gw_conn *c)
{
    return c->up ? c->req->rt->servers[c->up->server].name : "-";
}

/* A complete final response head is in r->head: decide the framing towards
 * the client and queue the head. */
static int start_response(struct gw_conn *c)
{
    struct gw_req *r = c->req;
    const struct http1_head *h = &r->head;
    struct evbuffer *in = bufferevent_get_input(c->up->bev);
    struct evbuffer *out = gw_ts_output(c->ts);
    size_t before = evbuffer_get_length(out);
    int early = c->state == CONN_FORWARD, close, ka10;

    if (early) {
        /* The upstream answered before the whole body was sent: the rest
         * of the body does not go to it, so neither connection can be
         * reused. What the client still sends is read and dropped
         * (client_read_cb): a client that writes its whole body before it
         * reads would otherwise block on its own write while the answer
         * waits for it. The answer's end closes the connection, after a
         * linger (start_linger); timeouts bound each part. */
        r->early = 1;
        gw_conn_pause_client(c, 0);
        evbuffer_drain(gw_ts_input(c->ts), evbuffer_get_length(gw_ts_input(c->ts)));
        gw_conn_arm(c, CT_NONE, 0);
    }
    gw_conn_arm_up(c, UT_NONE, 0);
    r->status = h->status;
    r->resp_body = h->body;
    switch (h->body) {
    case HTTP1_BODY_NONE:
        r->framing = GW_RESP_NONE;
        break;
    case HTTP1_BODY_LENGTH:
        r->framing = GW_RESP_LENGTH;
        r->resp_left = h->content_length;
        break;
    case HTTP1_BODY_CHUNKED:
        http1_chunked_init(&r->rchunk);
        /* fall through */
    case HTTP1_BODY_UNTIL_CLOSE:
        r->framing = r->minor >= 1 ? GW_RESP_CHUNKED : GW_RESP_RAW_CLOSE;
        break;
    }
    /* After the client's half-close only requests it sent before are
     * answered: the last one says Connection: close. */
    close = !r->client_keep_alive || early || !r->body_done || c->w->draining ||
            (c->client_eof && evbuffer_get_length(gw_ts_input(c->ts)) == 0) ||
            r->framing == GW_RESP_RAW_CLOSE;
    r->close_after = close;
    ka10 = !close && r->minor == 0;
    r->up_reusable = h->keep_alive && h->body != HTTP1_BODY_UNTIL_CLOSE && !early;
    /* Room for the head and a small body in one chain: the TLS layer then
     * sends them as one record in one write() (see stream_body). */
    if (h->body == HTTP1_BODY_LENGTH && h->content_length <= GW_COPY_MAX &&
        evbuffer_expand(out, h->head_len + 256 + (size_t)h->content_length) < 0) {
        gw_conn_close(c, "out of memory");
        return -1;
    }
    if (gw_rw_response(h, r->framing, close, ka10, out) < 0) {
        gw_conn_close(c, "out of memory");
        return -1;
    }
    r->resp_started = 1;
    r->bytes_out += evbuffer_get_length(out) - before;
    evbuffer_drain(in, h->head_len);
    c->state = CONN_STREAM_RESPONSE;
    /* From here upstream_read bounds each silence of the upstream. */
    gw_conn_arm_up(c, UT_SILENCE, r->rt->cfg->timeouts.upstream_read_ms);
    return 0;
}

/* Parses response heads (skipping 1xx): 1 when a final head started the
 * response, 0 when more bytes are needed, -1 when c got an error. */
static int parse_head(struct gw_conn *c)
{
    struct gw_req *r = c->req;
    struct evbuffer *in = bufferevent_get_input(c->up->bev);
    const char *method = r->is_head ? "HEAD" : "GET";
    enum http1_result res;
    unsigned char *p;
    size_t len, n;
    char why[400];

    for (;;) {
        len = evbuffer_get_length(in);
        if (len == 0)
            return 0;
        n = len < GW_RESP_MAX_HEAD ? len : GW_RESP_MAX_HEAD;
        p = evbuffer_pullup(in, (ev_ssize_t)n);
        if (!p) {
            gw_conn_close(c, "out of memory");
            return -1;
        }
        res = http1_parse_response((const char *)p, n, GW_RESP_MAX_HEAD, method, strlen(method),
                                   &r->head);
        if (res == HTTP1_INCOMPLETE)
            return 0;
        if (res != HTTP1_OK) {
            snprintf(why, sizeof(why), "upstream %s sent a malformed response head (%d)",
                     up_name(c), (int)res);
            gw_conn_error(c, 502, why);
            return -1;
        }
        if (r->head.status >= 200)
            break;
        if (r->head.status == 101) {
            snprintf(why, sizeof(why), "upstream %s switched protocols", up_name(c));
            gw_conn_error(c, 502, why);
            return -1;
        }
        evbuffer_drain(in, r->head.head_len); /* 1xx: not forwarded */
    }
    return start_response(c) < 0 ? -1 : 1;
}

/* Moves response body bytes to the client: 1 when the response is
 * complete (and handed on), 0 when more are needed, -1 on a close. */
static int stream_body(struct gw_conn *c, int upstream_eof)
{
    struct gw_req *r = c->req;
    struct evbuffer *in = bufferevent_get_input(c->up->bev);
    struct evbuffer *out = gw_ts_output(c->ts);
    size_t before = evbuffer_get_length(out);
    int done = 0, rc = 0;

    for (;;) {
        size_t avail = evbuffer_get_length(in);

        if (r->resp_body == HTTP1_BODY_NONE ||
            (r->resp_body == HTTP1_BODY_LENGTH && r->resp_left == 0)) {
            done = 1;
            break;
        }
        if (avail == 0)
            break;
        if (evbuffer_get_length(out) >= GW_HIGH_MARK) {
            gw_conn_pause_upstream(c, 1); /* resumed by the client's write callback */
            break;
        }
        if (r->resp_body == HTTP1_BODY_LENGTH) {
            size_t n = avail < r->resp_left ? avail : (size_t)r->resp_left;

            if (n <= GW_COPY_MAX) {
                /* copied behind the head: one chain, one record */
                unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)n);

                if (!p || evbuffer_add(out, p, n) < 0)
                    goto oom;
                evbuffer_drain(in, n);
            } else if (evbuffer_remove_buffer(in, out, n) < 0) {
                goto oom; /* moves the chains, no copy */
            }
            r->resp_left -= n;
        } else if (r->resp_body == HTTP1_BODY_CHUNKED) {
            struct evbuffer_iovec v;
            size_t consumed = 0, off = 0, dlen = 0;
            enum http1_chunk_result cr;

            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            cr = http1_chunked_feed(&r->rchunk, v.iov_base, v.iov_len, &consumed, &off, &dlen);
            if (cr == HTTP1_CHUNK_ERROR) {
                gw_log(c->w->log, CFG_LOG_WARN, c->id, "upstream %s: malformed chunked "
                       "response body; cutting the client connection", up_name(c));
                gw_conn_close(c, "bad upstream chunked body");
                rc = -1;
                goto out;
            }
            if (cr == HTTP1_CHUNK_DATA) {
                evbuffer_drain(in, off);
                if ((r->framing == GW_RESP_CHUNKED && gw_rw_chunk_header(out, dlen) < 0) ||
                    evbuffer_remove_buffer(in, out, dlen) < 0 ||
                    (r->framing == GW_RESP_CHUNKED && evbuffer_add(out, "\r\n", 2) < 0))
                    goto oom;
            } else {
                evbuffer_drain(in, consumed);
                if (cr == HTTP1_CHUNK_DONE) {
                    if (r->framing == GW_RESP_CHUNKED && evbuffer_add(out, "0\r\n\r\n", 5) < 0)
                        goto oom;
                    done = 1;
                    break;
                }
            }
        } else { /* until close */
            if ((r->framing == GW_RESP_CHUNKED && gw_rw_chunk_header(out, avail) < 0) ||
                evbuffer_remove_buffer(in, out, avail) < 0 ||
                (r->framing == GW_RESP_CHUNKED && evbuffer_add(out, "\r\n", 2) < 0))
                goto oom;
        }
    }
    if (!done && upstream_eof && r->resp_body == HTTP1_BODY_UNTIL_CLOSE &&
        evbuffer_get_length(in) == 0) {
        if (r->framing == GW_RESP_CHUNKED && evbuffer_add(out, "0\r\n\r\n", 5) < 0)
            goto oom;
        done = 1;
    }
    r->bytes_out += evbuffer_get_length(out) - before;
    if (done) {
        if (evbuffer_get_length(in) > 0)
            r->up_reusable = 0; /* bytes past the response: not trustworthy */
        gw_conn_response_done(c);
        rc = 1;
    }
    goto out;
oom:
    gw_conn_close(c, "out of memory");
    rc = -1;
out:
    return rc;
}

/* Works through what the upstream sent, in whatever state c is. */
static int process(struct gw_conn *c, int upstream_eof)
{
    int rc;

    if (c->state == CONN_FORWARD || c->state == CONN_READ_RESPONSE) {
        rc = parse_head(c);
        if (rc <= 0)
            return rc;
    }
    if (c->state == CONN_STREAM_RESPONSE)
        return stream_body(c, upstream_eof);
    return -1;
}

void gw_resp_resume(struct gw_conn *c)
{
    gw_conn_pause_upstream(c, 0);
    if (c->state == CONN_STREAM_RESPONSE)
        process(c, 0);
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;

    (void)bev;
    if (c->state == CONN_FORWARD || c->state == CONN_READ_RESPONSE ||
        c->state == CONN_STREAM_RESPONSE) {
        if (c->utimer == UT_SILENCE) /* the silence starts again */
            gw_conn_arm_up(c, UT_SILENCE, c->req->rt->cfg->timeouts.upstream_read_ms);
        process(c, 0);
    }
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;

    if (c->up && !c->up->tls && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE); /* back to writing through */
    gw_req_upstream_drained(c);
}

/* "failed" with the socket error's text when there is one. */
static const char *failed_text(int serr, char *buf, size_t len)
{
    if (!serr)
        return "failed";
    snprintf(buf, len, "failed (%s)", evutil_socket_error_to_string(serr));
    return buf;
}

/* The upstream closed, failed or went silent after the request went out. */
static void up_closed(struct gw_conn *c, short what)
{
    struct gw_req *r = c->req;
    int had_bytes = evbuffer_get_length(bufferevent_get_input(c->up->bev)) > 0;
    int eof = (what & BEV_EVENT_EOF) != 0;
    /* a read error's cause (plain TCP; libevent's deferred reports do not
     * keep theirs) */
    int serr = (what & BEV_EVENT_ERROR) ? c->up->read_errno : 0;
    char failed[160], why[400];

    if (c->state == CONN_FORWARD || c->state == CONN_READ_RESPONSE) {
        if (had_bytes && process(c, eof) != 0)
            return; /* the response is complete, or c got an error */
        if (c->state != CONN_STREAM_RESPONSE) {
            if (c->up->reused && !had_bytes && r->body == HTTP1_BODY_NONE && !r->retried &&
                gw_route_method_idempotent(r->method, strlen(r->method))) {
                /* A pooled connection the server had just closed: most
                 * likely the request never reached it; send it once more.
                 * But the server may as well have taken it and closed
                 * before answering: only an idempotent method may be sent
                 * twice (RFC 9110 9.2.2); a POST gets 502, delivered once. */
                r->retried = 1;
                gw_log(c->w->log, CFG_LOG_DEBUG, c->id, "upstream %s: pooled connection "
                       "closed; retrying on a new one", up_name(c));
                gw_conn_drop_upstream(c);
                gw_req_upstream_start(c, 1);
                return;
            }
            snprintf(why, sizeof(why), "upstream %s %s before a complete response head",
                     up_name(c), eof ? "closed" : failed_text(serr, failed, sizeof(failed)));
            gw_conn_error(c, 502, why);
            return;
        }
    } else if (c->state == CONN_STREAM_RESPONSE) {
        if (process(c, eof) != 0)
            return;
    } else {
        return;
    }
    gw_log(c->w->log, CFG_LOG_WARN, c->id, "upstream %s %s in the middle of a response; "
           "cutting the client connection", up_name(c),
           (what & BEV_EVENT_TIMEOUT) ? "went silent" : eof ? "closed" :
           failed_text(serr, failed, sizeof(failed)));
    gw_conn_close(c, "upstream ended mid-response");
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct gw_conn *c = arg;
    char why[400];

    (void)bev;
    if (c->state == CONN_CLOSING || !c->up)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        gw_up_connected(c->up);
        if (c->state == CONN_UPSTREAM_CONNECT) {
            gw_conn_arm_up(c, UT_NONE, 0);
            gw_req_send(c);
        }
        return;
    }
    if (c->state == CONN_UPSTREAM_CONNECT) {
        unsigned long e = bufferevent_get_openssl_error(c->up->bev);
        int serr = EVUTIL_SOCKET_ERROR();

        while (bufferevent_get_openssl_error(c->up->bev) != 0)
            ;
        if (e) {
            gw_up_tls_failure(c->up, e, why, sizeof(why));
        } else {
            snprintf(why, sizeof(why), "connect failed: %s",
                     serr ? evutil_socket_error_to_string(serr) : "connection closed");
        }
        ERR_clear_error();
        gw_req_upstream_connect_failed(c, why);
        return;
    }
    while (bufferevent_get_openssl_error(c->up->bev) != 0)
        ;
    ERR_clear_error();
    up_closed(c, what);
}

void gw_resp_silent(struct gw_conn *c)
{
    if (c->state == CONN_STREAM_RESPONSE && c->up)
        up_closed(c, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
}

/*
 * No read watermark: the upstream's input never grows far. A response
 * head is parsed (or refused past GW_RESP_MAX_HEAD) as it arrives, a body
 * moves to the client as it arrives, and reads stop while the client's
 * output is at GW_HIGH_MARK (gw_conn_pause_upstream). libevent would
 * otherwise re-add the read event at every change of the input.
 */
void gw_resp_attach(struct gw_conn *c)
{
    struct bufferevent *bev = c->up->bev;

    gw_up_setcb(c->up, up_read_cb, up_write_cb, up_event_cb, c);
    gw_up_read(c->up, 1);
    /* A connected one writes through (gw_up_push); a new one lets libevent
     * finish the connect first. */
    if (c->up->connected)
        bufferevent_disable(bev, EV_WRITE);
    else
        bufferevent_enable(bev, EV_WRITE);
}
