/*
 * test_tls_libctx.c - the library context client-facing TLS runs in
 * (tls/tls_libctx.h): it is in use (OpenSSL's configuration is plain here),
 * it offers only the public-key decoders of key types that sign,
 * certificates with those keys parse in it with their key,
 * others parse without one, keys read in the default context sign and
 * verify in it, a TLS 1.3 handshake with every default group works, and a
 * ticket's parse makes it the thread's default only until it ends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <pthread.h>

#include <openssl/decoder.h>
#include <openssl/dsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_libctx.h"

static void count_decoder(OSSL_DECODER *d, void *arg)
{
    (void)d;
    ++*(int *)arg;
}

static int decoders_in(OSSL_LIB_CTX *ctx)
{
    int n = 0;

    OSSL_DECODER_do_all_provided(ctx, count_decoder, &n);
    return n;
}

/* A self-signed-by-signer certificate for key, made in the default context. */
static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *signer, const char *cn)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(x);
    assert_non_null(name);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)cn, -1, -1, 0), 1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    /* Ed25519 and Ed448 sign without a separate digest. */
    assert_true(X509_sign(x, signer,
                          EVP_PKEY_is_a(signer, "ED25519") || EVP_PKEY_is_a(signer, "ED448")
                              ? NULL
                              : EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

/* x re-parsed from its DER in ctx. */
static X509 *reparse(const X509 *x, OSSL_LIB_CTX *ctx)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_X509(x, &der);
    X509 *y = X509_new_ex(ctx, NULL);

    assert_true(len > 0);
    assert_non_null(y);
    p = der;
    assert_non_null(d2i_X509(&y, &p, len));
    OPENSSL_free(der);
    return y;
}

static void test_one_context(void **state)
{
    (void)state;
    assert_non_null(tls_libctx());
    assert_ptr_equal(tls_libctx(), tls_libctx());
}

/* Only the six SubjectPublicKeyInfo decoders are found in it. */
static void test_decoders_filtered(void **state)
{
    (void)state;
    assert_null(tls_libctx_fallback());
    assert_int_equal(decoders_in(tls_libctx()), 6);
    assert_true(decoders_in(NULL) > 20);
}

/* The calling thread's default context (set0_default(NULL) only asks). */
static OSSL_LIB_CTX *thread_default(void)
{
    return OSSL_LIB_CTX_set0_default(NULL);
}

static void *other_thread_default(void *arg)
{
    (void)arg;
    return thread_default();
}

/*
 * tls_libctx_ticket_begin/end: the context is the thread's default in
 * between and only there; begin twice and end twice change nothing more;
 * another thread's default is not touched; a certificate parsed without a
 * context in between gets its key from the context.
 */
static void test_ticket_window(void **state)
{
    OSSL_LIB_CTX *global = OSSL_LIB_CTX_get0_global_default();
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x, *y;
    unsigned char *der = NULL;
    const unsigned char *p;
    int len;
    pthread_t th;
    void *seen = NULL;

    (void)state;
    assert_non_null(key);
    x = make_cert(key, key, "ticket");
    len = i2d_X509(x, &der);
    assert_true(len > 0);

    assert_ptr_equal(thread_default(), global);
    tls_libctx_ticket_end(); /* not begun: nothing */
    assert_ptr_equal(thread_default(), global);

    tls_libctx_ticket_begin();
    assert_ptr_equal(thread_default(), tls_libctx());
    tls_libctx_ticket_begin(); /* already begun */
    assert_ptr_equal(thread_default(), tls_libctx());
    assert_int_equal(pthread_create(&th, NULL, other_thread_default, NULL), 0);
    assert_int_equal(pthread_join(th, &seen), 0);
    assert_ptr_equal(seen, global);
    p = der;
    y = d2i_X509(NULL, &p, len); /* as d2i_SSL_SESSION parses the peer */
    tls_libctx_ticket_end();
    assert_ptr_equal(thread_default(), global);
    tls_libctx_ticket_end();
    assert_ptr_equal(thread_default(), global);

    assert_non_null(y);
    assert_non_null(X509_get0_pubkey(y));
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(X509_get0_pubkey(y))),
                        "mtlsgate-tls");
    X509_free(y);
    p = der;
    y = d2i_X509(NULL, &p, len); /* after: the default context again */
    assert_non_null(y);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(X509_get0_pubkey(y))),
                        "default");
    X509_free(y);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void check_signing_type(EVP_PKEY *key)
{
    X509 *x = make_cert(key, key, "signer");
    X509 *y = reparse(x, tls_libctx());

    assert_non_null(X509_get0_pubkey(y));
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(y), key), 1);
    /* The key from the default context verifies a certificate parsed here. */
    assert_int_equal(X509_verify(y, key), 1);
    assert_int_equal(X509_verify(y, X509_get0_pubkey(x)), 1);
    X509_free(x);
    X509_free(y);
    EVP_PKEY_free(key);
}

/* DSA signs in TLS 1.2; 1024-bit parameters are generated in a blink. */
static EVP_PKEY *dsa_key(void)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL), *kctx;
    EVP_PKEY *params = NULL, *key = NULL;

    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_paramgen_init(pctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx, 1024), 1);
    assert_int_equal(EVP_PKEY_paramgen(pctx, &params), 1);
    assert_non_null(kctx = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL));
    assert_int_equal(EVP_PKEY_keygen_init(kctx), 1);
    assert_int_equal(EVP_PKEY_keygen(kctx, &key), 1);
    EVP_PKEY_CTX_free(kctx);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(params);
    return key;
}

