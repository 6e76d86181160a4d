/*
 * mtls-loadgen: the benchmark's load generator. It drives an HTTPS server
 * that requires a client certificate, with OpenSSL 3 on non-blocking
 * sockets and epoll: many connections at once from one thread (or a few
 * threads with --threads), each a small state machine
 * (connect -> handshake -> write request -> read response -> ...).
 *
 * Modes:
 *   handshake  a new connection per request: full handshake + 1 GET
 *   resume     the same, but each connection offers the session (TLS 1.3
 *              ticket) of the previous one; reports the resumed fraction
 *   keepalive  GETs back to back over --conns persistent connections
 *   post       --size byte POSTs over persistent connections; MB/s
 *   idle       opens --conns connections (handshake + 1 GET each, at most
 *              --concurrency at a time), says so on stderr when all are up,
 *              then holds them until SIGUSR1/SIGINT/SIGTERM or --hold S
 *
 * Prints one line: "mode=M rps=R p50_us=A p99_us=B errors=E resumed=F ..."
 * (latency from a log-bucketed histogram, relative error < 1.6%; cpu_s is
 * the load generator's own CPU time, user + system) and exits 1 when more
 * than 1% of the attempts failed, 2 on bad usage or setup.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bench_http.h"
#include "tls_libctx.h"
#include "tls_pem.h"

#define LG_RBUF 16384
#define LG_BODY_CHUNK (64 * 1024)
#define LG_MAX_THREADS 64
#define LG_ERR_SHOWN 5

enum lg_mode { M_HANDSHAKE = 0, M_RESUME, M_KEEPALIVE, M_POST, M_IDLE };
static const char *const mode_names[] = { "handshake", "resume", "keepalive", "post", "idle" };

enum lg_state {
    ST_OFF = 0,      /* no connection */
    ST_CONNECTING,   /* non-blocking connect in progress */
    ST_HANDSHAKE,    /* SSL_connect in progress */
    ST_WRITE,        /* writing the request head, then its body */
    ST_READ,         /* reading the response */
    ST_HOLD          /* idle mode: connection up, held */
};

enum lg_body { RB_HEAD = 0, RB_LENGTH, RB_CHUNKED, RB_EOF };

struct lg_opts {
    const char *host, *port, *cert, *key, *ca, *path;
    enum lg_mode mode;
    double duration, warmup, hold;
    uint64_t requests;        /* 0 = no limit */
    uint64_t post_size;
    int conns, concurrency, threads;
    int tls_version;          /* 0 = 1.2 or 1.3, else 12 or 13 */
    int quiet;
};

/* Latency histogram: 64 exact buckets, then 64 per power of two (ns). */
#define H_SUB_BITS 6
#define H_SUB (1u << H_SUB_BITS)
#define H_BUCKETS (64u * H_SUB)
struct lg_hist {
    uint64_t count[H_BUCKETS];
    uint64_t total;
};

struct lg_worker;

/* One client connection slot; it is reused for every connection it makes. */
struct lg_slot {
    struct lg_worker *w;
    enum lg_state st;
    int fd;
    SSL *ssl;
    SSL_SESSION *sess;        /* resume mode: offered on the next connection */
    uint32_t events;          /* current epoll interest, 0 = not registered */
    uint64_t t_start;         /* ns: request (or connection) start */
    int offered;              /* this connection offered a session */
    int counted_up;           /* idle mode: counted in g_up */
    /* writing */
    const char *wp;
    size_t wlen;
    uint64_t body_left;
    /* reading */
    enum lg_body rb;
    struct bh_head head;
    uint64_t resp_left;
    struct bh_chunked ch;
    size_t rlen;
    char rbuf[LG_RBUF];
};

struct lg_worker {
    int id;
    int epfd;
    pthread_t thread;
    struct lg_slot *slots;
    int nslots;
    int next_idle;            /* idle mode: where to look for a slot to open */
    int live;                 /* slots with a connection (not ST_OFF) */
    int held;                 /* idle mode: slots in ST_HOLD */
    struct lg_hist hist;
    uint64_t t_end;           /* ns: when its loop ended */
    uint64_t ok, errors, total_ok, handshakes, offered, resumed, body_bytes;
    char req[512];            /* the request head, built once */
    size_t req_len;
};

static struct lg_opts opt;
static SSL_CTX *g_ctx;
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static atomic_int g_stop;
static atomic_int g_err_shown;
static atomic_uint_fast64_t g_issued;    /* requests started (--requests) */
static atomic_int g_budget_spent;        /* --requests all started */
static atomic_int g_up;                  /* idle mode: connections held */
static atomic_int g_threads_done;
static uint64_t g_measure_from;          /* ns: results count from here */
static const char g_body[LG_BODY_CHUNK]; /* POST payload: zeros */

