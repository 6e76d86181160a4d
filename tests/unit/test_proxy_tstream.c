/*
 * test_proxy_tstream.c - the client side's TLS stream (proxy/tstream.h)
 * against a real OpenSSL client over a socketpair, both driven from one
 * thread: the stream on a libevent base, the client with non-blocking
 * SSL calls between loop turns. The socket buffers are set small, so that
 * the stream's output waits for the client as long as the test wants.
 *
 * What it shows: the handshake reports CONNECTED; bytes both ways, the
 * output going out without any flush call; the read bound stops reading
 * exactly at the bound and reading resumes when the input shrinks; the
 * write timeout cuts a client that takes nothing, and does not cut one that
 * takes a little at a time (parts of records) for longer than the timeout;
 * close_notify and a
 * bare FIN are EOF; gw_ts_shutdown sends close_notify then a FIN, and when
 * the socket is full it waits for room rather than cut the alert (also
 * after a client's KeyUpdate); a client that speaks plain HTTP fails the handshake
 * with an OpenSSL error to report; after a fatal error in a ticket's
 * decryption, which skips OpenSSL's ticket callback, the thread's default
 * library context is its own again (tls_libctx.h's ticket window).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "tls_libctx.h"
#include "tstream.h"
#include "unit_pki.h"

struct pair {
    struct event_base *base;
    SSL_CTX *sctx, *cctx;
    SSL *s, *c;
    int fd[2];                    /* [0] the stream's, [1] the client's */
    struct gw_ts *ts;
    int connected, reads, writes; /* callback counts */
    short ended;                  /* the event that ended the stream, 0: none */
    uint64_t ended_ms;
};

static uint64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void read_cb(struct gw_ts *t, void *arg)
{
    struct pair *p = arg;

    (void)t;
    p->reads++;
}

static void write_cb(struct gw_ts *t, void *arg)
{
    struct pair *p = arg;

    (void)t;
    p->writes++;
}

static void event_cb(struct gw_ts *t, short what, void *arg)
{
    struct pair *p = arg;

    (void)t;
    if (what & GW_TS_CONNECTED) {
        p->connected = 1;
        return;
    }
    if (!p->ended) {
        p->ended = what;
        p->ended_ms = now_ms();
    }
}

static int pki_setup(void **state)
{
    (void)state;
    return unit_pki_make("test-tstream");
}

/* The stream (accepting) and a client on a socketpair; buffers small. */
static struct pair *pair_new(unsigned wtimeout_ms)
{
    struct pair *p = calloc(1, sizeof(*p));
    int small = 4096;

