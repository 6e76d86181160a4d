/*
 * tls_server.c - the gateway's server SSL_CTX (see tls_server.h).
 *
 * The context carries its trust set and ticket keys as SSL_CTX ex_data; their
 * ex_data free callbacks drop the references when the context is freed, so a
 * context retired by a reload keeps both alive for as long as a connection
 * still holds an SSL made from it.
 */
#include "tls_server.h"
#include "tls_sessions.h"
#include "tls_errors.h"
#include "tls_libctx.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DEFAULT_CIPHERS                                                                  \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                         \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                         \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define DEFAULT_GROUPS "X25519:P-256:P-384"
/* Same for every context, so that tickets survive a reload. */
#define SESSION_ID_CONTEXT "mtlsgate/1"

/* ---------------------------------------------------------------- ex_data */

static CRYPTO_ONCE ex_once = CRYPTO_ONCE_STATIC_INIT;
static int ex_ok;
static int ctx_trust_idx = -1;   /* SSL_CTX -> struct tls_trust (one ref) */
static int ctx_keys_idx = -1;    /* SSL_CTX -> struct tls_ticket_keys (one ref) */
static int ctx_sess_idx = -1;    /* SSL_CTX -> struct tls_sessions (one ref) */
static int ssl_peer_idx = -1;    /* SSL -> struct tls_peer (borrowed) */

static void trust_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    tls_trust_unref(ptr);
}

static void keys_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    tls_ticket_keys_unref(ptr);
}

static void sessions_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    tls_sessions_unref(ptr);
}

static void ex_init(void)
{
    ctx_trust_idx = SSL_CTX_get_ex_new_index(0, "mtlsgate trust", NULL, NULL, trust_ex_free);
    ctx_keys_idx = SSL_CTX_get_ex_new_index(0, "mtlsgate ticket keys", NULL, NULL, keys_ex_free);
    ctx_sess_idx = SSL_CTX_get_ex_new_index(0, "mtlsgate sessions", NULL, NULL, sessions_ex_free);
    ssl_peer_idx = SSL_get_ex_new_index(0, "mtlsgate peer", NULL, NULL, NULL);
    ex_ok = ctx_trust_idx >= 0 && ctx_keys_idx >= 0 && ctx_sess_idx >= 0 && ssl_peer_idx >= 0;
}

/* 0 when the ex_data indexes exist (created once, by any thread). */
static int ex_setup(void)
{
    if (!CRYPTO_THREAD_run_once(&ex_once, ex_init) || !ex_ok)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ ticket keys */

struct ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
};

struct tls_ticket_keys {
    atomic_int refs;
    pthread_rwlock_t lock;
    EVP_CIPHER *cipher;                           /* AES-256-CBC, fetched once */
    int n;                                        /* keys[0] encrypts */
    struct ticket_key keys[TLS_TICKET_KEYS_MAX];
};

void tls_ticket_keys_ref(struct tls_ticket_keys *k)
{
    if (k != NULL)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
}

