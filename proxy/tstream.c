/*
 * tstream.c - the client side's TLS stream (see tstream.h).
 *
 * Events: rev (EV_READ, persistent) is added while the stream wants the
 * socket readable: reading on and not suspended at the read high mark, a
 * handshake step waiting for bytes, or a write that needs a read first
 * (OpenSSL's SSL_ERROR_WANT_READ from SSL_write_ex). wev (EV_WRITE,
 * persistent) is added only while output waits for a full socket, a
 * handshake step waits to write, or a read needs a write first. A write
 * starts without the socket's word: adding output activates wev, so the
 * write runs later in the same loop iteration (one SSL_write_ex per record,
 * no epoll round), and only a write that blocks adds the event. Two timers:
 * tev, the write timeout (lazy, timer.h), and lev, a zero timer that lets
 * a read which spent its budget go on behind the other connections' events.
 */
#include "tstream.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "runtime.h"
#include "tls_libctx.h"
#include "timer.h"

#define TS_READ_MIN 4096             /* reserved when OpenSSL holds nothing yet */
#define TS_RECORD (16 * 1024)        /* a TLS record's plaintext at most */
#define TS_READ_BUDGET (64 * 1024)   /* per callback; the rest in a later one */
#define TS_WRITE_BUDGET (256 * 1024) /* per callback; the rest when writable */
#define TS_NERR 3

struct gw_ts {
    struct event *rev, *wev, *tev;
    struct event *lev;                /* zero timer: reading goes on after a budget */
    struct evbuffer *in, *out;
    struct evbuffer_cb_entry *in_cb;  /* only while suspended */
    SSL *ssl;
    gw_ts_data_cb readcb, writecb;
    gw_ts_event_cb eventcb;
    void *arg;
    size_t read_high, write_low;
    uint64_t wdeadline_us;            /* write timeout's end while output waits; 0: none */
    uint64_t tev_at;                  /* tev's lazy arming (timer.h) */
    unsigned wtimeout_ms;
    short enabled;
    unsigned accepting : 1;           /* the handshake runs */
    unsigned hs_wants_write : 1;      /* its last step waits to write (else to read) */
    unsigned rev_on : 1, wev_on : 1;  /* added to the base */
    unsigned suspended : 1;           /* reading stopped at read_high */
    unsigned need_socket : 1;         /* OpenSSL took all whole records: the rest
                                         comes with the socket's readiness */
    unsigned later : 1;               /* lev is set */
    unsigned write_blocked : 1;       /* the socket is full: wait for wev */
    unsigned write_queued : 1;        /* wev activated, not run yet */
    unsigned read_wants_write : 1;    /* SSL_read_ex needs a write first */
    unsigned write_wants_read : 1;    /* SSL_write_ex needs a read first */
    unsigned rd_closed : 1;           /* ended (EOF, error): reads no more */
    unsigned wr_closed : 1;           /* failed writing, or shut: writes no more */
    unsigned shut_wanted : 1;         /* gw_ts_shutdown was called */
    unsigned shut_done : 1;           /* close_notify and the FIN are out */
    unsigned n_err;
    unsigned long err[TS_NERR];
};

static void ts_read_ev(evutil_socket_t fd, short what, void *arg);
static void ts_write_ev(evutil_socket_t fd, short what, void *arg);
static void ts_timeout_ev(evutil_socket_t fd, short what, void *arg);
static void ts_later_ev(evutil_socket_t fd, short what, void *arg);
static void out_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg);

/* Adds or deletes rev and wev as the state asks; no call when unchanged. */
static void sync_events(struct gw_ts *t)
{
    int r, w;

    if (t->accepting) { /* off when both are disabled: the connection closes */
        r = !t->rd_closed && !t->hs_wants_write && t->enabled;
        w = !t->rd_closed && t->hs_wants_write && t->enabled;
    } else {
        r = (!t->rd_closed && !t->read_wants_write && (t->enabled & EV_READ) && !t->suspended) ||
            t->write_wants_read;
        w = (!t->wr_closed && t->write_blocked && !t->write_wants_read &&
             (t->enabled & EV_WRITE)) ||
            t->read_wants_write;
    }
    if (r != t->rev_on) {
        if (r ? event_add(t->rev, NULL) == 0 : event_del(t->rev) == 0)
            t->rev_on = (unsigned)r;
    }
    if (w != t->wev_on) {
        if (w ? event_add(t->wev, NULL) == 0 : event_del(t->wev) == 0)
            t->wev_on = (unsigned)w;
    }
}

