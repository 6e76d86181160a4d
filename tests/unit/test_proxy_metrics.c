/*
 * test_proxy_metrics.c - Prometheus rendering (proxy/metrics.h), the
 * bounded identity counters (proxy/idstats.h) and the admin listener
 * (proxy/admin.h) over real loopback sockets.
 *
 * Rendered texts are checked line by line and, when Debian's promtool is
 * installed, with `promtool check metrics` (the parser and linter
 * Prometheus itself uses). The PKI comes from tests/lib/make-test-certs.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "admin.h"
#include "idstats.h"
#include "metrics.h"
#include "runtime.h"
#include "stats.h"
#include "tls_pem.h"
#include "tls_server.h"
#include "tls_trust.h"
#include "tls_x509.h"
#include "unit_pki.h"

static int pki_setup(void **state)
{
    (void)state;
    return unit_pki_make("test-proxy-metrics");
}

/* ------------------------------------------------------------ helpers */

/* The rendering of in as a NUL-terminated string (free it). */
static char *render(const struct gw_metrics_input *in)
{
    struct evbuffer *b = evbuffer_new();
    size_t len;
    char *s;

    assert_non_null(b);
    assert_int_equal(gw_metrics_render(b, in), 0);
    len = evbuffer_get_length(b);
    s = malloc(len + 1);
    assert_non_null(s);
    assert_int_equal(evbuffer_remove(b, s, len), (int)len);
    s[len] = '\0';
    evbuffer_free(b);
    return s;
}

/* Fails unless text has line as a whole line. */
static void expect_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
        p++;
    }
    fail_msg("line not found: %s\n--- in ---\n%s", line, text);
}

static void expect_no_line_starting(const char *text, const char *prefix)
{
    const char *p = text;

    while ((p = strstr(p, prefix)) != NULL) {
        if (p == text || p[-1] == '\n')
            fail_msg("unexpected line starting with %s", prefix);
        p++;
    }
}

static size_t count_lines_starting(const char *text, const char *prefix)
{
    const char *p = text;
    size_t n = 0;

    while ((p = strstr(p, prefix)) != NULL) {
        if (p == text || p[-1] == '\n')
            n++;
        p++;
    }
    return n;
}

/*
 * `promtool check metrics` over text: 0 = passed, 1 = skipped (no
 * promtool), fails the test otherwise with promtool's output.
 */
static int promtool_check(const char *text)
{
    char file[] = "/tmp/test-proxy-metrics-prom-XXXXXX";
    char cmd[256], out[4096];
    FILE *f, *p;
    size_t n;
    int fd, rc;

    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        print_message("promtool not installed (Debian package prometheus): check skipped\n");
        return 1;
    }
    fd = mkstemp(file);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", file);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    rc = pclose(p);
    unlink(file);
    if (rc != 0)
        fail_msg("promtool check metrics failed (status %d): %s\n--- text ---\n%s", rc, out,
                 text);
    print_message("promtool check metrics: passed\n");
    return 0;
}

/* ------------------------------------------------------------ pure parts */

static void test_ms_to_seconds(void **state)
{
    static const struct { uint64_t ms; const char *s; } cases[] = {
        {1, "0.001"}, {2, "0.002"}, {5, "0.005"}, {10, "0.01"}, {25, "0.025"}, {50, "0.05"},
        {100, "0.1"}, {250, "0.25"}, {500, "0.5"}, {1000, "1"}, {2500, "2.5"}, {5000, "5"},
        {10000, "10"}, {0, "0"}, {1234, "1.234"},
    };
    char buf[32];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(gw_metrics_ms_to_seconds(cases[i].ms, buf, sizeof(buf)), cases[i].s);
}