void tls_ticket_keys_unref(struct tls_ticket_keys *k)
{
    if (k == NULL || atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_rwlock_destroy(&k->lock);
    EVP_CIPHER_free(k->cipher);
    OPENSSL_cleanse(k->keys, sizeof(k->keys));
    free(k);
}

/* An empty key set (n == 0), or NULL with err set. */
static struct tls_ticket_keys *ticket_keys_alloc(char *err, size_t errlen)
{
    struct tls_ticket_keys *k = calloc(1, sizeof(*k));

    if (k == NULL) {
        snprintf(err, errlen, "ticket keys: out of memory");
        return NULL;
    }
    if (pthread_rwlock_init(&k->lock, NULL) != 0) {
        snprintf(err, errlen, "ticket keys: cannot create lock");
        free(k);
        return NULL;
    }
    atomic_init(&k->refs, 1);
    if ((k->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL) {
        tls_err_set(err, errlen, "ticket keys: AES-256-CBC unavailable");
        tls_ticket_keys_unref(k);
        return NULL;
    }
    return k;
}

int tls_ticket_keys_set(struct tls_ticket_keys *k, const unsigned char *keys, size_t len)
{
    struct ticket_key tmp[TLS_TICKET_KEYS_MAX];
    size_t i, n = len / TLS_TICKET_KEY_LEN;

    if (len == 0 || len % TLS_TICKET_KEY_LEN != 0 || n > TLS_TICKET_KEYS_MAX)
        return -1;
    for (i = 0; i < n; i++) {
        const unsigned char *p = keys + i * TLS_TICKET_KEY_LEN;

        memcpy(tmp[i].name, p, 16);
        memcpy(tmp[i].hmac, p + 16, 32);
        memcpy(tmp[i].aes, p + 48, 32);
    }
    pthread_rwlock_wrlock(&k->lock);
    OPENSSL_cleanse(k->keys, sizeof(k->keys));
    memcpy(k->keys, tmp, n * sizeof(tmp[0]));
    k->n = (int)n;
    pthread_rwlock_unlock(&k->lock);
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return 0;
}

int tls_ticket_keys_rotate(struct tls_ticket_keys *k)
{
    struct ticket_key fresh;
    int rc = -1;

    if (RAND_bytes(fresh.name, sizeof(fresh.name)) != 1 ||
        RAND_bytes(fresh.hmac, sizeof(fresh.hmac)) != 1 ||
        RAND_bytes(fresh.aes, sizeof(fresh.aes)) != 1) {
        ERR_clear_error();
        goto out;
    }
    pthread_rwlock_wrlock(&k->lock);
    if (k->n > 0)
        k->keys[1] = k->keys[0];
    k->keys[0] = fresh;
    k->n = k->n > 0 ? 2 : 1;
    OPENSSL_cleanse(&k->keys[k->n], sizeof(k->keys) - (size_t)k->n * sizeof(k->keys[0]));
    pthread_rwlock_unlock(&k->lock);
    rc = 0;
out:
    OPENSSL_cleanse(&fresh, sizeof(fresh));
    return rc;
}

struct tls_ticket_keys *tls_ticket_keys_new(char *err, size_t errlen)
{
    struct tls_ticket_keys *k = ticket_keys_alloc(err, errlen);

    if (k != NULL && tls_ticket_keys_rotate(k) != 0) {
        snprintf(err, errlen, "ticket keys: no random bytes");
        tls_ticket_keys_unref(k);
        k = NULL;
    }
    return k;
}

struct tls_ticket_keys *tls_ticket_keys_load(const char *path, int allow_insecure, char *err,
                                             size_t errlen)
{
    unsigned char buf[TLS_TICKET_KEY_LEN * TLS_TICKET_KEYS_MAX + 1];
    struct tls_ticket_keys *k = NULL, *ret = NULL;
    struct stat st;
    size_t len = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (!allow_insecure && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        snprintf(err, errlen, "%s: ticket key file is accessible by group or others (mode "
                 "%03o); chmod 600 it", path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        len += (size_t)n;
    }
    if (len == 0 || len % TLS_TICKET_KEY_LEN != 0 ||
        len > (size_t)TLS_TICKET_KEY_LEN * TLS_TICKET_KEYS_MAX) {
        snprintf(err, errlen, "%s: must hold 1 to %d keys of %d bytes (e.g. `openssl rand 80`), "
                 "has %zu%s bytes", path, TLS_TICKET_KEYS_MAX, TLS_TICKET_KEY_LEN, len,
                 len == sizeof(buf) ? "+" : "");
        goto out;
    }
    if ((k = ticket_keys_alloc(err, errlen)) == NULL)
        goto out;
    if (tls_ticket_keys_set(k, buf, len) != 0) {
        snprintf(err, errlen, "%s: invalid ticket keys", path);
        goto out;
    }
    ret = k;
    k = NULL;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    if (fd >= 0)
        close(fd);
    tls_ticket_keys_unref(k);
    return ret;
}

/*
 * OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb).
 * enc: fill key_name and iv, set up AES and HMAC with the current key; 1.
 * dec: find the key by name; 0 when unknown (full handshake), 1 with the
 * current key, 2 with an older one (ticket is renewed), -1 on error.
 */
static int ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_ticket_keys *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_keys_idx);
    struct ticket_key key;
    OSSL_PARAM params[3];
    int i, found = -1, rc = -1, ivlen;

    if (k == NULL)
        return -1;
    ivlen = EVP_CIPHER_get_iv_length(k->cipher);
    pthread_rwlock_rdlock(&k->lock);
    if (enc) {
        if (k->n > 0) {
            key = k->keys[0];
            found = 0;
        }
    } else {
        for (i = 0; i < k->n; i++) {
            if (memcmp(k->keys[i].name, key_name, 16) == 0) {
                key = k->keys[i];
                found = i;
                break;
            }
        }
    }
    pthread_rwlock_unlock(&k->lock);
    if (found < 0)
        return enc ? -1 : 0;
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof(key.hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (enc) {
        if (RAND_bytes(iv, ivlen) != 1)
            goto out;
        memcpy(key_name, key.name, 16);
        if (!EVP_EncryptInit_ex2(cctx, k->cipher, key.aes, iv, NULL))
            goto out;
    } else if (!EVP_DecryptInit_ex2(cctx, k->cipher, key.aes, iv, NULL)) {
        goto out;
    }
    if (!EVP_MAC_CTX_set_params(hctx, params))
        goto out;
    rc = (enc || found == 0) ? 1 : 2;
    if (!enc)
        tls_libctx_ticket_begin(); /* OpenSSL parses the ticket next */
out:
    OPENSSL_cleanse(&key, sizeof(key));
    return rc;
}

/* ------------------------------------------------------------ verification */

/* Records the first refusal of a handshake into peer. */
static void peer_refuse(struct tls_peer *peer, enum tls_refusal r, const char *detail)
{
    if (peer == NULL || peer->refusal != TLS_OK)
        return;
    peer->refusal = r;
    snprintf(peer->detail, sizeof(peer->detail), "%s", detail);
}

/*
 * The SSL verify callback: OpenSSL's chain result plus the leaf rules of
 * tls_trust.h. Any refusal stops the handshake with the alert that the
 * X509_V_ERR_* left on the store context selects.
 */
static int verify_cb(int ok, X509_STORE_CTX *xctx)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_peer *peer = ssl != NULL ? SSL_get_ex_data(ssl, ssl_peer_idx) : NULL;
    struct tls_trust *t = ssl != NULL ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_trust_idx)
                                      : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(xctx);
    char detail[sizeof(peer->detail)];
    enum tls_refusal r;

    if (peer != NULL && peer->subject[0] == '\0' && leaf != NULL)
        tls_x509_subject(leaf, peer->subject, sizeof(peer->subject));
    if (t == NULL) {
        X509_STORE_CTX_set_error(xctx, X509_V_ERR_APPLICATION_VERIFICATION);
        peer_refuse(peer, TLS_REFUSE_UNTRUSTED_ISSUER, "no trust set on this context");
        return 0;
    }
    if (ok && X509_STORE_CTX_get_error_depth(xctx) != 0)
        return 1;
    r = tls_trust_check_store_ctx(t, xctx, detail, sizeof(detail));
    if (r == TLS_OK)
        return ok;
    peer_refuse(peer, r, detail);
    return 0;
}

