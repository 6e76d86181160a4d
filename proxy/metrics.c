/*
 * metrics.c - Prometheus text exposition of the gateway's state (see
 * metrics.h). Every write goes through struct out, which remembers the
 * first allocation failure so that the family writers stay linear.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls_x509.h"

#ifndef MTLSGATE_VERSION
#define MTLSGATE_VERSION "unknown"
#endif

#define NAME_BUF 1024

struct out {
    struct evbuffer *b;
    int failed;
};

static void put(struct out *o, const char *s)
{
    if (!o->failed && evbuffer_add(o->b, s, strlen(s)) != 0)
        o->failed = 1;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    va_list ap;

    if (o->failed)
        return;
    va_start(ap, fmt);
    if (evbuffer_add_vprintf(o->b, fmt, ap) < 0)
        o->failed = 1;
    va_end(ap);
}

int gw_metrics_label_value(struct evbuffer *out, const char *s)
{
    const char *run = s;
    int rc = 0;

    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;

        if (!esc)
            continue;
        if (evbuffer_add(out, run, (size_t)(s - run)) != 0 || evbuffer_add(out, esc, 2) != 0) {
            rc = -1;
            goto out;
        }
        run = s + 1;
    }
    if (evbuffer_add(out, run, (size_t)(s - run)) != 0)
        rc = -1;
out:
    return rc;
}

/* The "# HELP" and "# TYPE" lines of a family (help is ours: no escapes). */
static void family(struct out *o, const char *name, const char *type, const char *help)
{
    putf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * One sample line: name, the labels (pairs of name and value, NULL ended;
 * NULL for none) and the value already formatted.
 */
static void sample(struct out *o, const char *name, const char *const *labels, const char *value)
{
    size_t i;

    put(o, name);
    if (labels && labels[0]) {
        put(o, "{");
        for (i = 0; labels[i]; i += 2) {
            putf(o, "%s%s=\"", i ? "," : "", labels[i]);
            if (!o->failed && gw_metrics_label_value(o->b, labels[i + 1]) < 0)
                o->failed = 1;
            put(o, "\"");
        }
        put(o, "}");
    }
    putf(o, " %s\n", value);
}

static void sample_u64(struct out *o, const char *name, const char *const *labels, uint64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    sample(o, name, labels, buf);
}

static void sample_time(struct out *o, const char *name, const char *const *labels, time_t t)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%lld", (long long)t);
    sample(o, name, labels, buf);
}

/* A counter or gauge family with one unlabelled sample. */
static void single_u64(struct out *o, const char *name, const char *type, const char *help,
                       uint64_t v)
{
    family(o, name, type, help);
    sample_u64(o, name, NULL, v);
}

const char *gw_metrics_ms_to_seconds(uint64_t ms, char *buf, size_t len)
{
    char frac[8];
    size_t n;

    snprintf(frac, sizeof(frac), "%03u", (unsigned)(ms % 1000));
    n = strlen(frac);
    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    snprintf(buf, len, "%" PRIu64 "%s%s", ms / 1000, n ? "." : "", frac);
    return buf;
}

static void render_info(struct out *o, const struct gw_metrics_input *in)
{
    const char *labels[] = {"version", in->version ? in->version : MTLSGATE_VERSION,
                            "openssl", OpenSSL_version(OPENSSL_VERSION_STRING),
                            "libevent", event_get_version(), NULL};

    single_u64(o, "mtlsgate_up", "gauge", "1 while the gateway answers.", 1);
    family(o, "mtlsgate_build_info", "gauge",
           "Versions of mtlsgate and of the libraries it runs with; always 1.");
    sample(o, "mtlsgate_build_info", labels, "1");
}

/* 1 for the refusals that answer a request (403), not a handshake. */
static int request_refusal(int r)
{
    return r == TLS_REFUSE_UNKNOWN_IDENTITY || r == TLS_REFUSE_FORBIDDEN;
}

