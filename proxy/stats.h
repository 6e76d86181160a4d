/*
 * stats.h - per-worker counters of the gateway.
 *
 * Each worker owns one struct gw_stats and is the only thread that writes
 * it; the counters are plain 64-bit integers updated with relaxed atomic
 * stores (a plain "mov" on x86, no lock prefix), so that a reader on another
 * thread (the metrics exporter) may take a torn-free snapshot with
 * gw_stats_snapshot_add() without any lock on the request path.
 */
#ifndef MTLS_PROXY_STATS_H
#define MTLS_PROXY_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "tls_trust.h"

/* Upper bounds (inclusive, milliseconds) of the upstream latency buckets. */
#define GW_LAT_BOUNDS_MS {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
#define GW_LAT_N 13

extern const uint64_t gw_lat_bounds_ms[GW_LAT_N];

struct gw_stats {
    /* Handshakes by result: [TLS_OK] = admitted, else by refusal reason
     * (the reasons of the handshake itself: not unknown_identity or
     * forbidden, which are answers to requests). */
    uint64_t handshakes[TLS_REFUSAL__COUNT];
    uint64_t handshakes_resumed;  /* of handshakes[TLS_OK]: resumed sessions */
    /* Requests answered 403 for who sent them, by reason:
     * [TLS_REFUSE_UNKNOWN_IDENTITY], [TLS_REFUSE_FORBIDDEN]. */
    uint64_t requests_refused[TLS_REFUSAL__COUNT];
    /* Requests answered, by status class: [1]..[5] = 1xx..5xx, [0] other. */
    uint64_t requests[6];
    uint64_t bytes_in;            /* request bytes read from clients */
    uint64_t bytes_out;           /* response bytes queued to clients */
    uint64_t conns_open;          /* gauge: client connections now open */
    uint64_t conns_parked;        /* gauge: of those, parked (conn.c) */
    uint64_t conns_total;         /* client connections accepted */
    uint64_t upstream_connect_fail; /* upstream connects refused / timed out */
    /*
     * Upstream latency (from taking an upstream connection to the last
     * byte of the response): [i] counts observations <= gw_lat_bounds_ms[i]
     * and > the bound before it (NOT cumulative); [GW_LAT_N] is +Inf.
     */
    uint64_t upstream_latency[GW_LAT_N + 1];
    uint64_t upstream_latency_count;
    uint64_t upstream_latency_sum_us;
};

/* Adds n to a counter owned by the calling thread (single writer). */
static inline void gw_stat_add(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* Subtracts n (for gauges such as conns_open); single writer. */
static inline void gw_stat_sub(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) - n, __ATOMIC_RELAXED);
}

/* Index of the latency bucket for a duration in microseconds (0..GW_LAT_N). */
size_t gw_stats_latency_bucket(uint64_t us);

/* Records one upstream latency observation (microseconds). */
void gw_stats_observe_latency(struct gw_stats *s, uint64_t us);

/* Counts one answered request by its status class. */
void gw_stats_count_status(struct gw_stats *s, int status);

/*
 * Adds every counter of src (read with relaxed atomic loads, so src may be
 * written concurrently by its worker) into sum (owned by the caller).
 */
void gw_stats_snapshot_add(struct gw_stats *sum, const struct gw_stats *src);

#endif