/* Security bits that OpenSSL's auth level demands at each security level. */
static int level_bits(int level)
{
    static const int bits[] = {0, 80, 112, 128, 192, 256};

    if (level < 0)
        level = 0;
    return bits[level > 5 ? 5 : level];
}

/* 1 when the leaf's key and signature and every pinned intermediate's key
 * are plainly strong enough for the SSL's security level, the checks that
 * X509_verify_cert() adds for a handshake (auth level); 0 when in doubt. */
static int strong_enough(SSL *ssl, X509 *leaf, const struct tls_trust *t)
{
    const STACK_OF(X509) *inters = tls_trust_get0_intermediates(t);
    int need = level_bits(SSL_get_security_level(ssl)), secbits = 0, i;
    EVP_PKEY *pk = X509_get0_pubkey(leaf);

    if (pk == NULL || EVP_PKEY_get_security_bits(pk) < need)
        return 0;
    if (!X509_get_signature_info(leaf, NULL, NULL, &secbits, NULL) || secbits < need)
        return 0;
    for (i = 0; i < sk_X509_num(inters); i++) {
        pk = X509_get0_pubkey(sk_X509_value(inters, i));
        if (pk == NULL || EVP_PKEY_get_security_bits(pk) < need)
            return 0;
    }
    return 1;
}