    assert_non_null(p);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fcntl(p->fd[i], F_SETFL, O_NONBLOCK), 0);
        setsockopt(p->fd[i], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        setsockopt(p->fd[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
    p->base = event_base_new();
    p->sctx = SSL_CTX_new(TLS_server_method());
    p->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(p->base);
    assert_non_null(p->sctx);
    assert_non_null(p->cctx);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(p->sctx, P("gateway.bundle.crt")), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(p->sctx, P("gateway.key"), SSL_FILETYPE_PEM), 1);
    SSL_CTX_set_mode(p->sctx, SSL_MODE_RELEASE_BUFFERS);
    p->s = SSL_new(p->sctx);
    p->c = SSL_new(p->cctx);
    assert_non_null(p->s);
    assert_non_null(p->c);
    SSL_set_read_ahead(p->s, 1);
    SSL_set_options(p->s, SSL_OP_IGNORE_UNEXPECTED_EOF); /* as gw_conn_accept */
    assert_int_equal(SSL_set_fd(p->c, p->fd[1]), 1);
    SSL_set_connect_state(p->c);
    p->ts = gw_ts_new(p->base, p->fd[0], p->s, 1, wtimeout_ms, read_cb, write_cb, event_cb, p);
    assert_non_null(p->ts);
    return p;
}

static void pair_free(struct pair *p)
{
    gw_ts_free(p->ts);
    SSL_free(p->s);
    SSL_free(p->c);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    event_base_free(p->base);
    close(p->fd[0]);
    close(p->fd[1]);
    free(p);
    ERR_clear_error();
}

/* One turn of the stream's loop, without waiting. */
static void turn(struct pair *p)
{
    event_base_loop(p->base, EVLOOP_NONBLOCK);
}

/* Runs both sides until cond(p) or ms pass; returns cond's last value. */
static int run_until(struct pair *p, int (*cond)(struct pair *), unsigned ms)
{
    uint64_t end = now_ms() + ms;

    while (!cond(p) && now_ms() < end) {
        if (!SSL_is_init_finished(p->c)) {
            (void)SSL_do_handshake(p->c);
            ERR_clear_error();
        }
        turn(p);
        usleep(500);
    }
    return cond(p);
}

static int is_connected(struct pair *p)
{
    return p->connected && SSL_is_init_finished(p->c);
}

static int has_ended(struct pair *p)
{
    return p->ended != 0;
}

static void connect_pair(struct pair *p)
{
    assert_true(run_until(p, is_connected, 5000));
}

/* Reads from the client side what is there now; returns the byte count. */
static size_t client_read(struct pair *p, char *buf, size_t cap)
{
    size_t got = 0, n;

    while (got < cap && SSL_read_ex(p->c, buf + got, cap - got, &n) == 1)
        got += n;
    ERR_clear_error();
    return got;
}

static void test_bytes_both_ways(void **state)
{
    struct pair *p = pair_new(0);
    char buf[64];
    size_t n, got = 0;
    uint64_t end;

    (void)state;
    connect_pair(p);
    assert_int_equal(SSL_write_ex(p->c, "hello", 5, &n), 1);
    end = now_ms() + 3000;
    while (evbuffer_get_length(gw_ts_input(p->ts)) < 5 && now_ms() < end) {
        turn(p);
        usleep(500);
    }
    assert_int_equal(evbuffer_get_length(gw_ts_input(p->ts)), 5);
    assert_true(p->reads >= 1);
    assert_memory_equal(evbuffer_pullup(gw_ts_input(p->ts), 5), "hello", 5);
    /* no flush call: adding output is enough */
    evbuffer_add(gw_ts_output(p->ts), "world", 5);
    end = now_ms() + 3000;
    while (got < 5 && now_ms() < end) {
        turn(p);
        got += client_read(p, buf + got, sizeof(buf) - got);
        usleep(500);
    }
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "world", 5);
    assert_true(p->writes >= 1); /* the output emptied: write cb at low 0 */
    assert_int_equal(p->ended, 0);
    pair_free(p);
}

static void test_read_bound(void **state)
{
    struct pair *p = pair_new(0);
    static char data[20000];
    struct evbuffer *in;
    size_t n, sent = 0;
    uint64_t end;

    (void)state;
    memset(data, 'x', sizeof(data));
    connect_pair(p);
    in = gw_ts_input(p->ts);
    gw_ts_set_read_high(p->ts, 1000);
    /* the client pushes 20,000 bytes; the stream takes exactly 1,000 */
    end = now_ms() + 3000;
    while (now_ms() < end) {
        if (sent < sizeof(data) && SSL_write_ex(p->c, data + sent, sizeof(data) - sent, &n) == 1)
            sent += n;
        ERR_clear_error();
        turn(p);
        usleep(500);
        if (evbuffer_get_length(in) >= 1000)
            break;
    }
    for (int i = 0; i < 50; i++) {
        turn(p);
        usleep(1000);
    }
    assert_int_equal(evbuffer_get_length(in), 1000);
    /* taking 400 lets it read up to the bound again */
    evbuffer_drain(in, 400);
    for (int i = 0; i < 50; i++) {
        turn(p);
        usleep(1000);
    }
    assert_int_equal(evbuffer_get_length(in), 1000);
    /* no bound: everything arrives */
    gw_ts_set_read_high(p->ts, 0);
    end = now_ms() + 3000;
    while (evbuffer_get_length(in) < sizeof(data) - 400 && now_ms() < end) {
        if (sent < sizeof(data) && SSL_write_ex(p->c, data + sent, sizeof(data) - sent, &n) == 1)
            sent += n;
        ERR_clear_error();
        turn(p);
        usleep(500);
    }
    assert_int_equal(sent, sizeof(data));
    assert_int_equal(evbuffer_get_length(in), sizeof(data) - 400);
    assert_int_equal(p->ended, 0);
    pair_free(p);
}

