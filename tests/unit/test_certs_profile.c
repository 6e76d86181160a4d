/*
 * test_certs_profile.c - what certs-tool puts in certificates and CRLs, read
 * back from DER: extensions of each profile (basicConstraints, keyUsage,
 * EKU, SAN, SKI/AKI), serial size, validity, signatures, for every key
 * type; the SAN and key policies; the CRL; the files a leaf is written to
 * (modes, DER PKCS#8, PKCS#12 algorithms); and the words `verify` finds for
 * each kind of bad certificate (wrong intermediate, CA, no EKU, wrong EKU,
 * expired, not yet valid, revoked, another PKI, stale CRL).
 * The PKIs are made in memory with the certs-tool library itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "issue.h"
#include "keygen.h"
#include "profile.h"
#include "revoke.h"
#include "store.h"
#include "tls_x509.h"
#include "verify.h"

#define DAY 86400

/* ---- helpers --------------------------------------------------------------- */

/* Re-reads x from its DER encoding (frees x): assertions see what a peer sees. */
static X509 *reparse(X509 *x)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_X509(x, &der);
    X509 *back;

    assert_true(len > 0);
    p = der;
    back = d2i_X509(NULL, &p, len);
    assert_non_null(back);
    OPENSSL_free(der);
    X509_free(x);
    return back;
}

static X509 *make_cert(enum ct_profile profile, enum ct_kind kind, const char *cn, EVP_PKEY *subject,
                       const struct ct_ca *issuer, int days, time_t now,
                       const struct ct_san_list *sans, int *clamped)
{
    struct ct_cert_spec spec;
    char err[CT_ERR_MAX];
    X509 *x;

    memset(&spec, 0, sizeof(spec));
    spec.profile = profile;
    spec.kind = kind;
    spec.org = "Test Org";
    spec.cn = cn;
    spec.subject_key = subject;
    spec.issuer = issuer ? issuer->cert : NULL;
    spec.issuer_key = issuer ? issuer->key : subject;
    spec.days = days;
    spec.now = now;
    spec.sans = sans;
    x = ct_profile_make(&spec, clamped, err, sizeof(err));
    if (x == NULL)
        fail_msg("ct_profile_make %s: %s", cn, err);
    return reparse(x);
}

static EVP_PKEY *key(enum ct_key_type kt)
{
    char err[CT_ERR_MAX];
    EVP_PKEY *k = ct_keygen(kt, err, sizeof(err));

    if (k == NULL)
        fail_msg("keygen: %s", err);
    return k;
}

/* A PKI in memory (dir is only used in messages unless a test sets it). */
static void make_pki(struct ct_pki *pki, enum ct_key_type kt, time_t now, int ca_days)
{
    memset(pki, 0, sizeof(*pki));
    pki->lock_fd = -1;
    snprintf(pki->dir, sizeof(pki->dir), "mem-pki");
    pki->root.key = key(kt);
    pki->root.cert = make_cert(CT_PROFILE_ROOT, CT_KIND_CLIENT, "Test Root CA", pki->root.key, NULL,
                               3650, now, NULL, NULL);
    pki->client_ca.key = key(kt);
    pki->client_ca.cert = make_cert(CT_PROFILE_INTERMEDIATE, CT_KIND_CLIENT, "Test Client CA",
                                    pki->client_ca.key, &pki->root, ca_days, now, NULL, NULL);
    pki->server_ca.key = key(kt);
    pki->server_ca.cert = make_cert(CT_PROFILE_INTERMEDIATE, CT_KIND_SERVER, "Test Server CA",
                                    pki->server_ca.key, &pki->root, ca_days, now, NULL, NULL);
}

static X509 *client_leaf(struct ct_pki *pki, const char *cn, int days, time_t now, EVP_PKEY **out_key)
{
    EVP_PKEY *k = key(CT_KEY_EC_P256);
    X509 *x = make_cert(CT_PROFILE_CLIENT, CT_KIND_CLIENT, cn, k, &pki->client_ca, days, now, NULL, NULL);

    if (out_key != NULL)
        *out_key = k;
    else
        EVP_PKEY_free(k);
    return x;
}

static X509 *server_leaf(struct ct_pki *pki, const struct ct_ca *issuer, const char *cn)
{
    struct ct_san_list sans;
    char err[CT_ERR_MAX];
    EVP_PKEY *k = key(CT_KEY_EC_P256);
    X509 *x;

    memset(&sans, 0, sizeof(sans));
    assert_int_equal(ct_san_add_name(&sans, cn, err, sizeof(err)), 0);
    assert_int_equal(ct_san_parse("IP:127.0.0.1,DNS:db.example", &sans, err, sizeof(err)), 0);
    x = make_cert(CT_PROFILE_SERVER, CT_KIND_SERVER, cn, k, issuer ? issuer : &pki->server_ca, 365, 0,
                  &sans, NULL);
    EVP_PKEY_free(k);
    return x;
}

static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);

    assert_true(i >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static int has_ext(X509 *x, int nid)
{
    return X509_get_ext_by_NID(x, nid, -1) >= 0;
}

static void assert_same_octets(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ASN1_STRING_length(a), ASN1_STRING_length(b));
    assert_memory_equal(ASN1_STRING_get0_data(a), ASN1_STRING_get0_data(b), ASN1_STRING_length(a));
}

/* Serial: positive, at least 64 bits, 16 bytes. */
static void assert_serial(X509 *x)
{
    const ASN1_INTEGER *s = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);

    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) >= 64);
    assert_int_equal(BN_num_bytes(bn), CT_SERIAL_BYTES);
    BN_free(bn);
}

/* SKI present; AKI keyid equal to the issuer's SKI; signature verifies. */
static void assert_ids(X509 *x, X509 *issuer)
{
    assert_non_null(X509_get0_subject_key_id(x));
    assert_same_octets(X509_get0_authority_key_id(x), X509_get0_subject_key_id(issuer));
    assert_int_equal(X509_verify(x, X509_get0_pubkey(issuer)), 1);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
}

static void free_pki(struct ct_pki *pki)
{
    ct_pki_close(pki);
}

/* ---- profiles ------------------------------------------------------------------ */