/*
 * Frees the certificates the client sent besides its own, once they have
 * been checked. The stack X509_STORE_CTX_get0_untrusted() returns in a
 * handshake's verification is the one OpenSSL keeps afterwards as the
 * session's peer chain, for the connection's and the cached session's whole
 * life: about 4.8 KiB of parsed intermediate per connection that nothing
 * reads again (a resumption re-checks the leaf alone, session_still_trusted;
 * a ticket never carried the chain). The leaf stays at index 0, where OpenSSL
 * takes it as the session's peer. While the callback runs the stack is
 * still the handshake's own, attached to no session, so no other thread can
 * be reading it. (Where X509_verify_cert() built the chain, the verified
 * chain holds its own references and keeps what it uses.)
 */
static void drop_sent_chain(X509_STORE_CTX *xctx)
{
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xctx);
    X509 *leaf = X509_STORE_CTX_get0_cert(xctx);
    int i;

    for (i = sk_X509_num(sent) - 1; i >= 0; i--) {
        X509 *x = sk_X509_value(sent, i);

        if (x != leaf) {
            (void)sk_X509_delete(sent, i);
            X509_free(x);
        }
    }
}

/*
 * Swaps the client's freshly parsed leaf, once admitted, for the pooled
 * copy of the same certificate (tls_certpool.h), so that connections which
 * present one certificate share one parsed copy. Called before OpenSSL's
 * X509_verify_cert() may build a chain (which would hold the leaf too).
 * OpenSSL 3.0 takes the session's peer from index 0 of the stack
 * X509_STORE_CTX_get0_untrusted() returns (tls_process_client_certificate);
 * that slot takes the pooled copy with its own reference, and the store
 * context's borrowed pointer to the leaf follows. Any other shape (the leaf
 * not first, a chain already built) is left as it is.
 */
static void share_leaf(X509_STORE_CTX *xctx, struct tls_certpool *pool)
{
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xctx);
    X509 *leaf = X509_STORE_CTX_get0_cert(xctx), *shared;

    if (pool == NULL || leaf == NULL || X509_STORE_CTX_get0_chain(xctx) != NULL ||
        sk_X509_num(sent) < 1 || sk_X509_value(sent, 0) != leaf)
        return;
    shared = tls_certpool_get1(pool, leaf);
    if (shared == NULL || shared == leaf) {
        X509_free(shared); /* leaf is pooled now: drop the extra reference */
        return;
    }
    (void)sk_X509_set(sent, 0, shared); /* takes the reference get1 gave */
    X509_STORE_CTX_set_cert(xctx, shared);
    X509_free(leaf);
}

/*
 * A client leaf whose key did not decode: in the context's library context
 * (tls_libctx.h) only keys that sign TLS handshakes do. Refused with the
 * unsupported_certificate alert, the key's algorithm named, whatever its
 * issuer: OpenSSL 3.0's X509_verify_cert() cannot pass a chain with a
 * keyless certificate (X509_get_pubkey_parameters), so there would be no
 * telling why otherwise.
 */
static void refuse_keyless(X509_STORE_CTX *xctx, struct tls_peer *peer, X509 *leaf)
{
    ASN1_OBJECT *alg = NULL;
    char name[64] = "unknown", detail[sizeof(peer->detail)];

    ERR_clear_error(); /* X509_get0_pubkey's "unable to get the key" */
    if (X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, X509_get_X509_PUBKEY(leaf)) == 1 &&
        alg != NULL)
        OBJ_obj2txt(name, sizeof(name), alg, 0);
    snprintf(detail, sizeof(detail), "the certificate's %s key cannot sign a TLS handshake",
             name);
    if (peer != NULL && peer->subject[0] == '\0')
        tls_x509_subject(leaf, peer->subject, sizeof(peer->subject));
    X509_STORE_CTX_set_error(xctx, X509_V_ERR_INVALID_PURPOSE);
    peer_refuse(peer, TLS_REFUSE_BAD_USAGE, detail);
}

