/*
 * test_proxy_identity.c - the config-map identity source.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "identity.h"

struct answer {
    int called;
    enum gw_id_status status;
    char identity[64];
    size_t n_allow;
    int has_allow;
};

static void cb(void *arg, const struct gw_id_answer *a)
{
    struct answer *out = arg;

    out->called++;
    out->status = a->status;
    out->identity[0] = '\0';
    if (a->identity)
        strncpy(out->identity, a->identity, sizeof(out->identity) - 1);
    out->n_allow = a->n_allow;
    out->has_allow = a->has_allow;
}

static struct cfg_rule rules2[] = {{"GET", "/"}, {"POST", "/attestations"}};

static struct cfg_identity map[] = {
    {"zeta", "svc-zeta", NULL, 0, 0},
    {"attestor2", "svc-attestor-2", rules2, 2, 1},
    {"attestor1", "svc-attestor-1", NULL, 0, 0},
};

static struct answer lookup(struct gw_id_source *src, const char *cn)
{
    struct answer a;
    void *pending = (void *)1;

    memset(&a, 0, sizeof(a));
    assert_int_equal(gw_id_lookup(src, NULL, cn, cb, &a, &pending), 0);
    assert_null(pending); /* the map answers synchronously */
    assert_int_equal(a.called, 1);
    return a;
}

static void test_map(void **state)
{
    struct cfg cfg;
    struct gw_id_source *src;
    struct answer a;
    char err[256];

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.identities.unknown = CFG_UNKNOWN_REJECT;
    cfg.identities.map = map;
    cfg.identities.n_map = 3;
    src = gw_id_source_map_new(&cfg, err, sizeof(err));
    assert_non_null(src);
    a = lookup(src, "attestor1");
    assert_int_equal(a.status, GW_ID_FOUND);
    assert_string_equal(a.identity, "svc-attestor-1");
    assert_int_equal(a.has_allow, 0);
    a = lookup(src, "attestor2");
    assert_string_equal(a.identity, "svc-attestor-2");
    assert_int_equal(a.has_allow, 1);
    assert_int_equal(a.n_allow, 2);
    a = lookup(src, "zeta");
    assert_string_equal(a.identity, "svc-zeta");
    a = lookup(src, "ATTESTOR1"); /* CNs match exactly */
    assert_int_equal(a.status, GW_ID_UNKNOWN);
    a = lookup(src, "attestor");
    assert_int_equal(a.status, GW_ID_UNKNOWN);
    a = lookup(src, "");
    assert_int_equal(a.status, GW_ID_UNKNOWN);
    gw_id_cancel(src, NULL);
    gw_id_source_free(src);
    gw_id_source_free(NULL);
}

static void test_unknown_cn_policy(void **state)
{
    struct cfg cfg;
    struct gw_id_source *src;
    struct answer a;
    char err[256];

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.identities.unknown = CFG_UNKNOWN_CN;
    src = gw_id_source_map_new(&cfg, err, sizeof(err)); /* empty map */
    assert_non_null(src);
    a = lookup(src, "stranger");
    assert_int_equal(a.status, GW_ID_FOUND);
    assert_string_equal(a.identity, "stranger");
    assert_int_equal(a.has_allow, 0);
    gw_id_source_free(src);
}

static void test_duplicate_cn(void **state)
{
    struct cfg_identity dup[] = {{"a", "x", NULL, 0, 0}, {"a", "y", NULL, 0, 0}};
    struct cfg cfg;
    char err[256] = "";

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.identities.map = dup;
    cfg.identities.n_map = 2;
    assert_null(gw_id_source_map_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "'a'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_unknown_cn_policy),
        cmocka_unit_test(test_duplicate_cn),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
