/*
 * conn_int.h - the connection's insides, shared by conn.c (lifecycle,
 * handshake, timers, errors), conn_req.c (request head, identity, upstream
 * connect, request body) and conn_resp.c (response head and body).
 * Not for use outside those three files.
 *
 * States of a connection (c->state):
 *   HANDSHAKE        TLS handshake running (timeouts.handshake)
 *   KEEPALIVE_IDLE   between requests, nothing buffered (timeouts.keepalive;
 *                    timeouts.header before the first request); after
 *                    GW_PARK_MS of it the connection parks (conn.c, park())
 *   READ_HEAD        bytes of a request head arrived (timeouts.header, total)
 *   WAIT_IDENTITY    head parsed, identity lookup running (client reads off)
 *   UPSTREAM_CONNECT connecting to an upstream (timeouts.upstream_connect)
 *   FORWARD          streaming the request body (timeouts.body, total; the
 *                    time the upstream takes no bytes does not count, it is
 *                    bounded by timeouts.upstream_read instead)
 *   READ_RESPONSE    request sent, waiting for the head (timeouts.upstream_read)
 *   STREAM_RESPONSE  streaming the response body (upstream_read between reads)
 *   FLUSH_CLOSE      last answer queued; close once it is written
 *   LINGER           answer written, discarding what the client still sends
 *                    (so the kernel does not reset the answer away), 2 s max
 *   CLOSING          conn_close() was called; freed by the worker's reap_ev
 */
#ifndef MTLS_PROXY_CONN_INT_H
#define MTLS_PROXY_CONN_INT_H

#include <netinet/in.h>
#include <stdint.h>

#include "conn.h"
#include "http1.h"
#include "rewrite.h"
#include "tls_server.h"
#include "tstream.h"
#include "worker.h"

#define GW_CONN_MAGIC 0x6d74636eu
/* Bytes queued towards one side before the other side's reads pause. */
#define GW_HIGH_MARK (256 * 1024)
#define GW_LINGER_MS 2000
/* An idle connection parks after this long without a request (conn.c). */
#define GW_PARK_MS 200
/* While draining, how long a connection that has just finished its handshake
 * waits for its first request (timeouts.header when shorter). */
#define GW_DRAIN_FIRST_REQUEST_MS 2000
#define GW_RESP_MAX_HEAD (64 * 1024)
/* Body pieces up to this size are copied behind the head (one chain, so one
 * TLS record and one write()); larger ones move as chains, without a copy. */
#define GW_COPY_MAX (16 * 1024)

struct bufferevent;
struct event;
struct evbuffer;
struct gw_up_conn;

enum gw_conn_state {
    CONN_HANDSHAKE = 0,
    CONN_KEEPALIVE_IDLE,
    CONN_READ_HEAD,
    CONN_WAIT_IDENTITY,
    CONN_UPSTREAM_CONNECT,
    CONN_FORWARD,
    CONN_READ_RESPONSE,
    CONN_STREAM_RESPONSE,
    CONN_FLUSH_CLOSE,
    CONN_LINGER,
    CONN_CLOSING,
};

/* What the client-side timer measures. */
enum gw_ctimer {
    CT_NONE = 0,
    CT_HANDSHAKE,                  /* timeouts.handshake */
    CT_IDLE,                       /* waiting for a request: timeouts.keepalive
                                      (timeouts.header for the first) */
    CT_PARK,                       /* waited GW_PARK_MS of that: park (conn.c) */
    CT_HEADER,                     /* head complete: timeouts.header from its first byte */
    CT_BODY,                       /* request body complete: timeouts.body */
    CT_FLUSH,                      /* last answer written out: timeouts.body */
    CT_LINGER,                     /* discard what the client still sends */
    CT_NEXT,                       /* zero delay: parse the next pipelined request */
    CT_SHED,                       /* a request waited GW_PARK_MS for its answer:
                                      OpenSSL's buffers go (conn.c) */
};
/* What the upstream-side timer measures. */
enum gw_utimer {
    UT_NONE = 0,
    UT_CONNECT,                    /* timeouts.upstream_connect */
    UT_READ,                       /* request sent, no response head: upstream_read */
    UT_WRITE,                      /* the upstream takes no request body: upstream_read */
    UT_SILENCE,                    /* response started: upstream_read between reads
                                      (off while its reads pause for the client) */
};