/*
 * The whole certificate check of a handshake (SSL_CTX_set_cert_verify_
 * callback): a leaf without a key is refused first (refuse_keyless); then
 * tls_trust_check(), which answers from the trust set's verdict cache for a
 * certificate that passed before (no chain building, no signature check)
 * and otherwise runs the same chain and leaf rules as OpenSSL with
 * verify_cb would. Admitted, with keys and signature plainly strong enough
 * for the security level (the auth level checks that only a handshake's
 * verification adds): done; admitted otherwise: OpenSSL's own
 * X509_verify_cert() decides. Refused: goes through OpenSSL's own
 * X509_verify_cert() with verify_cb, which records the reason and leaves the
 * X509_V_ERR_* that picks the alert, exactly as without this callback.
 * Should the two ever disagree, the refusal stands. Admitted, the chain the
 * client sent is freed (drop_sent_chain) and the leaf shared (share_leaf).
 */
static int cert_verify_cb(X509_STORE_CTX *xctx, void *arg)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_peer *peer = ssl != NULL ? SSL_get_ex_data(ssl, ssl_peer_idx) : NULL;
    struct tls_trust *t = ssl != NULL ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_trust_idx)
                                      : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(xctx);
    char detail[sizeof(peer->detail)];
    int ok;

    (void)arg;
    if (leaf != NULL && X509_get0_pubkey(leaf) == NULL) {
        refuse_keyless(xctx, peer, leaf);
        return 0;
    }
    if (t != NULL && leaf != NULL &&
        tls_trust_check(t, leaf, X509_STORE_CTX_get0_untrusted(xctx), time(NULL), detail,
                        sizeof(detail)) == TLS_OK) {
        ERR_clear_error();
        share_leaf(xctx, peer != NULL ? peer->certpool : NULL);
        if (strong_enough(ssl, X509_STORE_CTX_get0_cert(xctx), t)) {
            drop_sent_chain(xctx);
            return 1;
        }
        ok = X509_verify_cert(xctx); /* OpenSSL decides on key and digest strength */
        if (ok == 1)
            drop_sent_chain(xctx); /* the verified chain holds its own references */
        return ok < 0 ? 0 : ok;
    }
    ERR_clear_error();
    ok = X509_verify_cert(xctx);
    if (ok == 1) {
        X509_STORE_CTX_set_error(xctx, X509_V_ERR_APPLICATION_VERIFICATION);
        peer_refuse(peer, TLS_REFUSE_UNTRUSTED_ISSUER,
                    t != NULL ? detail : "no trust set on this context");
        return 0;
    }
    return ok < 0 ? 0 : ok;
}

/*
 * 1 when ssl's context still offers sess's cipher. The session cache and
 * the ticket keys outlive a reload, and OpenSSL 3.0 checks a TLS 1.2
 * session's cipher against the client's list only: a cipher taken out of
 * tls.ciphers would stay in use until its sessions time out. A linear
 * search: sk_SSL_CIPHER_find would sort the list, the server's preference
 * order.
 */
static int session_cipher_offered(SSL *ssl, SSL_SESSION *sess)
{
    const SSL_CIPHER *c = SSL_SESSION_get0_cipher(sess);
    STACK_OF(SSL_CIPHER) *offered = SSL_get_ciphers(ssl);
    int i;

    for (i = 0; c != NULL && i < sk_SSL_CIPHER_num(offered); i++)
        if (SSL_CIPHER_get_id(sk_SSL_CIPHER_value(offered, i)) == SSL_CIPHER_get_id(c))
            return 1;
    return 0;
}

/*
 * 1 when the client certificate of sess passes ssl's context's trust set
 * at now and the context still offers its cipher (the session may resume;
 * the peer is marked re-checked), else 0.
 */
static int session_still_trusted(SSL *ssl, SSL_SESSION *sess, time_t now)
{
    struct tls_trust *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_trust_idx);
    struct tls_peer *peer = SSL_get_ex_data(ssl, ssl_peer_idx);
    X509 *cert = sess != NULL ? SSL_SESSION_get0_peer(sess) : NULL;
    char detail[160];

    if (t == NULL || cert == NULL || !session_cipher_offered(ssl, sess) ||
        tls_trust_check(t, cert, NULL, now, detail, sizeof(detail)) != TLS_OK) {
        ERR_clear_error();
        return 0;
    }
    if (peer != NULL)
        peer->rechecked = 1;
    return 1;
}

