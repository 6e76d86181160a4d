/*
 * test_proxy_stats.c - latency buckets, status classes, snapshots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

static void test_buckets(void **state)
{
    (void)state;
    assert_int_equal(gw_stats_latency_bucket(0), 0);
    assert_int_equal(gw_stats_latency_bucket(1000), 0);     /* 1 ms: "<= 1 ms" */
    assert_int_equal(gw_stats_latency_bucket(1001), 1);
    assert_int_equal(gw_stats_latency_bucket(2000), 1);
    assert_int_equal(gw_stats_latency_bucket(4999), 2);
    assert_int_equal(gw_stats_latency_bucket(10000000), GW_LAT_N - 1); /* 10 s */
    assert_int_equal(gw_stats_latency_bucket(10000001), GW_LAT_N);     /* +Inf */
}

static void test_observe_and_snapshot(void **state)
{
    struct gw_stats a, b, sum;

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&sum, 0, sizeof(sum));
    gw_stats_observe_latency(&a, 500);
    gw_stats_observe_latency(&a, 30000);
    gw_stats_observe_latency(&b, 30000000);
    gw_stats_count_status(&a, 200);
    gw_stats_count_status(&a, 204);
    gw_stats_count_status(&b, 403);
    gw_stats_count_status(&b, 502);
    gw_stats_count_status(&b, 99);
    gw_stat_add(&a.conns_open, 3);
    gw_stat_sub(&a.conns_open, 1);
    gw_stat_add(&b.handshakes[TLS_REFUSE_REVOKED], 2);
    gw_stats_snapshot_add(&sum, &a);
    gw_stats_snapshot_add(&sum, &b);
    assert_int_equal(sum.upstream_latency_count, 3);
    assert_int_equal(sum.upstream_latency_sum_us, 500 + 30000 + 30000000);
    assert_int_equal(sum.upstream_latency[0], 1);
    assert_int_equal(sum.upstream_latency[gw_stats_latency_bucket(30000)], 1);
    assert_int_equal(sum.upstream_latency[GW_LAT_N], 1);
    assert_int_equal(sum.requests[2], 2);
    assert_int_equal(sum.requests[4], 1);
    assert_int_equal(sum.requests[5], 1);
    assert_int_equal(sum.requests[0], 1);
    assert_int_equal(sum.conns_open, 2);
    assert_int_equal(sum.handshakes[TLS_REFUSE_REVOKED], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_observe_and_snapshot),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