/* One request and its response; cached per worker between requests. */
struct gw_req {
    struct gw_req *next_free;
    struct http1_head head;        /* request head, later the response head */
    struct evbuffer *up_head;      /* the rewritten head (kept for one retry) */
    struct gw_runtime *rt;         /* the runtime this request runs on (ref) */
    size_t head_in_input;          /* head bytes still at the front of the input */
    char method[16];               /* for the access log (truncated) */
    char path[256];
    char identity[128];
    char request_id[33];
    int minor;                     /* the client's HTTP minor version */
    int client_keep_alive;
    int is_head;
    /* request body */
    enum http1_body body;
    uint64_t body_left;            /* LENGTH: bytes still to forward */
    struct http1_chunked chunk;
    int body_done;
    uint64_t body_deadline_us;     /* CT_BODY's end (moved on by upstream stalls) */
    uint64_t up_stall_us;          /* since when the upstream takes no body, or 0 */
    /* upstream */
    uint64_t tried;                /* servers tried (bitmask) */
    int retried;                   /* one retry after a stale pooled connection */
    uint64_t t_start_us, t_up_us;
    /* response */
    int status;
    enum http1_body resp_body;     /* the upstream's framing */
    enum gw_resp_framing framing;  /* ours towards the client */
    uint64_t resp_left;
    struct http1_chunked rchunk;
    int resp_started;              /* a byte of an answer was queued to the client */
    int close_after;               /* close the client connection after this one */
    int early;                     /* answered before the whole body came: what
                                      the client still sends is dropped */
    int up_reusable;
    int accounted;                 /* counted and access-logged */
    uint64_t bytes_out;
};

struct gw_conn {
    uint32_t magic;
    enum gw_conn_state state;
    uint64_t id;
    struct gw_worker *w;
    struct gw_conn *prev, *next;   /* the worker's list */
    struct gw_ts *ts;              /* client side, TLS (tstream.h); NULL while parked */
    SSL *ssl;                      /* owned here, not by ts */
    evutil_socket_t fd;            /* owned here, not by ts */
    uint32_t trust_gen;            /* the runtime generation whose trust set
                                      last admitted the client certificate
                                      (low 32 bits; 0: none yet) */
    struct gw_up_conn *up;         /* upstream connection in use */
    struct gw_req *req;            /* request in progress */
    void *id_pending;              /* identity lookup in flight */
    struct gw_runtime *id_rt;      /* the source it is pending on */
    struct event *timer;           /* client-side deadline; while parked
                                      also the watch on the socket */
    struct event *up_timer;        /* upstream-side deadline; NULL while parked */
    struct gw_conn *reap_next;     /* closed: the worker's list to free */
    uint64_t idle_end_us;          /* KEEPALIVE_IDLE: the idle timeout's end */
    uint64_t cdeadline_us;         /* ctimer's deadline (gw_mono_us) */
    uint64_t ctimer_at;            /* when c->timer is set to fire; 0: off */
    uint64_t udeadline_us;         /* utimer's deadline */
    uint64_t utimer_at;            /* when c->up_timer is set to fire; 0: off */
    enum gw_ctimer ctimer;
    enum gw_utimer utimer;
    unsigned client_eof : 1;       /* the client closed its side */
    unsigned client_paused : 1;    /* client reads off for backpressure */
    unsigned up_paused : 1;        /* upstream reads off for backpressure */
    unsigned handshake_done : 1;
    unsigned parked : 1;           /* no bufferevent: see park() in conn.c */
    unsigned in_capped : 1;        /* a read bound stops reading (client_read_cb) */
    unsigned has_sha256 : 1;       /* sha256 is set */
    unsigned had_request : 1;      /* a request head has arrived */
    unsigned char served;          /* requests answered since the connection
                                      started or last shed OpenSSL's buffers,
                                      capped at 2: from 2 on it keeps them
                                      (conn.c, keep_buffers_if_busy) */
    uint32_t not_after;            /* the earlier notAfter of the client
                                      certificate and its intermediate,
                                      seconds since 1970 (0: unknown): from
                                      then on each request re-checks it */
    struct tls_peer *hs;           /* the handshake's report (tls_server.h);
                                      freed once the client is admitted */
    const char *tls_version;       /* "TLSv1.3" (static), once admitted */
    char cn[TLS_CN_MAX + 1];       /* the certificate's CN, once admitted */
    unsigned char sha256[32];      /* its fingerprint, once admitted */
    unsigned char ip_off, ip_len;  /* where the address is in client */
    char client[INET6_ADDRSTRLEN + 8]; /* "ip:port", "[ip]:port" */
};