/*
 * Ticket decryption (SSL_CTX_set_session_ticket_cb): a session resumes only
 * if its client certificate still passes this context's trust set now.
 * Otherwise the ticket is ignored and the client does a full handshake, in
 * which it is refused with an alert.
 */
static SSL_TICKET_RETURN ticket_dec_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                       size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)keyname, (void)keyname_len, (void)arg;
    tls_libctx_ticket_end(); /* the ticket's session is parsed */
    switch (status) {
    case SSL_TICKET_FATAL_ERR_MALLOC:
    case SSL_TICKET_FATAL_ERR_OTHER:
        return SSL_TICKET_RETURN_ABORT;
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        break;
    default: /* no ticket, or one we cannot decrypt */
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
    if (!session_still_trusted(ssl, sess, time(NULL)))
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
}

/*
 * The session cache callbacks (SSL_CTX_sess_set_*_cb, with OpenSSL's own
 * cache off). new: keep a reference in the shared cache; OpenSSL drops the
 * one it lent us (return 0). get: like ticket_dec_cb, a cached session
 * resumes only if its client certificate passes this context's trust set
 * now; otherwise it is dropped and the client does a full handshake.
 */
static int sess_new_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_sessions *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_sess_idx);

    if (c != NULL && tls_sessions_add(c, sess, time(NULL)) < 0)
        ERR_clear_error();
    return 0;
}

static SSL_SESSION *sess_get_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    struct tls_sessions *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_sess_idx);
    time_t now = time(NULL);
    SSL_SESSION *sess;

    *copy = 0; /* the caller takes over the reference tls_sessions_get gave */
    if (c == NULL || len <= 0 || (sess = tls_sessions_get(c, id, (size_t)len, now)) == NULL)
        return NULL;
    if (!session_still_trusted(ssl, sess, now)) {
        tls_sessions_remove(c, id, (size_t)len);
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

static void sess_remove_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    struct tls_sessions *c = SSL_CTX_get_ex_data(ctx, ctx_sess_idx);
    unsigned int len = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &len);

    if (c != NULL)
        tls_sessions_remove(c, id, len);
}

/* ---------------------------------------------------------------- context */

static int parse_min_version(const char *v, int *out)
{
    if (v == NULL || strcmp(v, "1.2") == 0 || strcmp(v, "TLSv1.2") == 0)
        *out = TLS1_2_VERSION;
    else if (strcmp(v, "1.3") == 0 || strcmp(v, "TLSv1.3") == 0)
        *out = TLS1_3_VERSION;
    else
        return -1;
    return 0;
}