/* Output waits for the socket: the write timeout runs from now (refresh:
 * from now again, after progress). */
static void arm_wtimeout(struct gw_ts *t, int refresh)
{
    uint64_t now;

    if (!t->wtimeout_ms || (t->wdeadline_us && !refresh))
        return;
    now = gw_mono_us();
    t->wdeadline_us = now + (uint64_t)t->wtimeout_ms * 1000;
    gw_timer_set(t->tev, &t->tev_at, t->wdeadline_us, now);
}

/* Runs the write in this loop iteration (when there is one to run). */
static void queue_write(struct gw_ts *t)
{
    if (t->write_queued || t->write_blocked || t->accepting || t->wr_closed ||
        !(t->enabled & EV_WRITE) || evbuffer_get_length(t->out) == 0)
        return;
    t->write_queued = 1;
    event_active(t->wev, EV_WRITE, 1);
}

struct gw_ts *gw_ts_new(struct event_base *base, evutil_socket_t fd, SSL *ssl, int accepting,
                        unsigned wtimeout_ms, gw_ts_data_cb readcb, gw_ts_data_cb writecb,
                        gw_ts_event_cb eventcb, void *arg)
{
    struct gw_ts *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->ssl = ssl;
    t->readcb = readcb;
    t->writecb = writecb;
    t->eventcb = eventcb;
    t->arg = arg;
    t->wtimeout_ms = wtimeout_ms;
    t->accepting = accepting ? 1 : 0;
    t->enabled = EV_READ | EV_WRITE;
    t->rev = event_new(base, fd, EV_READ | EV_PERSIST, ts_read_ev, t);
    t->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, ts_write_ev, t);
    t->tev = evtimer_new(base, ts_timeout_ev, t);
    t->lev = evtimer_new(base, ts_later_ev, t);
    t->in = evbuffer_new();
    t->out = evbuffer_new();
    /* SSL_set_fd's socket BIO leaves the socket open when freed */
    if (!t->rev || !t->wev || !t->tev || !t->lev || !t->in || !t->out ||
        !evbuffer_add_cb(t->out, out_cb, t) ||
        (!SSL_get_rbio(ssl) && SSL_set_fd(ssl, (int)fd) != 1)) {
        gw_ts_free(t);
        return NULL;
    }
    /* A blocked write is retried with the same bytes, which may have moved
     * inside the output meanwhile (evbuffer realigns a chain). */
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (accepting)
        SSL_set_accept_state(ssl);
    sync_events(t);
    if (!accepting)
        event_active(t->rev, EV_READ, 1); /* what woke it is there already */
    return t;
}

void gw_ts_free(struct gw_ts *t)
{
    if (!t)
        return;
    if (t->rev)
        event_free(t->rev);
    if (t->wev)
        event_free(t->wev);
    if (t->tev)
        event_free(t->tev);
    if (t->lev)
        event_free(t->lev);
    if (t->in)
        evbuffer_free(t->in);
    if (t->out)
        evbuffer_free(t->out);
    free(t);
}

struct evbuffer *gw_ts_input(struct gw_ts *t)
{
    return t->in;
}

struct evbuffer *gw_ts_output(struct gw_ts *t)
{
    return t->out;
}

short gw_ts_enabled(const struct gw_ts *t)
{
    return t->enabled;
}

void gw_ts_enable(struct gw_ts *t, short what)
{
    t->enabled |= what & (EV_READ | EV_WRITE);
    sync_events(t);
    if ((what & EV_WRITE) && t->write_blocked && !t->wr_closed)
        arm_wtimeout(t, 0);
    if (what & EV_WRITE)
        queue_write(t);
    if (what & EV_READ)
        gw_ts_kick_read(t);
}

void gw_ts_disable(struct gw_ts *t, short what)
{
    t->enabled &= (short)~(what & (EV_READ | EV_WRITE));
    if (what & EV_WRITE)
        t->wdeadline_us = 0; /* no write waits: no write timeout */
    sync_events(t);
}

void gw_ts_set_write_low(struct gw_ts *t, size_t low)
{
    t->write_low = low;
}

