/*
 * metrics.h - the gateway's metrics in the Prometheus text format 0.0.4.
 *
 * Rendering is a pure function of a struct the caller fills (the admin
 * listener, from the workers' summed counters and the runtime in service),
 * so it is unit-tested on fixed inputs and checked with `promtool check
 * metrics`. Families (every one with # HELP and # TYPE):
 *
 *   mtlsgate_up                                   gauge, always 1
 *   mtlsgate_build_info{version,openssl,libevent} gauge, 1
 *   mtlsgate_connections_open                     gauge
 *   mtlsgate_connections_total                    counter
 *   mtlsgate_handshakes_total{result="ok"}        counter
 *   mtlsgate_handshakes_total{result="refused",reason=R}
 *                                                 one per tls_refusal_name(),
 *                                                 0 included, so that every
 *                                                 reason is always there
 *   mtlsgate_requests_total{class,identity}       counter; class "1xx".."5xx"
 *                                                 or "other"; rows with a
 *                                                 count only (see idstats.h)
 *   mtlsgate_upstream_latency_seconds             histogram (_bucket{le},
 *                                                 cumulative, _sum, _count)
 *   mtlsgate_upstream_connect_failures_total      counter
 *   mtlsgate_bytes_received_total                 counter (client requests)
 *   mtlsgate_bytes_sent_total                     counter (client responses)
 *   mtlsgate_reloads_total{result="ok"|"failed"}  counter
 *   mtlsgate_config_loaded_timestamp_seconds      gauge (when config_loaded)
 *   mtlsgate_config_generation                    gauge (when generation)
 *   mtlsgate_server_certificate_expiry_timestamp_seconds  gauge (with a cert)
 *   mtlsgate_ca_certificate_expiry_timestamp_seconds{kind="intermediate"|
 *       "root",subject,serial}                    gauge (with a trust set)
 *   mtlsgate_crl_next_update_timestamp_seconds{issuer}  gauge; the earliest
 *                                                 nextUpdate among the CRLs
 *                                                 of that issuer name
 *   mtlsgate_crls_past_next_update                gauge (with a trust set)
 *   mtlsgate_log_lines_dropped_total              counter (when has_log_dropped)
 *
 * Subjects and issuers are RFC 2253 strings (tls_x509_subject). Label values
 * are escaped (\\, \", \n); HELP text (\\, \n).
 */
#ifndef MTLS_PROXY_METRICS_H
#define MTLS_PROXY_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/types.h>

#include "idstats.h"
#include "stats.h"
#include "tls_trust.h"

#define GW_METRICS_MUSTCHECK __attribute__((warn_unused_result))
#define GW_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct evbuffer;

struct gw_metrics_input {
    const struct gw_stats *stats;    /* required: every worker's counters summed */
    /* Requests by identity, summed; NULL: requests_total by class only
       (from stats->requests, without an identity label). */
    const struct gw_idstats *ids;
    uint64_t reloads_ok, reloads_failed;
    uint64_t generation;             /* 0: mtlsgate_config_generation left out */
    time_t config_loaded;            /* 0: left out */
    X509 *server_cert;               /* NULL: left out */
    const struct tls_trust *trust;   /* NULL: CA and CRL families left out */
    time_t now;                      /* for mtlsgate_crls_past_next_update */
    int has_log_dropped;
    uint64_t log_dropped;
    int has_tls_sessions;            /* 0: the session cache gauge left out */
    uint64_t tls_sessions;
    const char *version;             /* NULL: MTLSGATE_VERSION */
};

/*
 * Appends the whole exposition to out. Borrows everything in in. 0, or -1
 * when out of memory (out then holds a partial text: discard it).
 */
int gw_metrics_render(struct evbuffer *out, const struct gw_metrics_input *in) GW_METRICS_MUSTCHECK;

/*
 * Appends s to out as a label value: \ " and newline escaped as \\ \" \n.
 * 0 / -1 (out of memory).
 */
int gw_metrics_label_value(struct evbuffer *out, const char *s) GW_METRICS_MUSTCHECK;

/* "0.001" for 1 ms, "2.5" for 2500 ms, "10" for 10000 ms: an le="" value. */
const char *gw_metrics_ms_to_seconds(uint64_t ms, char *buf, size_t len);

#endif