SSL_CTX *tls_server_ctx_new(const struct tls_server_opts *opts, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL, *ret = NULL;
    const STACK_OF(X509) *inters;
    int minv, i;

    if (ex_setup() != 0) {
        tls_err_set(err, errlen, "tls: cannot allocate ex_data indexes");
        goto out;
    }
    if (opts->certificate == NULL || opts->key == NULL || opts->trust == NULL) {
        snprintf(err, errlen, "tls: certificate, key and client trust are required");
        goto out;
    }
    if (parse_min_version(opts->min_version, &minv) != 0) {
        snprintf(err, errlen, "tls: min_version: must be \"1.2\" or \"1.3\", not \"%s\"",
                 opts->min_version);
        goto out;
    }
    if ((ctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_server_method())) == NULL) {
        tls_err_set(err, errlen, "tls: cannot create SSL_CTX");
        goto out;
    }
    /* The context owns one reference to each, dropped by the ex_data free callbacks. */
    tls_trust_ref(opts->trust);
    if (!SSL_CTX_set_ex_data(ctx, ctx_trust_idx, opts->trust)) {
        tls_trust_unref(opts->trust);
        tls_err_set(err, errlen, "tls: cannot attach the trust set");
        goto out;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, minv) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
        tls_err_set(err, errlen, "tls: cannot set protocol versions");
        goto out;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_cipher_list(ctx, opts->ciphers ? opts->ciphers : DEFAULT_CIPHERS)) {
        tls_err_set(err, errlen, "tls: ciphers: no usable cipher in \"%s\"",
                    opts->ciphers ? opts->ciphers : DEFAULT_CIPHERS);
        goto out;
    }
    if (opts->ciphersuites != NULL && !SSL_CTX_set_ciphersuites(ctx, opts->ciphersuites)) {
        tls_err_set(err, errlen, "tls: ciphersuites: invalid TLS 1.3 suites \"%s\"",
                    opts->ciphersuites);
        goto out;
    }
    if (!SSL_CTX_set1_groups_list(ctx, opts->groups ? opts->groups : DEFAULT_GROUPS)) {
        tls_err_set(err, errlen, "tls: groups: invalid or unsupported group in \"%s\"",
                    opts->groups ? opts->groups : DEFAULT_GROUPS);
        goto out;
    }
    /* Key first: loaded after it, a certificate that does not match drops
     * the key, and SSL_CTX_check_private_key says so in our words. */
    if (tls_pem_use_key(ctx, opts->key, err, errlen) != 0)
        goto out;
    if (SSL_CTX_use_certificate_chain_file(ctx, opts->certificate) != 1) {
        tls_err_set(err, errlen, "%s: cannot load the server certificate chain",
                    opts->certificate);
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "%s: private key does not match the certificate in %s",
                 opts->key, opts->certificate);
        goto out;
    }

    /* Clients: verified against the trust set, intermediates as anchors. */
    if (!SSL_CTX_set1_verify_cert_store(ctx, tls_trust_get0_store(opts->trust)) ||
        !X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN) ||
        !X509_VERIFY_PARAM_set_purpose(SSL_CTX_get0_param(ctx), X509_PURPOSE_SSL_CLIENT)) {
        tls_err_set(err, errlen, "tls: cannot install the client trust store");
        goto out;
    }
    inters = tls_trust_get0_intermediates(opts->trust);
    for (i = 0; i < sk_X509_num(inters); i++) {
        if (!SSL_CTX_add_client_CA(ctx, sk_X509_value(inters, i))) {
            tls_err_set(err, errlen, "tls: cannot add a client CA name");
            goto out;
        }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, NULL);
    /* leaf -> intermediate (an anchor); longer chains are never needed. */
    SSL_CTX_set_verify_depth(ctx, 2);

    /* Resumption: the shared session cache when given, else stateless
     * tickets; either way re-checked before a session is resumed. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (!SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SESSION_ID_CONTEXT,
                                        sizeof(SESSION_ID_CONTEXT) - 1)) {
        tls_err_set(err, errlen, "tls: cannot set the session id context");
        goto out;
    }
    if (opts->sessions != NULL) {
        /* The shared cache: TLS 1.2 session ids and, with tickets, TLS 1.3
         * stateful tickets (SSL_OP_NO_TICKET makes OpenSSL send the
         * session's id as the ticket, looked up in sess_get_cb). */
        tls_sessions_ref(opts->sessions);
        if (!SSL_CTX_set_ex_data(ctx, ctx_sess_idx, opts->sessions)) {
            tls_sessions_unref(opts->sessions);
            tls_err_set(err, errlen, "tls: cannot attach the session cache");
            goto out;
        }
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL |
                                                SSL_SESS_CACHE_NO_AUTO_CLEAR);
        SSL_CTX_sess_set_new_cb(ctx, sess_new_cb);
        SSL_CTX_sess_set_get_cb(ctx, sess_get_cb);
        SSL_CTX_sess_set_remove_cb(ctx, sess_remove_cb);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    } else if (opts->session_tickets) {
        SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
        if (!SSL_CTX_set_session_ticket_cb(ctx, NULL, ticket_dec_cb, NULL)) {
            tls_err_set(err, errlen, "tls: cannot set the ticket callback");
            goto out;
        }
        if (opts->ticket_keys != NULL) {
            tls_ticket_keys_ref(opts->ticket_keys);
            if (!SSL_CTX_set_ex_data(ctx, ctx_keys_idx, opts->ticket_keys)) {
                tls_ticket_keys_unref(opts->ticket_keys);
                tls_err_set(err, errlen, "tls: cannot attach the ticket keys");
                goto out;
            }
            if (!SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb)) {
                tls_err_set(err, errlen, "tls: cannot set the ticket key callback");
                goto out;
            }
        }
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    /* TLS 1.3: one ticket per full handshake, not OpenSSL's two (a stateless
     * one costs a session copy, its encoding and encryption); a client needs
     * one to resume and gets a fresh one on resumption. None without
     * session_tickets. */
    if (!SSL_CTX_set_num_tickets(ctx, opts->session_tickets ? 1 : 0)) {
        tls_err_set(err, errlen, "tls: cannot set the number of tickets");
        goto out;
    }
    ret = ctx;
    ctx = NULL;
