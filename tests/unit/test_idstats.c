/*
 * test_idstats.c - the merged per-identity table stays stable between
 * scrapes (proxy/idstats.h, "Stable series").
 *
 * The admin listener keeps one sum for the life of the process; a scrape
 * clears its counts (gw_idstats_clear_counts) and adds every worker's table
 * into it, as scrape() below does. With more than GW_IDSTATS_MAX identities
 * across workers, a worker that keeps learning new names must not push
 * another worker's identities out of their series into "_other" between two
 * scrapes (which a Prometheus reader sees as a series vanishing and a
 * counter reset): every series of one scrape is in the next with a value at
 * least as large, "_other" only grows, and once the sum is full the set of
 * names is the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "idstats.h"

#define N_WORKERS 2
#define MAX_SERIES ((GW_IDSTATS_MAX + 2) * GW_IDSTATS_CLASSES)

/* One scrape's view: (name, class) -> value, for the non-zero series. */
struct view {
    size_t n;
    struct {
        char name[GW_IDSTATS_NAME_MAX];
        size_t cls;
        uint64_t v;
    } s[MAX_SERIES];
};

/* N_WORKERS per-worker tables, as each worker owns one. */
static void workers_new(struct gw_idstats **w)
{
    size_t k;

    for (k = 0; k < N_WORKERS; k++) {
        w[k] = gw_idstats_new();
        assert_non_null(w[k]);
    }
}

static void workers_free(struct gw_idstats **w)
{
    size_t k;

    for (k = 0; k < N_WORKERS; k++)
        gw_idstats_free(w[k]);
}

/* What the admin listener does per scrape, into the one sum it keeps. */
static void scrape(struct gw_idstats *sum, struct gw_idstats *const *w, struct view *out)
{
    size_t k, row, cls;
    uint64_t v;

    gw_idstats_clear_counts(sum);
    for (k = 0; k < N_WORKERS; k++)
        gw_idstats_snapshot_add(sum, w[k]);
    out->n = 0;
    for (row = 0; row < gw_idstats_rows(sum); row++) {
        for (cls = 0; cls < GW_IDSTATS_CLASSES; cls++) {
            v = gw_idstats_row_count(sum, row, cls);
            if (!v)
                continue; /* metrics.c renders only series with a count */
            assert_true(out->n < MAX_SERIES);
            snprintf(out->s[out->n].name, sizeof(out->s[out->n].name), "%s",
                     gw_idstats_row_name(sum, row));
            out->s[out->n].cls = cls;
            out->s[out->n].v = v;
            out->n++;
        }
    }
}

/* The value of (name, cls) in view, or -1 when the series is absent. */
static int64_t lookup(const struct view *vw, const char *name, size_t cls)
{
    size_t i;

    for (i = 0; i < vw->n; i++)
        if (vw->s[i].cls == cls && strcmp(vw->s[i].name, name) == 0)
            return (int64_t)vw->s[i].v;
    return -1;
}

/* Every series of before is in after with a value >= (no reset, no flap). */
static void assert_monotone(const struct view *before, const struct view *after)
{
    size_t i;
    int64_t v;

    for (i = 0; i < before->n; i++) {
        v = lookup(after, before->s[i].name, before->s[i].cls);
        if (v < 0)
            fail_msg("series identity=\"%s\" class=%s vanished between scrapes (was %llu)",
                     before->s[i].name, gw_idstats_class_name(before->s[i].cls),
                     (unsigned long long)before->s[i].v);
        if ((uint64_t)v < before->s[i].v)
            fail_msg("series identity=\"%s\" class=%s went down: %llu -> %lld",
                     before->s[i].name, gw_idstats_class_name(before->s[i].cls),
                     (unsigned long long)before->s[i].v, (long long)v);
    }
}

/* The same (name, class) series in both views. */
static void assert_same_series(const struct view *a, const struct view *b)
{
    size_t i;

    assert_int_equal(a->n, b->n);
    for (i = 0; i < b->n; i++)
        if (lookup(a, b->s[i].name, b->s[i].cls) < 0)
            fail_msg("series identity=\"%s\" class=%s appeared once the sum was full",
                     b->s[i].name, gw_idstats_class_name(b->s[i].cls));
}

/* Sum over every series of a view (requests are neither lost nor doubled). */
static uint64_t view_total(const struct view *vw)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < vw->n; i++)
        n += vw->s[i].v;
    return n;
}

static void count_range(struct gw_idstats *w, const char *prefix, size_t from, size_t to,
                        int status)
{
    char name[32];
    size_t i;

    for (i = from; i < to; i++) {
        snprintf(name, sizeof(name), "%s-%zu", prefix, i);
        gw_idstats_count(w, name, status);
    }
}

