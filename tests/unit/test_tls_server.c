/*
 * test_tls_server.c - the gateway's server SSL_CTX (tls/tls_server.h) and
 * the upstream client SSL_CTX (tls/tls_client.h), in real TLS handshakes
 * run in memory (two SSLs over a BIO pair), with the openssl-CLI test PKI
 * of tests/lib/make-test-certs.sh.
 *
 * For each client certificate: does the handshake succeed, what refusal
 * did the server record, and which alert did the client receive.
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
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls_certpool.h"
#include "tls_client.h"
#include "tls_libctx.h"
#include "tls_server.h"
#include "tls_trust.h"
#include "unit_pki.h"

/* The test PKI, plus only-ca2.crt (the second client CA and the root),
 * gateway-enc.key and attestor1-enc.key. */
static int pki_setup(void **state)
{
    char cmd[768];

    (void)state;
    if (unit_pki_make("test-tls-server") != 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "cat '%s/client-ca2.crt' '%s/root.crt' > '%s/only-ca2.crt'", pki,
             pki, pki);
    if (system(cmd) != 0)
        return -1;
    /* Encrypted copies of two keys (passphrase "secret"). */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && openssl pkey -in gateway.key -aes256 -passout pass:secret "
             "-out gateway-enc.key && openssl pkey -in attestor1.key -aes256 "
             "-passout pass:secret -out attestor1-enc.key", pki);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ fixtures */

static struct tls_trust *trust_new(const char *ca, const char *crl, int require_eku)
{
    struct tls_trust_opts o = { .client_ca_path = P(ca), .crl_path = crl ? P(crl) : NULL,
                                .require_eku = require_eku };
    char err[512];
    struct tls_trust *t = tls_trust_load(&o, err, sizeof(err));

    if (t == NULL)
        fail_msg("%s", err);
    return t;
}

/* A gateway context over trust t (the context takes its own reference). */
static SSL_CTX *server_new(struct tls_trust *t, int tickets, struct tls_ticket_keys *keys)
{
    struct tls_server_opts o = {
        .certificate = P("gateway.bundle.crt"), .key = P("gateway.key"),
        .session_tickets = tickets, .trust = t, .ticket_keys = keys,
    };
    char err[512];
    SSL_CTX *ctx = tls_server_ctx_new(&o, err, sizeof(err));

    if (ctx == NULL)
        fail_msg("%s", err);
    return ctx;
}

/* An attestor: presents pki/<name>.pem with <name>.key (name NULL: no
 * certificate), verifies the gateway against root.crt, TLS version fixed
 * to `version` (0 = 1.2..1.3). */
static SSL_CTX *client_new(const char *name, int version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char file[128];

    assert_non_null(ctx);
    if (version != 0) {
        assert_true(SSL_CTX_set_min_proto_version(ctx, version));
        assert_true(SSL_CTX_set_max_proto_version(ctx, version));
    }
    if (version != 0 && version < TLS1_2_VERSION)
        assert_true(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"));
    assert_int_equal(SSL_CTX_load_verify_file(ctx, P("root.crt")), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (name != NULL) {
        snprintf(file, sizeof(file), "%s.pem", name);
        assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, P(file)), 1);
        snprintf(file, sizeof(file), "%s.key", name);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, P(file), SSL_FILETYPE_PEM), 1);
    }
    /* The client keeps sessions for the resumption tests. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    return ctx;
}

/* One handshake and what came out of it. */
struct hs {
    int server_ok;            /* server handshake + tls_server_peer_finish */
    int client_ok;            /* client handshake completed */
    int got_data;             /* client read the server's "hello" */
    int alert;                /* last alert the client received, -1 none */
    struct tls_peer peer;
    SSL_SESSION *session;     /* client's session afterwards (owned) */
    int sent_chain;           /* certificates the client sent besides its own */
    int kept_chain;           /* of them, what the server's session keeps (-1: none) */
    char key_provider[32];    /* provider of the server's peer's public key ("" none) */
    int default_restored;     /* the thread's default context is the global one after it */
};

static void client_info_cb(const SSL *ssl, int where, int ret)
{
    struct hs *h = SSL_get_app_data(ssl);

    if ((where & SSL_CB_READ_ALERT) == SSL_CB_READ_ALERT && h != NULL)
        h->alert = ret & 0xff;
}

/* 1 = done, 0 = wants more I/O, -1 = failed. *err gets the first error. */
static int step(SSL *ssl, unsigned long *err)
{
    int r = SSL_do_handshake(ssl), e;

    if (r == 1)
        return 1;
    e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (err != NULL)
        *err = ERR_peek_error();
    ERR_clear_error();
    return -1;
}

/* A client SSL of cctx and a server SSL of sctx, connected by an in-memory BIO pair. */
static void ssl_pair(SSL_CTX *cctx, SSL_CTX *sctx, SSL **c, SSL **s)
{
    BIO *cb = NULL, *sb = NULL;

    *c = SSL_new(cctx);
    *s = SSL_new(sctx);
    assert_non_null(*c);
    assert_non_null(*s);
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(*c, cb, cb);
    SSL_set_bio(*s, sb, sb);
    SSL_set_connect_state(*c);
    SSL_set_accept_state(*s);
}

/*
 * Steps both sides' handshakes (at most 50 rounds) until neither wants more
 * I/O; *cst and *sst as step() returns them, *serr (may be NULL) the
 * server's first error.
 */
static void handshake_both(SSL *c, SSL *s, int *cst, int *sst, unsigned long *serr)
{
    int i;

    *cst = 0;
    *sst = 0;
    for (i = 0; i < 50 && (*cst == 0 || *sst == 0); i++) {
        if (*cst == 0)
            *cst = step(c, NULL);
        if (*sst == 0)
            *sst = step(s, serr);
    }
}

/*
 * A fresh copy of a session (through its DER encoding): an OpenSSL client
 * uses a TLS 1.3 session once and then marks it not resumable, but these
 * tests offer the same ticket to several servers.
 */
static SSL_SESSION *session_copy(SSL_SESSION *s)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_SSL_SESSION(s, &der);
    SSL_SESSION *copy;

    assert_true(len > 0);
    p = der;
    copy = d2i_SSL_SESSION(NULL, &p, len);
    OPENSSL_free(der);
    assert_non_null(copy);
    return copy;
}