/* Monotonic time in nanoseconds. */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Bucket of value v (ns). */
static unsigned h_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < H_SUB)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - H_SUB_BITS;
    return (shift + 1) * H_SUB + (unsigned)((v >> shift) & (H_SUB - 1));
}

/* Middle of bucket i (ns). */
static double h_value(unsigned i)
{
    unsigned shift, sub;

    if (i < H_SUB)
        return i;
    shift = i / H_SUB - 1;
    sub = i % H_SUB;
    return (double)((uint64_t)(H_SUB + sub) << shift) + (double)(1ull << shift) / 2.0;
}

/* Records one latency of v ns. */
static void h_add(struct lg_hist *h, uint64_t v)
{
    h->count[h_index(v)]++;
    h->total++;
}

/* The p-quantile (0 < p <= 1) in microseconds, 0 when empty. */
static double h_quantile_us(const struct lg_hist *h, double p)
{
    uint64_t want, seen = 0;
    unsigned i;

    if (h->total == 0)
        return 0;
    want = (uint64_t)(p * (double)h->total + 0.999999);
    if (want < 1)
        want = 1;
    for (i = 0; i < H_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want)
            return h_value(i) / 1000.0;
    }
    return h_value(H_BUCKETS - 1) / 1000.0;
}

/*
 * Counts one failed attempt on w and prints its reason (with the OpenSSL
 * error queue, which it clears) for the first few failures of the run.
 */
static void lg_error(struct lg_worker *w, const char *what, int err)
{
    char ebuf[256] = "";
    unsigned long e = ERR_peek_last_error();

    w->errors++;
    if (e != 0)
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
    ERR_clear_error();
    if (atomic_fetch_add(&g_err_shown, 1) < LG_ERR_SHOWN)
        fprintf(stderr, "mtls-loadgen: %s%s%s%s%s\n", what, err ? ": " : "",
                err ? strerror(err) : "", ebuf[0] ? ": " : "", ebuf);
}

/*
 * Sets the epoll interest of s to ev (EPOLLIN or EPOLLOUT), registering
 * the socket on first use. 0 / -1.
 */
static int slot_want(struct lg_slot *s, uint32_t ev)
{
    struct epoll_event ee;
    int op = s->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;

    if (s->events == ev)
        return 0;
    memset(&ee, 0, sizeof(ee));
    ee.events = ev;
    ee.data.ptr = s;
    if (epoll_ctl(s->w->epfd, op, s->fd, &ee) != 0)
        return -1;
    s->events = ev;
    return 0;
}

/*
 * Ends s's connection (a close_notify is sent when the session is
 * established, without waiting for the peer's). In resume mode, keeps the
 * newest session for the next connection first.
 */
static void slot_close(struct lg_slot *s, int clean)
{
    if (s->ssl) {
        if (clean && opt.mode == M_RESUME) {
            SSL_SESSION *sess = SSL_get1_session(s->ssl);

            if (sess && SSL_SESSION_is_resumable(sess)) {
                SSL_SESSION_free(s->sess);
                s->sess = sess;
            } else {
                SSL_SESSION_free(sess);
            }
        }
        if (clean && SSL_is_init_finished(s->ssl))
            (void)SSL_shutdown(s->ssl);
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->events = 0;
    if (s->counted_up) {
        atomic_fetch_sub(&g_up, 1);
        s->w->held--;
        s->counted_up = 0;
    }
    if (s->st != ST_OFF)
        s->w->live--;
    s->st = ST_OFF;
}

/*
 * Claims one request from the --requests budget. 1 = go, 0 = budget spent
 * (the requests under way still finish).
 */
static int claim_request(void)
{
    if (opt.requests == 0)
        return 1;
    if (atomic_fetch_add(&g_issued, 1) < opt.requests)
        return 1;
    atomic_store(&g_budget_spent, 1);
    return 0;
}

/*
 * Starts a new connection on the free slot s. Returns 1 when it is under
 * way, 0 when it failed at once (counted; s stays ST_OFF), -1 when the run
 * or the request budget is over.
 */
static int slot_connect(struct lg_slot *s)
{
    int one = 1, fd;

    if (atomic_load(&g_stop) || atomic_load(&g_budget_spent))
        return -1;
    if ((opt.mode == M_HANDSHAKE || opt.mode == M_RESUME) && !claim_request())
        return -1;
    s->t_start = now_ns();
    fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        lg_error(s->w, "socket", errno);
        return 0;
    }
    s->fd = fd;
    s->st = ST_CONNECTING;
    s->w->live++;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&g_addr, g_addrlen) != 0 && errno != EINPROGRESS) {
        lg_error(s->w, "connect", errno);
        slot_close(s, 0);
        return 0;
    }
    if (slot_want(s, EPOLLOUT) != 0) {
        lg_error(s->w, "epoll_ctl", errno);
        slot_close(s, 0);
        return 0;
    }
    return 1;
}

