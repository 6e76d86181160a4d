/*
 * test_proxy_route.c - request-target safety and allow rules, as tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

struct safe_case {
    const char *path;
    int safe;
};

static const struct safe_case safe_cases[] = {
    {"/", 1},
    {"/attestations", 1},
    {"/attestations/42?x=1", 1},
    {"/a/.hidden", 1},
    {"/a/...", 1},
    {"/a..b/c", 1},
    {"/a?q=/../x", 1},          /* the query is not a path */
    {"/a?q=%2e%2e", 1},
    {"*", 1},
    {"", 0},
    {"a/b", 0},
    {"/..", 0},
    {"/.", 0},
    {"/a/..", 0},
    {"/a/.", 0},
    {"/a/../b", 0},
    {"/a/./b", 0},
    {"/../etc/passwd", 0},
    {"/a/%2e%2e/b", 0},
    {"/a/%2E%2E/b", 0},
    {"/a/.%2e/b", 0},
    {"/a%2fb", 0},
    {"/a%2Fb", 0},
    {"/a%5cb", 0},
    {"/a%5Cb", 0},
    {"/a\\b", 0},
    {"/a/..?x", 0},
    /* dot-segments with path parameters: Tomcat/Spring strip ";..." */
    {"/attestations/..;/admin", 0},
    {"/attestations/..;", 0},
    {"/attestations/..;x=1/admin", 0},
    {"/attestations/.;/admin", 0},
    {"/attestations/..%3b/admin", 0},
    {"/attestations/..%3B/admin", 0},
    {"/attestations/.%3bx/admin", 0},
    {"/attestations/%2e%2e;/admin", 0},
    {"/a;x/b", 1},              /* a parameter on a name is no dot-segment */
    {"/a/...;/b", 1},
    {"/a/..b;/c", 1},
    {"/a/;/b", 1},
    {"/a?q=/..;/x", 1},         /* the query is not a path */
};

static void test_path_safe(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(safe_cases) / sizeof(safe_cases[0]); i++) {
        const struct safe_case *t = &safe_cases[i];
        int got = gw_route_path_safe(t->path, strlen(t->path));

        if (got != t->safe)
            fail_msg("path '%s': expected %s", t->path, t->safe ? "safe" : "unsafe");
    }
}

struct rule_case {
    const char *rule_method;   /* NULL = any */
    const char *prefix;
    const char *method;
    const char *path;
    int match;
};

static const struct rule_case rule_cases[] = {
    {"POST", "/attestations", "POST", "/attestations", 1},
    {"POST", "/attestations", "POST", "/attestations/1", 1},
    {"POST", "/attestations", "POST", "/attestations?x=1", 1},
    {"POST", "/attestations", "POST", "/attestationsX", 0},
    {"POST", "/attestations", "POST", "/attestation", 0},
    {"POST", "/attestations", "GET", "/attestations", 0},
    {"POST", "/attestations", "post", "/attestations", 0}, /* methods are case-sensitive */
    {"GET", "/", "GET", "/anything/at/all", 1},
    {"GET", "/", "GET", "/", 1},
    {"GET", "/api/", "GET", "/api/x", 1},
    {"GET", "/api/", "GET", "/api", 0},
    {NULL, "/x", "DELETE", "/x/1", 1},
    {NULL, "/x", "DELETE", "/y", 0},
    {"OPTIONS", "/", "OPTIONS", "*", 1},
    {"OPTIONS", "/x", "OPTIONS", "*", 0},
};

static void test_rule_match(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
        const struct rule_case *t = &rule_cases[i];
        struct cfg_rule r = {(char *)t->rule_method, (char *)t->prefix};
        int got = gw_route_rule_match(&r, t->method, strlen(t->method), t->path,
                                      strlen(t->path));

        if (got != t->match)
            fail_msg("rule '%s %s' vs '%s %s': expected %s", t->rule_method ? t->rule_method : "*",
                     t->prefix, t->method, t->path, t->match ? "match" : "no match");
    }
}

static void test_allowed(void **state)
{
    struct cfg_rule rules[] = {{"GET", "/"}, {"POST", "/attestations"}};

    (void)state;
    assert_true(gw_route_allowed(NULL, 0, 0, "DELETE", 6, "/x", 2)); /* no list: all */
    assert_false(gw_route_allowed(NULL, 0, 1, "GET", 3, "/", 1));    /* empty list: none */
    assert_true(gw_route_allowed(rules, 2, 1, "GET", 3, "/admin", 6));
    assert_true(gw_route_allowed(rules, 2, 1, "POST", 4, "/attestations/9", 15));
    assert_false(gw_route_allowed(rules, 2, 1, "POST", 4, "/admin", 6));
    assert_false(gw_route_allowed(rules, 2, 1, "PUT", 3, "/attestations", 13));
}

static void test_method_idempotent(void **state)
{
    static const struct {
        const char *method;
        int idempotent;
    } cases[] = {
        {"GET", 1}, {"HEAD", 1}, {"OPTIONS", 1}, {"TRACE", 1}, {"PUT", 1}, {"DELETE", 1},
        {"POST", 0}, {"PATCH", 0}, {"CONNECT", 0}, {"get", 0}, {"GE", 0}, {"GETS", 0},
        {"", 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (gw_route_method_idempotent(cases[i].method, strlen(cases[i].method)) !=
            cases[i].idempotent)
            fail_msg("method '%s': expected %s", cases[i].method,
                     cases[i].idempotent ? "idempotent" : "not idempotent");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_safe),
        cmocka_unit_test(test_rule_match),
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_method_idempotent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