static void add_output(struct pair *p, size_t n)
{
    static char big[65536];

    memset(big, 'y', sizeof(big));
    while (n > 0) {
        size_t k = n < sizeof(big) ? n : sizeof(big);

        evbuffer_add(gw_ts_output(p->ts), big, k);
        n -= k;
    }
}

static void test_write_timeout_cuts_a_client_taking_nothing(void **state)
{
    struct pair *p = pair_new(400);
    uint64_t t0;

    (void)state;
    connect_pair(p);
    add_output(p, 1 << 20);
    t0 = now_ms();
    assert_true(run_until(p, has_ended, 3000));
    assert_int_equal(p->ended, GW_TS_TIMEOUT | GW_TS_WRITING);
    assert_true(p->ended_ms - t0 >= 390);
    assert_true(p->ended_ms - t0 < 1500);
    assert_false(gw_ts_enabled(p->ts) & EV_WRITE); /* a timeout stops writing */
    pair_free(p);
}

static void test_write_timeout_spares_a_slow_reader(void **state)
{
    struct pair *p = pair_new(500);
    char buf[4096];
    size_t total = 0;
    ssize_t n;
    uint64_t t0, next;

    (void)state;
    connect_pair(p);
    add_output(p, 1 << 20); /* far more than it takes in 2 s */
    t0 = now_ms();
    next = t0;
    /* The socket's bytes (TLS records, not decrypted: only the pace
     * matters) taken 4 KiB every 150 ms for 2 s, four times the timeout.
     * The output waits all along; the socket (8 KiB here) takes about 8 KiB
     * every 300 ms, half a 16 KiB record: the bytes of a record count as
     * progress, not only whole records (one per 600 ms). */
    while (now_ms() - t0 < 2000 && !p->ended) {
        if (now_ms() >= next) {
            n = read(p->fd[1], buf, sizeof(buf));
            total += n > 0 ? (size_t)n : 0;
            next += 150;
        }
        turn(p);
        usleep(500);
    }
    assert_int_equal(p->ended, 0);
    assert_true(total >= 40 * 1024);
    assert_true(evbuffer_get_length(gw_ts_output(p->ts)) > 0); /* it waited all along */
    pair_free(p);
}

static void test_close_notify_is_eof(void **state)
{
    struct pair *p = pair_new(0);

    (void)state;
    connect_pair(p);
    (void)SSL_shutdown(p->c);
    assert_true(run_until(p, has_ended, 3000));
    assert_int_equal(p->ended, GW_TS_EOF | GW_TS_READING);
    pair_free(p);
}

static void test_fin_is_eof(void **state)
{
    struct pair *p = pair_new(0);
    size_t n;

    (void)state;
    connect_pair(p);
    assert_int_equal(SSL_write_ex(p->c, "GET / HTTP/1.1\r\n\r\n", 18, &n), 1);
    shutdown(p->fd[1], SHUT_WR); /* a bare FIN, no close_notify */
    assert_true(run_until(p, has_ended, 3000));
    assert_int_equal(p->ended, GW_TS_EOF | GW_TS_READING);
    /* the bytes before it were read first */
    assert_int_equal(evbuffer_get_length(gw_ts_input(p->ts)), 18);
    pair_free(p);
}

/* Reads what comes until close_notify (1), a cut without it (-1), or
 * 3 s pass (0), counting the bytes before it into *got. */
static int client_read_to_end(struct pair *p, size_t *got)
{
    char buf[4096];
    size_t n;
    uint64_t end = now_ms() + 3000;
    int err;

    while (now_ms() < end) {
        if (SSL_read_ex(p->c, buf, sizeof(buf), &n) == 1) {
            *got += n;
            continue;
        }
        err = SSL_get_error(p->c, 0);
        ERR_clear_error();
        if (err == SSL_ERROR_ZERO_RETURN)
            return 1;
        if (err != SSL_ERROR_WANT_READ)
            return -1;
        turn(p);
        usleep(500);
    }
    return 0;
}

static int output_empty(struct pair *p)
{
    return evbuffer_get_length(gw_ts_output(p->ts)) == 0;
}

