/*
 * stats.c - per-worker counters: bucketing and snapshots (see stats.h).
 */
#include "stats.h"

const uint64_t gw_lat_bounds_ms[GW_LAT_N] = GW_LAT_BOUNDS_MS;

/* Linear scan: 13 bounds, most observations land in the first few. */
size_t gw_stats_latency_bucket(uint64_t us)
{
    size_t i;

    for (i = 0; i < GW_LAT_N; i++)
        if (us <= gw_lat_bounds_ms[i] * 1000)
            return i;
    return GW_LAT_N;
}

void gw_stats_observe_latency(struct gw_stats *s, uint64_t us)
{
    gw_stat_add(&s->upstream_latency[gw_stats_latency_bucket(us)], 1);
    gw_stat_add(&s->upstream_latency_count, 1);
    gw_stat_add(&s->upstream_latency_sum_us, us);
}

void gw_stats_count_status(struct gw_stats *s, int status)
{
    int cls = status / 100;

    gw_stat_add(&s->requests[cls >= 1 && cls <= 5 ? cls : 0], 1);
}

static void add_relaxed(uint64_t *dst, const uint64_t *src)
{
    *dst += __atomic_load_n(src, __ATOMIC_RELAXED);
}

void gw_stats_snapshot_add(struct gw_stats *sum, const struct gw_stats *src)
{
    size_t i;

    for (i = 0; i < TLS_REFUSAL__COUNT; i++) {
        add_relaxed(&sum->handshakes[i], &src->handshakes[i]);
        add_relaxed(&sum->requests_refused[i], &src->requests_refused[i]);
    }
    add_relaxed(&sum->handshakes_resumed, &src->handshakes_resumed);
    for (i = 0; i < 6; i++)
        add_relaxed(&sum->requests[i], &src->requests[i]);
    add_relaxed(&sum->bytes_in, &src->bytes_in);
    add_relaxed(&sum->bytes_out, &src->bytes_out);
    add_relaxed(&sum->conns_open, &src->conns_open);
    add_relaxed(&sum->conns_parked, &src->conns_parked);
    add_relaxed(&sum->conns_total, &src->conns_total);
    add_relaxed(&sum->upstream_connect_fail, &src->upstream_connect_fail);
    for (i = 0; i <= GW_LAT_N; i++)
        add_relaxed(&sum->upstream_latency[i], &src->upstream_latency[i]);
    add_relaxed(&sum->upstream_latency_count, &src->upstream_latency_count);
    add_relaxed(&sum->upstream_latency_sum_us, &src->upstream_latency_sum_us);
}
