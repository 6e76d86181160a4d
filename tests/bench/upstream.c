/*
 * bench-upstream: the plain HTTP/1.1 upstream that both front ends of the
 * benchmark (nginx and mtlsgate) proxy to. It is built to cost as little
 * CPU as possible so that it does not shape the result: one libevent loop,
 * raw read()/write on non-blocking sockets, keep-alive and pipelining, and
 * every request answered with the same small 200 once its body (any
 * framing: Content-Length or chunked) has been read and thrown away.
 *
 * Usage: bench-upstream --listen HOST:PORT [--body TEXT]
 * SIGUSR1 prints "upstream: requests=N with_cn=M bad=B conns=C" (counts
 * since the previous SIGUSR1) on stderr; SIGTERM/SIGINT stop it cleanly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "bench_http.h"

#define UP_BUF (64 * 1024)
#define UP_MAX_PENDING_OUT (1024 * 1024)

enum up_state { UP_HEAD = 0, UP_BODY_CL, UP_BODY_CHUNKED };

struct up_server;

/* One client (front end) connection. Freed only by up_conn_free(). */
struct up_conn {
    struct up_server *srv;
    struct up_conn *prev, *next;   /* srv->conns list, for shutdown */
    int fd;
    struct event *rev, *wev;
    struct evbuffer *out;
    enum up_state st;
    uint64_t body_left;
    struct bh_chunked ch;
    int resp_close;                /* the pending request asked for close */
    int closing;                   /* close once out is flushed */
    int reading;                   /* rev is added */
    size_t len;
    char buf[UP_BUF];
};

struct up_server {
    struct event_base *base;
    struct up_conn *conns;
    const char *resp;              /* the keep-alive response */
    size_t resp_len;
    const char *resp_close;        /* the same with Connection: close */
    size_t resp_close_len;
    unsigned long requests, with_cn, bad, accepted;
};

/*
 * Unlinks and frees c, closing its socket. NULL is fine.
 */
static void up_conn_free(struct up_conn *c)
{
    if (c == NULL)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    evbuffer_free(c->out);
    close(c->fd);
    free(c);
}

/*
 * Queues the answer to one complete request. Returns 1 when the
 * connection must close after it (the client asked), else 0.
 */
static int up_respond(struct up_conn *c)
{
    struct up_server *s = c->srv;

    s->requests++;
    if (c->resp_close) {
        evbuffer_add(c->out, s->resp_close, s->resp_close_len);
        c->closing = 1;
        return 1;
    }
    evbuffer_add(c->out, s->resp, s->resp_len);
    return 0;
}

/*
 * Queues a 400 for a request that cannot be framed and marks c to close.
 */
static void up_bad_request(struct up_conn *c)
{
    static const char r400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";

    c->srv->bad++;
    evbuffer_add(c->out, r400, sizeof(r400) - 1);
    c->closing = 1;
}

/*
 * Consumes as many whole requests (and body bytes) from c->buf as it
 * holds, queueing one response per request; keeps a partial head.
 */
static void up_process(struct up_conn *c)
{
    size_t off = 0;

    while (off < c->len && !c->closing) {
        if (c->st == UP_HEAD) {
            struct bh_head h;
            size_t hl = bh_head_len(c->buf + off, c->len - off);

            if (hl == 0) {
                if (off == 0 && c->len == sizeof(c->buf))
                    up_bad_request(c);      /* a head larger than the buffer */
                break;
            }
            if (bh_parse_head(c->buf + off, hl, 0, &h) != 0) {
                up_bad_request(c);
                break;
            }
            off += hl;
            if (h.has_client_cn)
                c->srv->with_cn++;
            c->resp_close = h.conn_close;
            if (h.chunked) {
                bh_chunked_init(&c->ch);
                c->st = UP_BODY_CHUNKED;
            } else if (h.has_length && h.content_length > 0) {
                c->body_left = h.content_length;
                c->st = UP_BODY_CL;
            } else if (up_respond(c)) {
                break;
            }
        } else if (c->st == UP_BODY_CL) {
            size_t take = c->len - off;

            if ((uint64_t)take > c->body_left)
                take = (size_t)c->body_left;
            off += take;
            c->body_left -= take;
            if (c->body_left == 0) {
                c->st = UP_HEAD;
                if (up_respond(c))
                    break;
            }
        } else {
            int done = 0;
            ssize_t used = bh_chunked_feed(&c->ch, c->buf + off, c->len - off, &done);

            if (used < 0) {
                up_bad_request(c);
                break;
            }
            off += (size_t)used;
            if (done) {
                c->st = UP_HEAD;
                if (up_respond(c))
                    break;
            }
        }
    }
    if (c->closing)
        c->len = 0;                         /* nothing more is read */
    else if (off > 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}

/*
 * Writes what is queued. Returns -1 when c was freed (error, or closed
 * after its last response), else 0; arms the write event while output is
 * left and pauses reading while too much is.
 */
static int up_flush(struct up_conn *c)
{
    size_t left;

    if (evbuffer_get_length(c->out) > 0 && evbuffer_write(c->out, c->fd) < 0 &&
        errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        up_conn_free(c);
        return -1;
    }
    left = evbuffer_get_length(c->out);
    if (left == 0) {
        event_del(c->wev);
        if (c->closing) {
            up_conn_free(c);
            return -1;
        }
    } else {
        event_add(c->wev, NULL);
    }
    if (left > UP_MAX_PENDING_OUT && c->reading) {
        event_del(c->rev);
        c->reading = 0;
    } else if (left <= UP_MAX_PENDING_OUT && !c->reading && !c->closing) {
        event_add(c->rev, NULL);
        c->reading = 1;
    }
    return 0;
}

/* libevent read callback: read once, frame, answer. */
static void up_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct up_conn *c = arg;
    ssize_t n;

    (void)what;
    if (c->closing)
        return;
    n = read(fd, c->buf + c->len, sizeof(c->buf) - c->len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        up_conn_free(c);
        return;
    }
    if (n < 0)
        return;
    c->len += (size_t)n;
    up_process(c);
    if (c->closing && c->reading) {
        event_del(c->rev);
        c->reading = 0;
    }
    (void)up_flush(c);
}