out:
    SSL_CTX_free(ctx);
    return ret;
}

struct tls_trust *tls_server_ctx_get0_trust(SSL_CTX *ctx)
{
    if (ex_setup() != 0)
        return NULL;
    return SSL_CTX_get_ex_data(ctx, ctx_trust_idx);
}

int tls_server_attach_peer(SSL *ssl, struct tls_peer *peer)
{
    if (ex_setup() != 0)
        return -1;
    memset(peer, 0, sizeof(*peer));
    peer->refusal = TLS_OK;
    peer->version = "";
    return SSL_set_ex_data(ssl, ssl_peer_idx, peer) ? 0 : -1;
}

void tls_server_detach_peer(SSL *ssl)
{
    if (ssl != NULL && ex_setup() == 0)
        SSL_set_ex_data(ssl, ssl_peer_idx, NULL);
}

int tls_server_peer_finish(SSL *ssl, struct tls_peer *peer)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    struct tls_trust *t = tls_server_ctx_get0_trust(SSL_get_SSL_CTX(ssl));
    enum tls_refusal r;
    char detail[sizeof(peer->detail)];

    peer->version = SSL_get_version(ssl);
    peer->resumed = SSL_session_reused(ssl);
    if (cert == NULL) {
        peer_refuse(peer, TLS_REFUSE_NO_CERTIFICATE, "client sent no certificate");
        return -1;
    }
    if (peer->subject[0] == '\0') /* verify_cb may have written it already */
        tls_x509_subject(cert, peer->subject, sizeof(peer->subject));
    if (tls_x509_sha256_hex(cert, peer->sha256) != 0)
        peer->sha256[0] = '\0';
    if (peer->resumed && !peer->rechecked) {
        if (t == NULL) {
            peer_refuse(peer, TLS_REFUSE_UNTRUSTED_ISSUER, "no trust set on this context");
            return -1;
        }
        r = tls_trust_check(t, cert, NULL, time(NULL), detail, sizeof(detail));
        if (r != TLS_OK) {
            peer_refuse(peer, r, detail);
            return -1;
        }
    }
    if (peer->refusal != TLS_OK)
        return -1;
    if (tls_x509_get_cn(cert, peer->cn) != 0) {
        peer_refuse(peer, TLS_REFUSE_BAD_SUBJECT, "subject must have exactly one CN");
        return -1;
    }
    return 0;
}

void tls_server_peer_failed(SSL *ssl, struct tls_peer *peer, unsigned long ssl_err)
{
    long vr;
    const char *reason;
    char detail[sizeof(peer->detail)];

    if (peer->refusal != TLS_OK)
        return;
    vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK) {
        snprintf(detail, sizeof(detail), "certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
        peer_refuse(peer, tls_refusal_from_x509_error((int)vr), detail);
        return;
    }
    if (ERR_GET_LIB(ssl_err) == ERR_LIB_SSL &&
        ERR_GET_REASON(ssl_err) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        peer_refuse(peer, TLS_REFUSE_NO_CERTIFICATE, "client sent no certificate");
        return;
    }
    reason = ssl_err != 0 ? ERR_reason_error_string(ssl_err) : NULL;
    snprintf(detail, sizeof(detail), "handshake failed: %s",
             reason != NULL ? reason : "connection closed or reset");
    peer_refuse(peer, TLS_REFUSE_PROTOCOL, detail);
}

int tls_free_buffers_safe(unsigned long version)
{
    unsigned long major = version >> 28, minor = (version >> 20) & 0xffUL;
    unsigned long patch = (version >> 4) & 0xffUL;

    if (major != 3)
        return major > 3;
    switch (minor) {
    case 0: return patch >= 14;
    case 1: return patch >= 6;
    case 2: return patch >= 2;
    case 3: return patch >= 1;
    default: return 1;
    }
}