/* Sets s up to write its next request. */
static void slot_start_request(struct lg_slot *s)
{
    s->st = ST_WRITE;
    s->wp = s->w->req;
    s->wlen = s->w->req_len;
    s->body_left = opt.mode == M_POST ? opt.post_size : 0;
    s->rb = RB_HEAD;
    s->rlen = 0;
    if (opt.mode == M_KEEPALIVE || opt.mode == M_POST)
        s->t_start = now_ns();
}

/*
 * A response was read completely on s: record it and move s on. Returns 0
 * to keep driving s, 1 when s has nothing to do until its next event.
 */
static int slot_response_done(struct lg_slot *s)
{
    struct lg_worker *w = s->w;
    uint64_t t = now_ns();
    int keep = !s->head.conn_close && s->rb != RB_EOF;

    if (s->head.status < 200 || s->head.status > 299) {
        char what[64];

        snprintf(what, sizeof(what), "HTTP status %d", s->head.status);
        lg_error(w, what, 0);
    } else {
        w->total_ok++;
        if (s->t_start >= g_measure_from) {
            w->ok++;
            h_add(&w->hist, t - s->t_start);
            if (opt.mode == M_POST)
                w->body_bytes += opt.post_size;
        }
    }
    switch (opt.mode) {
    case M_HANDSHAKE:
    case M_RESUME:
        slot_close(s, 1);
        (void)slot_connect(s);
        return 1;
    case M_IDLE:
        if (!keep) {
            lg_error(w, "server closed an idle-mode connection after its request", 0);
            slot_close(s, 1);               /* idle_fill opens it again */
            return 1;
        }
        s->st = ST_HOLD;
        s->counted_up = 1;
        w->held++;
        atomic_fetch_add(&g_up, 1);
        return 0;
    default:
        if (!keep) {
            slot_close(s, 1);
            (void)slot_connect(s);
            return 1;
        }
        if (atomic_load(&g_stop) || atomic_load(&g_budget_spent) || !claim_request()) {
            slot_close(s, 1);
            return 1;
        }
        slot_start_request(s);
        return 0;
    }
}

/*
 * Takes the bytes in s->rbuf as response data. Returns 1 when the response
 * is complete, 0 when more is needed, -1 on a framing error.
 */
static int slot_parse(struct lg_slot *s)
{
    if (s->rb == RB_HEAD) {
        size_t hl = bh_head_len(s->rbuf, s->rlen);

        if (hl == 0)
            return s->rlen == sizeof(s->rbuf) ? -1 : 0;
        if (bh_parse_head(s->rbuf, hl, 1, &s->head) != 0)
            return -1;
        memmove(s->rbuf, s->rbuf + hl, s->rlen - hl);
        s->rlen -= hl;
        if (s->head.status == 204 || s->head.status == 304 ||
            (s->head.status >= 100 && s->head.status < 200))
            return s->head.status >= 200 ? 1 : -1;
        if (s->head.chunked) {
            s->rb = RB_CHUNKED;
            bh_chunked_init(&s->ch);
        } else if (s->head.has_length) {
            s->rb = RB_LENGTH;
            s->resp_left = s->head.content_length;
        } else {
            s->rb = RB_EOF;
        }
    }
    if (s->rb == RB_LENGTH) {
        uint64_t take = s->rlen < s->resp_left ? s->rlen : s->resp_left;

        s->resp_left -= take;
        s->rlen = 0;                        /* anything after is not ours */
        return s->resp_left == 0;
    }
    if (s->rb == RB_CHUNKED) {
        int done = 0;
        ssize_t used = bh_chunked_feed(&s->ch, s->rbuf, s->rlen, &done);

        s->rlen = 0;
        if (used < 0)
            return -1;
        return done;
    }
    s->rlen = 0;                            /* RB_EOF: until the close */
    return 0;
}

/*
 * Whether err from SSL_get_error is a "try again"; sets the interest.
 * Returns 1 to wait for the event, 0 when it is a real error, -1 when the
 * epoll update failed.
 */