/* libevent write callback: the socket drained, write the rest. */
static void up_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)up_flush(arg);
}

/* evconnlistener callback: one new front-end connection. */
static void up_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                         struct sockaddr *sa, int salen, void *arg)
{
    struct up_server *s = arg;
    struct up_conn *c = NULL;
    int one = 1;

    (void)l;
    (void)sa;
    (void)salen;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    c->out = evbuffer_new();
    c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, up_read_cb, c);
    c->wev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, up_write_cb, c);
    if (c->out == NULL || c->rev == NULL || c->wev == NULL || event_add(c->rev, NULL) != 0) {
        fprintf(stderr, "bench-upstream: out of memory for a connection\n");
        up_conn_free(c);
        return;
    }
    c->reading = 1;
    s->accepted++;
}

/* SIGUSR1: counts since the last report. */
static void up_stats_cb(evutil_socket_t sig, short what, void *arg)
{
    struct up_server *s = arg;

    (void)sig;
    (void)what;
    fprintf(stderr, "upstream: requests=%lu with_cn=%lu bad=%lu conns=%lu\n",
            s->requests, s->with_cn, s->bad, s->accepted);
    fflush(stderr);
    s->requests = s->with_cn = s->bad = s->accepted = 0;
}

/* SIGTERM / SIGINT: leave the loop. */
static void up_stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

/*
 * Parses "HOST:PORT" (IPv4 literal) into sin. 0 / -1.
 */
static int parse_listen(const char *s, struct sockaddr_in *sin)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    char *end = NULL;
    long port;

    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &sin->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct up_server srv;
    struct sockaddr_in sin;
    struct evconnlistener *lst = NULL;
    struct event *ev_usr1 = NULL, *ev_term = NULL, *ev_int = NULL;
    const char *listen_at = NULL, *body = "ok\n";
    char *resp = NULL, *resp_close = NULL;
    int rc = 1, i, len;

    memset(&srv, 0, sizeof(srv));
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_at = argv[++i];
        else if (strcmp(argv[i], "--body") == 0 && i + 1 < argc)
            body = argv[++i];
        else {
            fprintf(stderr, "usage: bench-upstream --listen HOST:PORT [--body TEXT]\n");
            return 2;
        }
    }
    if (listen_at == NULL || parse_listen(listen_at, &sin) != 0) {
        fprintf(stderr, "bench-upstream: --listen HOST:PORT (IPv4) is required\n");
        return 2;
    }
    len = asprintf(&resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                   "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    if (len < 0) {
        resp = NULL;
        goto out;
    }
    srv.resp = resp;
    srv.resp_len = (size_t)len;
    len = asprintf(&resp_close, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", strlen(body), body);
    if (len < 0) {
        resp_close = NULL;
        goto out;
    }
    srv.resp_close = resp_close;
    srv.resp_close_len = (size_t)len;
    signal(SIGPIPE, SIG_IGN);
    srv.base = event_base_new();
    if (srv.base == NULL)
        goto out;
    lst = evconnlistener_new_bind(srv.base, up_accept_cb, &srv,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
                                  (struct sockaddr *)&sin, sizeof(sin));
    if (lst == NULL) {
        fprintf(stderr, "bench-upstream: cannot listen on %s: %s\n", listen_at, strerror(errno));
        goto out;
    }
    ev_usr1 = evsignal_new(srv.base, SIGUSR1, up_stats_cb, &srv);
    ev_term = evsignal_new(srv.base, SIGTERM, up_stop_cb, srv.base);
    ev_int = evsignal_new(srv.base, SIGINT, up_stop_cb, srv.base);
    if (ev_usr1 == NULL || ev_term == NULL || ev_int == NULL ||
        event_add(ev_usr1, NULL) != 0 || event_add(ev_term, NULL) != 0 ||
        event_add(ev_int, NULL) != 0)
        goto out;
    fprintf(stderr, "bench-upstream: listening on %s\n", listen_at);
    fflush(stderr);
    event_base_dispatch(srv.base);
    rc = 0;
out:
    while (srv.conns)
        up_conn_free(srv.conns);
    if (lst)
        evconnlistener_free(lst);
    if (ev_usr1)
        event_free(ev_usr1);
    if (ev_term)
        event_free(ev_term);
    if (ev_int)
        event_free(ev_int);
    if (srv.base)
        event_base_free(srv.base);
    free(resp);
    free(resp_close);
    return rc;
}