/* The reasons a request on an admitted connection can be refused for:
 * the two above, and any refusal of a certificate that a reload's trust
 * set or CRL, or the clock, no longer admits (conn_req.c,
 * still_admitted); only a protocol error is a handshake's alone. */
static int request_refused_for(int r)
{
    return r != TLS_OK && r != TLS_REFUSE_PROTOCOL;
}

static void render_traffic(struct out *o, const struct gw_stats *s)
{
    const char *lab[5] = {"result", "ok", NULL, NULL, NULL};
    const char *rlab[3] = {"reason", NULL, NULL};
    int r;

    single_u64(o, "mtlsgate_connections_open", "gauge", "Client connections open now.",
               s->conns_open);
    single_u64(o, "mtlsgate_connections_parked", "gauge",
               "Open client connections waiting for a request with their buffers given back.",
               s->conns_parked);
    single_u64(o, "mtlsgate_connections_total", "counter", "Client connections accepted.",
               s->conns_total);
    family(o, "mtlsgate_handshakes_total", "counter",
           "TLS handshakes by result; refused ones by the reason of the refusal.");
    sample_u64(o, "mtlsgate_handshakes_total", lab, s->handshakes[TLS_OK]);
    lab[1] = "refused";
    lab[2] = "reason";
    for (r = 0; r < TLS_REFUSAL__COUNT; r++) {
        if (r == TLS_OK || request_refusal(r))
            continue;
        lab[3] = tls_refusal_name((enum tls_refusal)r);
        sample_u64(o, "mtlsgate_handshakes_total", lab, s->handshakes[r]);
    }
    family(o, "mtlsgate_requests_refused_total", "counter",
           "Requests answered 403 for who sent them: no identity for the certificate's CN "
           "(unknown_identity), the identity's rules do not allow it (forbidden), or the "
           "connection's certificate is no longer admitted since a reload or its expiry "
           "(the handshake's reasons: revoked, expired, untrusted_issuer, ...).");
    for (r = 0; r < TLS_REFUSAL__COUNT; r++) {
        if (!request_refused_for(r))
            continue;
        rlab[1] = tls_refusal_name((enum tls_refusal)r);
        sample_u64(o, "mtlsgate_requests_refused_total", rlab, s->requests_refused[r]);
    }
    single_u64(o, "mtlsgate_handshakes_resumed_total", "counter",
               "Admitted handshakes that resumed a session (counted in handshakes_total too).",
               s->handshakes_resumed);
    single_u64(o, "mtlsgate_upstream_connect_failures_total", "counter",
               "Upstream connects that were refused, failed or timed out.",
               s->upstream_connect_fail);
    single_u64(o, "mtlsgate_bytes_received_total", "counter",
               "Request bytes read from clients.", s->bytes_in);
    single_u64(o, "mtlsgate_bytes_sent_total", "counter", "Response bytes sent to clients.",
               s->bytes_out);
}

static void render_requests(struct out *o, const struct gw_metrics_input *in)
{
    const char *lab[5] = {"class", NULL, "identity", NULL, NULL};
    size_t row, cls, rows;
    uint64_t v;

    family(o, "mtlsgate_requests_total", "counter",
           "Requests answered, by status class and client identity (\"_none\": no "
           "identity yet; \"_other\": identities past the limit of distinct ones, per "
           "worker or in all; an identity that has its own series keeps it).");
    if (!in->ids) {
        lab[2] = NULL;
        for (cls = 1; cls <= GW_IDSTATS_CLASSES; cls++) {
            lab[1] = gw_idstats_class_name(cls % GW_IDSTATS_CLASSES);
            sample_u64(o, "mtlsgate_requests_total", lab,
                       in->stats->requests[cls % GW_IDSTATS_CLASSES]);
        }
        return;
    }
    rows = gw_idstats_rows(in->ids);
    for (row = 0; row < rows; row++) {
        lab[3] = gw_idstats_row_name(in->ids, row);
        /* 1xx..5xx, then other: the order an operator reads them in. */
        for (cls = 1; cls <= GW_IDSTATS_CLASSES; cls++) {
            v = gw_idstats_row_count(in->ids, row, cls % GW_IDSTATS_CLASSES);
            if (!v)
                continue;
            lab[1] = gw_idstats_class_name(cls % GW_IDSTATS_CLASSES);
            sample_u64(o, "mtlsgate_requests_total", lab, v);
        }
    }
}