/*
 * Only whole records count: a part of one (SSL_has_pending says yes to it
 * too) waits for the socket, need_socket. After a spent budget the rest
 * waits for lev, behind the other connections' events.
 */
void gw_ts_kick_read(struct gw_ts *t)
{
    if (!t->accepting && !t->rd_closed && !t->suspended && !t->need_socket && !t->later &&
        (t->enabled & EV_READ) && SSL_has_pending(t->ssl))
        event_active(t->rev, EV_READ, 1);
}

/* Reading may go on after being stopped at the read high mark. */
static void unsuspend(struct gw_ts *t)
{
    t->suspended = 0;
    sync_events(t);
    gw_ts_kick_read(t);
}

/* While suspended: the input shrank below the mark. The entry itself is
 * removed by the read callback, outside the buffer's callback loop. */
static void in_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    struct gw_ts *t = arg;

    if (info->n_deleted && t->suspended && evbuffer_get_length(b) < t->read_high)
        unsuspend(t);
}

void gw_ts_set_read_high(struct gw_ts *t, size_t high)
{
    t->read_high = high;
    if (t->suspended && (high == 0 || evbuffer_get_length(t->in) < high))
        unsuspend(t);
}

static void out_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    if (info->n_added)
        queue_write(arg);
}

unsigned long gw_ts_ssl_error(struct gw_ts *t)
{
    return t->n_err ? t->err[--t->n_err] : 0;
}

static void save_error(struct gw_ts *t, unsigned long e)
{
    if (t->n_err < TS_NERR)
        t->err[t->n_err++] = e;
}

/*
 * The operation failed with SSL_get_error's err (not a WANT_*): what it
 * ends as. A close_notify, a FIN or a reset is an EOF (the client's TLS may
 * end without close_notify: HTTP's framing says whether what came is
 * whole); OpenSSL's errors are saved, and the thread's queue left empty.
 */
static short end_of(struct gw_ts *t, int err)
{
    short what = GW_TS_ERROR;
    unsigned long e;

    if (err == SSL_ERROR_ZERO_RETURN)
        what = GW_TS_EOF;
    else {
        if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
            what = GW_TS_EOF;
        save_error(t, (unsigned long)err);
    }
    while ((e = ERR_get_error()) != 0)
        save_error(t, e);
    return what;
}

/* SSL_get_error reads the thread's error queue first: a stale entry (from
 * any earlier call on this thread) would turn a WANT_READ into an error. */