static void test_signing_types_parse(void **state)
{
    (void)state;
    check_signing_type(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
    check_signing_type(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
    check_signing_type(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
    check_signing_type(EVP_PKEY_Q_keygen(NULL, NULL, "ED448"));
    check_signing_type(dsa_key());
}

/* An RSA-PSS key (its own SubjectPublicKeyInfo OID) parses too. */
static void test_rsa_pss_parses(void **state)
{
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
    EVP_PKEY *key = NULL; /* EVP_PKEY_Q_keygen does not know RSA-PSS in 3.0 */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x, *y;

    (void)state;
    assert_non_null(kctx);
    assert_int_equal(EVP_PKEY_keygen_init(kctx), 1);
    assert_int_equal(EVP_PKEY_generate(kctx, &key), 1);
    EVP_PKEY_CTX_free(kctx);
    assert_non_null(key);
    assert_non_null(ec);
    x = make_cert(key, ec, "pss");
    y = reparse(x, tls_libctx());
    assert_non_null(X509_get0_pubkey(y));
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(y), "RSA-PSS"));
    X509_free(x);
    X509_free(y);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ec);
}

/* A key that cannot sign a handshake: the certificate parses, keyless. */
static void test_other_types_have_no_key(void **state)
{
    EVP_PKEY *xk = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x, *y;

    (void)state;
    assert_non_null(xk);
    assert_non_null(ec);
    x = make_cert(xk, ec, "x25519");
    y = reparse(x, tls_libctx());
    assert_null(X509_get0_pubkey(y));
    assert_non_null(X509_get0_pubkey(x));
    X509_free(x);
    X509_free(y);
    EVP_PKEY_free(xk);
    EVP_PKEY_free(ec);
}

/* Moves what one side wrote to the other, both ways; 1 while anything moved. */
static int pump(SSL *a, SSL *b)
{
    int r1 = SSL_do_handshake(a), r2 = SSL_do_handshake(b);

    return !(r1 == 1 && r2 == 1);
}

/* A TLS 1.2 and a TLS 1.3 handshake in memory for each default group, with
 * a client certificate: both sides in the context, both keys from the
 * default one. */
static void test_handshake_each_group(void **state)
{
    static const char *const groups[] = {"X25519", "P-256", "P-384"};
    static const char *const group_nids[] = {"X25519", "prime256v1", "secp384r1"};
    /* Keys on no curve: in TLS 1.2 an ECDSA key's curve must be a group
     * both sides offer, and each round offers one. */
    EVP_PKEY *skey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ckey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    X509 *scert, *ccert;
    size_t g;

    (void)state;
    assert_non_null(skey);
    assert_non_null(ckey);
    scert = make_cert(skey, skey, "server");
    ccert = make_cert(ckey, ckey, "client");
    for (g = 0; g < 2 * sizeof(groups) / sizeof(groups[0]); g++) {
        int version = g % 2 ? TLS1_3_VERSION : TLS1_2_VERSION;
        SSL_CTX *sctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_server_method());
        SSL_CTX *cctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_client_method());
        SSL *s, *c;
        BIO *sb, *cb;
        X509 *peer;
        int i;

        assert_non_null(sctx);
        assert_non_null(cctx);
        assert_int_equal(SSL_CTX_set_min_proto_version(sctx, version), 1);
        assert_int_equal(SSL_CTX_set_max_proto_version(cctx, version), 1);
        assert_int_equal(SSL_CTX_set1_groups_list(sctx, groups[g / 2]), 1);
        assert_int_equal(SSL_CTX_set1_groups_list(cctx, groups[g / 2]), 1);
        assert_int_equal(SSL_CTX_use_certificate(sctx, scert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(sctx, skey), 1);
        assert_int_equal(SSL_CTX_use_certificate(cctx, ccert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(cctx, ckey), 1);
        SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(sctx), ccert), 1);
        assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), scert), 1);
        SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
        s = SSL_new(sctx);
        c = SSL_new(cctx);
        assert_non_null(s);
        assert_non_null(c);
        assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
        SSL_set_bio(s, sb, sb);
        SSL_set_bio(c, cb, cb);
        SSL_set_accept_state(s);
        SSL_set_connect_state(c);
        for (i = 0; i < 20 && pump(c, s); i++)
            ;
        assert_int_equal(SSL_is_init_finished(s), 1);
        assert_int_equal(SSL_is_init_finished(c), 1);
        assert_int_equal(SSL_get_verify_result(s), X509_V_OK);
        assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
        /* "x25519" or "secp256r1": the NID's name, not the group list's. */
        assert_int_equal(SSL_version(s), version);
        assert_int_equal(SSL_get_negotiated_group(s), OBJ_txt2nid(group_nids[g / 2]));
        peer = SSL_get1_peer_certificate(s);
        assert_non_null(peer);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(peer), ckey), 1);
        X509_free(peer);
        SSL_free(s);
        SSL_free(c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
    X509_free(scert);
    X509_free(ccert);
    EVP_PKEY_free(skey);
    EVP_PKEY_free(ckey);
}

static int teardown(void **state)
{
    (void)state;
    tls_libctx_free();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_context),
        cmocka_unit_test(test_decoders_filtered),
        cmocka_unit_test(test_signing_types_parse),
        cmocka_unit_test(test_rsa_pss_parses),
        cmocka_unit_test(test_other_types_have_no_key),
        cmocka_unit_test(test_handshake_each_group),
        cmocka_unit_test(test_ticket_window),
    };

    return cmocka_run_group_tests(tests, NULL, teardown);
}
