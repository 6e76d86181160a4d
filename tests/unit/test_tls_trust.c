/*
 * test_tls_trust.c - the client certificate rules (tls/tls_trust.h) against
 * the openssl-CLI test PKI of tests/lib/make-test-certs.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "tls_pem.h"
#include "tls_trust.h"
#include "unit_pki.h"

static int pki_setup(void **state)
{
    (void)state;
    return unit_pki_make("test-tls-trust");
}

static struct tls_trust *load(const char *ca, const char *crl, int require_eku, char *err,
                              size_t errlen)
{
    struct tls_trust_opts o = { .client_ca_path = ca, .crl_path = crl,
                                .require_eku = require_eku };

    return tls_trust_load(&o, err, errlen);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Concatenates pki files into pki/out. */
static const char *cat_files(const char *out, const char *a, const char *b)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "cat '%s/%s' '%s/%s' > '%s/%s'", pki, a, pki, b, pki, out);
    assert_int_equal(system(cmd), 0);
    return P(out);
}

/* ------------------------------------------------------------ loading */

static void test_load_good(void **state)
{
    char err[512];
    struct tls_trust *t = load(P("client-chain.crt"), P("client-ca.crl"), 1, err, sizeof(err));

    (void)state;
    assert_non_null(t);
    assert_int_equal(sk_X509_num(tls_trust_get0_intermediates(t)), 1);
    assert_int_equal(sk_X509_num(tls_trust_get0_roots(t)), 1);
    assert_int_equal(sk_X509_CRL_num(tls_trust_get0_crls(t)), 1);
    assert_non_null(tls_trust_get0_store(t));
    tls_trust_ref(t);
    tls_trust_unref(t);
    tls_trust_unref(t);
    tls_trust_unref(NULL);

    t = load(P("client-chain2.crt"), NULL, 1, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(sk_X509_num(tls_trust_get0_intermediates(t)), 2);
    assert_null(tls_trust_get0_crls(t));
    tls_trust_unref(t);
}

static void expect_load_error(const char *ca, const char *crl, const char *needle)
{
    char err[512] = "";
    struct tls_trust *t = load(ca, crl, 1, err, sizeof(err));

    if (t != NULL || strstr(err, needle) == NULL)
        fail_msg("load(%s, %s): expected error with \"%s\", got %s \"%s\"", ca,
                 crl ? crl : "-", needle, t ? "a set" : "NULL", err);
    tls_trust_unref(t);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_load_bad(void **state)
{
    (void)state;
    /* A root alone, an intermediate alone, an intermediate under a
     * look-alike root, a leaf in client_ca, missing and corrupt files. */
    expect_load_error(P("root.crt"), NULL, "no client intermediate");
    expect_load_error(P("client-ca.crt"), NULL, "does not verify against a root");
    expect_load_error(cat_files("mixed.crt", "client-ca.crt", "other-root-ca.crt"), NULL,
                      "does not verify against a root");
    expect_load_error(cat_files("leafy.crt", "client-chain.crt", "attestor1.crt"), NULL,
                      "is not a CA certificate");
    expect_load_error(P("does-not-exist.crt"), NULL, "does-not-exist.crt: cannot read");
    write_file(P("corrupt.crt"), "-----BEGIN CERTIFICATE-----\nMIIBnotbase64!!\n"
                                 "-----END CERTIFICATE-----\n");
    expect_load_error(P("corrupt.crt"), NULL, "corrupt.crt");
    write_file(P("empty.crt"), "nothing here\n");
    expect_load_error(P("empty.crt"), NULL, "empty.crt");
    /* CRLs: from the server intermediate, forged with client-ca's name,
     * corrupt, missing. */
    expect_load_error(P("client-chain.crt"), P("server-ca.crl"),
                      "is not one of the client intermediates");
    expect_load_error(P("client-chain.crt"), P("other-client-ca.crl"),
                      "signature does not verify");
    write_file(P("corrupt.crl"), "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
    expect_load_error(P("client-chain.crt"), P("corrupt.crl"), "corrupt.crl");
    expect_load_error(P("client-chain.crt"), P("missing.crl"), "missing.crl: cannot read");
    expect_load_error(NULL, NULL, "client_ca");
}

/* ------------------------------------------------------------ the rules */

struct case_ {
    const char *file;       /* .pem: leaf then the chain the client sends */
    enum tls_refusal want;
};

static const struct case_ cases[] = {
    { "attestor1.pem", TLS_OK },
    { "attestor1.crt", TLS_OK },
    { "attestor2.pem", TLS_OK },
    { "unknown-cn.pem", TLS_OK }, /* trusted; identity mapping refuses it later */
    { "server-issued.pem", TLS_REFUSE_UNTRUSTED_ISSUER },
    { "server-issued.crt", TLS_REFUSE_UNTRUSTED_ISSUER },
    { "other-root.pem", TLS_REFUSE_UNTRUSTED_ISSUER },
    { "other-root.crt", TLS_REFUSE_UNTRUSTED_ISSUER },
    { "self-signed.pem", TLS_REFUSE_UNTRUSTED_ISSUER },
    { "attestor3.pem", TLS_REFUSE_UNTRUSTED_ISSUER },
    { "expired.pem", TLS_REFUSE_EXPIRED },
    { "not-yet-valid.pem", TLS_REFUSE_NOT_YET_VALID },
    { "no-clientauth.pem", TLS_REFUSE_BAD_USAGE },
    { "no-eku.pem", TLS_REFUSE_BAD_USAGE },
    { "client-ca-as-client.pem", TLS_REFUSE_BAD_USAGE },
    { "client-ca-as-client.crt", TLS_REFUSE_BAD_USAGE },
    { "revoked.pem", TLS_REFUSE_REVOKED },
    { "two-cn.pem", TLS_REFUSE_BAD_SUBJECT },
};

/* Checks pki/file (leaf + chain) against t; returns the refusal. */
static enum tls_refusal check_file(const struct tls_trust *t, const char *file, time_t now,
                                   char *detail, size_t len)
{
    STACK_OF(X509) *sk = NULL;
    X509 *leaf;
    char err[512];
    enum tls_refusal r;

    if (tls_pem_load_certs(P(file), &sk, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    leaf = sk_X509_shift(sk);
    r = tls_trust_check(t, leaf, sk, now, detail, len);
    X509_free(leaf);
    sk_X509_pop_free(sk, X509_free);
    return r;
}

/* notAfter of pki/file's first certificate, seconds since 1970. */
static time_t not_after_of(const char *file)
{
    STACK_OF(X509) *sk = NULL;
    char err[512];
    time_t t = 0;

    if (tls_pem_load_certs(P(file), &sk, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(tls_x509_not_after(sk_X509_value(sk, 0), &t), 0);
    sk_X509_pop_free(sk, X509_free);
    return t;
}

/* How long an admitted certificate stays valid: its own notAfter, or its
 * intermediate's when that comes first ("revoked" runs to 2099, client-ca
 * ends sooner); without a set, its own. */
static void test_valid_until(void **state)
{
    char err[512];
    struct tls_trust *t = load(P("client-chain.crt"), NULL, 1, err, sizeof(err));
    STACK_OF(X509) *sk = NULL;
    time_t ca = not_after_of("client-ca.crt"), leaf;

    (void)state;
    assert_non_null(t);
    assert_int_equal(tls_pem_load_certs(P("attestor1.pem"), &sk, err, sizeof(err)), 0);
    leaf = not_after_of("attestor1.pem");
    assert_true(leaf < ca);
    assert_int_equal(tls_trust_valid_until(t, sk_X509_value(sk, 0)), leaf);
    sk_X509_pop_free(sk, X509_free);
    sk = NULL;
    assert_int_equal(tls_pem_load_certs(P("revoked.pem"), &sk, err, sizeof(err)), 0);
    assert_true(not_after_of("revoked.pem") > ca);
    assert_int_equal(tls_trust_valid_until(t, sk_X509_value(sk, 0)), ca);
    assert_int_equal(tls_trust_valid_until(NULL, sk_X509_value(sk, 0)), not_after_of("revoked.pem"));
    assert_int_equal(tls_trust_valid_until(t, NULL), 0);
    sk_X509_pop_free(sk, X509_free);
    tls_trust_unref(t);
}

static void test_rules_table(void **state)
{
    char err[512], detail[256];
    struct tls_trust *t = load(P("client-chain.crt"), P("client-ca.crl"), 1, err, sizeof(err));
    size_t i;

    (void)state;
    assert_non_null(t);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum tls_refusal r = check_file(t, cases[i].file, time(NULL), detail, sizeof(detail));

        if (r != cases[i].want)
            fail_msg("%s: got %s (%s), want %s", cases[i].file, tls_refusal_name(r), detail,
                     tls_refusal_name(cases[i].want));
        if (r != TLS_OK && detail[0] == '\0')
            fail_msg("%s: refused without a detail", cases[i].file);
        assert_int_equal(ERR_peek_error(), 0);
    }
    /* The details say why, with names and dates. */
    assert_int_equal(check_file(t, "expired.pem", time(NULL), detail, sizeof(detail)),
                     TLS_REFUSE_EXPIRED);
    assert_non_null(strstr(detail, "expired on 2021-01-01 00:00:00 UTC"));
    assert_int_equal(check_file(t, "revoked.pem", time(NULL), detail, sizeof(detail)),
                     TLS_REFUSE_REVOKED);
    assert_non_null(strstr(detail, "revoked by"));
    assert_int_equal(check_file(t, "server-issued.pem", time(NULL), detail, sizeof(detail)),
                     TLS_REFUSE_UNTRUSTED_ISSUER);
    assert_non_null(strstr(detail, "Server CA"));
    assert_int_equal(check_file(t, "no-eku.pem", time(NULL), detail, sizeof(detail)),
                     TLS_REFUSE_BAD_USAGE);
    assert_non_null(strstr(detail, "no extendedKeyUsage"));
    /* Time is the caller's: attestor1 is refused in 2100 and before 2000. */
    assert_int_equal(check_file(t, "attestor1.pem", (time_t)4102444800LL, detail,
                                sizeof(detail)), TLS_REFUSE_EXPIRED);
    assert_int_equal(check_file(t, "attestor1.pem", (time_t)946684800 - 1, detail,
                                sizeof(detail)), TLS_REFUSE_NOT_YET_VALID);
    /* The expired certificate was fine in 2020 (the set does not pin "now"). */
    assert_int_equal(check_file(t, "expired.pem", (time_t)1593561600, detail, sizeof(detail)),
                     TLS_REFUSE_NOT_YET_VALID); /* client-ca itself starts today */
    assert_int_equal(tls_trust_check(t, NULL, NULL, time(NULL), detail, sizeof(detail)),
                     TLS_REFUSE_NO_CERTIFICATE);
    tls_trust_unref(t);
}

static void test_require_eku_off(void **state)
{
    char err[512], detail[256];
    struct tls_trust *t = load(P("client-chain.crt"), NULL, 0, err, sizeof(err));

    (void)state;
    assert_non_null(t);
    assert_int_equal(check_file(t, "no-eku.pem", time(NULL), detail, sizeof(detail)), TLS_OK);
    /* An EKU without clientAuth is still refused. */
    assert_int_equal(check_file(t, "no-clientauth.pem", time(NULL), detail, sizeof(detail)),
                     TLS_REFUSE_BAD_USAGE);
    /* Without a CRL the revoked certificate is not known to be revoked. */
    assert_int_equal(check_file(t, "revoked.pem", time(NULL), detail, sizeof(detail)), TLS_OK);
    tls_trust_unref(t);
}

static void test_rotation(void **state)
{
    char err[512], detail[256];
    struct tls_trust *one = load(P("client-chain.crt"), P("client-ca.crl"), 1, err, sizeof(err));
    struct tls_trust *two = load(P("client-chain2.crt"), P("client-ca.crl"), 1, err, sizeof(err));

    (void)state;
    assert_non_null(one);
    assert_non_null(two);
    assert_int_equal(check_file(one, "attestor3.pem", time(NULL), detail, sizeof(detail)),
                     TLS_REFUSE_UNTRUSTED_ISSUER);
    assert_int_equal(check_file(two, "attestor3.pem", time(NULL), detail, sizeof(detail)),
                     TLS_OK);
    assert_int_equal(check_file(two, "attestor3.crt", time(NULL), detail, sizeof(detail)),
                     TLS_OK);
    assert_int_equal(check_file(two, "attestor1.pem", time(NULL), detail, sizeof(detail)),
                     TLS_OK);
    /* The CRL of client-ca applies to client-ca's leaves only. */
    assert_int_equal(check_file(two, "revoked.pem", time(NULL), detail, sizeof(detail)),
                     TLS_REFUSE_REVOKED);
    tls_trust_unref(one);
    tls_trust_unref(two);
}

/* The verdict cache: an OK verdict of one set is never served for another
 * set (a reload, even one allocated at the freed set's address), and never
 * outside the chain's validity window. */
static void test_verdict_cache(void **state)
{
    char err[512], detail[256], b_file[1024];
    struct tls_trust *a = load(P("client-chain.crt"), NULL, 1, err, sizeof(err));
    struct tls_trust *b;
    time_t now = time(NULL);
    int i;

    (void)state;
    /* P() returns a static buffer: keep B's file name in our own. */
    snprintf(b_file, sizeof(b_file), "%s",
             cat_files("chain-ca2-only.crt", "client-ca2.crt", "root.crt"));
    assert_non_null(a);
    for (i = 0; i < 2; i++)
        assert_int_equal(check_file(a, "attestor1.crt", now, detail, sizeof(detail)), TLS_OK);
    /* B trusts client-ca2 only: attestor1 (issued by client-ca) is refused,
     * while A, alive at the same time, still admits it. */
    b = load(b_file, NULL, 1, err, sizeof(err));
    if (b == NULL)
        fail_msg("%s", err);
    assert_int_equal(check_file(b, "attestor1.crt", now, detail, sizeof(detail)),
                     TLS_REFUSE_UNTRUSTED_ISSUER);
    assert_int_equal(check_file(b, "attestor1.pem", now, detail, sizeof(detail)),
                     TLS_REFUSE_UNTRUSTED_ISSUER);
    assert_int_equal(check_file(a, "attestor1.crt", now, detail, sizeof(detail)), TLS_OK);
    assert_int_equal(check_file(b, "attestor3.pem", now, detail, sizeof(detail)), TLS_OK);
    tls_trust_unref(b);
    /* A freed, B loaded again: the allocator is free to hand out A's
     * address; the cached OK of A must not leak into it. */
    tls_trust_unref(a);
    for (i = 0; i < 4; i++) {
        b = load(b_file, NULL, 1, err, sizeof(err));
        if (b == NULL)
            fail_msg("%s", err);
        assert_int_equal(check_file(b, "attestor1.crt", now, detail, sizeof(detail)),
                         TLS_REFUSE_UNTRUSTED_ISSUER);
        tls_trust_unref(b);
    }
    /* Cached OK now; past notAfter (2100) and before notBefore the full
     * check runs and refuses. */
    a = load(P("client-chain.crt"), NULL, 1, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(check_file(a, "attestor1.crt", now, detail, sizeof(detail)), TLS_OK);
    assert_int_equal(check_file(a, "attestor1.crt", now, detail, sizeof(detail)), TLS_OK);
    assert_int_equal(check_file(a, "attestor1.crt", (time_t)4102444800LL, detail,
                                sizeof(detail)), TLS_REFUSE_EXPIRED);
    assert_non_null(strstr(detail, "expired"));
    assert_int_equal(check_file(a, "attestor1.crt", (time_t)946684800 - 1, detail,
                                sizeof(detail)), TLS_REFUSE_NOT_YET_VALID);
    /* A refusal is not cached either: the next check in the window is OK. */
    assert_int_equal(check_file(a, "attestor1.crt", now, detail, sizeof(detail)), TLS_OK);
    tls_trust_unref(a);
}

static void test_crl_stale(void **state)
{
    char err[512], detail[256];
    struct tls_trust *t = load(P("client-chain.crt"), P("client-ca.crl"), 1, err, sizeof(err));
    time_t now = time(NULL);

    (void)state;
    assert_non_null(t);
    assert_int_equal(tls_trust_crl_stale(t, now, detail, sizeof(detail)), 0);
    assert_string_equal(detail, "");
    assert_int_equal(tls_trust_crl_stale(t, now + 31 * 86400, detail, sizeof(detail)), 1);
    assert_non_null(strstr(detail, "past its nextUpdate"));
    assert_int_equal(tls_trust_crl_stale(t, now + 31 * 86400, NULL, 0), 1);
    tls_trust_unref(t);
    t = load(P("client-chain.crt"), NULL, 1, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(tls_trust_crl_stale(t, now + 365 * 86400, detail, sizeof(detail)), 0);
    tls_trust_unref(t);
}

static void test_names_and_mapping(void **state)
{
    (void)state;
    assert_string_equal(tls_refusal_name(TLS_OK), "ok");
    assert_string_equal(tls_refusal_name(TLS_REFUSE_UNTRUSTED_ISSUER), "untrusted_issuer");
    assert_string_equal(tls_refusal_name(TLS_REFUSE_PROTOCOL), "protocol");
    assert_string_equal(tls_refusal_name(TLS_REFUSAL__COUNT), "unknown");
    assert_int_equal(tls_refusal_from_x509_error(X509_V_OK), TLS_OK);
    assert_int_equal(tls_refusal_from_x509_error(X509_V_ERR_CERT_HAS_EXPIRED),
                     TLS_REFUSE_EXPIRED);
    assert_int_equal(tls_refusal_from_x509_error(X509_V_ERR_CERT_NOT_YET_VALID),
                     TLS_REFUSE_NOT_YET_VALID);
    assert_int_equal(tls_refusal_from_x509_error(X509_V_ERR_CERT_REVOKED), TLS_REFUSE_REVOKED);
    assert_int_equal(tls_refusal_from_x509_error(X509_V_ERR_INVALID_PURPOSE),
                     TLS_REFUSE_BAD_USAGE);
    assert_int_equal(tls_refusal_from_x509_error(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
                     TLS_REFUSE_UNTRUSTED_ISSUER);
    assert_int_equal(tls_refusal_from_x509_error(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
                     TLS_REFUSE_UNTRUSTED_ISSUER);
}

/* Several threads check certificates against one set at once, taking and
 * dropping references, as the gateway's workers do. */
struct thr {
    struct tls_trust *t;
    int bad;
};

static void *check_thread(void *arg)
{
    struct thr *a = arg;
    char detail[256];
    int i;
    size_t j;

    for (i = 0; i < 20; i++) {
        tls_trust_ref(a->t);
        for (j = 0; j < sizeof(cases) / sizeof(cases[0]); j++)
            if (check_file(a->t, cases[j].file, time(NULL), detail, sizeof(detail)) !=
                cases[j].want)
                a->bad++;
        tls_trust_unref(a->t);
    }
    return NULL;
}

static void test_threads(void **state)
{
    char err[512];
    struct tls_trust *t = load(P("client-chain.crt"), P("client-ca.crl"), 1, err, sizeof(err));
    pthread_t th[4];
    struct thr a[4];
    int i;

    (void)state;
    assert_non_null(t);
    for (i = 0; i < 4; i++) {
        a[i].t = t;
        a[i].bad = 0;
        assert_int_equal(pthread_create(&th[i], NULL, check_thread, &a[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    tls_trust_unref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_load_bad),
        cmocka_unit_test(test_rules_table),
        cmocka_unit_test(test_require_eku_off),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_verdict_cache),
        cmocka_unit_test(test_valid_until),
        cmocka_unit_test(test_crl_stale),
        cmocka_unit_test(test_names_and_mapping),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, pki_setup, unit_pki_teardown);
}