static void clear_stale_errors(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

/*
 * close_notify, then the FIN: 1 both are out, 0 the alert waits for the
 * socket (OpenSSL holds it: SSL_shutdown sends it again when called
 * again), -1 failed. The FIN goes only after the whole alert: sent
 * earlier, it would cut the alert, and a client that insists on
 * close_notify would report a truncated answer. (OpenSSL 3.0 answers a
 * client's KeyUpdate with its next write, never from a read: with the
 * output written, no handshake message of its own can be half-sent here.)
 */
static int try_shutdown(struct gw_ts *t)
{
    int r;

    if (t->shut_done)
        return 1;
    if (t->wr_closed)
        return -1;
    clear_stale_errors();
    r = SSL_shutdown(t->ssl);
    if (r < 0 && SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_WRITE) {
        t->write_blocked = 1;
        arm_wtimeout(t, 0);
        sync_events(t);
        return 0;
    }
    ERR_clear_error(); /* the queue is per thread: leave it clean */
    if (r >= 0) {
        (void)shutdown(event_get_fd(t->wev), SHUT_WR);
        t->shut_done = 1;
    }
    t->wr_closed = 1;
    t->write_blocked = 0;
    t->wdeadline_us = 0;
    sync_events(t);
    return r >= 0 ? 1 : -1;
}

int gw_ts_shutdown(struct gw_ts *t)
{
    if (evbuffer_get_length(t->out) > 0 && !t->shut_done)
        return -1; /* the output goes first: see tstream.h */
    t->shut_wanted = 1;
    return try_shutdown(t);
}

static void handshake(struct gw_ts *t)
{
    int r, err;
    short what;

    clear_stale_errors();
    r = SSL_do_handshake(t->ssl);
    tls_libctx_ticket_end(); /* when a fatal error skipped the ticket callback */
    if (r == 1) {
        t->accepting = 0;
        t->hs_wants_write = 0;
        sync_events(t);
        queue_write(t);
        t->eventcb(t, GW_TS_CONNECTED, t->arg);
        return;
    }
    err = SSL_get_error(t->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        t->hs_wants_write = err == SSL_ERROR_WANT_WRITE;
        sync_events(t);
        return;
    }
    what = end_of(t, err);
    t->rd_closed = t->wr_closed = 1;
    sync_events(t);
    t->eventcb(t, (short)(what | GW_TS_READING), t->arg);
}

static void do_read(struct gw_ts *t)
{
    size_t budget = TS_READ_BUDGET;
    short ended = 0;
    int progress = 0;

    if (t->in_cb && !t->suspended) {
        evbuffer_remove_cb_entry(t->in, t->in_cb);
        t->in_cb = NULL;
    }
    if (!(t->enabled & EV_READ) || t->rd_closed || t->suspended)
        return;
    clear_stale_errors();
    while (budget > 0) {
        struct evbuffer_iovec v;
        size_t len = evbuffer_get_length(t->in), want = SSL_pending(t->ssl), got = 0;
        int err;

        if (want < TS_READ_MIN)
            want = TS_READ_MIN;
        if (t->read_high) {
            if (len >= t->read_high) {
                if (!t->in_cb && !(t->in_cb = evbuffer_add_cb(t->in, in_cb, t))) {
                    save_error(t, (unsigned long)SSL_ERROR_SYSCALL);
                    ended = GW_TS_ERROR; /* out of memory: nothing would resume it */
                    break;
                }
                t->suspended = 1;
                sync_events(t);
                break;
            }
            if (want > t->read_high - len)
                want = t->read_high - len;
        }
        if (evbuffer_reserve_space(t->in, (ev_ssize_t)want, &v, 1) < 1) {
            save_error(t, (unsigned long)SSL_ERROR_SYSCALL);
            ended = GW_TS_ERROR; /* out of memory */
            break;
        }
        if (v.iov_len > want && t->read_high)
            v.iov_len = want;
        if (SSL_read_ex(t->ssl, v.iov_base, v.iov_len, &got) == 1) {
            v.iov_len = got;
            evbuffer_commit_space(t->in, &v, 1);
            progress = 1;
            t->need_socket = 0;
            budget = got < budget ? budget - got : 0;
            if (!SSL_has_pending(t->ssl))
                break; /* the socket is read when it says it has more */
            continue;
        }
        err = SSL_get_error(t->ssl, 0);
        if (err == SSL_ERROR_WANT_READ) {
            t->need_socket = 1;
            break;
        }
        if (err == SSL_ERROR_WANT_WRITE) {
            /* Its answer to a KeyUpdate waits for the socket; what this
             * read took from it (whole records, read ahead) may be held
             * already, so the read is not waiting for the socket any more:
             * gw_ts_kick_read must not skip it once writing resumes. */
            t->need_socket = 0;
            t->read_wants_write = 1;
            sync_events(t);
            break;
        }
        ended = end_of(t, err);
        break;
    }
    if (ended) {
        t->rd_closed = 1;
        sync_events(t);
    } else if (budget == 0 && SSL_has_pending(t->ssl) && !t->later) {
        static const struct timeval zero = {0, 0};

        if (event_add(t->lev, &zero) == 0) /* the rest after the others' turn */
            t->later = 1;
    }
    if (progress && t->readcb)
        t->readcb(t, t->arg);
    if (ended)
        t->eventcb(t, (short)(ended | GW_TS_READING), t->arg);
}

static void do_write(struct gw_ts *t)
{
    size_t budget = TS_WRITE_BUDGET, len;
    short ended = 0;
    int progress = 0, blocked = 0;
    BIO *wbio = SSL_get_wbio(t->ssl);
    uint64_t sent0 = wbio ? BIO_number_written(wbio) : 0;

    if (!(t->enabled & EV_WRITE) || t->wr_closed) {
        sync_events(t);
        return;
    }
    clear_stale_errors();
    while (budget > 0 && (len = evbuffer_get_length(t->out)) > 0) {
        struct evbuffer_iovec vs[4], v = {0};
        size_t n, done = 0;
        int i, nv, err;

        /* the first bytes (evbuffer_peek does not skip an empty chain;
         * behind more than a few, they are made contiguous) */
        nv = evbuffer_peek(t->out, -1, NULL, vs, 4);
        for (i = 0; i < nv && i < 4 && v.iov_len == 0; i++)
            v = vs[i];
        if (v.iov_len == 0) {
            v.iov_len = len < TS_RECORD ? len : TS_RECORD;
            if (!(v.iov_base = evbuffer_pullup(t->out, (ev_ssize_t)v.iov_len))) {
                save_error(t, (unsigned long)SSL_ERROR_SYSCALL);
                ended = GW_TS_ERROR; /* out of memory */
                break;
            }
        }
        n = v.iov_len < TS_RECORD ? v.iov_len : TS_RECORD;
        if (SSL_write_ex(t->ssl, v.iov_base, n, &done) == 1) {
            evbuffer_drain(t->out, done);
            progress = 1;
            budget = done < budget ? budget - done : 0;
            continue;
        }
        err = SSL_get_error(t->ssl, 0);
        if (err == SSL_ERROR_WANT_WRITE) {
            blocked = 1;
            break;
        }
        if (err == SSL_ERROR_WANT_READ) {
            t->write_wants_read = 1;
            blocked = 1;
            break;
        }
        ended = end_of(t, err);
        break;
    }
    if (ended) {
        t->rd_closed = t->wr_closed = 1;
        t->write_blocked = 0;
        t->wdeadline_us = 0;
    } else if (blocked || evbuffer_get_length(t->out) > 0) {
        /* wait for the socket: a full one, or the budget was spent */
        t->write_blocked = 1;
        /* progress: the socket took bytes, of a record or a whole one */
        arm_wtimeout(t, progress || (wbio && BIO_number_written(wbio) != sent0));
    } else {
        t->write_blocked = 0;
        t->wdeadline_us = 0;
    }
    sync_events(t);
    if (progress && t->writecb && evbuffer_get_length(t->out) <= t->write_low)
        t->writecb(t, t->arg);
    if (ended)
        t->eventcb(t, (short)(ended | GW_TS_WRITING), t->arg);
}

static void ts_read_ev(evutil_socket_t fd, short what, void *arg)
{
    struct gw_ts *t = arg;

    (void)fd;
    (void)what;
    if (t->accepting) {
        if (t->enabled)
            handshake(t);
        return;
    }
    if (t->write_wants_read) {
        /* the write's read may be done: let the write go on */
        t->write_wants_read = 0;
        t->write_blocked = 0;
        sync_events(t);
        queue_write(t);
    }
    do_read(t);
}

static void ts_write_ev(evutil_socket_t fd, short what, void *arg)
{
    struct gw_ts *t = arg;

    (void)fd;
    (void)what;
    t->write_queued = 0;
    if (t->accepting) {
        if (t->enabled)
            handshake(t);
        return;
    }
    if (t->read_wants_write) {
        t->read_wants_write = 0;
        sync_events(t);
        event_active(t->rev, EV_READ, 1);
    }
    t->write_blocked = 0;
    if (t->shut_wanted) { /* the close_notify waited for the socket */
        int r;

        if (t->shut_done || t->wr_closed)
            return; /* out already, or failed and reported */
        r = try_shutdown(t);
        if (r == 1 && t->writecb)
            t->writecb(t, t->arg);
        else if (r < 0)
            t->eventcb(t, GW_TS_EOF | GW_TS_WRITING, t->arg);
        return;
    }
    do_write(t);
}

static void ts_timeout_ev(evutil_socket_t fd, short what, void *arg)
{
    struct gw_ts *t = arg;

    (void)fd;
    (void)what;
    if (!t->wdeadline_us) {
        t->tev_at = 0;
        return;
    }
    if (!gw_timer_due(t->tev, &t->tev_at, t->wdeadline_us))
        return;
    t->wdeadline_us = 0;
    t->enabled &= (short)~EV_WRITE; /* as libevent: a write timeout stops writing */
    sync_events(t);
    t->eventcb(t, GW_TS_TIMEOUT | GW_TS_WRITING, t->arg);
}

static void ts_later_ev(evutil_socket_t fd, short what, void *arg)
{
    struct gw_ts *t = arg;

    (void)fd;
    (void)what;
    t->later = 0;
    do_read(t);
}