static void check_profiles(enum ct_key_type kt)
{
    struct ct_pki pki;
    X509 *c, *s;
    GENERAL_NAMES *gens;
    char cn[TLS_CN_MAX + 1];
    time_t now = time(NULL), nb, na;
    int i, dns = 0, ip = 0;

    make_pki(&pki, kt, 0, 1825);

    /* root */
    assert_true(tls_x509_is_ca(pki.root.cert));
    assert_true(ext_critical(pki.root.cert, NID_basic_constraints));
    assert_int_equal(X509_get_pathlen(pki.root.cert), 1);
    assert_true(ext_critical(pki.root.cert, NID_key_usage));
    assert_int_equal(X509_get_key_usage(pki.root.cert), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_false(has_ext(pki.root.cert, NID_ext_key_usage));
    assert_ids(pki.root.cert, pki.root.cert); /* self-signed: AKI = its own SKI */
    assert_true(X509_get_extension_flags(pki.root.cert) & EXFLAG_SS);
    assert_serial(pki.root.cert);

    /* intermediates */
    assert_true(tls_x509_is_ca(pki.client_ca.cert));
    assert_int_equal(X509_get_pathlen(pki.client_ca.cert), 0);
    assert_int_equal(X509_get_key_usage(pki.client_ca.cert), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_extended_key_usage(pki.client_ca.cert), XKU_SSL_CLIENT);
    assert_int_equal(X509_get_extended_key_usage(pki.server_ca.cert), XKU_SSL_SERVER);
    assert_ids(pki.client_ca.cert, pki.root.cert);
    assert_ids(pki.server_ca.cert, pki.root.cert);

    /* client leaf */
    c = client_leaf(&pki, "attestor1", 365, 0, NULL);
    assert_false(tls_x509_is_ca(c));
    assert_true(ext_critical(c, NID_basic_constraints)); /* CA:FALSE, present and critical */
    assert_true(ext_critical(c, NID_key_usage));
    assert_int_equal(X509_get_key_usage(c),
                     KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT);
    assert_false(ext_critical(c, NID_ext_key_usage));
    assert_int_equal(X509_get_extended_key_usage(c), XKU_SSL_CLIENT);
    assert_false(has_ext(c, NID_subject_alt_name));
    assert_ids(c, pki.client_ca.cert);
    assert_serial(c);
    assert_int_equal(tls_x509_get_cn(c, cn), 0);
    assert_string_equal(cn, "attestor1");
    /* notBefore 5 minutes back, notAfter `days` on */
    assert_int_equal(tls_x509_not_before(c, &nb), 0);
    assert_int_equal(tls_x509_not_after(c, &na), 0);
    assert_true(nb <= now - CT_BACKDATE_SECONDS + 5 && nb >= now - CT_BACKDATE_SECONDS - 5);
    assert_true(na - nb == 365 * DAY + CT_BACKDATE_SECONDS);

    /* server leaf: SAN = its name + the --san entries */
    s = server_leaf(&pki, NULL, "localhost");
    assert_int_equal(X509_get_key_usage(s), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_extended_key_usage(s), XKU_SSL_SERVER);
    assert_ids(s, pki.server_ca.cert);
    gens = X509_get_ext_d2i(s, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 3);
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        int type;
        void *v = GENERAL_NAME_get0_value(g, &type);

        if (type == GEN_DNS)
            dns += !strcmp((const char *)ASN1_STRING_get0_data(v), "localhost") ||
                   !strcmp((const char *)ASN1_STRING_get0_data(v), "db.example");
        if (type == GEN_IPADD && ASN1_STRING_length(v) == 4 &&
            memcmp(ASN1_STRING_get0_data(v), "\x7f\0\0\1", 4) == 0)
            ip++;
    }
    assert_int_equal(dns, 2);
    assert_int_equal(ip, 1);
    GENERAL_NAMES_free(gens);

    /* Two certificates never share a serial. */
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(c), X509_get0_serialNumber(s)), 0);

    X509_free(c);
    X509_free(s);
    free_pki(&pki);
}

static void test_profiles_ec_p256(void **state)
{
    (void)state;
    check_profiles(CT_KEY_EC_P256);
}

static void test_profiles_other_key_types(void **state)
{
    (void)state;
    check_profiles(CT_KEY_EC_P384);
    check_profiles(CT_KEY_ED25519);
    check_profiles(CT_KEY_RSA_2048);
}

static void test_signature_digests(void **state)
{
    struct ct_pki pki;

    (void)state;
    make_pki(&pki, CT_KEY_EC_P384, 0, 100);
    assert_int_equal(X509_get_signature_nid(pki.client_ca.cert), NID_ecdsa_with_SHA384);
    free_pki(&pki);
    make_pki(&pki, CT_KEY_ED25519, 0, 100);
    assert_int_equal(X509_get_signature_nid(pki.client_ca.cert), NID_ED25519);
    free_pki(&pki);
    make_pki(&pki, CT_KEY_RSA_2048, 0, 100);
    assert_int_equal(X509_get_signature_nid(pki.client_ca.cert), NID_sha256WithRSAEncryption);
    free_pki(&pki);
}

static void test_validity_clamped_to_issuer(void **state)
{
    struct ct_pki pki;
    EVP_PKEY *k;
    X509 *c;
    int clamped = 0;

    (void)state;
    make_pki(&pki, CT_KEY_EC_P256, 0, 10);
    k = key(CT_KEY_EC_P256);
    c = make_cert(CT_PROFILE_CLIENT, CT_KIND_CLIENT, "long", k, &pki.client_ca, 365, 0, NULL, &clamped);
    assert_int_equal(clamped, 1);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(c), X509_get0_notAfter(pki.client_ca.cert)), 0);
    X509_free(c);
    c = make_cert(CT_PROFILE_CLIENT, CT_KIND_CLIENT, "short", k, &pki.client_ca, 5, 0, NULL, &clamped);
    assert_int_equal(clamped, 0);
    X509_free(c);
    EVP_PKEY_free(k);
    free_pki(&pki);
}