static int ssl_wait(struct lg_slot *s, int err)
{
    if (err == SSL_ERROR_WANT_READ)
        return slot_want(s, EPOLLIN) == 0 ? 1 : -1;
    if (err == SSL_ERROR_WANT_WRITE)
        return slot_want(s, EPOLLOUT) == 0 ? 1 : -1;
    return 0;
}

/*
 * Advances s as far as it can go without blocking. Every failure is
 * counted and the slot reconnects (unless the run is stopping).
 */
static void slot_drive(struct lg_slot *s)
{
    struct lg_worker *w = s->w;
    const char *fail = NULL;
    int ferr = 0;

    for (;;) {
        int r, e, wt;

        switch (s->st) {
        case ST_OFF:
            return;
        case ST_CONNECTING: {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);

            if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
                fail = "connect";
                ferr = soerr ? soerr : errno;
                goto failed;
            }
            s->ssl = SSL_new(g_ctx);
            if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1) {
                fail = "SSL_new";
                goto failed;
            }
            s->offered = 0;
            if (opt.mode == M_RESUME && s->sess) {
                if (SSL_set_session(s->ssl, s->sess) != 1) {
                    fail = "SSL_set_session";
                    goto failed;
                }
                s->offered = 1;
            }
            s->st = ST_HANDSHAKE;
            break;
        }
        case ST_HANDSHAKE:
            r = SSL_connect(s->ssl);
            if (r == 1) {
                w->handshakes++;
                if (s->t_start >= g_measure_from && s->offered) {
                    w->offered++;
                    if (SSL_session_reused(s->ssl))
                        w->resumed++;
                }
                if ((opt.mode == M_KEEPALIVE || opt.mode == M_POST) &&
                    (atomic_load(&g_budget_spent) || !claim_request())) {
                    slot_close(s, 1);
                    return;
                }
                slot_start_request(s);
                break;
            }
            e = SSL_get_error(s->ssl, r);
            if ((wt = ssl_wait(s, e)) != 0) {
                if (wt < 0) {
                    fail = "epoll_ctl";
                    ferr = errno;
                    goto failed;
                }
                return;
            }
            fail = "TLS handshake";
            ferr = e == SSL_ERROR_SYSCALL ? errno : 0;
            goto failed;
        case ST_WRITE: {
            size_t n;
            const void *p;

            if (s->wlen > 0) {
                p = s->wp;
                n = s->wlen;
            } else if (s->body_left > 0) {
                p = g_body;
                n = s->body_left < sizeof(g_body) ? (size_t)s->body_left : sizeof(g_body);
            } else {
                s->st = ST_READ;
                if (slot_want(s, EPOLLIN) != 0) {
                    fail = "epoll_ctl";
                    ferr = errno;
                    goto failed;
                }
                return;                     /* the answer cannot be there yet */
            }
            r = SSL_write(s->ssl, p, (int)n);
            if (r > 0) {
                if (s->wlen > 0) {
                    s->wp += r;
                    s->wlen -= (size_t)r;
                } else {
                    s->body_left -= (uint64_t)r;
                }
                break;
            }
            e = SSL_get_error(s->ssl, r);
            if ((wt = ssl_wait(s, e)) != 0) {
                if (wt < 0) {
                    fail = "epoll_ctl";
                    ferr = errno;
                    goto failed;
                }
                return;
            }
            fail = "write";
            ferr = e == SSL_ERROR_SYSCALL ? errno : 0;
            goto failed;
        }
        case ST_READ:
            r = SSL_read(s->ssl, s->rbuf + s->rlen, (int)(sizeof(s->rbuf) - s->rlen));
            if (r > 0) {
                int done;

                s->rlen += (size_t)r;
                done = slot_parse(s);
                if (done < 0) {
                    fail = "malformed response";
                    goto failed;
                }
                if (done && slot_response_done(s))
                    return;
                break;
            }
            e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN && s->rb == RB_EOF) {
                (void)slot_response_done(s);
                return;
            }
            if ((wt = ssl_wait(s, e)) != 0) {
                if (wt < 0) {
                    fail = "epoll_ctl";
                    ferr = errno;
                    goto failed;
                }
                return;
            }
            fail = e == SSL_ERROR_ZERO_RETURN ? "server closed before the response"
                                              : "read";
            ferr = e == SSL_ERROR_SYSCALL ? errno : 0;
            goto failed;
        case ST_HOLD: {
            char junk[256];

            r = SSL_read(s->ssl, junk, sizeof(junk));
            if (r > 0)
                break;                      /* unexpected data: ignore it */
            e = SSL_get_error(s->ssl, r);
            if ((wt = ssl_wait(s, e)) > 0)
                return;
            fail = "held connection closed by the server";
            ferr = e == SSL_ERROR_SYSCALL ? errno : 0;
            goto failed;
        }
        }
    }