/*
 * The upstream latency histogram. stats.h keeps per-bucket counts; the
 * exposition wants cumulative ones, and _count equal to the +Inf bucket, so
 * _count is the sum of the buckets (read one by one while workers write, it
 * may differ by a few from upstream_latency_count; the buckets win).
 */
static void render_latency(struct out *o, const struct gw_stats *s)
{
    const char *name = "mtlsgate_upstream_latency_seconds";
    const char *lab[3] = {"le", NULL, NULL};
    char le[32], bname[64], val[48];
    uint64_t cum = 0;
    size_t i;

    family(o, name, "histogram",
           "Time from taking an upstream connection to the last byte of its response.");
    snprintf(bname, sizeof(bname), "%s_bucket", name);
    for (i = 0; i < GW_LAT_N; i++) {
        cum += s->upstream_latency[i];
        lab[1] = gw_metrics_ms_to_seconds(gw_lat_bounds_ms[i], le, sizeof(le));
        sample_u64(o, bname, lab, cum);
    }
    cum += s->upstream_latency[GW_LAT_N];
    lab[1] = "+Inf";
    sample_u64(o, bname, lab, cum);
    snprintf(bname, sizeof(bname), "%s_sum", name);
    snprintf(val, sizeof(val), "%" PRIu64 ".%06" PRIu64, s->upstream_latency_sum_us / 1000000,
             s->upstream_latency_sum_us % 1000000);
    sample(o, bname, NULL, val);
    snprintf(bname, sizeof(bname), "%s_count", name);
    sample_u64(o, bname, NULL, cum);
}

static void render_config(struct out *o, const struct gw_metrics_input *in)
{
    const char *lab[3] = {"result", "ok", NULL};
    time_t t;

    family(o, "mtlsgate_reloads_total", "counter",
           "Configuration reloads by result (a failed one leaves the previous in service).");
    sample_u64(o, "mtlsgate_reloads_total", lab, in->reloads_ok);
    lab[1] = "failed";
    sample_u64(o, "mtlsgate_reloads_total", lab, in->reloads_failed);
    if (in->config_loaded) {
        family(o, "mtlsgate_config_loaded_timestamp_seconds", "gauge",
               "When the configuration in service was loaded (Unix time).");
        sample_time(o, "mtlsgate_config_loaded_timestamp_seconds", NULL, in->config_loaded);
    }
    if (in->generation)
        single_u64(o, "mtlsgate_config_generation", "gauge",
                   "Generation of the configuration in service: 1 at start, +1 per reload.",
                   in->generation);
    if (in->server_cert && tls_x509_not_after(in->server_cert, &t) == 0) {
        family(o, "mtlsgate_server_certificate_expiry_timestamp_seconds", "gauge",
               "notAfter of the server certificate in service (Unix time).");
        sample_time(o, "mtlsgate_server_certificate_expiry_timestamp_seconds", NULL, t);
    }
}

/* 1 when a certificate equal to sk[i] is at an index below i. */
static int seen_before(const STACK_OF(X509) *sk, int i)
{
    int j;

    for (j = 0; j < i; j++)
        if (X509_cmp(sk_X509_value(sk, j), sk_X509_value(sk, i)) == 0)
            return 1;
    return 0;
}