/*
 * conn.c
 * gw_conn_close: starts the close (see conn.h); c stays readable until the
 *   current callback returns. gw_conn_arm / gw_conn_arm_up: (re)arm the
 *   client / upstream timer for a kind (CT_NONE / UT_NONE disarm).
 * gw_conn_error: answers the current request with the gateway's own error
 *   (or cuts the connection when an answer has started), logs, counts.
 * gw_conn_response_done: the response is queued completely: log, count,
 *   pool the upstream connection, then the next request or the close.
 * gw_conn_drop_upstream: frees the upstream connection in use (not pooled).
 * gw_conn_pause_client / _upstream: backpressure, reads off (1) or on (0).
 * gw_conn_kick_read: after anything that may let the client's reading go
 *   on (input drained, the state changed): reads what OpenSSL holds already
 *   (gw_ts_enable(EV_READ) does so itself).
 * gw_conn_rt: the runtime of the current request, else the worker's.
 * gw_conn_req_new: a fresh request object (own runtime reference, id).
 */
struct gw_req *gw_conn_req_new(struct gw_conn *c);
void gw_conn_close(struct gw_conn *c, const char *reason);
/* The request is all in: the client timer only sheds OpenSSL's buffers of a
 * connection that keeps them, when the answer takes over GW_PARK_MS. */
void gw_conn_arm_answer_wait(struct gw_conn *c);
void gw_conn_arm(struct gw_conn *c, enum gw_ctimer kind, unsigned ms);
void gw_conn_arm_up(struct gw_conn *c, enum gw_utimer kind, unsigned ms);
void gw_conn_error(struct gw_conn *c, int status, const char *why);
void gw_conn_response_done(struct gw_conn *c);
void gw_conn_drop_upstream(struct gw_conn *c);
void gw_conn_pause_client(struct gw_conn *c, int pause);
void gw_conn_pause_upstream(struct gw_conn *c, int pause);
void gw_conn_kick_read(struct gw_conn *c);
struct gw_runtime *gw_conn_rt(const struct gw_conn *c);
/* c->not_after from its client certificate and the intermediate of t that
 * issued it (tls_trust_valid_until). */
void gw_conn_set_valid_until(struct gw_conn *c, const struct tls_trust *t);

/*
 * conn_req.c
 * gw_req_try_head: parses a request head from the client's input, when
 *   complete checks it, asks for the identity and goes on to the upstream.
 * gw_req_forward_body: moves request body bytes to the upstream.
 * gw_req_upstream_start: takes a pooled connection (unless fresh) or
 *   connects to the next server; 502 when none is left.
 * gw_req_upstream_connect_failed: marks the server failed, tries the next.
 * gw_req_send: the upstream is connected: queue the head, then the body.
 * gw_req_upstream_drained: the upstream took half of the body bytes queued
 *   for it: read the client again (from the upstream's write callback).
 * gw_req_body_cut: 1 when the client closed its side and what is buffered
 *   cannot complete the request body any more.
 */
void gw_req_try_head(struct gw_conn *c);
void gw_req_forward_body(struct gw_conn *c);
void gw_req_upstream_start(struct gw_conn *c, int fresh);
void gw_req_upstream_connect_failed(struct gw_conn *c, const char *why);
void gw_req_send(struct gw_conn *c);
void gw_req_upstream_drained(struct gw_conn *c);
int gw_req_body_cut(const struct gw_conn *c);

/*
 * conn_resp.c
 * gw_resp_attach: sets c's callbacks on the upstream connection c->up.
 * gw_resp_resume: the client took half its backlog: read the upstream again.
 * gw_resp_silent: UT_SILENCE ran out: the upstream went silent mid-response.
 */
void gw_resp_attach(struct gw_conn *c);
void gw_resp_resume(struct gw_conn *c);
void gw_resp_silent(struct gw_conn *c);

#endif