failed:
    lg_error(w, fail, ferr);
    slot_close(s, 0);
    if (opt.mode == M_IDLE) {
        if (w->errors > (uint64_t)opt.conns / 100 + 10)
            atomic_store(&g_stop, 1);       /* the server is not coping: give up */
        return;                             /* idle_fill opens it again */
    }
    (void)slot_connect(s);
}

/*
 * Idle mode: opens connections on w's free slots while fewer than its
 * share of --concurrency are being set up.
 */
static void idle_fill(struct lg_worker *w)
{
    int cap = opt.concurrency / opt.threads, scanned = 0;

    if (cap < 1)
        cap = 1;
    while (w->live - w->held < cap && w->live < w->nslots && scanned < w->nslots &&
           !atomic_load(&g_stop)) {
        struct lg_slot *s = &w->slots[w->next_idle];

        w->next_idle = (w->next_idle + 1) % w->nslots;
        scanned++;
        if (s->st == ST_OFF && slot_connect(s) != 1)
            break;                          /* failed at once: try later */
    }
}

/*
 * Other modes: gives every free slot of w a new connection (after an
 * immediate failure, or a server that closed). Returns 0 while w has
 * work, -1 when the request budget is spent and all slots are idle.
 */
static int refill(struct lg_worker *w)
{
    int i;

    if (atomic_load(&g_budget_spent))
        return w->live == 0 ? -1 : 0;
    for (i = 0; i < w->nslots && w->live < w->nslots; i++)
        if (w->slots[i].st == ST_OFF && slot_connect(&w->slots[i]) < 0)
            break;
    return 0;
}

/* Thread body: the event loop of one worker. */
static void *worker_main(void *arg)
{
    struct lg_worker *w = arg;
    struct epoll_event evs[256];
    int i;

    if (opt.mode == M_IDLE)
        idle_fill(w);
    else
        (void)refill(w);
    while (!atomic_load(&g_stop)) {
        int n = epoll_wait(w->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), 50);

        if (n < 0 && errno != EINTR)
            break;
        for (i = 0; i < n; i++)
            slot_drive(evs[i].data.ptr);
        if (opt.mode == M_IDLE)
            idle_fill(w);
        else if (w->live < w->nslots && refill(w) != 0)
            break;
    }
    w->t_end = now_ns();
    atomic_fetch_add(&g_threads_done, 1);
    return NULL;
}

/* Prints the options on stderr. */
static void usage(void)
{
    fprintf(stderr,
            "usage: mtls-loadgen --mode handshake|resume|keepalive|post|idle\n"
            "         --host H --port P --cert CHAIN.pem --key KEY.pem [--ca CA.pem]\n"
            "         [--conns N] [--concurrency C] [--threads T] [--duration S]\n"
            "         [--warmup S] [--requests N] [--path /p] [--size 1m]\n"
            "         [--hold S] [--tls12|--tls13] [--quiet]\n"
            "  --conns: connections at once (idle: connections to hold)\n"
            "  --concurrency: idle mode, handshakes in flight (default 64);\n"
            "                 other modes, the same as --conns\n"
            "  --duration: run time; idle mode, the limit for bringing all\n"
            "              connections up (default 300)\n"
            "  --ca: verify the server against it (else not verified)\n");
}

/*
 * Parses argv into opt. 0 / -1 (message printed).
 */