/*
 * Runs one handshake between client context cctx and server context sctx,
 * offering a copy of `resume` (may be NULL). Afterwards the server writes "hello" and
 * the client reads it (this also delivers TLS 1.3 tickets and the server's
 * alert when it refused the client after the client's Finished).
 */
static void handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *resume, struct hs *h)
{
    SSL *c, *s;
    unsigned long serr = 0;
    int cst, sst, i, n;
    char buf[16];

    memset(h, 0, sizeof(*h));
    h->alert = -1;
    ssl_pair(cctx, sctx, &c, &s);
    SSL_set_app_data(c, h);
    SSL_set_info_callback(c, client_info_cb);
    if (resume != NULL) {
        SSL_SESSION *copy = session_copy(resume);

        assert_int_equal(SSL_set_session(c, copy), 1);
        SSL_SESSION_free(copy);
    }
    assert_int_equal(tls_server_attach_peer(s, &h->peer), 0);
    handshake_both(c, s, &cst, &sst, &serr);
    if (sst == 1)
        h->server_ok = tls_server_peer_finish(s, &h->peer) == 0;
    else
        tls_server_peer_failed(s, &h->peer, serr);
    h->client_ok = cst == 1;
    if (h->server_ok && SSL_write(s, "hello", 5) != 5)
        fail_msg("server write failed");
    for (i = 0; i < 4 && cst == 1; i++) {
        n = SSL_read(c, buf, sizeof(buf));
        if (n == 5 && memcmp(buf, "hello", 5) == 0) {
            h->got_data = 1;
            break;
        }
        if (n <= 0 && SSL_get_error(c, n) != SSL_ERROR_WANT_READ)
            break;
        if (sst == 1) /* let the server read anything the client sent */
            (void)SSL_read(s, buf, sizeof(buf));
    }
    /* A clean close: SSL_free without it marks the session not resumable
     * (and takes the server's out of the session cache). */
    if (cst == 1 && h->got_data)
        (void)SSL_shutdown(c);
    if (h->server_ok)
        (void)SSL_shutdown(s);
    ERR_clear_error();
    h->session = SSL_get1_session(c);
    {
        STACK_OF(X509) *extra = NULL;
        STACK_OF(X509) *kept = SSL_get_peer_cert_chain(s);

        if (SSL_CTX_get0_chain_certs(cctx, &extra) == 1)
            h->sent_chain = sk_X509_num(extra);
        h->kept_chain = kept != NULL ? sk_X509_num(kept) : -1;
    }
    {
        X509 *pc = SSL_get0_peer_certificate(s);
        EVP_PKEY *pk = pc != NULL ? X509_get0_pubkey(pc) : NULL;
        const OSSL_PROVIDER *prov = pk != NULL ? EVP_PKEY_get0_provider(pk) : NULL;

        snprintf(h->key_provider, sizeof(h->key_provider), "%s",
                 prov != NULL ? OSSL_PROVIDER_get0_name(prov) : "");
    }
    /* NULL: asks without setting. */
    h->default_restored = OSSL_LIB_CTX_set0_default(NULL) == OSSL_LIB_CTX_get0_global_default();
    SSL_free(c);
    SSL_free(s);
}

/* ------------------------------------------------------------ keyless leaf */

/* The PEM object at pki/name: a certificate (key 0) or a private key. */
static void *read_pem(const char *name, int key)
{
    FILE *f = fopen(P(name), "r");
    void *o;

    assert_non_null(f);
    o = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL) : (void *)PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(o);
    return o;
}

/* A client leaf with an X25519 key (it cannot sign), otherwise one the trust
 * rules admit: CN=attestor-x25519, issued and signed by client-ca, clientAuth. */
static X509 *x25519_leaf(void)
{
    X509 *ca = read_pem("client-ca.crt", 0), *x = X509_new();
    EVP_PKEY *ca_key = read_pem("client-ca.key", 1);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    X509_NAME *name = X509_NAME_new();
    static const char *const exts[][2] = {
        { "basicConstraints", "critical,CA:FALSE" },
        { "keyUsage", "critical,digitalSignature" },
        { "extendedKeyUsage", "clientAuth" },
        { "authorityKeyIdentifier", "keyid:always" },
    };
    X509V3_CTX v3;
    size_t i;

    assert_non_null(x);
    assert_non_null(key);
    assert_non_null(name);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"attestor-x25519", -1, -1, 0), 1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x2519), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(ca)), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
    for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);

        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    return x;
}

/* Appends n (bytes big-endian) to buf at *len. */
static void put(unsigned char *buf, size_t *len, unsigned long v, int n)
{
    while (n-- > 0)
        buf[(*len)++] = (unsigned char)(v >> (8 * n));
}

/* Writes one TLS record (type, version 3.3 or 3.1) holding hs[0..n) to b. */
static void put_record(BIO *b, int type, int minor, const unsigned char *hs, size_t n)
{
    unsigned char head[5];
    size_t len = 0;

    put(head, &len, (unsigned long)type, 1);
    put(head, &len, 0x0300UL | (unsigned long)minor, 2);
    put(head, &len, n, 2);
    assert_int_equal(BIO_write(b, head, 5), 5);
    assert_int_equal(BIO_write(b, hs, (int)n), (int)n);
}

/*
 * A certificate whose key cannot sign a handshake (X25519), under a trusted
 * intermediate and otherwise admissible: no OpenSSL client sends one (it
 * sends no certificate instead), so the client here is by hand, in TLS 1.2,
 * where the Certificate message is not encrypted: a ClientHello, the
 * server's flight read and dropped, then Certificate with the leaf and
 * client-ca. The gateway refuses it in the certificate check, before any
 * signature is asked for: bad_usage naming the key type, and the alert
 * unsupported_certificate. In the default library context (the fallback)
 * the key decodes and only its missing signature would fail the handshake:
 * skipped there.
 */