static void test_label_escaping(void **state)
{
    struct evbuffer *b = evbuffer_new();
    char out[64];
    int n;

    (void)state;
    assert_non_null(b);
    assert_int_equal(gw_metrics_label_value(b, "a\\b\"c\nd=,{}"), 0);
    n = evbuffer_remove(b, out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    assert_string_equal(out, "a\\\\b\\\"c\\nd=,{}");
    assert_int_equal(gw_metrics_label_value(b, ""), 0);
    assert_int_equal(evbuffer_get_length(b), 0);
    evbuffer_free(b);
}

/* A fixed set of counters, the same in several tests. */
static void fixed_stats(struct gw_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->handshakes[TLS_OK] = 7;
    s->handshakes[TLS_REFUSE_EXPIRED] = 1;
    s->handshakes[TLS_REFUSE_REVOKED] = 2;
    s->requests_refused[TLS_REFUSE_FORBIDDEN] = 3;
    s->requests_refused[TLS_REFUSE_REVOKED] = 1;
    s->requests[2] = 5;
    s->requests[4] = 2;
    s->bytes_in = 1000;
    s->bytes_out = 4096;
    s->conns_open = 3;
    s->conns_total = 10;
    s->upstream_connect_fail = 4;
    s->upstream_latency[0] = 1;         /* <= 1 ms */
    s->upstream_latency[2] = 2;         /* <= 5 ms */
    s->upstream_latency[GW_LAT_N] = 1;  /* +Inf */
    s->upstream_latency_count = 4;
    s->upstream_latency_sum_us = 12345678;
}

static void test_render_fixed(void **state)
{
    struct gw_stats s;
    struct gw_idstats *ids = gw_idstats_new();
    struct gw_metrics_input in;
    char *text, line[256];
    int r;

    (void)state;
    assert_non_null(ids);
    fixed_stats(&s);
    gw_idstats_count(ids, "svc-attestor-1", 200);
    gw_idstats_count(ids, "svc-attestor-1", 204);
    gw_idstats_count(ids, "svc-attestor-1", 403);
    gw_idstats_count(ids, "svc \"quoted\"\\", 200);
    gw_idstats_count(ids, NULL, 400);
    memset(&in, 0, sizeof(in));
    in.stats = &s;
    in.ids = ids;
    in.reloads_ok = 2;
    in.reloads_failed = 1;
    in.generation = 3;
    in.config_loaded = 1700000000;
    in.has_log_dropped = 1;
    in.log_dropped = 9;
    in.version = "9.9.9";
    text = render(&in);

    expect_line(text, "# TYPE mtlsgate_up gauge");
    expect_line(text, "mtlsgate_up 1");
    assert_non_null(strstr(text, "\nmtlsgate_build_info{version=\"9.9.9\",openssl=\""));
    expect_line(text, "# TYPE mtlsgate_connections_open gauge");
    expect_line(text, "mtlsgate_connections_open 3");
    expect_line(text, "# TYPE mtlsgate_connections_total counter");
    expect_line(text, "mtlsgate_connections_total 10");
    expect_line(text, "# TYPE mtlsgate_handshakes_total counter");
    expect_line(text, "mtlsgate_handshakes_total{result=\"ok\"} 7");
    expect_line(text, "mtlsgate_handshakes_total{result=\"refused\",reason=\"expired\"} 1");
    expect_line(text, "mtlsgate_handshakes_total{result=\"refused\",reason=\"revoked\"} 2");
    /* Every handshake reason is there, with 0 when it never happened; the
     * two that answer requests are counted as requests, not handshakes; a
     * request is also refused when its connection's certificate is no
     * longer admitted (a reload, its expiry). */
    for (r = 1; r < TLS_REFUSAL__COUNT; r++) {
        int request = r == TLS_REFUSE_UNKNOWN_IDENTITY || r == TLS_REFUSE_FORBIDDEN;
        int on_request = r != TLS_REFUSE_PROTOCOL;

        snprintf(line, sizeof(line), "mtlsgate_handshakes_total{result=\"refused\",reason=\"%s\"} ",
                 tls_refusal_name((enum tls_refusal)r));
        assert_int_equal(count_lines_starting(text, line), request ? 0 : 1);
        snprintf(line, sizeof(line), "mtlsgate_requests_refused_total{reason=\"%s\"} ",
                 tls_refusal_name((enum tls_refusal)r));
        assert_int_equal(count_lines_starting(text, line), on_request ? 1 : 0);
    }
    expect_line(text, "mtlsgate_handshakes_total{result=\"refused\",reason=\"no_certificate\"} 0");
    expect_line(text, "mtlsgate_handshakes_total{result=\"refused\",reason=\"protocol\"} 0");
    assert_int_equal(count_lines_starting(text, "mtlsgate_handshakes_total{"),
                     TLS_REFUSAL__COUNT - 2);
    expect_line(text, "# TYPE mtlsgate_requests_refused_total counter");
    expect_line(text, "mtlsgate_requests_refused_total{reason=\"unknown_identity\"} 0");
    expect_line(text, "mtlsgate_requests_refused_total{reason=\"forbidden\"} 3");
    expect_line(text, "mtlsgate_requests_refused_total{reason=\"revoked\"} 1");

    expect_line(text, "# TYPE mtlsgate_requests_total counter");
    expect_line(text, "mtlsgate_requests_total{class=\"2xx\",identity=\"svc-attestor-1\"} 2");
    expect_line(text, "mtlsgate_requests_total{class=\"4xx\",identity=\"svc-attestor-1\"} 1");
    expect_line(text, "mtlsgate_requests_total{class=\"2xx\",identity=\"svc \\\"quoted\\\"\\\\\"} 1");
    expect_line(text, "mtlsgate_requests_total{class=\"4xx\",identity=\"_none\"} 1");
    /* Only classes that happened; _other is empty, so absent. */
    assert_int_equal(count_lines_starting(text, "mtlsgate_requests_total{"), 4);

    expect_line(text, "# TYPE mtlsgate_upstream_latency_seconds histogram");
    expect_line(text, "mtlsgate_upstream_latency_seconds_bucket{le=\"0.001\"} 1");
    expect_line(text, "mtlsgate_upstream_latency_seconds_bucket{le=\"0.002\"} 1");
    expect_line(text, "mtlsgate_upstream_latency_seconds_bucket{le=\"0.005\"} 3");
    expect_line(text, "mtlsgate_upstream_latency_seconds_bucket{le=\"2.5\"} 3");
    expect_line(text, "mtlsgate_upstream_latency_seconds_bucket{le=\"10\"} 3");
    expect_line(text, "mtlsgate_upstream_latency_seconds_bucket{le=\"+Inf\"} 4");
    expect_line(text, "mtlsgate_upstream_latency_seconds_sum 12.345678");
    expect_line(text, "mtlsgate_upstream_latency_seconds_count 4");
    assert_int_equal(count_lines_starting(text, "mtlsgate_upstream_latency_seconds_bucket{"),
                     GW_LAT_N + 1);

    expect_line(text, "mtlsgate_upstream_connect_failures_total 4");
    expect_line(text, "mtlsgate_bytes_received_total 1000");
    expect_line(text, "mtlsgate_bytes_sent_total 4096");
    expect_line(text, "mtlsgate_reloads_total{result=\"ok\"} 2");
    expect_line(text, "mtlsgate_reloads_total{result=\"failed\"} 1");
    expect_line(text, "# TYPE mtlsgate_config_loaded_timestamp_seconds gauge");
    expect_line(text, "mtlsgate_config_loaded_timestamp_seconds 1700000000");
    expect_line(text, "mtlsgate_config_generation 3");
    expect_line(text, "# TYPE mtlsgate_log_lines_dropped_total counter");
    expect_line(text, "mtlsgate_log_lines_dropped_total 9");
    /* No certificate and no trust set given: those families are left out. */
    expect_no_line_starting(text, "mtlsgate_server_certificate_expiry_timestamp_seconds");
    expect_no_line_starting(text, "mtlsgate_ca_certificate_expiry_timestamp_seconds");
    expect_no_line_starting(text, "# TYPE mtlsgate_crl_next_update_timestamp_seconds");
    /* Each family once: HELP and TYPE lines pair up. */
    assert_int_equal(count_lines_starting(text, "# HELP "), count_lines_starting(text, "# TYPE "));
    assert_int_equal(count_lines_starting(text, "# TYPE mtlsgate_requests_total "), 1);
    assert_int_equal(text[strlen(text) - 1], '\n');
    promtool_check(text);
    free(text);

    /* Without an identity table: requests by class from the counters. */
    in.ids = NULL;
    in.has_log_dropped = 0;
    in.config_loaded = 0;
    in.generation = 0;
    text = render(&in);
    expect_line(text, "mtlsgate_requests_total{class=\"2xx\"} 5");
    expect_line(text, "mtlsgate_requests_total{class=\"4xx\"} 2");
    expect_line(text, "mtlsgate_requests_total{class=\"1xx\"} 0");
    expect_line(text, "mtlsgate_requests_total{class=\"other\"} 0");
    expect_no_line_starting(text, "mtlsgate_log_lines_dropped_total");
    expect_no_line_starting(text, "mtlsgate_config_loaded_timestamp_seconds");
    expect_no_line_starting(text, "mtlsgate_config_generation");
    promtool_check(text);
    free(text);
    gw_idstats_free(ids);
}

static struct tls_trust *trust_new(const char *ca, const char *crl)
{
    struct tls_trust_opts o = {.client_ca_path = P(ca), .crl_path = crl ? P(crl) : NULL,
                               .require_eku = 1};
    char err[512];
    struct tls_trust *t = tls_trust_load(&o, err, sizeof(err));

    if (!t)
        fail_msg("%s", err);
    return t;
}

static X509 *cert_load(const char *name)
{
    FILE *f = fopen(P(name), "r");
    X509 *x;

    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

/* "kind","subject","serial" line of cert x with its notAfter. */
static void expect_ca_line(const char *text, const char *kind, const char *file)
{
    X509 *x = cert_load(file);
    char line[1024], subject[512], serial[128];
    time_t t;

    assert_int_equal(tls_x509_not_after(x, &t), 0);
    snprintf(line, sizeof(line),
             "mtlsgate_ca_certificate_expiry_timestamp_seconds{kind=\"%s\",subject=\"%s\","
             "serial=\"%s\"} %lld",
             kind, tls_x509_subject(x, subject, sizeof(subject)),
             tls_x509_serial_hex(x, serial, sizeof(serial)), (long long)t);
    expect_line(text, line);
    X509_free(x);
}

static void test_render_pki(void **state)
{
    struct gw_stats s;
    struct gw_metrics_input in;
    struct tls_trust *trust = trust_new("client-chain2.crt", "client-ca.crl");
    X509 *server = cert_load("gateway.crt");
    X509_CRL *crl;
    char *text, line[1024], issuer[512];
    time_t t;
    FILE *f;
    struct tm tm;

    (void)state;
    fixed_stats(&s);
    memset(&in, 0, sizeof(in));
    in.stats = &s;
    in.server_cert = server;
    in.trust = trust;
    in.now = time(NULL);
    text = render(&in);

    assert_int_equal(tls_x509_not_after(server, &t), 0);
    snprintf(line, sizeof(line), "mtlsgate_server_certificate_expiry_timestamp_seconds %lld",
             (long long)t);
    expect_line(text, line);
    expect_ca_line(text, "intermediate", "client-ca.crt");
    expect_ca_line(text, "intermediate", "client-ca2.crt");
    expect_ca_line(text, "root", "root.crt");
    assert_int_equal(count_lines_starting(text, "mtlsgate_ca_certificate_expiry_timestamp_seconds{"),
                     3);

    f = fopen(P("client-ca.crl"), "r");
    assert_non_null(f);
    crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(crl);
    assert_int_equal(ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(crl), &tm), 1);
    X509_CRL_free(crl);
    {
        X509 *ca = cert_load("client-ca.crt");

        snprintf(line, sizeof(line), "mtlsgate_crl_next_update_timestamp_seconds{issuer=\"%s\"} %lld",
                 tls_x509_subject(ca, issuer, sizeof(issuer)), (long long)timegm(&tm));
        X509_free(ca);
    }
    expect_line(text, line);
    expect_line(text, "mtlsgate_crls_past_next_update 0");
    promtool_check(text);
    free(text);

    /* Thirty-one days later the CRL (nextUpdate +30 days) is past due. */
    in.now = time(NULL) + 31 * 86400;
    text = render(&in);
    expect_line(text, "mtlsgate_crls_past_next_update 1");
    free(text);

    X509_free(server);
    tls_trust_unref(trust);
}

/* ------------------------------------------------------------ idstats */

static uint64_t row_total(const struct gw_idstats *t, size_t row)
{
    uint64_t n = 0;
    size_t c;

    for (c = 0; c < GW_IDSTATS_CLASSES; c++)
        n += gw_idstats_row_count(t, row, c);
    return n;
}

static void test_idstats_bound(void **state)
{
    struct gw_idstats *t = gw_idstats_new(), *sum = gw_idstats_new();
    char name[32], longname[300];
    size_t i, rows;

    (void)state;
    assert_non_null(t);
    assert_non_null(sum);
    for (i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "id-%zu", i);
        gw_idstats_count(t, name, 200);
        gw_idstats_count(t, name, 503);
    }
    rows = gw_idstats_rows(t);
    assert_int_equal(rows, GW_IDSTATS_MAX + 2);
    assert_string_equal(gw_idstats_row_name(t, 0), "id-0");
    assert_string_equal(gw_idstats_row_name(t, GW_IDSTATS_MAX - 1), "id-255");
    assert_string_equal(gw_idstats_row_name(t, GW_IDSTATS_MAX), GW_IDSTATS_OTHER);
    assert_string_equal(gw_idstats_row_name(t, GW_IDSTATS_MAX + 1), GW_IDSTATS_NONE);
    assert_null(gw_idstats_row_name(t, GW_IDSTATS_MAX + 2));
    assert_int_equal(gw_idstats_row_count(t, 7, 2), 1);
    assert_int_equal(gw_idstats_row_count(t, 7, 5), 1);
    assert_int_equal(gw_idstats_row_count(t, GW_IDSTATS_MAX, 2), 300 - GW_IDSTATS_MAX);
    assert_int_equal(gw_idstats_row_count(t, GW_IDSTATS_MAX, 5), 300 - GW_IDSTATS_MAX);
    /* A known name keeps its row once the table is full. */
    gw_idstats_count(t, "id-3", 200);
    assert_int_equal(gw_idstats_row_count(t, 3, 2), 2);
    /* No identity, reserved names, odd statuses. */
    gw_idstats_count(t, NULL, 400);
    gw_idstats_count(t, "", 400);
    gw_idstats_count(t, GW_IDSTATS_NONE, 99);
    gw_idstats_count(t, GW_IDSTATS_OTHER, 600);
    assert_int_equal(gw_idstats_row_count(t, GW_IDSTATS_MAX + 1, 4), 2);
    assert_int_equal(gw_idstats_row_count(t, GW_IDSTATS_MAX + 1, 0), 1);
    assert_int_equal(gw_idstats_row_count(t, GW_IDSTATS_MAX, 0), 1);
    assert_int_equal(gw_idstats_rows(t), GW_IDSTATS_MAX + 2);
    gw_idstats_count(NULL, "x", 200); /* NULL table: nothing, no crash */

    /* A sum over two copies: same rows, counts doubled, still bounded. */
    gw_idstats_snapshot_add(sum, t);
    gw_idstats_snapshot_add(sum, t);
    assert_int_equal(gw_idstats_rows(sum), GW_IDSTATS_MAX + 2);
    assert_string_equal(gw_idstats_row_name(sum, 3), "id-3");
    assert_int_equal(gw_idstats_row_count(sum, 3, 2), 4);
    assert_int_equal(gw_idstats_row_count(sum, GW_IDSTATS_MAX, 2), 2 * (300 - GW_IDSTATS_MAX));
    assert_int_equal(gw_idstats_row_count(sum, GW_IDSTATS_MAX + 1, 4), 4);
    gw_idstats_free(sum);
    gw_idstats_free(t);

    /* Long names are cut, and the cut name is one row. */
    t = gw_idstats_new();
    assert_non_null(t);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    gw_idstats_count(t, longname, 200);
    longname[200] = '\0';
    gw_idstats_count(t, longname, 200);
    assert_int_equal(gw_idstats_rows(t), 3);
    assert_int_equal(strlen(gw_idstats_row_name(t, 0)), GW_IDSTATS_NAME_MAX - 1);
    assert_int_equal(gw_idstats_row_count(t, 0, 2), 2);
    assert_string_equal(gw_idstats_class_name(0), "other");
    assert_string_equal(gw_idstats_class_name(2), "2xx");
    gw_idstats_free(t);
    gw_idstats_free(NULL);

    /* Overflow in the sum: two workers with 200 different names each. */
    {
        struct gw_idstats *w1 = gw_idstats_new(), *w2 = gw_idstats_new();

        sum = gw_idstats_new();
        assert_non_null(w1);
        assert_non_null(w2);
        assert_non_null(sum);
        for (i = 0; i < 200; i++) {
            snprintf(name, sizeof(name), "a-%zu", i);
            gw_idstats_count(w1, name, 200);
            snprintf(name, sizeof(name), "b-%zu", i);
            gw_idstats_count(w2, name, 200);
        }
        gw_idstats_snapshot_add(sum, w1);
        gw_idstats_snapshot_add(sum, w2);
        assert_int_equal(gw_idstats_rows(sum), GW_IDSTATS_MAX + 2);
        assert_int_equal(gw_idstats_row_count(sum, GW_IDSTATS_MAX, 2), 400 - GW_IDSTATS_MAX);
        gw_idstats_free(w1);
        gw_idstats_free(w2);
        gw_idstats_free(sum);
    }
}