/* n bytes of answer, all taken by the socket (the client reads none). */
static void answer_in_socket(struct pair *p, size_t n)
{
    add_output(p, n);
    assert_true(run_until(p, output_empty, 3000));
}

/* The stream's socket buffer set below what it holds now: the socket
 * takes no byte more until the client reads. */
static void socket_full(struct pair *p)
{
    int tiny = 1;

    setsockopt(p->fd[0], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof(tiny));
}

static void test_shutdown_sends_close_notify(void **state)
{
    struct pair *p = pair_new(0);
    size_t got = 0;
    char c;

    (void)state;
    connect_pair(p);
    answer_in_socket(p, 1000);
    assert_int_equal(gw_ts_shutdown(p->ts), 1);
    assert_int_equal(gw_ts_shutdown(p->ts), 1); /* again: done already */
    assert_int_equal(client_read_to_end(p, &got), 1);
    assert_int_equal(got, 1000);
    assert_int_equal(read(p->fd[1], &c, 1), 0); /* and the FIN */
    pair_free(p);
}

/* The answer's last record filled the socket: the close_notify waits for
 * room, and the FIN waits for it, so the client still sees a clean end. */
static void test_shutdown_waits_for_room_for_close_notify(void **state)
{
    struct pair *p = pair_new(2000);
    size_t got = 0;
    char c;

    (void)state;
    connect_pair(p);
    answer_in_socket(p, 7000); /* a record more than the smallest buffer */
    socket_full(p);
    p->writes = 0;
    assert_int_equal(gw_ts_shutdown(p->ts), 0);
    for (int i = 0; i < 20; i++)
        turn(p);
    assert_int_equal(p->writes, 0);
    /* as the client reads, the alert goes out, then the FIN */
    assert_int_equal(client_read_to_end(p, &got), 1);
    assert_int_equal(got, 7000);
    assert_int_equal(p->writes, 1); /* the write cb: both are out */
    assert_int_equal(read(p->fd[1], &c, 1), 0); /* the FIN, after the alert */
    assert_int_equal(gw_ts_shutdown(p->ts), 1);
    assert_int_equal(p->ended, 0);
    pair_free(p);
}

/* The client asked for a KeyUpdate while the socket was full. OpenSSL 3.0
 * answers it with its next write, and none comes: the close_notify still
 * waits for room and goes out, and the client reads it with the keys it
 * has. */
static void test_shutdown_waits_behind_a_key_update_answer(void **state)
{
    struct pair *p = pair_new(2000);
    size_t got = 0, n;

    (void)state;
    connect_pair(p);
    answer_in_socket(p, 7000);
    socket_full(p);
    assert_int_equal(SSL_key_update(p->c, SSL_KEY_UPDATE_REQUESTED), 1);
    assert_int_equal(SSL_write_ex(p->c, "x", 1, &n), 1);
    for (int i = 0; i < 50 && evbuffer_get_length(gw_ts_input(p->ts)) == 0; i++) {
        turn(p);
        usleep(500);
    }
    assert_int_equal(evbuffer_get_length(gw_ts_input(p->ts)), 1);
    assert_int_equal(gw_ts_shutdown(p->ts), 0);
    assert_int_equal(client_read_to_end(p, &got), 1);
    assert_int_equal(got, 7000);
    assert_int_equal(p->ended, 0);
    pair_free(p);
}

static void test_shutdown_refuses_while_output_waits(void **state)
{
    struct pair *p = pair_new(0);

    (void)state;
    connect_pair(p);
    add_output(p, 1 << 20); /* far more than the socket takes */
    turn(p);
    assert_true(evbuffer_get_length(gw_ts_output(p->ts)) > 0);
    assert_int_equal(gw_ts_shutdown(p->ts), -1);
    pair_free(p);
}