/*
 * The order that made series flap with a sum rebuilt per scrape: worker 1
 * learns 100 names while worker 0 has 200, so the first scrape names
 * worker 0's 200 and worker 1's first 56; then worker 0 learns 56 more,
 * which took the 256 named rows of the next scrape from worker 1's 56.
 */
static void test_no_flapping_across_workers(void **state)
{
    struct gw_idstats *w[N_WORKERS], *sum = gw_idstats_new();
    struct view *v1 = calloc(1, sizeof(*v1)), *v2 = calloc(1, sizeof(*v2));
    struct view *v3 = calloc(1, sizeof(*v3)), *v4 = calloc(1, sizeof(*v4));
    uint64_t requests = 0;

    (void)state;
    assert_non_null(sum);
    assert_non_null(v1);
    assert_non_null(v2);
    assert_non_null(v3);
    assert_non_null(v4);
    workers_new(w);

    count_range(w[0], "a", 0, 200, 200);
    count_range(w[1], "b", 0, 100, 200);
    count_range(w[1], "b", 0, 100, 403);
    gw_idstats_count(w[1], NULL, 400);
    requests += 200 + 200 + 1;
    scrape(sum, w, v1);
    assert_int_equal(gw_idstats_rows(sum), GW_IDSTATS_MAX + 2); /* the sum is full */
    assert_true(lookup(v1, "b-0", 2) == 1);
    assert_true(lookup(v1, GW_IDSTATS_OTHER, 2) > 0);            /* b-56.. overflowed */
    assert_int_equal(view_total(v1), requests);

    /* Worker 0 learns 56 new identities; worker 1 and 0 repeat old ones. */
    count_range(w[0], "a", 200, 256, 200);
    count_range(w[1], "b", 0, 100, 200);
    count_range(w[0], "a", 0, 10, 503);
    requests += 56 + 100 + 10;
    scrape(sum, w, v2);
    assert_monotone(v1, v2);
    assert_int_equal(view_total(v2), requests);
    /* b-0 kept its own series and got worker 1's new request. */
    assert_true(lookup(v2, "b-0", 2) == 2);
    /* a-200.. came after the sum was full: they are counted under _other. */
    assert_true(lookup(v2, "a-200", 2) < 0);
    assert_true(lookup(v2, GW_IDSTATS_OTHER, 2) >= lookup(v1, GW_IDSTATS_OTHER, 2) + 56);

    /* A scrape with nothing new: exactly the same series, same values. */
    scrape(sum, w, v3);
    assert_same_series(v2, v3);
    assert_monotone(v2, v3);
    assert_monotone(v3, v2);

    /* Both workers overflow their own tables: only _other grows. */
    count_range(w[1], "c", 0, 300, 200);
    count_range(w[0], "d", 0, 300, 200);
    requests += 600;
    scrape(sum, w, v4);
    assert_monotone(v3, v4);
    assert_same_series(v3, v4);
    assert_int_equal(view_total(v4), requests);
    assert_true(lookup(v4, GW_IDSTATS_OTHER, 2) == lookup(v3, GW_IDSTATS_OTHER, 2) + 600);

    workers_free(w);
    gw_idstats_free(sum);
    free(v1);
    free(v2);
    free(v3);
    free(v4);
}

/*
 * While the sum has room every identity gets its own series whatever the
 * worker order; clearing keeps the names and zeroes the counts.
 */
static void test_clear_keeps_names(void **state)
{
    struct gw_idstats *w[N_WORKERS], *sum = gw_idstats_new();
    struct view *v1 = calloc(1, sizeof(*v1)), *v2 = calloc(1, sizeof(*v2));
    size_t k;

    (void)state;
    assert_non_null(sum);
    assert_non_null(v1);
    assert_non_null(v2);
    workers_new(w);
    count_range(w[1], "x", 0, 3, 200);
    scrape(sum, w, v1);
    assert_int_equal(gw_idstats_rows(sum), 3 + 2);
    count_range(w[0], "y", 0, 3, 500);
    count_range(w[0], "x", 0, 1, 200);
    scrape(sum, w, v2);
    assert_monotone(v1, v2);
    assert_int_equal(gw_idstats_rows(sum), 6 + 2);
    assert_string_equal(gw_idstats_row_name(sum, 0), "x-0"); /* first seen first */
    assert_string_equal(gw_idstats_row_name(sum, 3), "y-0");
    assert_true(lookup(v2, "x-0", 2) == 2);
    assert_true(lookup(v2, "y-2", 5) == 1);

    gw_idstats_clear_counts(sum);
    assert_int_equal(gw_idstats_rows(sum), 6 + 2);
    for (k = 0; k < gw_idstats_rows(sum); k++)
        assert_int_equal(gw_idstats_row_count(sum, k, 2), 0);
    gw_idstats_clear_counts(NULL); /* NULL is fine */

    workers_free(w);
    gw_idstats_free(sum);
    free(v1);
    free(v2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_flapping_across_workers),
        cmocka_unit_test(test_clear_keeps_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