/* ct_profile_make with issuer (ca, or the root for an intermediate) at now; NULL expected. */
static void expect_refused(enum ct_profile profile, enum ct_kind kind, const struct ct_ca *ca,
                           time_t now, const char *const *words)
{
    struct ct_cert_spec spec;
    struct ct_san_list sans;
    char err[CT_ERR_MAX];
    EVP_PKEY *k = key(CT_KEY_EC_P256);
    X509 *x;
    size_t i;

    memset(&spec, 0, sizeof(spec));
    memset(&sans, 0, sizeof(sans));
    assert_int_equal(ct_san_add_name(&sans, "late.test", err, sizeof(err)), 0);
    spec.profile = profile;
    spec.kind = kind;
    spec.org = "Test Org";
    spec.cn = "late";
    spec.subject_key = k;
    spec.issuer = ca->cert;
    spec.issuer_key = ca->key;
    spec.days = 365;
    spec.now = now;
    spec.sans = &sans;
    err[0] = '\0';
    x = ct_profile_make(&spec, NULL, err, sizeof(err));
    if (x != NULL)
        fail_msg("'late' issued by an expired issuer (profile %d)", (int)profile);
    for (i = 0; words[i] != NULL; i++)
        if (strstr(err, words[i]) == NULL)
            fail_msg("'%s' lacks '%s'", err, words[i]);
    EVP_PKEY_free(k);
}

/*
 * An issuer past its notAfter issues nothing (cutting the validity to its
 * notAfter would give notAfter < notBefore, or a certificate born expired);
 * one that is still valid for a minute still issues, cut to its notAfter.
 */
static void test_expired_issuer_refused(void **state)
{
    static const char *const client_words[] = {"client intermediate", "CN=Test Client CA",
                                               "expired on", "cannot issue 'late'",
                                               "certs-tool rollover client", NULL};
    static const char *const server_words[] = {"server intermediate", "CN=Test Server CA",
                                               "expired on", "certs-tool rollover server", NULL};
    static const char *const root_words[] = {"root CA", "CN=Test Root CA", "expired on",
                                             "certs-tool init", NULL};
    struct ct_pki pki;
    struct ct_ca root;
    time_t now = time(NULL);
    char want[64];
    const char *const date_words[] = {want, NULL};
    EVP_PKEY *k;
    X509 *c;
    int clamped = 0;

    (void)state;
    /* Intermediates made 10 days ago for 2 days: expired 8 days ago. */
    make_pki(&pki, CT_KEY_EC_P256, now - 10 * DAY, 2);
    expect_refused(CT_PROFILE_CLIENT, CT_KIND_CLIENT, &pki.client_ca, now, client_words);
    expect_refused(CT_PROFILE_SERVER, CT_KIND_SERVER, &pki.server_ca, now, server_words);
    tls_time_str(now - 8 * DAY, want, sizeof(want));
    expect_refused(CT_PROFILE_CLIENT, CT_KIND_CLIENT, &pki.client_ca, now, date_words);
    free_pki(&pki);

    /* Expired one minute ago: notAfter would still follow notBefore, yet refused. */
    make_pki(&pki, CT_KEY_EC_P256, now - 2 * DAY - 60, 2);
    expect_refused(CT_PROFILE_CLIENT, CT_KIND_CLIENT, &pki.client_ca, now, client_words);
    free_pki(&pki);

    /* Valid one more minute: issued, cut to the intermediate's notAfter. */
    make_pki(&pki, CT_KEY_EC_P256, now - 2 * DAY + 60, 2);
    k = key(CT_KEY_EC_P256);
    c = make_cert(CT_PROFILE_CLIENT, CT_KIND_CLIENT, "just", k, &pki.client_ca, 365, now, NULL,
                  &clamped);
    assert_int_equal(clamped, 1);
    assert_true(ASN1_TIME_compare(X509_get0_notBefore(c), X509_get0_notAfter(c)) < 0);
    X509_free(c);
    EVP_PKEY_free(k);
    free_pki(&pki);

    /* An expired root makes no intermediate (rollover). */
    root.key = key(CT_KEY_EC_P256);
    root.cert = make_cert(CT_PROFILE_ROOT, CT_KIND_CLIENT, "Test Root CA", root.key, NULL, 2,
                          now - 5 * DAY, NULL, NULL);
    expect_refused(CT_PROFILE_INTERMEDIATE, CT_KIND_CLIENT, &root, now, root_words);
    X509_free(root.cert);
    EVP_PKEY_free(root.key);
}

static void test_profile_refusals(void **state)
{
    struct ct_pki pki;
    struct ct_cert_spec spec;
    struct ct_san_list none;
    char err[CT_ERR_MAX];

    (void)state;
    make_pki(&pki, CT_KEY_EC_P256, 0, 100);
    memset(&spec, 0, sizeof(spec));
    memset(&none, 0, sizeof(none));
    spec.profile = CT_PROFILE_SERVER;
    spec.cn = "x";
    spec.subject_key = pki.server_ca.key;
    spec.issuer = pki.server_ca.cert;
    spec.issuer_key = pki.server_ca.key;
    spec.days = 1;
    spec.sans = &none;
    assert_null(ct_profile_make(&spec, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "subjectAltName"));
    spec.profile = CT_PROFILE_CLIENT;
    spec.days = 0;
    assert_null(ct_profile_make(&spec, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "days"));
    spec.days = 1;
    spec.issuer = NULL; /* only the root may be self-signed */
    assert_null(ct_profile_make(&spec, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "self-signed"));
    free_pki(&pki);
}

/* ---- SANs, organisations, key types ------------------------------------------------- */