static void test_plain_http_fails_the_handshake(void **state)
{
    struct pair *p = pair_new(0);
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    uint64_t end = now_ms() + 3000;

    (void)state;
    assert_int_equal(write(p->fd[1], req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    while (!p->ended && now_ms() < end) {
        turn(p);
        usleep(500);
    }
    assert_int_equal(p->ended, GW_TS_ERROR | GW_TS_READING);
    assert_int_equal(p->connected, 0);
    assert_int_not_equal(gw_ts_ssl_error(p->ts), 0);
    pair_free(p);
}

/*
 * A ticket key callback in the gateway's manner: it issues tickets
 * (AES-128-CBC, HMAC-SHA256, one fixed key), and on decryption begins the
 * ticket window (tls_libctx_ticket_begin, as tls_server.c's does once it
 * has found the key) and then fails, which OpenSSL takes as a fatal error:
 * it skips the ticket callback that would end the window and fails the
 * handshake with internal_error. Only the stream's end call after
 * SSL_do_handshake can then put the thread's default back.
 */
static int fatal_ticket_decrypts;
static OSSL_LIB_CTX *fatal_ticket_window_ctx; /* the default inside the window */

static int fatal_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char iv[16],
                           EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    static unsigned char aes[16] = "tstream-test-aes", mac[32] = "tstream-test-hmac-key";
    OSSL_PARAM params[3];

    (void)s;
    if (!enc) {
        fatal_ticket_decrypts++;
        tls_libctx_ticket_begin();
        fatal_ticket_window_ctx = OSSL_LIB_CTX_set0_default(NULL); /* reads it */
        return -1;
    }
    memset(key_name, 'k', 16);
    if (RAND_bytes(iv, 16) != 1 ||
        !EVP_EncryptInit_ex2(cctx, EVP_aes_128_cbc(), aes, iv, NULL))
        return -1;
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, mac, sizeof(mac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) ? 1 : -1;
}

static int has_ticket(struct pair *p)
{
    char buf[8];
    SSL_SESSION *sess;
    int yes;

    turn(p);
    (void)client_read(p, buf, sizeof(buf)); /* processes NewSessionTicket */
    sess = SSL_get1_session(p->c);
    yes = sess != NULL && SSL_SESSION_has_ticket(sess);
    SSL_SESSION_free(sess);
    return yes;
}

static void test_fatal_ticket_error_restores_the_default(void **state)
{
    OSSL_LIB_CTX *before = OSSL_LIB_CTX_set0_default(NULL), *gw = tls_libctx();
    struct pair *p, *q;
    SSL_SESSION *sess;

    (void)state;
    if (gw == NULL)
        skip(); /* the fallback: no window to open */
    fatal_ticket_decrypts = 0;
    fatal_ticket_window_ctx = NULL;
    p = pair_new(0);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(p->sctx, fatal_ticket_cb);
    connect_pair(p);
    assert_true(run_until(p, has_ticket, 5000));
    sess = SSL_get1_session(p->c);
    assert_non_null(sess);

    q = pair_new(0);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(q->sctx, fatal_ticket_cb);
    assert_int_equal(SSL_set_session(q->c, sess), 1);
    assert_true(run_until(q, has_ended, 5000));
    assert_int_equal(fatal_ticket_decrypts, 1);
    assert_ptr_equal(fatal_ticket_window_ctx, gw);     /* the window was open */
    assert_int_equal(q->connected, 0);                 /* the handshake failed */
    assert_true(q->ended & GW_TS_ERROR);
    assert_ptr_equal(OSSL_LIB_CTX_set0_default(NULL), before); /* and closed */

    SSL_SESSION_free(sess);
    pair_free(q);
    pair_free(p);
    tls_libctx_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_both_ways),
        cmocka_unit_test(test_read_bound),
        cmocka_unit_test(test_write_timeout_cuts_a_client_taking_nothing),
        cmocka_unit_test(test_write_timeout_spares_a_slow_reader),
        cmocka_unit_test(test_close_notify_is_eof),
        cmocka_unit_test(test_fin_is_eof),
        cmocka_unit_test(test_shutdown_sends_close_notify),
        cmocka_unit_test(test_shutdown_waits_for_room_for_close_notify),
        cmocka_unit_test(test_shutdown_waits_behind_a_key_update_answer),
        cmocka_unit_test(test_shutdown_refuses_while_output_waits),
        cmocka_unit_test(test_plain_http_fails_the_handshake),
        cmocka_unit_test(test_fatal_ticket_error_restores_the_default),
    };

    return cmocka_run_group_tests(tests, pki_setup, unit_pki_teardown);
}