static int parse_args(int argc, char **argv)
{
    int i, conns_set = 0, duration_set = 0;
    const char *mode = NULL, *size = "1m";

    opt.host = "127.0.0.1";
    opt.path = "/";
    opt.duration = 5;
    opt.warmup = -1;
    opt.hold = 600;
    opt.threads = 1;
    opt.concurrency = 64;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;

        if (strcmp(a, "--mode") == 0 && v)
            mode = v;
        else if (strcmp(a, "--host") == 0 && v)
            opt.host = v;
        else if (strcmp(a, "--port") == 0 && v)
            opt.port = v;
        else if (strcmp(a, "--cert") == 0 && v)
            opt.cert = v;
        else if (strcmp(a, "--key") == 0 && v)
            opt.key = v;
        else if (strcmp(a, "--ca") == 0 && v)
            opt.ca = v;
        else if (strcmp(a, "--path") == 0 && v)
            opt.path = v;
        else if (strcmp(a, "--duration") == 0 && v) {
            opt.duration = atof(v);
            duration_set = 1;
        }
        else if (strcmp(a, "--warmup") == 0 && v)
            opt.warmup = atof(v);
        else if (strcmp(a, "--hold") == 0 && v)
            opt.hold = atof(v);
        else if (strcmp(a, "--requests") == 0 && v)
            opt.requests = strtoull(v, NULL, 10);
        else if (strcmp(a, "--size") == 0 && v)
            size = v;
        else if (strcmp(a, "--conns") == 0 && v) {
            opt.conns = atoi(v);
            conns_set = 1;
        } else if (strcmp(a, "--concurrency") == 0 && v)
            opt.concurrency = atoi(v);
        else if (strcmp(a, "--threads") == 0 && v)
            opt.threads = atoi(v);
        else {
            takes = 0;
            if (strcmp(a, "--tls12") == 0)
                opt.tls_version = 12;
            else if (strcmp(a, "--tls13") == 0)
                opt.tls_version = 13;
            else if (strcmp(a, "--quiet") == 0)
                opt.quiet = 1;
            else {
                fprintf(stderr, "mtls-loadgen: unknown or incomplete option %s\n", a);
                usage();
                return -1;
            }
        }
        i += takes;
    }
    for (i = 0; i < 5; i++)
        if (mode && strcmp(mode, mode_names[i]) == 0)
            break;
    if (i == 5 || !opt.port || !opt.cert || !opt.key) {
        usage();
        return -1;
    }
    opt.mode = (enum lg_mode)i;
    if (bh_parse_size(size, &opt.post_size) != 0 || opt.post_size == 0) {
        fprintf(stderr, "mtls-loadgen: --size %s: not a size\n", size);
        return -1;
    }
    if (opt.mode == M_IDLE && !duration_set)
        opt.duration = 300;
    if (!conns_set)
        opt.conns = opt.mode == M_KEEPALIVE ? 50 : opt.mode == M_IDLE ? 1000
                  : opt.mode == M_POST ? 4 : 8;
    if (opt.mode != M_IDLE && opt.concurrency != 64 && !conns_set)
        opt.conns = opt.concurrency;
    if (opt.threads < 1 || opt.threads > LG_MAX_THREADS || opt.conns < opt.threads ||
        opt.concurrency < 1 || opt.duration <= 0) {
        fprintf(stderr, "mtls-loadgen: need 1 <= threads <= min(conns, %d), concurrency >= 1, "
                "duration > 0\n", LG_MAX_THREADS);
        return -1;
    }
    if (opt.warmup < 0 && (opt.mode == M_IDLE || opt.requests > 0))
        opt.warmup = 0;                     /* every request counts */
    else if (opt.warmup < 0)
        opt.warmup = opt.duration / 10 < 0.5 ? opt.duration / 10 : 0.5;
    return 0;
}

/*
 * Builds the client context: the certificate chain and key, TLS versions,
 * and server verification when --ca was given. 0 / -1 (message printed).
 */
static int make_ctx(void)
{
    int rc = -1;
    struct in6_addr ip;
    char err[512];

    /* The gateway's context (tls_libctx.h): the server's chain parses in
     * less than half the time: less CPU per handshake on the load core,
     * a higher ceiling on what it can show, alike for every front end. */
    g_ctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_client_method());
    if (g_ctx == NULL)
        goto out;
    if (SSL_CTX_set_min_proto_version(g_ctx, opt.tls_version == 13 ? TLS1_3_VERSION
                                                                   : TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(g_ctx, opt.tls_version == 12 ? TLS1_2_VERSION
                                                                   : TLS1_3_VERSION) != 1)
        goto out;
    /* Read in the default context: tls_libctx() decodes certificates only.
     * Key first: a certificate loaded after it that does not match drops
     * it, and the check below says so. */
    if (tls_pem_use_key(g_ctx, opt.key, err, sizeof(err)) != 0) {
        fprintf(stderr, "mtls-loadgen: %s\n", err);
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(g_ctx, opt.cert) != 1) {
        fprintf(stderr, "mtls-loadgen: %s: cannot load the certificate chain\n", opt.cert);
        goto out;
    }
    if (SSL_CTX_check_private_key(g_ctx) != 1) {
        fprintf(stderr, "mtls-loadgen: %s: the key does not match %s\n", opt.key, opt.cert);
        goto out;
    }
    if (opt.ca) {
        X509_VERIFY_PARAM *param = SSL_CTX_get0_param(g_ctx);

        if (SSL_CTX_load_verify_locations(g_ctx, opt.ca, NULL) != 1) {
            fprintf(stderr, "mtls-loadgen: %s: cannot load the CA file\n", opt.ca);
            goto out;
        }
        SSL_CTX_set_verify(g_ctx, SSL_VERIFY_PEER, NULL);
        if (inet_pton(AF_INET, opt.host, &ip) == 1 || inet_pton(AF_INET6, opt.host, &ip) == 1) {
            if (X509_VERIFY_PARAM_set1_ip_asc(param, opt.host) != 1)
                goto out;
        } else if (X509_VERIFY_PARAM_set1_host(param, opt.host, 0) != 1) {
            goto out;
        }
    } else {
        SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL);
    }
    SSL_CTX_set_mode(g_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (opt.mode == M_IDLE)
        SSL_CTX_set_mode(g_ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Whole records (and more) per read(): fewer syscalls on the load core. */
    SSL_CTX_set_read_ahead(g_ctx, 1);
    /* Sessions are kept by hand (resume mode), never in a cache. */
    SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
    rc = 0;
out:
    if (rc != 0) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(g_ctx);
        g_ctx = NULL;
    }
    return rc;
}

