/*
 * test_tls_certpool.c - the per-worker pool of parsed client certificates
 * (tls/tls_certpool.h): the same DER gives the pooled copy back, other
 * certificates are pooled beside it, the least recently used leaves when
 * the pool is full, and every reference handed out is the caller's.
 * (That a handshake swaps the client's leaf for the pooled copy is in
 * test_tls_server.c, test_shared_leaf.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls_certpool.h"
#include "unit_pki.h"

static int pki_setup(void **state)
{
    (void)state;
    return unit_pki_make("test-tls-certpool");
}

/* A fresh parse of pki/<name>.pem (its first certificate). */
static X509 *load(const char *name)
{
    char file[128];
    FILE *f;
    X509 *x;

    snprintf(file, sizeof(file), "%s.pem", name);
    f = fopen(P(file), "r");
    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

/* get1 on the pool, checking it hands out want, and drops that reference. */
static void expect_get(struct tls_certpool *p, X509 *x, X509 *want)
{
    X509 *got = tls_certpool_get1(p, x);

    assert_ptr_equal(got, want);
    X509_free(got);
}

static void test_same_der_same_copy(void **state)
{
    X509 *a1 = load("attestor1"), *a2 = load("attestor1"), *b = load("attestor2");
    struct tls_certpool *p = tls_certpool_new(8);
    X509 *pooled, *got;

    (void)state;
    assert_non_null(p);
    assert_ptr_not_equal(a1, a2);
    assert_int_equal(X509_cmp(a1, a2), 0);
    expect_get(p, a1, a1); /* pooled */
    assert_int_equal(tls_certpool_count(p), 1);
    assert_int_equal(tls_certpool_hits(p), 0);
    expect_get(p, a2, a1); /* same DER: the pooled copy */
    expect_get(p, a1, a1);
    assert_int_equal(tls_certpool_hits(p), 2);
    expect_get(p, b, b);   /* another certificate, pooled beside it */
    assert_int_equal(tls_certpool_count(p), 2);
    /* The caller's own references are untouched: freeing them leaves the
     * pooled copies valid (ASan would see a use after free below). */
    pooled = a1;
    X509_free(a1);
    X509_free(b);
    got = tls_certpool_get1(p, a2);
    assert_ptr_equal(got, pooled);
    assert_int_equal(X509_cmp(got, a2), 0);
    tls_certpool_free(p);
    /* ... and the pool's end leaves the caller's reference valid too. */
    assert_int_equal(X509_cmp(got, a2), 0);
    X509_free(got);
    X509_free(a2);
}

static void test_least_recently_used_leaves(void **state)
{
    X509 *a = load("attestor1"), *b = load("attestor2"), *c = load("unknown-cn");
    X509 *b2 = load("attestor2"), *a2 = load("attestor1");
    struct tls_certpool *p = tls_certpool_new(2);

    (void)state;
    assert_non_null(p);
    expect_get(p, a, a);
    expect_get(p, b, b);
    expect_get(p, a, a);   /* a is now the most recently used */
    expect_get(p, c, c);   /* full: b leaves */
    assert_int_equal(tls_certpool_count(p), 2);
    expect_get(p, a2, a);  /* a stayed */
    expect_get(p, b2, b2); /* b left: this parse is pooled now (c leaves) */
    expect_get(p, b, b2);
    assert_int_equal(tls_certpool_count(p), 2);
    tls_certpool_free(p);
    X509_free(a);
    X509_free(b);
    X509_free(c);
    X509_free(b2);
    X509_free(a2);
}

static void test_edges(void **state)
{
    X509 *a = load("attestor1");

    (void)state;
    assert_null(tls_certpool_new(0));
    assert_null(tls_certpool_get1(NULL, a));
    assert_int_equal(tls_certpool_count(NULL), 0);
    assert_int_equal(tls_certpool_hits(NULL), 0);
    tls_certpool_free(NULL);
    X509_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_der_same_copy),
        cmocka_unit_test(test_least_recently_used_leaves),
        cmocka_unit_test(test_edges),
    };

    return cmocka_run_group_tests(tests, pki_setup, unit_pki_teardown);
}