static void test_keyless_leaf_refused(void **state)
{
    struct tls_trust *t;
    SSL_CTX *sctx;
    X509 *leaf, *ca;
    SSL *s;
    BIO *cb = NULL, *sb = NULL;
    struct tls_peer peer;
    unsigned char hello[128], *cert, out[8192];
    unsigned char *der[2] = { NULL, NULL };
    int derlen[2], n, i, st = 0;
    size_t len = 0, certlen = 0;
    unsigned long serr = 0;
    static const unsigned char exts[] = {
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d, /* groups: P-256, X25519 */
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                         /* point formats */
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04, /* sigalgs */
        0x00, 0x17, 0x00, 0x00,                                     /* extended master secret */
        0xff, 0x01, 0x00, 0x01, 0x00,                               /* renegotiation_info */
    };

    (void)state;
    if (tls_libctx() == NULL)
        skip();
    t = trust_new("client-chain.crt", NULL, 1);
    sctx = server_new(t, 0, NULL);
    leaf = x25519_leaf();
    ca = read_pem("client-ca.crt", 0);
    s = SSL_new(sctx);
    assert_non_null(s);
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(s, sb, sb);
    SSL_set_accept_state(s);
    assert_int_equal(tls_server_attach_peer(s, &peer), 0);

    /* ClientHello: TLS 1.2, ECDHE-ECDSA-AES128-GCM-SHA256, no session. */
    put(hello, &len, 1, 1);
    put(hello, &len, 2 + 32 + 1 + 4 + 2 + 2 + sizeof(exts), 3);
    put(hello, &len, 0x0303, 2);
    assert_int_equal(RAND_bytes(hello + len, 32), 1);
    len += 32;
    put(hello, &len, 0, 1);
    put(hello, &len, 2, 2);
    put(hello, &len, 0xc02b, 2);
    put(hello, &len, 0x0100, 2); /* one compression method: null */
    put(hello, &len, sizeof(exts), 2);
    memcpy(hello + len, exts, sizeof(exts));
    len += sizeof(exts);
    put_record(cb, 22, 1, hello, len);
    assert_int_equal(SSL_do_handshake(s), -1);
    assert_int_equal(SSL_get_error(s, -1), SSL_ERROR_WANT_READ);
    /* ServerHello ... ServerHelloDone, with a CertificateRequest. */
    n = BIO_read(cb, out, sizeof(out));
    assert_true(n > 5);
    assert_int_equal(out[0], 22);

    /* Certificate: the X25519 leaf, then client-ca. */
    derlen[0] = i2d_X509(leaf, &der[0]);
    derlen[1] = i2d_X509(ca, &der[1]);
    assert_true(derlen[0] > 0 && derlen[1] > 0);
    cert = malloc((size_t)derlen[0] + (size_t)derlen[1] + 16);
    assert_non_null(cert);
    put(cert, &certlen, 11, 1);
    put(cert, &certlen, 3 + 6 + (size_t)derlen[0] + (size_t)derlen[1], 3);
    put(cert, &certlen, 6 + (size_t)derlen[0] + (size_t)derlen[1], 3);
    for (i = 0; i < 2; i++) {
        put(cert, &certlen, (unsigned long)derlen[i], 3);
        memcpy(cert + certlen, der[i], (size_t)derlen[i]);
        certlen += (size_t)derlen[i];
    }
    put_record(cb, 22, 3, cert, certlen);
    st = step(s, &serr);
    assert_int_equal(st, -1);
    tls_server_peer_failed(s, &peer, serr);
    if (peer.refusal != TLS_REFUSE_BAD_USAGE)
        fail_msg("refusal %s (%s), want bad_usage", tls_refusal_name(peer.refusal), peer.detail);
    if (strstr(peer.detail, "X25519") == NULL || strstr(peer.detail, "cannot sign") == NULL)
        fail_msg("detail: %s", peer.detail);
    assert_true(strstr(peer.subject, "CN=attestor-x25519") != NULL);
    /* The alert record: fatal (2), unsupported_certificate. */
    n = BIO_read(cb, out, sizeof(out));
    assert_int_equal(n, 7);
    assert_int_equal(out[0], 21);
    assert_int_equal(out[5], 2);
    assert_int_equal(out[6], SSL_AD_UNSUPPORTED_CERTIFICATE);

    free(cert);
    OPENSSL_free(der[0]);
    OPENSSL_free(der[1]);
    SSL_free(s);
    BIO_free(cb);
    X509_free(leaf);
    X509_free(ca);
    SSL_CTX_free(sctx);
    tls_trust_unref(t);
}

/* ------------------------------------------------------------ the cases */

struct case_ {
    const char *name;          /* pki/<name>.pem + .key; NULL: no certificate */
    enum tls_refusal want;
    int alert13;               /* alert the client gets, TLS 1.3 (-1: none) */
    int alert12;               /* and TLS 1.2 */
};

static const struct case_ cases[] = {
    { "attestor1", TLS_OK, -1, -1 },
    { "unknown-cn", TLS_OK, -1, -1 },
    { NULL, TLS_REFUSE_NO_CERTIFICATE, SSL_AD_CERTIFICATE_REQUIRED, SSL_AD_HANDSHAKE_FAILURE },
    { "server-issued", TLS_REFUSE_UNTRUSTED_ISSUER, SSL_AD_UNKNOWN_CA, SSL_AD_UNKNOWN_CA },
    { "other-root", TLS_REFUSE_UNTRUSTED_ISSUER, SSL_AD_UNKNOWN_CA, SSL_AD_UNKNOWN_CA },
    { "self-signed", TLS_REFUSE_UNTRUSTED_ISSUER, SSL_AD_UNKNOWN_CA, SSL_AD_UNKNOWN_CA },
    { "attestor3", TLS_REFUSE_UNTRUSTED_ISSUER, SSL_AD_UNKNOWN_CA, SSL_AD_UNKNOWN_CA },
    { "expired", TLS_REFUSE_EXPIRED, SSL_AD_CERTIFICATE_EXPIRED, SSL_AD_CERTIFICATE_EXPIRED },
    { "not-yet-valid", TLS_REFUSE_NOT_YET_VALID, SSL_AD_BAD_CERTIFICATE, SSL_AD_BAD_CERTIFICATE },
    { "no-clientauth", TLS_REFUSE_BAD_USAGE, SSL_AD_UNSUPPORTED_CERTIFICATE,
      SSL_AD_UNSUPPORTED_CERTIFICATE },
    { "no-eku", TLS_REFUSE_BAD_USAGE, SSL_AD_UNSUPPORTED_CERTIFICATE, SSL_AD_UNSUPPORTED_CERTIFICATE },
    { "client-ca-as-client", TLS_REFUSE_BAD_USAGE, SSL_AD_UNSUPPORTED_CERTIFICATE,
      SSL_AD_UNSUPPORTED_CERTIFICATE },
    { "revoked", TLS_REFUSE_REVOKED, SSL_AD_CERTIFICATE_REVOKED, SSL_AD_CERTIFICATE_REVOKED },
    { "two-cn", TLS_REFUSE_BAD_SUBJECT, SSL_AD_BAD_CERTIFICATE, SSL_AD_BAD_CERTIFICATE },
};