/*
 * Resolves --host/--port into g_addr. 0 / -1 (message printed).
 */
static int resolve(void)
{
    struct addrinfo hints, *res = NULL;
    int e;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    e = getaddrinfo(opt.host, opt.port, &hints, &res);
    if (e != 0 || res == NULL) {
        fprintf(stderr, "mtls-loadgen: %s:%s: %s\n", opt.host, opt.port, gai_strerror(e));
        return -1;
    }
    memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
    g_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/*
 * Raises RLIMIT_NOFILE to hold n descriptors (the hard limit too when we
 * may). 0 / -1.
 */
static int raise_nofile(rlim_t n)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur >= n)
        return 0;
    if (rl.rlim_max < n) {
        struct rlimit want = { n, n };

        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            return 0;
        fprintf(stderr, "mtls-loadgen: cannot raise the open file limit to %lu (hard limit %lu)\n",
                (unsigned long)n, (unsigned long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = n;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * Main thread while the workers run: waits for the duration (idle mode:
 * for all connections, then for a signal or --hold), stopping early on
 * SIGINT/SIGTERM or when the workers are done; then tells the workers to
 * stop. *setup_s gets idle mode's time to bring all connections up.
 */
static void supervise(const sigset_t *sigs, uint64_t t0, double *setup_s)
{
    uint64_t end = t0 + (uint64_t)(opt.duration * 1e9), t_up = 0;
    struct timespec tick = { 0, 20 * 1000 * 1000 };

    *setup_s = 0;
    for (;;) {
        int sig = sigtimedwait(sigs, NULL, &tick);
        uint64_t t = now_ns();

        if (sig > 0 || atomic_load(&g_threads_done) == opt.threads || atomic_load(&g_stop))
            break;
        if (opt.mode == M_IDLE) {
            if (t_up == 0 && atomic_load(&g_up) >= opt.conns) {
                t_up = t;
                *setup_s = (double)(t - t0) / 1e9;
                fprintf(stderr, "mtls-loadgen: all %d connections up in %.2f s; holding\n",
                        opt.conns, *setup_s);
                fflush(stderr);
            }
            if (t_up && t >= t_up + (uint64_t)(opt.hold * 1e9))
                break;
            if (t_up == 0 && t >= end) {
                fprintf(stderr, "mtls-loadgen: not all connections up after %.0f s\n",
                        opt.duration);
                break;
            }
        } else if (t >= end) {
            break;
        }
    }
    atomic_store(&g_stop, 1);
}

int main(int argc, char **argv)
{
    struct lg_worker *workers = NULL;
    struct lg_hist *all = NULL;
    sigset_t sigs;
    uint64_t ok = 0, errors = 0, total_ok = 0, handshakes = 0, offered = 0, resumed = 0,
             body = 0, t0;
    double elapsed, setup_s = 0, rps, attempts, cpu_s = 0;
    struct rusage ru;
    int rc = 2, i, j, started = 0, up_at_end = 0;

    if (parse_args(argc, argv) != 0)
        return 2;
    if (raise_nofile((rlim_t)opt.conns + 256) != 0 || resolve() != 0 || make_ctx() != 0)
        goto out;
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);    /* inherited by the workers */

    workers = calloc((size_t)opt.threads, sizeof(*workers));
    all = calloc(1, sizeof(*all));
    if (workers == NULL || all == NULL)
        goto out;
    for (i = 0; i < opt.threads; i++) {
        struct lg_worker *w = &workers[i];
        int n;

        w->id = i;
        w->epfd = -1;
        w->nslots = opt.conns / opt.threads + (i < opt.conns % opt.threads);
        w->slots = calloc((size_t)w->nslots, sizeof(*w->slots));
        if (w->slots == NULL)
            goto out;
        for (j = 0; j < w->nslots; j++) {
            w->slots[j].w = w;
            w->slots[j].fd = -1;
        }
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0) {
            perror("mtls-loadgen: epoll_create1");
            goto out;
        }
        if (opt.mode == M_POST)
            n = snprintf(w->req, sizeof(w->req),
                         "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mtls-loadgen\r\n"
                         "Content-Type: application/octet-stream\r\n"
                         "Content-Length: %llu\r\n\r\n",
                         opt.path, opt.host, (unsigned long long)opt.post_size);
        else
            n = snprintf(w->req, sizeof(w->req),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mtls-loadgen\r\n\r\n",
                         opt.path, opt.host);
        if (n < 0 || (size_t)n >= sizeof(w->req)) {
            fprintf(stderr, "mtls-loadgen: --path too long\n");
            goto out;
        }
        w->req_len = (size_t)n;
    }
    t0 = now_ns();
    g_measure_from = t0 + (uint64_t)(opt.warmup * 1e9);
    for (i = 0; i < opt.threads; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            fprintf(stderr, "mtls-loadgen: cannot start thread %d\n", i);
            atomic_store(&g_stop, 1);
            break;
        }
        started++;
    }
    if (started == opt.threads)
        supervise(&sigs, t0, &setup_s);
    up_at_end = atomic_load(&g_up);
    for (i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    if (started != opt.threads)
        goto out;
    elapsed = 0;
    for (i = 0; i < opt.threads; i++)
        if (workers[i].t_end > g_measure_from &&
            (double)(workers[i].t_end - g_measure_from) / 1e9 > elapsed)
            elapsed = (double)(workers[i].t_end - g_measure_from) / 1e9;
    if (opt.mode == M_IDLE)
        elapsed = setup_s;

    for (i = 0; i < opt.threads; i++) {
        struct lg_worker *w = &workers[i];

        ok += w->ok;
        errors += w->errors;
        total_ok += w->total_ok;
        handshakes += w->handshakes;
        offered += w->offered;
        resumed += w->resumed;
        body += w->body_bytes;
        for (j = 0; j < (int)H_BUCKETS; j++)
            all->count[j] += w->hist.count[j];
        all->total += w->hist.total;
    }
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (opt.mode == M_IDLE)
        rps = setup_s > 0 ? (double)handshakes / setup_s : 0;
    else
        rps = elapsed > 0 ? (double)ok / elapsed : 0;
    printf("mode=%s rps=%.1f p50_us=%.0f p99_us=%.0f errors=%llu resumed=%.3f "
           "requests=%llu total_requests=%llu handshakes=%llu conns=%d threads=%d "
           "duration_s=%.3f mbps=%.2f cpu_s=%.3f",
           mode_names[opt.mode], rps, h_quantile_us(all, 0.50), h_quantile_us(all, 0.99),
           (unsigned long long)errors, offered ? (double)resumed / (double)offered : 0.0,
           (unsigned long long)ok, (unsigned long long)total_ok,
           (unsigned long long)handshakes, opt.conns, opt.threads, elapsed,
           elapsed > 0 && opt.mode == M_POST ? (double)body / elapsed / 1e6 : 0.0, cpu_s);
    if (opt.mode == M_IDLE)
        printf(" up=%d setup_s=%.2f", up_at_end, setup_s);
    printf("\n");
    fflush(stdout);
    attempts = (double)(total_ok + errors);
    if (opt.mode == M_IDLE && up_at_end < opt.conns) {
        fprintf(stderr, "mtls-loadgen: only %d of %d connections came up\n", up_at_end, opt.conns);
        rc = 1;
    } else if (total_ok == 0 || (double)errors > attempts * 0.01) {
        fprintf(stderr, "mtls-loadgen: %llu errors in %.0f attempts\n",
                (unsigned long long)errors, attempts);
        rc = 1;
    } else {
        rc = 0;
    }
out:
    if (workers) {
        for (i = 0; i < opt.threads; i++) {
            struct lg_worker *w = &workers[i];

            for (j = 0; w->slots && j < w->nslots; j++) {
                slot_close(&w->slots[j], 0);
                SSL_SESSION_free(w->slots[j].sess);
            }
            free(w->slots);
            if (w->epfd >= 0)
                close(w->epfd);
        }
    }
    free(workers);
    free(all);
    SSL_CTX_free(g_ctx);
    tls_libctx_free();
    return rc;
}