static void test_san_parse(void **state)
{
    struct ct_san_list l;
    char err[CT_ERR_MAX];
    static const char *const bad[] = {
        "host", "DNS:", "DNS:a..b", "DNS:-a.b", "DNS:a-.b", "DNS:a_b", "IP:1.2.3", "IP:::g",
        "DNS:a,", ",DNS:a", "URI:http://x", "email:a@b", "DNS:a b", "DNS:*.", "DNS:a.*.b",
    };
    size_t i;

    (void)state;
    memset(&l, 0, sizeof(l));
    assert_int_equal(ct_san_parse("DNS:localhost,IP:127.0.0.1,ip:::1,dns:*.svc.local", &l, err,
                                  sizeof(err)), 0);
    assert_int_equal(l.n, 4);
    assert_false(l.v[0].is_ip);
    assert_string_equal(l.v[0].value, "localhost");
    assert_true(l.v[2].is_ip);
    assert_string_equal(l.v[2].value, "::1");
    assert_string_equal(l.v[3].value, "*.svc.local");
    /* duplicates (case-insensitive) are skipped; the name as IP or DNS */
    assert_int_equal(ct_san_parse("DNS:LOCALHOST,IP:0:0::1", &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 4);
    assert_int_equal(ct_san_add_name(&l, "127.0.0.1", err, sizeof(err)), 0);
    assert_int_equal(l.n, 4);
    assert_int_equal(ct_san_add_name(&l, "db-1.example", err, sizeof(err)), 0);
    assert_int_equal(l.n, 5);
    assert_int_equal(ct_san_add_name(&l, "user@host", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a host name"));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&l, 0, sizeof(l));
        err[0] = '\0';
        if (ct_san_parse(bad[i], &l, err, sizeof(err)) == 0)
            fail_msg("SAN '%s' accepted", bad[i]);
        assert_true(strlen(err) > 0);
    }
}

static void test_org_and_key_types(void **state)
{
    char err[CT_ERR_MAX];
    enum ct_key_type kt;
    EVP_PKEY *k;

    (void)state;
    assert_int_equal(ct_org_check("ACME Corp.", err, sizeof(err)), 0);
    assert_int_equal(ct_org_check("", err, sizeof(err)), -1);
    assert_int_equal(ct_org_check("a\nb", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "control character"));
    /* Well-formed UTF-8 only (it becomes a UTF8String), quoted with its bytes escaped. */
    assert_int_equal(ct_org_check("Soci\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x92",
                                  err, sizeof(err)), 0);
    assert_int_equal(ct_org_check("bad\xff\xfe", err, sizeof(err)), -1);
    assert_string_equal(err, "organisation name 'bad\\xff\\xfe' is not valid UTF-8");
    {
        static const char *const bad_utf8[] = {
            "\x80", "a\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
            "\xf5\x80\x80\x80", "\xe6\x97", "\xc3\x28",
        };
        const char *p;
        size_t i;

        for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
            if (ct_org_check(bad_utf8[i], err, sizeof(err)) == 0)
                fail_msg("invalid UTF-8 #%zu accepted", i);
            assert_non_null(strstr(err, "not valid UTF-8"));
            for (p = err; *p != '\0'; p++) /* no raw byte reaches the message */
                assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
        }
    }
    assert_int_equal(ct_key_type_parse("ed25519", &kt, err, sizeof(err)), 0);
    assert_int_equal(kt, CT_KEY_ED25519);
    assert_int_equal(ct_key_type_parse("rsa-4096", &kt, err, sizeof(err)), 0);
    assert_int_equal(kt, CT_KEY_RSA_4096);
    assert_int_equal(ct_key_type_parse("dsa", &kt, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown key type 'dsa'"));

    /* The policy for CSR keys. */
    k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(k);
    assert_int_equal(ct_key_acceptable(k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "1024 bits is too weak"));
    EVP_PKEY_free(k);
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    assert_non_null(k);
    assert_int_equal(ct_key_acceptable(k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "secp256k1"));
    EVP_PKEY_free(k);
    k = key(CT_KEY_EC_P384);
    assert_int_equal(ct_key_acceptable(k, err, sizeof(err)), 0);
    EVP_PKEY_free(k);
    k = key(CT_KEY_ED25519);
    assert_int_equal(ct_key_acceptable(k, err, sizeof(err)), 0);
    EVP_PKEY_free(k);
}

/* ---- CRLs ------------------------------------------------------------------------------ */

static void add_entry(struct ct_index *idx, X509 *x, const char *name, int revoked, time_t at, int reason)
{
    struct ct_index_entry e;
    char err[CT_ERR_MAX];

    memset(&e, 0, sizeof(e));
    tls_x509_serial_hex(x, e.serial, sizeof(e.serial));
    snprintf(e.name, sizeof(e.name), "%s", name);
    e.kind = CT_KIND_CLIENT;
    assert_int_equal(tls_x509_not_after(x, &e.not_after), 0);
    e.status = revoked ? CT_STATUS_REVOKED : CT_STATUS_VALID;
    e.revoked_at = revoked ? at : 0;
    e.reason = revoked ? reason : -1;
    assert_int_equal(ct_index_add(idx, &e, err, sizeof(err)), 0);
}

static void test_crl(void **state)
{
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    X509 *a, *b, *c;
    X509_CRL *crl;
    X509_REVOKED *rev = NULL;
    ASN1_INTEGER *num;
    ASN1_ENUMERATED *reason;
    AUTHORITY_KEYID *akid;
    char err[CT_ERR_MAX], path[] = "/tmp/test-certs-crl-XXXXXX";
    struct tm tm;
    time_t now = time(NULL), t;
    long number = -1;
    BIO *bio;
    int fd;

    (void)state;
    make_pki(&pki, CT_KEY_EC_P256, 0, 100);
    a = client_leaf(&pki, "a", 30, 0, NULL);
    b = client_leaf(&pki, "b", 30, 0, NULL);
    c = client_leaf(&pki, "c", 30, 0, NULL);
    add_entry(&idx, a, "a", 0, 0, 0);
    add_entry(&idx, b, "b", 1, now - 3600, CRL_REASON_KEY_COMPROMISE);
    add_entry(&idx, c, "c", 1, now - 60, CRL_REASON_UNSPECIFIED);
    crl = ct_crl_build(&pki, &idx, CT_KIND_CLIENT, 7, 30, now, err, sizeof(err));
    if (crl == NULL)
        fail_msg("%s", err);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(pki.client_ca.cert)), 0);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(pki.client_ca.cert)), 1);
    num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(num);
    assert_int_equal(ASN1_INTEGER_get(num), 7);
    ASN1_INTEGER_free(num);
    akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(akid);
    assert_same_octets(akid->keyid, X509_get0_subject_key_id(pki.client_ca.cert));
    AUTHORITY_KEYID_free(akid);
    assert_true(ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(crl), &tm));
    assert_int_equal(timegm(&tm), now + 30 * DAY);
    assert_true(ASN1_TIME_to_tm(X509_CRL_get0_lastUpdate(crl), &tm));
    assert_int_equal(timegm(&tm), now - CT_BACKDATE_SECONDS);
    /* b and c are listed, a is not */
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
    assert_int_equal(X509_CRL_get0_by_cert(crl, &rev, a), 0);
    assert_int_equal(X509_CRL_get0_by_cert(crl, &rev, b), 1);
    assert_true(ASN1_TIME_to_tm(X509_REVOKED_get0_revocationDate(rev), &tm));
    t = timegm(&tm);
    assert_int_equal(t, now - 3600);
    reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    assert_non_null(reason);
    assert_int_equal(ASN1_ENUMERATED_get(reason), CRL_REASON_KEY_COMPROMISE);
    ASN1_ENUMERATED_free(reason);
    /* "unspecified" is said by leaving the reasonCode out (RFC 5280 5.3.1) */
    assert_int_equal(X509_CRL_get0_by_cert(crl, &rev, c), 1);
    assert_null(X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL));

    /* The number is read back from the file for the next CRL. */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    bio = BIO_new_file(path, "w");
    assert_non_null(bio);
    assert_true(PEM_write_bio_X509_CRL(bio, crl));
    BIO_free(bio);
    assert_int_equal(ct_crl_read_number(path, &number, err, sizeof(err)), 0);
    assert_int_equal(number, 7);
    bio = BIO_new_file(path, "w");
    BIO_puts(bio, "-----BEGIN X509 CRL-----\nnot base64!\n-----END X509 CRL-----\n");
    BIO_free(bio);
    assert_int_equal(ct_crl_read_number(path, &number, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    unlink(path);
    assert_int_equal(ct_crl_read_number(path, &number, err, sizeof(err)), 0);
    assert_int_equal(number, 0);

    X509_CRL_free(crl);
    X509_free(a);
    X509_free(b);
    X509_free(c);
    ct_index_free(&idx);
    free_pki(&pki);
}

/*
 * Generations: a second client intermediate (generation 2) beside the
 * first; each generation's CRL lists only what it issued, is signed by it,
 * and the multi-CRL file's highest number is what the next one builds on.
 * root.crl lists revoked intermediates. verify accepts leaves of both
 * trusted generations and explains a retired one.
 */
static void test_generations(void **state)
{
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    struct ct_gen g;
    struct ct_ca ca2 = {NULL, NULL};
    struct ct_live_ca live[CT_LIVE_MAX];
    X509 *a, *b, *c;
    X509_CRL *crl1, *crl2, *root_crl;
    X509_REVOKED *rev = NULL;
    ASN1_ENUMERATED *reason;
    STACK_OF(X509_CRL) *crls;
    char err[CT_ERR_MAX], why[CT_ERR_MAX], cn[TLS_CN_MAX + 1], path[] = "/tmp/test-certs-gen-XXXXXX";
    enum ct_key_type kt;
    time_t now = time(NULL);
    long number = 0;
    BIO *bio;
    int fd;

    (void)state;
    make_pki(&pki, CT_KEY_EC_P256, 0, 100);
    /* The registry: client generation 1 previous (in pki.gens), generation 2 current (pki.client_ca). */
    memset(&g, 0, sizeof(g));
    g.kind = CT_KIND_CLIENT;
    g.gen = 1;
    g.status = CT_GEN_PREVIOUS;
    g.reason = -1;
    tls_x509_serial_hex(pki.client_ca.cert, g.serial, sizeof(g.serial));
    g.ca = pki.client_ca;
    assert_int_equal(ct_ca_make(&ca2, CT_KEY_EC_P384, CT_PROFILE_INTERMEDIATE, CT_KIND_CLIENT,
                                "Test Org", " Client CA 2", &pki.root, 50, NULL, err, sizeof(err)), 0);
    pki.client_ca = ca2;
    assert_int_equal(ct_gens_add(&pki.gens, &g, err, sizeof(err)), 0);
    assert_int_equal(ct_gens_add_current(&pki.gens, CT_KIND_CLIENT, 2, pki.client_ca.cert, err,
                                         sizeof(err)), 0);
    assert_int_equal(ct_gens_add_current(&pki.gens, CT_KIND_SERVER, 1, pki.server_ca.cert, err,
                                         sizeof(err)), 0);
    assert_int_equal(ct_pki_current_gen(&pki, CT_KIND_CLIENT), 2);
    assert_int_equal(ct_pki_live(&pki, CT_KIND_CLIENT, live, CT_LIVE_MAX), 2);
    assert_int_equal(tls_x509_get_cn(pki.client_ca.cert, cn), 0);
    assert_string_equal(cn, "Test Org Client CA 2");
    assert_true(X509_check_issued(pki.root.cert, pki.client_ca.cert) == X509_V_OK);
    assert_int_equal(ct_key_type_of(pki.client_ca.key, &kt, err, sizeof(err)), 0);
    assert_int_equal(kt, CT_KEY_EC_P384);
    assert_int_equal(ct_key_type_of(pki.gens.v[0].ca.key, &kt, err, sizeof(err)), 0);
    assert_int_equal(kt, CT_KEY_EC_P256);

    /* a from generation 1 (revoked), b and c from generation 2 (c revoked). */
    a = make_cert(CT_PROFILE_CLIENT, CT_KIND_CLIENT, "a", pki.root.key, &pki.gens.v[0].ca, 30, 0, NULL, NULL);
    b = make_cert(CT_PROFILE_CLIENT, CT_KIND_CLIENT, "b", pki.root.key, &pki.client_ca, 30, 0, NULL, NULL);
    c = make_cert(CT_PROFILE_CLIENT, CT_KIND_CLIENT, "c", pki.root.key, &pki.client_ca, 30, 0, NULL, NULL);
    add_entry(&idx, a, "a", 1, now - 60, CRL_REASON_KEY_COMPROMISE);
    add_entry(&idx, b, "b", 0, 0, 0);
    add_entry(&idx, c, "c", 1, now - 30, CRL_REASON_SUPERSEDED);
    idx.v[0].ca_gen = 1;
    idx.v[1].ca_gen = 2;
    idx.v[2].ca_gen = 2;
    crl1 = ct_crl_build_gen(&pki.gens.v[0].ca, 1, &idx, CT_KIND_CLIENT, 4, 30, now, err, sizeof(err));
    crl2 = ct_crl_build(&pki, &idx, CT_KIND_CLIENT, 4, 30, now, err, sizeof(err)); /* the current: 2 */
    assert_non_null(crl1);
    assert_non_null(crl2);
    assert_int_equal(X509_CRL_verify(crl1, X509_get0_pubkey(pki.gens.v[0].ca.cert)), 1);
    assert_int_equal(X509_CRL_verify(crl2, X509_get0_pubkey(pki.client_ca.cert)), 1);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl2), X509_get_subject_name(pki.client_ca.cert)), 0);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl1)), 1);
    assert_int_equal(X509_CRL_get0_by_cert(crl1, &rev, a), 1);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl2)), 1);
    assert_int_equal(X509_CRL_get0_by_cert(crl2, &rev, c), 1);
    assert_int_equal(X509_CRL_get0_by_cert(crl2, &rev, a), 0);
    /* Without its key, a generation's CRL cannot be signed. */
    {
        struct ct_ca nokey = {pki.gens.v[0].ca.cert, NULL};

        assert_null(ct_crl_build_gen(&nokey, 1, &idx, CT_KIND_CLIENT, 4, 30, now, err, sizeof(err)));
        assert_non_null(strstr(err, "client intermediate (generation 1)"));
    }

    /* A file of two CRLs: the next number is above the highest. */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    X509_CRL_free(crl1);
    crl1 = ct_crl_build_gen(&pki.gens.v[0].ca, 1, &idx, CT_KIND_CLIENT, 9, 30, now, err, sizeof(err));
    assert_non_null(crl1);
    bio = BIO_new_file(path, "w");
    assert_true(PEM_write_bio_X509_CRL(bio, crl2) && PEM_write_bio_X509_CRL(bio, crl1));
    BIO_free(bio);
    assert_int_equal(ct_crl_read_number(path, &number, err, sizeof(err)), 0);
    assert_int_equal(number, 9);

    /* verify: both trusted generations; with both CRLs, the revoked ones by their own issuer. */
    assert_int_equal(ct_verify_cert(&pki, b, CT_KIND_CLIENT, NULL, 0, why, sizeof(why)), 0);
    assert_int_equal(ct_verify_cert(&pki, a, CT_KIND_CLIENT, NULL, 0, why, sizeof(why)), 0);
    crls = sk_X509_CRL_new_null();
    assert_non_null(crls);
    assert_true(sk_X509_CRL_push(crls, crl2) && sk_X509_CRL_push(crls, crl1));
    assert_int_equal(ct_verify_cert(&pki, b, CT_KIND_CLIENT, crls, 0, why, sizeof(why)), 0);
    assert_int_equal(ct_verify_cert(&pki, a, CT_KIND_CLIENT, crls, 0, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "revoked on"));
    assert_int_equal(ct_verify_cert(&pki, c, CT_KIND_CLIENT, crls, 0, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "(superseded)"));
    sk_X509_CRL_free(crls);

    /* Retired and revoked: verify says so; root.crl lists it, signed by the root. */
    pki.gens.v[0].status = CT_GEN_RETIRED;
    pki.gens.v[0].retired_at = now - 10;
    pki.gens.v[0].revoked_at = now - 5;
    pki.gens.v[0].reason = CRL_REASON_CA_COMPROMISE;
    assert_int_equal(ct_pki_live(&pki, CT_KIND_CLIENT, live, CT_LIVE_MAX), 1);
    assert_int_equal(ct_verify_cert(&pki, a, CT_KIND_CLIENT, NULL, 0, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "issued by the client intermediate generation 1, which was revoked on"));
    assert_int_equal(ct_verify_cert(&pki, b, CT_KIND_CLIENT, NULL, 0, why, sizeof(why)), 0);
    root_crl = ct_root_crl_build(&pki, 3, 30, now, err, sizeof(err));
    assert_non_null(root_crl);
    assert_int_equal(X509_CRL_verify(root_crl, X509_get0_pubkey(pki.root.cert)), 1);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(root_crl)), 1);
    assert_int_equal(X509_CRL_get0_by_cert(root_crl, &rev, pki.gens.v[0].ca.cert), 1);
    reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    assert_non_null(reason);
    assert_int_equal(ASN1_ENUMERATED_get(reason), CRL_REASON_CA_COMPROMISE);
    ASN1_ENUMERATED_free(reason);
    assert_int_equal(X509_CRL_get0_by_cert(root_crl, &rev, pki.client_ca.cert), 0);

    unlink(path);
    X509_CRL_free(root_crl);
    X509_CRL_free(crl1);
    X509_CRL_free(crl2);
    X509_free(a);
    X509_free(b);
    X509_free(c);
    ct_index_free(&idx);
    free_pki(&pki);
}