static void render_cas(struct out *o, const STACK_OF(X509) *sk, const char *kind)
{
    const char *name = "mtlsgate_ca_certificate_expiry_timestamp_seconds";
    const char *lab[7] = {"kind", kind, "subject", NULL, "serial", NULL, NULL};
    char subject[NAME_BUF], serial[128];
    X509 *x;
    time_t t;
    int i;

    for (i = 0; sk && i < sk_X509_num(sk); i++) {
        x = sk_X509_value(sk, i);
        if (seen_before(sk, i) || tls_x509_not_after(x, &t) < 0)
            continue;
        lab[3] = tls_x509_subject(x, subject, sizeof(subject));
        lab[5] = tls_x509_serial_hex(x, serial, sizeof(serial));
        sample_time(o, name, lab, t);
    }
}

/*
 * One sample per CRL issuer name: the earliest nextUpdate of that issuer's
 * CRLs (two CRLs of one name, e.g. an old and a renewed intermediate with
 * the same subject, would otherwise be two series with equal labels).
 */
static void render_crls(struct out *o, const STACK_OF(X509_CRL) *crls)
{
    const char *lab[3] = {"issuer", NULL, NULL};
    char issuer[NAME_BUF], other[NAME_BUF];
    time_t t, t2;
    int i, j, dup;

    for (i = 0; crls && i < sk_X509_CRL_num(crls); i++) {
        if (tls_asn1_time_epoch(X509_CRL_get0_nextUpdate(sk_X509_CRL_value(crls, i)), &t) < 0)
            continue;
        tls_x509_name_str(X509_CRL_get_issuer(sk_X509_CRL_value(crls, i)), issuer, sizeof(issuer));
        for (dup = 0, j = 0; j < sk_X509_CRL_num(crls) && !dup; j++) {
            if (j == i ||
                tls_asn1_time_epoch(X509_CRL_get0_nextUpdate(sk_X509_CRL_value(crls, j)), &t2) < 0)
                continue;
            tls_x509_name_str(X509_CRL_get_issuer(sk_X509_CRL_value(crls, j)), other, sizeof(other));
            if (strcmp(issuer, other) != 0)
                continue;
            if (j < i)
                dup = 1;           /* rendered with the first of its name */
            else if (t2 < t)
                t = t2;
        }
        if (dup)
            continue;
        lab[1] = issuer;
        sample_time(o, "mtlsgate_crl_next_update_timestamp_seconds", lab, t);
    }
}

static void render_trust(struct out *o, const struct gw_metrics_input *in)
{
    const STACK_OF(X509_CRL) *crls = tls_trust_get0_crls(in->trust);

    family(o, "mtlsgate_ca_certificate_expiry_timestamp_seconds", "gauge",
           "notAfter of each CA in client_ca (Unix time), by kind, subject and serial.");
    render_cas(o, tls_trust_get0_intermediates(in->trust), "intermediate");
    render_cas(o, tls_trust_get0_roots(in->trust), "root");
    if (crls && sk_X509_CRL_num(crls) > 0) {
        family(o, "mtlsgate_crl_next_update_timestamp_seconds", "gauge",
               "nextUpdate of the loaded CRLs (Unix time), the earliest per issuer.");
        render_crls(o, crls);
    }
    single_u64(o, "mtlsgate_crls_past_next_update", "gauge",
               "Loaded CRLs past their nextUpdate (still enforced; refresh them).",
               (uint64_t)tls_trust_crl_stale(in->trust, in->now, NULL, 0));
}

int gw_metrics_render(struct evbuffer *out, const struct gw_metrics_input *in)
{
    struct out o = {out, 0};

    render_info(&o, in);
    render_traffic(&o, in->stats);
    render_requests(&o, in);
    render_latency(&o, in->stats);
    render_config(&o, in);
    if (in->trust)
        render_trust(&o, in);
    if (in->has_tls_sessions)
        single_u64(&o, "mtlsgate_tls_session_cache_sessions", "gauge",
                   "Sessions held in the in-memory session cache (tls.session_cache).",
                   in->tls_sessions);
    if (in->has_log_dropped)
        single_u64(&o, "mtlsgate_log_lines_dropped_total", "counter",
                   "Log lines dropped because a log buffer was full.", in->log_dropped);
    return o.failed ? -1 : 0;
}