#define CONC_WRITES 300000

struct conc {
    struct gw_idstats *t;
    int writer_done;              /* atomic */
    int bad;                      /* set by the reader on an inconsistency */
    unsigned snapshots;
};

static void *conc_writer(void *arg)
{
    struct conc *c = arg;
    char name[32];
    unsigned i;

    for (i = 0; i < CONC_WRITES; i++) {
        snprintf(name, sizeof(name), "id-%u", i % 300);
        gw_idstats_count(c->t, name, 200 + (int)(i % 4) * 100);
    }
    __atomic_store_n(&c->writer_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *conc_reader(void *arg)
{
    struct conc *c = arg;
    uint64_t prev = 0, total;
    size_t row, rows;
    const char *name;
    int done;

    do {
        struct gw_idstats *sum = gw_idstats_new();

        done = __atomic_load_n(&c->writer_done, __ATOMIC_ACQUIRE);
        if (!sum) {
            c->bad = 1;
            break;
        }
        gw_idstats_snapshot_add(sum, c->t);
        rows = gw_idstats_rows(sum);
        for (total = 0, row = 0; row < rows; row++) {
            name = gw_idstats_row_name(sum, row);
            if (!name || (strncmp(name, "id-", 3) != 0 && strcmp(name, GW_IDSTATS_OTHER) != 0 &&
                          strcmp(name, GW_IDSTATS_NONE) != 0))
                c->bad = 1;
            total += row_total(sum, row);
        }
        if (total < prev || total > CONC_WRITES || (done && total != CONC_WRITES))
            c->bad = 1;
        prev = total;
        c->snapshots++;
        gw_idstats_free(sum);
    } while (!done);
    return NULL;
}

static void test_idstats_concurrent(void **state)
{
    struct conc c;
    pthread_t w, r;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.t = gw_idstats_new();
    assert_non_null(c.t);
    assert_int_equal(pthread_create(&r, NULL, conc_reader, &c), 0);
    assert_int_equal(pthread_create(&w, NULL, conc_writer, &c), 0);
    assert_int_equal(pthread_join(w, NULL), 0);
    assert_int_equal(pthread_join(r, NULL), 0);
    assert_int_equal(c.bad, 0);
    assert_true(c.snapshots >= 1);
    assert_int_equal(gw_idstats_rows(c.t), GW_IDSTATS_MAX + 2);
    assert_int_equal(gw_idstats_row_count(c.t, 0, 2), CONC_WRITES / 300);
    gw_idstats_free(c.t);
}

/* ------------------------------------------------------------ admin */

struct fake_gw {
    struct gw_runtime rt;
    struct gw_stats stats;
    struct gw_idstats *ids;
    int draining;                 /* atomic: set by the test thread */
    struct event_base *base;
};

static void fake_state(void *arg, struct gw_admin_state *st)
{
    struct fake_gw *f = arg;

    st->rt = &f->rt;
    st->reloads_ok = 3;
    st->reloads_failed = 1;
    st->config_loaded = 1700000000;
    st->draining = __atomic_load_n(&f->draining, __ATOMIC_ACQUIRE);
}

static void fake_stats(void *arg, struct gw_stats *sum, struct gw_idstats *ids)
{
    struct fake_gw *f = arg;

    gw_stats_snapshot_add(sum, &f->stats);
    gw_idstats_snapshot_add(ids, f->ids);
}

static void *loop_thread(void *arg)
{
    event_base_dispatch(arg);
    return NULL;
}

/* A loopback listening socket that never accepts (the kernel completes
 * connects into its backlog): a reachable "upstream". */
static int fake_upstream(struct sockaddr_in *sin)
{
    socklen_t len = sizeof(*sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
    assert_int_equal(listen(fd, 128), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
    return fd;
}

/*
 * Sends req (len bytes; half-closes after it when half_close) to the admin
 * port and reads until the server closes or 5 s pass. Returns a new string.
 */
static char *http_raw(int port, const char *req, size_t len, int half_close)
{
    struct sockaddr_in sin;
    struct timeval tv = {5, 0};
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap);
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_non_null(buf);
    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    if (half_close)
        shutdown(fd, SHUT_WR);
    while ((n = recv(fd, buf + used, cap - 1 - used, 0)) > 0) {
        used += (size_t)n;
        if (used == cap - 1) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    close(fd);
    buf[used] = '\0';
    return buf;
}

static char *http_get(int port, const char *method, const char *path)
{
    char req[256];

    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
             method, path);
    return http_raw(port, req, strlen(req), 0);
}

/* Polls GET /readyz until its status line starts with want (5 s at most). */
static char *wait_readyz(int port, const char *want)
{
    char *r = NULL;
    int i;

    for (i = 0; i < 50; i++) {
        free(r);
        r = http_get(port, "GET", "/readyz");
        if (strncmp(r, want, strlen(want)) == 0)
            return r;
        usleep(100 * 1000);
    }
    fail_msg("/readyz never answered '%s'; last answer: %s", want, r);
    return r;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");

    assert_non_null(b);
    return b + 4;
}

static void test_admin(void **state)
{
    struct fake_gw f;
    struct tls_trust *trust = trust_new("client-chain.crt", "client-ca.crl");
    struct tls_server_opts so = {.certificate = P("gateway.bundle.crt"), .key = P("gateway.key"),
                                 .trust = trust};
    struct gw_admin_hooks hooks = {.state = fake_state, .stats = fake_stats};
    char host[] = "127.0.0.1", port0[] = "0", portbuf[16], err[512];
    struct cfg_addr addr = {host, port0};
    struct sockaddr_in up;
    struct gw_admin *a, *a2;
    pthread_t th;
    char *r, *r2;
    int port, upfd;
    const char *pipelined = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                            "GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const char *p;
    int n200 = 0;

    (void)state;
    memset(&f, 0, sizeof(f));
    upfd = fake_upstream(&up);
    f.rt.generation = 4;
    f.rt.n_servers = 1;
    memcpy(&f.rt.servers[0].addr, &up, sizeof(up));
    f.rt.servers[0].addrlen = sizeof(up);
    snprintf(f.rt.servers[0].name, sizeof(f.rt.servers[0].name), "127.0.0.1:%d",
             ntohs(up.sin_port));
    f.rt.server_ctx = tls_server_ctx_new(&so, err, sizeof(err));
    if (!f.rt.server_ctx)
        fail_msg("%s", err);
    fixed_stats(&f.stats);
    f.ids = gw_idstats_new();
    assert_non_null(f.ids);
    gw_idstats_count(f.ids, "svc-attestor-1", 200);
    assert_int_equal(evthread_use_pthreads(), 0);
    f.base = event_base_new();
    assert_non_null(f.base);
    hooks.arg = &f;

    /* Missing hooks and a busy port are refused with a reason. */
    hooks.stats = NULL;
    assert_null(gw_admin_start(f.base, &addr, &hooks, err, sizeof(err)));
    assert_non_null(strstr(err, "hooks"));
    hooks.stats = fake_stats;
    a = gw_admin_start(f.base, &addr, &hooks, err, sizeof(err));
    if (!a)
        fail_msg("%s", err);
    port = gw_admin_port(a);
    assert_true(port > 0);
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    addr.port = portbuf;
    assert_null(gw_admin_start(f.base, &addr, &hooks, err, sizeof(err)));
    assert_non_null(strstr(err, "admin.listen 127.0.0.1:"));
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f.base), 0);

    r = http_get(port, "GET", "/healthz");
    assert_int_equal(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_non_null(strstr(r, "Content-Length: 3\r\n"));
    assert_string_equal(body_of(r), "ok\n");
    free(r);

    r = http_get(port, "HEAD", "/healthz");
    assert_int_equal(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_non_null(strstr(r, "Content-Length: 3\r\n"));
    assert_string_equal(body_of(r), "");
    free(r);

    r = wait_readyz(port, "HTTP/1.1 200");
    assert_non_null(strstr(body_of(r), "ready: 1 of 1 upstream servers reachable"));
    free(r);

    r = http_get(port, "GET", "/metrics");
    assert_int_equal(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_non_null(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    expect_line(body_of(r), "mtlsgate_up 1");
    expect_line(body_of(r), "mtlsgate_handshakes_total{result=\"refused\",reason=\"expired\"} 1");
    expect_line(body_of(r), "mtlsgate_requests_total{class=\"2xx\",identity=\"svc-attestor-1\"} 1");
    expect_line(body_of(r), "mtlsgate_reloads_total{result=\"ok\"} 3");
    expect_line(body_of(r), "mtlsgate_reloads_total{result=\"failed\"} 1");
    expect_line(body_of(r), "mtlsgate_config_generation 4");
    expect_line(body_of(r), "mtlsgate_config_loaded_timestamp_seconds 1700000000");
    assert_int_equal(count_lines_starting(body_of(r),
                                          "mtlsgate_server_certificate_expiry_timestamp_seconds "), 1);
    assert_int_equal(count_lines_starting(body_of(r),
                                          "mtlsgate_crl_next_update_timestamp_seconds{"), 1);
    assert_int_equal(count_lines_starting(body_of(r), "mtlsgate_log_lines_dropped_total "), 1);
    promtool_check(body_of(r));
    free(r);

    r = http_get(port, "POST", "/metrics");
    assert_int_equal(strncmp(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33), 0);
    assert_non_null(strstr(r, "\r\nAllow: GET, HEAD\r\n"));
    free(r);
    r = http_get(port, "DELETE", "/healthz");
    assert_int_equal(strncmp(r, "HTTP/1.1 405 ", 13), 0);
    free(r);
    r = http_get(port, "GET", "/nope");
    assert_int_equal(strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24), 0);
    free(r);
    r = http_get(port, "GET", "/healthz/");
    assert_int_equal(strncmp(r, "HTTP/1.1 404 ", 13), 0);
    free(r);
    p = "BLAH\r\n\r\n";
    r = http_raw(port, p, strlen(p), 0);
    assert_int_equal(strncmp(r, "HTTP/1.1 400 Bad Request\r\n", 26), 0);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    free(r);
    p = "GET /healthz HTTP/1.1\r\n\r\n"; /* no Host */
    r = http_raw(port, p, strlen(p), 0);
    assert_int_equal(strncmp(r, "HTTP/1.1 400 ", 13), 0);
    free(r);
    /* HTTP/1.0 without Host, client half-closes right after the request. */
    p = "GET /healthz HTTP/1.0\r\n\r\n";
    r = http_raw(port, p, strlen(p), 1);
    assert_int_equal(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    free(r);
    /* Keep-alive and pipelining: three answers on one connection. */
    r = http_raw(port, pipelined, strlen(pipelined), 0);
    for (p = r; (p = strstr(p, "HTTP/1.1 200 OK\r\n")) != NULL; p++)
        n200++;
    assert_int_equal(n200, 3);
    free(r);
    /* A request with a body is answered, then the connection is closed. */
    p = "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd";
    r = http_raw(port, p, strlen(p), 0);
    assert_int_equal(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    free(r);

    /* The upstream goes away: /readyz says so within a few seconds. */
    close(upfd);
    r = wait_readyz(port, "HTTP/1.1 503");
    assert_non_null(strstr(body_of(r), "no upstream server reachable (0 of 1)"));
    assert_non_null(strstr(body_of(r), f.rt.servers[0].name));
    r2 = http_get(port, "GET", "/healthz");
    assert_int_equal(strncmp(r2, "HTTP/1.1 200 ", 13), 0);
    free(r2);
    free(r);
    /* Back again, then draining. */
    upfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(upfd >= 0);
    {
        int one = 1;

        assert_int_equal(setsockopt(upfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    }
    assert_int_equal(bind(upfd, (struct sockaddr *)&up, sizeof(up)), 0);
    assert_int_equal(listen(upfd, 128), 0);
    free(wait_readyz(port, "HTTP/1.1 200"));
    __atomic_store_n(&f.draining, 1, __ATOMIC_RELEASE);
    r = http_get(port, "GET", "/readyz");
    assert_int_equal(strncmp(r, "HTTP/1.1 503 ", 13), 0);
    assert_non_null(strstr(body_of(r), "stopping"));
    free(r);

    /* An idle keep-alive connection left open is closed by gw_admin_free. */
    {
        struct sockaddr_in sin;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        usleep(100 * 1000);
        event_base_loopexit(f.base, NULL);
        assert_int_equal(pthread_join(th, NULL), 0);
        gw_admin_free(a);
        close(fd);
    }
    a2 = NULL;
    gw_admin_free(a2);
    close(upfd);
    event_base_free(f.base);
    SSL_CTX_free(f.rt.server_ctx);
    tls_trust_unref(trust);
    gw_idstats_free(f.ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ms_to_seconds),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_render_fixed),
        cmocka_unit_test(test_render_pki),
        cmocka_unit_test(test_idstats_bound),
        cmocka_unit_test(test_idstats_concurrent),
        cmocka_unit_test(test_admin),
    };

    return cmocka_run_group_tests(tests, pki_setup, unit_pki_teardown);
}