/* ---- writing a leaf --------------------------------------------------------------------- */

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void test_issue_stage_files(void **state)
{
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    struct ct_leaf leaf;
    struct ct_txn *t;
    char dir[] = "/tmp/test-certs-issue-XXXXXX", p[512], err[CT_ERR_MAX], cmd[600];
    EVP_PKEY *k = NULL, *k2, *pk8 = NULL, *p12key = NULL;
    X509 *x, *x2, *p12cert = NULL;
    STACK_OF(X509) *p12ca = NULL;
    PKCS12 *p12;
    const X509_ALGOR *macalg = NULL;
    const ASN1_OBJECT *macobj = NULL;
    BIO *bio;
    int superseded = -1;

    (void)state;
    assert_non_null(mkdtemp(dir));
    make_pki(&pki, CT_KEY_EC_P256, 0, 100);
    snprintf(pki.dir, sizeof(pki.dir), "%s", dir);
    snprintf(p, sizeof(p), "%s/clients", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    x = client_leaf(&pki, "attestor1", 30, 0, &k);
    memset(&leaf, 0, sizeof(leaf));
    leaf.kind = CT_KIND_CLIENT;
    leaf.name = "attestor1";
    leaf.cert = x;
    leaf.key = k;
    leaf.p12_pass = "s3cret";
    t = ct_txn_new();
    assert_int_equal(ct_issue_stage(t, &pki, &idx, &leaf, &superseded, err, sizeof(err)), 0);
    assert_int_equal(superseded, 0);
    assert_int_equal(ct_txn_commit(t, err, sizeof(err)), 0);
    ct_txn_free(t);

    snprintf(p, sizeof(p), "%s/clients/attestor1.key", dir);
    assert_int_equal(mode_of(p), 0600);
    snprintf(p, sizeof(p), "%s/clients/attestor1.crt", dir);
    assert_int_equal(mode_of(p), 0644);
    /* .pk8: DER PKCS#8 of the same key */
    snprintf(p, sizeof(p), "%s/clients/attestor1.pk8", dir);
    assert_int_equal(mode_of(p), 0600);
    bio = BIO_new_file(p, "rb");
    pk8 = d2i_PrivateKey_bio(bio, NULL);
    BIO_free(bio);
    assert_non_null(pk8);
    assert_true(tls_x509_key_matches(x, pk8));
    /* .p12: AES-256 PBES2 content, HMAC-SHA256 MAC, key + cert + intermediate */
    snprintf(p, sizeof(p), "%s/clients/attestor1.p12", dir);
    assert_int_equal(mode_of(p), 0600);
    bio = BIO_new_file(p, "rb");
    p12 = d2i_PKCS12_bio(bio, NULL);
    BIO_free(bio);
    assert_non_null(p12);
    assert_int_equal(PKCS12_verify_mac(p12, "s3cret", -1), 1);
    assert_int_equal(PKCS12_verify_mac(p12, "", -1), 0);
    PKCS12_get0_mac(NULL, &macalg, NULL, NULL, p12);
    X509_ALGOR_get0(&macobj, NULL, NULL, macalg);
    assert_int_equal(OBJ_obj2nid(macobj), NID_sha256);
    assert_int_equal(PKCS12_parse(p12, "s3cret", &p12key, &p12cert, &p12ca), 1);
    assert_int_equal(X509_cmp(p12cert, x), 0);
    assert_true(tls_x509_key_matches(x, p12key));
    assert_int_equal(sk_X509_num(p12ca), 1);
    assert_int_equal(X509_cmp(sk_X509_value(p12ca, 0), pki.client_ca.cert), 0);
    PKCS12_free(p12);
    ERR_clear_error();
    /* the index has the entry */
    assert_int_equal(idx.n, 1);
    assert_int_equal(idx.v[0].status, CT_STATUS_VALID);

    /* --force re-issue without a key (sign-csr): old entry superseded, the
     * CRL staged, the old key files removed. */
    x2 = client_leaf(&pki, "attestor1", 30, 0, &k2);
    leaf.cert = x2;
    leaf.key = NULL;
    assert_int_equal(ct_issue_check_free(dir, &idx, CT_KIND_CLIENT, "attestor1", 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(ct_issue_check_free(dir, &idx, CT_KIND_CLIENT, "attestor1", 1, err, sizeof(err)), 0);
    t = ct_txn_new();
    assert_int_equal(ct_issue_stage(t, &pki, &idx, &leaf, &superseded, err, sizeof(err)), 0);
    assert_int_equal(superseded, 1);
    assert_int_equal(ct_txn_commit(t, err, sizeof(err)), 0);
    ct_txn_free(t);
    snprintf(p, sizeof(p), "%s/clients/attestor1.key", dir);
    assert_false(ct_exists(p));
    snprintf(p, sizeof(p), "%s/clients/attestor1.p12", dir);
    assert_false(ct_exists(p));
    snprintf(p, sizeof(p), "%s/client-ca.crl", dir);
    assert_true(ct_exists(p));
    ct_index_free(&idx);
    assert_int_equal(ct_index_load(dir, &idx, err, sizeof(err)), 0);
    assert_int_equal(idx.n, 2);
    assert_int_equal(idx.v[0].status, CT_STATUS_REVOKED);
    assert_int_equal(idx.v[0].reason, CRL_REASON_SUPERSEDED);
    assert_int_equal(idx.v[1].status, CT_STATUS_VALID);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(pk8);
    EVP_PKEY_free(p12key);
    X509_free(p12cert);
    sk_X509_pop_free(p12ca, X509_free);
    X509_free(x);
    X509_free(x2);
    ct_index_free(&idx);
    free_pki(&pki);
}

/* ---- verify: the words for each failure ---------------------------------------------------- */

static void expect_why(struct ct_pki *pki, X509 *x, enum ct_kind kind, STACK_OF(X509_CRL) *crls,
                       const char *want)
{
    char why[CT_ERR_MAX];

    why[0] = '\0';
    if (ct_verify_cert(pki, x, kind, crls, 0, why, sizeof(why)) == 0)
        fail_msg("accepted, expected '%s'", want);
    if (strstr(why, want) == NULL)
        fail_msg("'%s' lacks '%s'", why, want);
}

static void expect_ok(struct ct_pki *pki, X509 *x, enum ct_kind kind, STACK_OF(X509_CRL) *crls)
{
    char why[CT_ERR_MAX];

    why[0] = '\0';
    if (ct_verify_cert(pki, x, kind, crls, 0, why, sizeof(why)) != 0)
        fail_msg("refused: %s", why);
}

static void test_verify_explains(void **state)
{
    struct ct_pki pki, other;
    X509 *c, *s, *wrong_eku, *no_eku, *expired, *future, *foreign;
    EVP_PKEY *k;
    char why[64], date[64];
    time_t now = time(NULL), t;
    int i;

    (void)state;
    make_pki(&pki, CT_KEY_EC_P256, 0, 1825);
    c = client_leaf(&pki, "attestor1", 365, 0, NULL);
    s = server_leaf(&pki, NULL, "localhost");
    expect_ok(&pki, c, CT_KIND_CLIENT, NULL);
    expect_ok(&pki, s, CT_KIND_SERVER, NULL);
    expect_why(&pki, s, CT_KIND_CLIENT, NULL,
               "issued by the server intermediate, not the client intermediate");
    expect_why(&pki, c, CT_KIND_SERVER, NULL,
               "issued by the client intermediate, not the server intermediate");
    expect_why(&pki, pki.client_ca.cert, CT_KIND_CLIENT, NULL,
               "is a CA certificate (the client intermediate), not a client certificate");
    expect_why(&pki, pki.root.cert, CT_KIND_CLIENT, NULL, "is a CA certificate (the root)");

    /* serverAuth from the client intermediate: right issuer, wrong usage */
    wrong_eku = server_leaf(&pki, &pki.client_ca, "oddity");
    expect_why(&pki, wrong_eku, CT_KIND_CLIENT, NULL,
               "no clientAuth usage (its extended key usage allows serverAuth)");

    /* no EKU at all: a client leaf with the extension cut out and re-signed */
    no_eku = client_leaf(&pki, "bare", 30, 0, NULL);
    i = X509_get_ext_by_NID(no_eku, NID_ext_key_usage, -1);
    X509_EXTENSION_free(X509_delete_ext(no_eku, i));
    assert_true(X509_sign(no_eku, pki.client_ca.key, EVP_sha256()) > 0);
    no_eku = reparse(no_eku);
    expect_why(&pki, no_eku, CT_KIND_CLIENT, NULL,
               "has no extended key usage at all (clientAuth required)");

    /* expired: issued 400 days ago for 30 days */
    expired = client_leaf(&pki, "old", 30, now - 400 * DAY, NULL);
    assert_int_equal(tls_x509_not_after(expired, &t), 0);
    snprintf(why, sizeof(why), "expired on %s", tls_time_str(t, date, sizeof(date)));
    expect_why(&pki, expired, CT_KIND_CLIENT, NULL, why);

    /* not yet valid: dated 10 days ahead */
    future = client_leaf(&pki, "future", 30, now + 10 * DAY, NULL);
    assert_int_equal(tls_x509_not_before(future, &t), 0);
    snprintf(why, sizeof(why), "not yet valid until %s", tls_time_str(t, date, sizeof(date)));
    expect_why(&pki, future, CT_KIND_CLIENT, NULL, why);

    /* another PKI with the same names: same issuer name, another key */
    make_pki(&other, CT_KEY_EC_P256, 0, 1825);
    foreign = client_leaf(&other, "attestor1", 30, 0, NULL);
    expect_why(&pki, foreign, CT_KIND_CLIENT, NULL, "unknown issuer");
    expect_why(&pki, foreign, CT_KIND_CLIENT, NULL, "another key");

    /* a PKI whose client intermediate has expired: the chain, not the leaf, fails */
    free_pki(&other);
    k = key(CT_KEY_EC_P256);
    memset(&other, 0, sizeof(other));
    other.lock_fd = -1;
    other.root.key = key(CT_KEY_EC_P256);
    other.root.cert = make_cert(CT_PROFILE_ROOT, CT_KIND_CLIENT, "R", other.root.key, NULL, 3650,
                                now - 400 * DAY, NULL, NULL);
    other.client_ca.key = key(CT_KEY_EC_P256);
    other.client_ca.cert = make_cert(CT_PROFILE_INTERMEDIATE, CT_KIND_CLIENT, "C",
                                     other.client_ca.key, &other.root, 30, now - 400 * DAY, NULL, NULL);
    other.server_ca.key = key(CT_KEY_EC_P256);
    other.server_ca.cert = make_cert(CT_PROFILE_INTERMEDIATE, CT_KIND_SERVER, "S",
                                     other.server_ca.key, &other.root, 30, now - 400 * DAY, NULL, NULL);
    X509_free(foreign);
    foreign = make_cert(CT_PROFILE_CLIENT, CT_KIND_CLIENT, "late", k, &other.client_ca, 365,
                        now - 399 * DAY, NULL, NULL);
    expect_why(&other, foreign, CT_KIND_CLIENT, NULL, "the client intermediate expired on");

    EVP_PKEY_free(k);
    X509_free(foreign);
    X509_free(c);
    X509_free(s);
    X509_free(wrong_eku);
    X509_free(no_eku);
    X509_free(expired);
    X509_free(future);
    free_pki(&other);
    free_pki(&pki);
}

static void test_verify_revoked_and_crl(void **state)
{
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    X509 *good, *bad;
    X509_CRL *crl;
    char err[CT_ERR_MAX], want[128], date[64];
    time_t now = time(NULL);

    (void)state;
    make_pki(&pki, CT_KEY_EC_P256, 0, 1825);
    good = client_leaf(&pki, "attestor1", 365, 0, NULL);
    bad = client_leaf(&pki, "attestor2", 365, 0, NULL);
    add_entry(&idx, good, "attestor1", 0, 0, 0);
    add_entry(&idx, bad, "attestor2", 1, now - 120, CRL_REASON_KEY_COMPROMISE);
    crl = ct_crl_build(&pki, &idx, CT_KIND_CLIENT, 2, 30, 0, err, sizeof(err));
    assert_non_null(crl);
    assert_true(sk_X509_CRL_push(crls, crl));
    expect_ok(&pki, good, CT_KIND_CLIENT, crls);
    snprintf(want, sizeof(want), "revoked on %s (keyCompromise)", tls_time_str(now - 120, date, sizeof(date)));
    expect_why(&pki, bad, CT_KIND_CLIENT, crls, want);
    /* without the CRL it is (wrongly, but knowingly) fine */
    expect_ok(&pki, bad, CT_KIND_CLIENT, NULL);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);

    /* a CRL past its nextUpdate fails every check, naming the file */
    crls = sk_X509_CRL_new_null();
    crl = ct_crl_build(&pki, &idx, CT_KIND_CLIENT, 3, 30, now - 40 * DAY, err, sizeof(err));
    assert_non_null(crl);
    assert_true(sk_X509_CRL_push(crls, crl));
    expect_why(&pki, good, CT_KIND_CLIENT, crls, "client-ca.crl has expired (run certs-tool crl)");
    sk_X509_CRL_pop_free(crls, X509_CRL_free);

    X509_free(good);
    X509_free(bad);
    ct_index_free(&idx);
    free_pki(&pki);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles_ec_p256),
        cmocka_unit_test(test_profiles_other_key_types),
        cmocka_unit_test(test_signature_digests),
        cmocka_unit_test(test_validity_clamped_to_issuer),
        cmocka_unit_test(test_expired_issuer_refused),
        cmocka_unit_test(test_profile_refusals),
        cmocka_unit_test(test_san_parse),
        cmocka_unit_test(test_org_and_key_types),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_generations),
        cmocka_unit_test(test_issue_stage_files),
        cmocka_unit_test(test_verify_explains),
        cmocka_unit_test(test_verify_revoked_and_crl),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