static void check_case(SSL_CTX *sctx, const struct case_ *k, int version)
{
    SSL_CTX *cctx = client_new(k->name, version);
    int want_alert = version == TLS1_2_VERSION ? k->alert12 : k->alert13;
    const char *who = k->name ? k->name : "(no certificate)";
    struct hs h;

    handshake(cctx, sctx, NULL, &h);
    if (k->want == TLS_OK) {
        if (!h.server_ok || !h.got_data || h.peer.refusal != TLS_OK)
            fail_msg("%s TLS %x: refused: %s (%s)", who, version,
                     tls_refusal_name(h.peer.refusal), h.peer.detail);
        assert_string_equal(h.peer.version, version == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3");
        assert_int_equal(strlen(h.peer.sha256), 64);
        assert_int_equal(h.peer.resumed, 0);
        assert_true(strstr(h.peer.subject, "CN=") != NULL);
        /* The client sent its intermediate; once checked, the server's
         * session keeps none of it (drop_sent_chain), only the leaf. */
        assert_int_equal(h.sent_chain, 1);
        if (h.kept_chain != 0)
            fail_msg("%s TLS %x: the server keeps %d certificate(s) of the chain the client sent",
                     who, version, h.kept_chain);
    } else {
        if (h.server_ok || h.got_data)
            fail_msg("%s TLS %x: admitted", who, version);
        if (h.peer.refusal != k->want)
            fail_msg("%s TLS %x: refusal %s (%s), want %s", who, version,
                     tls_refusal_name(h.peer.refusal), h.peer.detail,
                     tls_refusal_name(k->want));
        if (h.peer.detail[0] == '\0')
            fail_msg("%s: refused without detail", who);
        if (k->name != NULL && h.peer.subject[0] == '\0')
            fail_msg("%s: refusal without the subject", who);
        assert_string_equal(h.peer.cn, "");
    }
    assert_true(h.default_restored);
    if (h.alert != want_alert)
        fail_msg("%s TLS %x: client got alert %d (%s), want %d (%s)", who, version, h.alert,
                 SSL_alert_desc_string_long(h.alert), want_alert,
                 SSL_alert_desc_string_long(want_alert));
    SSL_SESSION_free(h.session);
    SSL_CTX_free(cctx);
}

static void test_handshakes(void **state)
{
    struct tls_trust *t = trust_new("client-chain.crt", "client-ca.crl", 1);
    SSL_CTX *sctx = server_new(t, 1, NULL);
    size_t i;
    struct hs h;
    SSL_CTX *cctx;

    (void)state;
    tls_trust_unref(t); /* the context holds its own reference */
    assert_ptr_equal(tls_server_ctx_get0_trust(sctx), t);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_case(sctx, &cases[i], TLS1_3_VERSION);
        check_case(sctx, &cases[i], TLS1_2_VERSION);
    }
    /* The CN is read as the attribute. */
    cctx = client_new("attestor1", 0);
    handshake(cctx, sctx, NULL, &h);
    assert_true(h.server_ok);
    assert_string_equal(h.peer.cn, "attestor1");
    assert_string_equal(h.peer.version, "TLSv1.3");
    SSL_SESSION_free(h.session);
    SSL_CTX_free(cctx);
    /* TLS 1.1 is refused as a protocol error. */
    cctx = client_new("attestor1", TLS1_1_VERSION);
    handshake(cctx, sctx, NULL, &h);
    assert_false(h.server_ok);
    assert_false(h.client_ok);
    assert_int_equal(h.peer.refusal, TLS_REFUSE_PROTOCOL);
    assert_int_equal(h.alert, SSL_AD_PROTOCOL_VERSION);
    SSL_SESSION_free(h.session);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

static void test_require_eku_off_and_rotation(void **state)
{
    struct tls_trust *t = trust_new("client-chain2.crt", NULL, 0);
    SSL_CTX *sctx = server_new(t, 1, NULL);
    static const struct case_ more[] = {
        { "no-eku", TLS_OK, -1, -1 },
        { "attestor3", TLS_OK, -1, -1 },
        { "attestor1", TLS_OK, -1, -1 },
        { "no-clientauth", TLS_REFUSE_BAD_USAGE, SSL_AD_UNSUPPORTED_CERTIFICATE,
          SSL_AD_UNSUPPORTED_CERTIFICATE },
        { "revoked", TLS_OK, -1, -1 }, /* no CRL loaded */
    };
    size_t i;

    (void)state;
    tls_trust_unref(t);
    for (i = 0; i < sizeof(more) / sizeof(more[0]); i++)
        check_case(sctx, &more[i], TLS1_3_VERSION);
    SSL_CTX_free(sctx);
}

/* ------------------------------------------------------------ resumption */

/* A first handshake of `name` against sctx that must succeed; returns the
 * client's resumable session. */
static SSL_SESSION *first_session(SSL_CTX *cctx, SSL_CTX *sctx)
{
    struct hs h;

    handshake(cctx, sctx, NULL, &h);
    if (!h.server_ok || h.session == NULL)
        fail_msg("first handshake refused: %s", h.peer.detail);
    assert_int_equal(SSL_SESSION_is_resumable(h.session), 1);
    return h.session;
}

static void test_resumption_rechecks_trust(void **state)
{
    char err[256];
    struct tls_ticket_keys *keys = tls_ticket_keys_new(err, sizeof(err));
    struct tls_trust *chain = trust_new("client-chain.crt", NULL, 1);
    struct tls_trust *chain_crl = trust_new("client-chain.crt", "client-ca.crl", 1);
    struct tls_trust *only_ca2 = trust_new("only-ca2.crt", NULL, 1);
    static const int versions[] = { TLS1_3_VERSION, TLS1_2_VERSION };
    size_t v;

    (void)state;
    assert_non_null(keys);
    for (v = 0; v < 2; v++) {
        SSL_CTX *a = server_new(chain, 1, keys);
        SSL_CTX *b_retired = server_new(only_ca2, 1, keys);
        SSL_CTX *b_revoked = server_new(chain_crl, 1, keys);
        SSL_CTX *c1 = client_new("attestor1", versions[v]);
        SSL_CTX *crev = client_new("revoked", versions[v]);
        SSL_SESSION *s1 = first_session(c1, a), *srev = first_session(crev, a);
        struct hs h;

        /* Same context: resumed, and the ticket callback re-checked it.
         * The ticket's certificate was parsed in client TLS's library
         * context (tls_libctx_ticket_begin), and the thread's default
         * context is the global one again. */
        handshake(c1, a, s1, &h);
        assert_true(h.server_ok);
        assert_int_equal(h.peer.resumed, 1);
        assert_int_equal(h.peer.rechecked, 1);
        assert_string_equal(h.peer.cn, "attestor1");
        assert_string_equal(h.key_provider, tls_libctx() != NULL ? "mtlsgate-tls" : "default");
        assert_true(h.default_restored);
        SSL_SESSION_free(h.session);

        /* A reloaded context (same ticket keys) that retired client-ca:
         * the ticket is not honoured, and the full handshake is refused. */
        handshake(c1, b_retired, s1, &h);
        assert_false(h.server_ok);
        assert_int_equal(h.peer.resumed, 0);
        assert_int_equal(h.peer.refusal, TLS_REFUSE_UNTRUSTED_ISSUER);
        assert_int_equal(h.alert, SSL_AD_UNKNOWN_CA);
        assert_true(h.default_restored);
        SSL_SESSION_free(h.session);

        /* Revoked after its first handshake: same. */
        handshake(crev, b_revoked, srev, &h);
        assert_false(h.server_ok);
        assert_int_equal(h.peer.refusal, TLS_REFUSE_REVOKED);
        assert_int_equal(h.alert, SSL_AD_CERTIFICATE_REVOKED);
        SSL_SESSION_free(h.session);

        /* attestor1's ticket still resumes in the context with the CRL. */
        handshake(c1, b_revoked, s1, &h);
        assert_true(h.server_ok);
        assert_int_equal(h.peer.resumed, 1);
        SSL_SESSION_free(h.session);

        SSL_SESSION_free(s1);
        SSL_SESSION_free(srev);
        SSL_CTX_free(c1);
        SSL_CTX_free(crev);
        SSL_CTX_free(a);
        SSL_CTX_free(b_retired);
        SSL_CTX_free(b_revoked);
    }
    tls_trust_unref(chain);
    tls_trust_unref(chain_crl);
    tls_trust_unref(only_ca2);
    tls_ticket_keys_unref(keys);
}

/* A server context with the TLS 1.2 cipher list `ciphers`, resuming from
 * the shared ticket keys, or from the shared cache when cache is not NULL. */
static SSL_CTX *server_ciphers(struct tls_trust *t, struct tls_ticket_keys *keys,
                               struct tls_sessions *cache, const char *ciphers)
{
    struct tls_server_opts o = {
        .certificate = P("gateway.bundle.crt"), .key = P("gateway.key"), .ciphers = ciphers,
        .session_tickets = 1, .sessions = cache, .trust = t, .ticket_keys = keys,
    };
    char err[512];
    SSL_CTX *ctx = tls_server_ctx_new(&o, err, sizeof(err));

    if (ctx == NULL)
        fail_msg("%s", err);
    return ctx;
}

/*
 * A reload that takes a cipher out of tls.ciphers: a TLS 1.2 session made
 * with it (ticket or cache, both outlive a reload) no longer resumes, the
 * client gets a full handshake with a cipher still offered; in a context
 * that still offers it, it resumes.
 */
static void test_resumption_drops_a_removed_cipher(void **state)
{
    char err[256];
    struct tls_ticket_keys *keys = tls_ticket_keys_new(err, sizeof(err));
    struct tls_trust *chain = trust_new("client-chain.crt", NULL, 1);
    int mode;

    (void)state;
    assert_non_null(keys);
    for (mode = 0; mode < 2; mode++) {
        struct tls_sessions *cache = mode ? tls_sessions_new(100, err, sizeof(err)) : NULL;
        SSL_CTX *old = server_ciphers(chain, keys, cache, "ECDHE+AESGCM+AES128");
        SSL_CTX *both = server_ciphers(chain, keys, cache, "ECDHE+AESGCM+AES128:ECDHE+AESGCM+AES256");
        SSL_CTX *narrowed = server_ciphers(chain, keys, cache, "ECDHE+AESGCM+AES256");
        SSL_CTX *c = client_new("attestor1", TLS1_2_VERSION);
        SSL_SESSION *s1;
        struct hs h;

        assert_true(mode == 0 || cache != NULL);
        s1 = first_session(c, old);
        assert_int_equal(SSL_CIPHER_get_bits(SSL_SESSION_get0_cipher(s1), NULL), 128);

        handshake(c, both, s1, &h);
        assert_true(h.server_ok);
        assert_int_equal(h.peer.resumed, 1);
        SSL_SESSION_free(h.session);

        handshake(c, narrowed, s1, &h);
        assert_true(h.server_ok);
        assert_int_equal(h.peer.resumed, 0);
        assert_int_equal(SSL_CIPHER_get_bits(SSL_SESSION_get0_cipher(h.session), NULL), 256);
        SSL_SESSION_free(h.session);

        SSL_SESSION_free(s1);
        SSL_CTX_free(c);
        SSL_CTX_free(old);
        SSL_CTX_free(both);
        SSL_CTX_free(narrowed);
        tls_sessions_unref(cache);
    }
    tls_trust_unref(chain);
    tls_ticket_keys_unref(keys);
}

/* Resumes s against sctx; returns 1 when resumed, 0 when a full handshake
 * was made (which must succeed). */
static int resumes(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *s)
{
    struct hs h;
    int r;

    handshake(cctx, sctx, s, &h);
    if (!h.server_ok)
        fail_msg("handshake refused: %s", h.peer.detail);
    r = h.peer.resumed;
    SSL_SESSION_free(h.session);
    return r;
}

static void write_bytes(const char *path, const unsigned char *b, size_t n, mode_t mode)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_ticket_keys(void **state)
{
    char err[512];
    unsigned char raw[3 * TLS_TICKET_KEY_LEN];
    struct tls_trust *t = trust_new("client-chain.crt", "client-ca.crl", 1);
    struct tls_ticket_keys *k1 = tls_ticket_keys_new(err, sizeof(err)), *k2, *f1, *f2;
    SSL_CTX *a, *b, *other, *notickets, *cctx = client_new("attestor1", TLS1_3_VERSION);
    SSL_SESSION *s;
    size_t i;

    (void)state;
    assert_non_null(k1);
    k2 = tls_ticket_keys_new(err, sizeof(err));
    assert_non_null(k2);
    a = server_new(t, 1, k1);
    b = server_new(t, 1, k1);
    other = server_new(t, 1, k2);

    /* Shared keys: a ticket from a resumes in b; not with other keys. */
    s = first_session(cctx, a);
    assert_int_equal(resumes(cctx, b, s), 1);
    assert_int_equal(resumes(cctx, other, s), 0);
    /* One rotation keeps the old key for decryption; two drop it. */
    assert_int_equal(tls_ticket_keys_rotate(k1), 0);
    assert_int_equal(resumes(cctx, a, s), 1);
    assert_int_equal(tls_ticket_keys_rotate(k1), 0);
    assert_int_equal(resumes(cctx, a, s), 0);
    SSL_SESSION_free(s);

    /* Two instances loading one key file share tickets. */
    for (i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)(i * 7 + 3);
    write_bytes(P("ticket.key"), raw, sizeof(raw), 0600);
    f1 = tls_ticket_keys_load(P("ticket.key"), 0, err, sizeof(err));
    if (f1 == NULL)
        fail_msg("%s", err);
    f2 = tls_ticket_keys_load(P("ticket.key"), 0, err, sizeof(err));
    assert_non_null(f2);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    a = server_new(t, 1, f1);
    b = server_new(t, 1, f2);
    s = first_session(cctx, a);
    assert_int_equal(resumes(cctx, b, s), 1);
    /* A ticket under the file's second key still decrypts (and is renewed). */
    assert_int_equal(tls_ticket_keys_set(f2, raw + TLS_TICKET_KEY_LEN, 2 * TLS_TICKET_KEY_LEN), 0);
    SSL_SESSION_free(s);
    s = first_session(cctx, b); /* encrypted with raw key #2 */
    assert_int_equal(resumes(cctx, a, s), 1);
    SSL_SESSION_free(s);
    assert_int_equal(tls_ticket_keys_set(f2, raw, 81), -1);
    assert_int_equal(tls_ticket_keys_set(f2, raw, 0), -1);

    /* Key files: bad length, readable by others, missing. */
    write_bytes(P("short.key"), raw, 79, 0600);
    assert_null(tls_ticket_keys_load(P("short.key"), 0, err, sizeof(err)));
    assert_non_null(strstr(err, "short.key: must hold"));
    write_bytes(P("open.key"), raw, 80, 0644);
    assert_null(tls_ticket_keys_load(P("open.key"), 0, err, sizeof(err)));
    assert_non_null(strstr(err, "group or others"));
    {
        /* ... unless the config allows it (tls.allow_insecure_key_permissions). */
        struct tls_ticket_keys *open_keys = tls_ticket_keys_load(P("open.key"), 1, err, sizeof(err));

        assert_non_null(open_keys);
        tls_ticket_keys_unref(open_keys);
    }
    assert_null(tls_ticket_keys_load(P("nope.key"), 0, err, sizeof(err)));
    assert_non_null(strstr(err, "nope.key: cannot read"));

    /* Tickets off: nothing to resume with. */
    notickets = server_new(t, 0, NULL);
    {
        struct hs h;

        handshake(cctx, notickets, NULL, &h);
        assert_true(h.server_ok);
        assert_true(h.session == NULL || !SSL_SESSION_is_resumable(h.session));
        SSL_SESSION_free(h.session);
    }
    /* Tickets on with OpenSSL's own keys: resumes within the context. */
    SSL_CTX_free(other);
    other = server_new(t, 1, NULL);
    s = first_session(cctx, other);
    assert_int_equal(resumes(cctx, other, s), 1);
    assert_int_equal(resumes(cctx, a, s), 0);
    SSL_SESSION_free(s);

    SSL_CTX_free(notickets);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(other);
    SSL_CTX_free(cctx);
    tls_ticket_keys_unref(k1);
    tls_ticket_keys_unref(k2);
    tls_ticket_keys_unref(f1);
    tls_ticket_keys_unref(f2);
    tls_ticket_keys_unref(NULL);
    tls_trust_unref(t);
}

/* ------------------------------------------------------------ errors */

static void expect_ctx_error(struct tls_server_opts *o, const char *needle)
{
    char err[512] = "";
    SSL_CTX *ctx = tls_server_ctx_new(o, err, sizeof(err));

    if (ctx != NULL || strstr(err, needle) == NULL)
        fail_msg("expected error with \"%s\", got \"%s\"", needle, err);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_ctx_errors(void **state)
{
    struct tls_trust *t = trust_new("client-chain.crt", NULL, 1);
    struct tls_server_opts o;
    const struct tls_server_opts good = {
        .certificate = P("gateway.bundle.crt"), .key = P("gateway.key"), .trust = t,
    };
    char cert[256], key[256];

    (void)state;
    snprintf(cert, sizeof(cert), "%s", P("gateway.bundle.crt"));
    snprintf(key, sizeof(key), "%s", P("attestor1.key"));
    o = good;
    o.certificate = cert;
    o.key = key;
    expect_ctx_error(&o, "attestor1.key: private key does not match the certificate in");
    o = good;
    o.certificate = cert;
    o.key = P("missing.key");
    expect_ctx_error(&o, "missing.key: cannot read: No such file or directory");
    /* An encrypted key is refused at once: no passphrase prompt on a
     * terminal (OpenSSL's default), which would hang the daemon. */
    o.key = P("gateway-enc.key");
    expect_ctx_error(&o, "gateway-enc.key: no usable private key (corrupt, encrypted or not PEM)");
    o = good;
    o.certificate = P("missing.crt");
    o.key = P("gateway.key");
    expect_ctx_error(&o, "missing.crt: cannot load the server certificate chain");
    o = good;
    o.certificate = cert;
    o.key = P("gateway.key");
    o.min_version = "1.1";
    expect_ctx_error(&o, "min_version");
    o.min_version = NULL;
    o.groups = "X25519:nosuchgroup";
    expect_ctx_error(&o, "groups");
    o.groups = NULL;
    o.ciphers = "NOSUCHCIPHER";
    expect_ctx_error(&o, "ciphers");
    o.ciphers = NULL;
    o.ciphersuites = "TLS_NOPE";
    expect_ctx_error(&o, "ciphersuites");
    o.ciphersuites = NULL;
    o.trust = NULL;
    expect_ctx_error(&o, "required");
    tls_trust_unref(t);
}

static void test_min_version_13(void **state)
{
    struct tls_trust *t = trust_new("client-chain.crt", NULL, 1);
    struct tls_server_opts o = {
        .certificate = P("gateway.bundle.crt"), .key = P("gateway.key"), .trust = t,
        .min_version = "1.3", .ciphersuites = "TLS_AES_128_GCM_SHA256",
        .groups = "P-256",
    };
    char err[512];
    SSL_CTX *sctx = tls_server_ctx_new(&o, err, sizeof(err));
    SSL_CTX *c12 = client_new("attestor1", TLS1_2_VERSION), *c13 = client_new("attestor1", 0);
    struct hs h;

    (void)state;
    if (sctx == NULL)
        fail_msg("%s", err);
    tls_trust_unref(t);
    handshake(c12, sctx, NULL, &h);
    assert_false(h.server_ok);
    assert_int_equal(h.peer.refusal, TLS_REFUSE_PROTOCOL);
    SSL_SESSION_free(h.session);
    handshake(c13, sctx, NULL, &h);
    assert_true(h.server_ok);
    assert_string_equal(h.peer.version, "TLSv1.3");
    SSL_SESSION_free(h.session);
    SSL_CTX_free(c12);
    SSL_CTX_free(c13);
    SSL_CTX_free(sctx);
}

/* ------------------------------------------------------------ threads */

struct thr {
    SSL_CTX *sctx;
    SSL_CTX *cctx[3];
    int bad;
};

static void *handshake_thread(void *arg)
{
    struct thr *a = arg;
    struct hs h;
    int i;

    for (i = 0; i < 12; i++) {
        int k = i % 3;
        SSL_SESSION *s;

        handshake(a->cctx[k], a->sctx, NULL, &h);
        if (h.server_ok != (k != 2))
            a->bad++;
        s = h.session;
        if (k == 0 && s != NULL) { /* and resume it */
            handshake(a->cctx[0], a->sctx, s, &h);
            if (!h.server_ok || !h.peer.resumed)
                a->bad++;
            SSL_SESSION_free(h.session);
        }
        SSL_SESSION_free(s);
    }
    return NULL;
}

/* One server context used by four threads at once, as by the workers. */
static void test_threads(void **state)
{
    struct tls_trust *t = trust_new("client-chain.crt", "client-ca.crl", 1);
    char err[256];
    struct tls_ticket_keys *keys = tls_ticket_keys_new(err, sizeof(err));
    SSL_CTX *sctx = server_new(t, 1, keys);
    SSL_CTX *cc[3] = { client_new("attestor1", 0), client_new("attestor2", TLS1_2_VERSION),
                       client_new("revoked", 0) };
    struct thr a[4];
    pthread_t th[4];
    int i;

    (void)state;
    tls_trust_unref(t);
    tls_ticket_keys_unref(keys);
    for (i = 0; i < 4; i++) {
        a[i].sctx = sctx;
        memcpy(a[i].cctx, cc, sizeof(cc));
        a[i].bad = 0;
        assert_int_equal(pthread_create(&th[i], NULL, handshake_thread, &a[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    for (i = 0; i < 3; i++)
        SSL_CTX_free(cc[i]);
    SSL_CTX_free(sctx);
}

/* ------------------------------------------------------------ shared leaves */

/* A server SSL of sctx after a full handshake with a client of cctx, with
 * `pool` as the peer's certificate pool; *c gets the client SSL. 1 when
 * the server admitted the client. */
static int pooled_handshake(SSL_CTX *cctx, SSL_CTX *sctx, struct tls_certpool *pool,
                            struct tls_peer *peer, SSL **c, SSL **s)
{
    int cst, sst, ok;

    ssl_pair(cctx, sctx, c, s);
    assert_int_equal(tls_server_attach_peer(*s, peer), 0);
    peer->certpool = pool;
    handshake_both(*c, *s, &cst, &sst, NULL);
    ok = sst == 1 && tls_server_peer_finish(*s, peer) == 0;
    ERR_clear_error();
    return ok;
}

/*
 * Connections that present one certificate share one parsed copy of it
 * (share_leaf, tls_certpool.h): server SSLs alive at the same time hold the
 * pooled copy as their peer, over TLS 1.3 and 1.2; another certificate gets
 * its own; a refused one is never pooled; without a pool each connection
 * holds its own parse. The copies outlive the pool (ASan checks the reads
 * and that nothing leaks).
 */
static void test_shared_leaf(void **state)
{
    struct tls_trust *t = trust_new("client-chain.crt", "client-ca.crl", 1);
    SSL_CTX *sctx = server_new(t, 1, NULL);
    SSL_CTX *cc[6] = { client_new("attestor1", TLS1_3_VERSION),
                       client_new("attestor1", TLS1_2_VERSION),
                       client_new("attestor1", 0), client_new("attestor2", 0),
                       client_new("revoked", 0), client_new("attestor1", 0) };
    static const int admitted[6] = { 1, 1, 1, 1, 0, 1 };
    struct tls_certpool *pool = tls_certpool_new(4);
    struct tls_peer peer[6];
    SSL *c[6], *s[6];
    X509 *leaf[6];
    int i;

    (void)state;
    tls_trust_unref(t);
    assert_non_null(pool);
    for (i = 0; i < 6; i++) {
        /* The last one has no pool. */
        int ok = pooled_handshake(cc[i], sctx, i < 5 ? pool : NULL, &peer[i], &c[i], &s[i]);

        if (ok != admitted[i])
            fail_msg("client %d: %s (%s)", i, ok ? "admitted" : "refused", peer[i].detail);
        leaf[i] = SSL_get0_peer_certificate(s[i]);
        if (ok)
            assert_non_null(leaf[i]);
    }
    assert_string_equal(peer[0].cn, "attestor1");
    assert_string_equal(peer[1].cn, "attestor1");
    assert_string_equal(peer[3].cn, "attestor2");
    assert_ptr_equal(leaf[1], leaf[0]);
    assert_ptr_equal(leaf[2], leaf[0]);
    assert_ptr_not_equal(leaf[3], leaf[0]);
    assert_int_equal(tls_certpool_count(pool), 2); /* attestor1, attestor2; not revoked */
    assert_int_equal(tls_certpool_hits(pool), 2);
    assert_ptr_not_equal(leaf[5], leaf[0]);
    assert_int_equal(X509_cmp(leaf[5], leaf[0]), 0);
    assert_string_equal(peer[5].sha256, peer[0].sha256);
    tls_certpool_free(pool);
    assert_int_equal(X509_cmp(leaf[2], leaf[5]), 0);
    assert_int_equal(X509_check_purpose(leaf[1], X509_PURPOSE_SSL_CLIENT, 0), 1);
    for (i = 0; i < 6; i++) {
        SSL_free(c[i]);
        SSL_free(s[i]);
        SSL_CTX_free(cc[i]);
    }
    SSL_CTX_free(sctx);
}

/* ------------------------------------------------------------ upstream client */

/* The gateway as a TLS client of an upstream that presents gateway.crt
 * (SAN DNS:localhost, IP:127.0.0.1) and requires a client certificate. */
static int upstream_handshake(SSL_CTX *cctx, SSL_CTX *sctx, const char *name)
{
    SSL *c, *s;
    struct tls_peer peer;
    int cst, sst, ok;

    ssl_pair(cctx, sctx, &c, &s);
    assert_int_equal(tls_server_attach_peer(s, &peer), 0);
    assert_int_equal(tls_client_prepare(c, name), 0);
    handshake_both(c, s, &cst, &sst, NULL);
    ok = cst == 1 && sst == 1 && SSL_get_verify_result(c) == X509_V_OK;
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    return ok;
}

static void test_upstream_client(void **state)
{
    struct tls_trust *t = trust_new("client-chain.crt", NULL, 1);
    SSL_CTX *sctx = server_new(t, 0, NULL);
    char err[512];
    SSL_CTX *cctx = tls_client_ctx_new(P("root.crt"), P("attestor1.pem"), P("attestor1.key"),
                                       err, sizeof(err));
    SSL_CTX *wrongca, *nocert;
    SSL *ssl;

    (void)state;
    tls_trust_unref(t);
    if (cctx == NULL)
        fail_msg("%s", err);
    assert_true(upstream_handshake(cctx, sctx, "localhost"));
    assert_true(upstream_handshake(cctx, sctx, "127.0.0.1"));
    assert_false(upstream_handshake(cctx, sctx, "db.example"));
    assert_false(upstream_handshake(cctx, sctx, "127.0.0.2"));
    assert_false(upstream_handshake(cctx, sctx, "::1"));
    /* A CA that did not issue the upstream's chain. */
    wrongca = tls_client_ctx_new(P("other-root-ca.crt"), P("attestor1.pem"),
                                 P("attestor1.key"), err, sizeof(err));
    assert_non_null(wrongca);
    assert_false(upstream_handshake(wrongca, sctx, "localhost"));
    /* No client certificate: the (mTLS) upstream refuses. */
    nocert = tls_client_ctx_new(P("root.crt"), NULL, NULL, err, sizeof(err));
    assert_non_null(nocert);
    assert_false(upstream_handshake(nocert, sctx, "localhost"));
    /* No name, no connection. */
    ssl = SSL_new(cctx);
    assert_int_equal(tls_client_prepare(ssl, NULL), -1);
    assert_int_equal(tls_client_prepare(ssl, ""), -1);
    SSL_free(ssl);
    /* Errors name the file. */
    assert_null(tls_client_ctx_new(P("root.crt"), P("attestor1.pem"), P("attestor2.key"), err,
                                   sizeof(err)));
    assert_non_null(strstr(err, "attestor2.key: private key does not match"));
    assert_null(tls_client_ctx_new(P("missing-ca.crt"), NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "missing-ca.crt"));
    assert_null(tls_client_ctx_new(P("root.crt"), P("attestor1.pem"), NULL, err, sizeof(err)));
    assert_null(tls_client_ctx_new(P("root.crt"), P("missing.pem"), P("attestor1.key"), err,
                                   sizeof(err)));
    assert_non_null(strstr(err, "missing.pem"));
    assert_null(tls_client_ctx_new(P("root.crt"), P("attestor1.pem"), P("attestor1-enc.key"), err,
                                   sizeof(err)));
    assert_non_null(strstr(err, "attestor1-enc.key: no usable private key"));
    assert_int_equal(ERR_peek_error(), 0);
    SSL_CTX_free(wrongca);
    SSL_CTX_free(nocert);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

/* CVE-2024-4741 was fixed in 3.0.14, 3.1.6, 3.2.2 and 3.3.1; versions are
 * OpenSSL_version_num()'s 0xMNN00PP0. */
static void test_free_buffers_safe(void **state)
{
    (void)state;
    assert_int_equal(tls_free_buffers_safe(0x300000D0UL), 0); /* 3.0.13 */
    assert_int_equal(tls_free_buffers_safe(0x300000E0UL), 1); /* 3.0.14 */
    assert_int_equal(tls_free_buffers_safe(0x30000130UL), 1); /* 3.0.19 */
    assert_int_equal(tls_free_buffers_safe(0x30100050UL), 0); /* 3.1.5 */
    assert_int_equal(tls_free_buffers_safe(0x30100060UL), 1);
    assert_int_equal(tls_free_buffers_safe(0x30200010UL), 0); /* 3.2.1 */
    assert_int_equal(tls_free_buffers_safe(0x30200020UL), 1);
    assert_int_equal(tls_free_buffers_safe(0x30300000UL), 0); /* 3.3.0 */
    assert_int_equal(tls_free_buffers_safe(0x30300010UL), 1);
    assert_int_equal(tls_free_buffers_safe(0x30400000UL), 1); /* 3.4.0 */
    assert_int_equal(tls_free_buffers_safe(0x20000000UL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshakes),
        cmocka_unit_test(test_require_eku_off_and_rotation),
        cmocka_unit_test(test_resumption_rechecks_trust),
        cmocka_unit_test(test_resumption_drops_a_removed_cipher),
        cmocka_unit_test(test_ticket_keys),
        cmocka_unit_test(test_keyless_leaf_refused),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_min_version_13),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_shared_leaf),
        cmocka_unit_test(test_upstream_client),
        cmocka_unit_test(test_free_buffers_safe),
    };

    return cmocka_run_group_tests(tests, pki_setup, unit_pki_teardown);
}
