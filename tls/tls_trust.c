/*
 * tls_trust.c - the client certificate rules of tls_trust.h.
 *
 * The X509_STORE holds only the client intermediates, as trust anchors with
 * X509_V_FLAG_PARTIAL_CHAIN: a handshake verifies one signature (the leaf's,
 * by its intermediate), and the root's signature over the intermediate is
 * checked once, here, when the set is loaded. Because nothing but the listed
 * intermediates is an anchor, a certificate issued by any other CA (the
 * server intermediate, a look-alike from another root) finds no issuer and
 * fails chain building; the explicit issuer pinning in leaf_rules() is a
 * second, independent check of the same rule.
 *
 * CRLs are not handed to OpenSSL (no X509_V_FLAG_CRL_CHECK, which would
 * demand a CRL for every intermediate): each CRL is matched at load time to
 * the intermediate that signed it, and leaf_rules() looks the leaf up in the
 * CRLs of its own issuer.
 */
#include "tls_trust.h"
#include "tls_errors.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

/*
 * Verdict cache: certificates that passed tls_trust_check() against a set,
 * by SHA-256 of their DER, with the time window in which every certificate
 * of their verified chain is valid. Everything else a verdict depends on
 * (anchors, CRLs, the leaf rules) is fixed for the life of the set: a
 * reload builds a new set, with a new id, so it starts empty. A hit inside
 * the window skips chain building and the signature check (a resumed
 * session, or the same client's next full handshake); outside it, or on a
 * miss, the full check runs.
 *
 * No lock on the handshake path: each thread has its own direct-mapped
 * cache, and an entry is tagged with the id of the set that produced it.
 * Ids come from a process-wide counter and are never reused, so a set freed
 * and a new one allocated at the same address never share entries; entries
 * of a freed set are simply never hit again and get overwritten.
 */
#define VC_SLOTS 256

struct vc_entry {
    uint64_t set_id;                /* 0: empty slot */
    unsigned char fp[32];
    time_t not_before, not_after;   /* intersection over the chain */
};

static _Thread_local struct vc_entry vc_cache[VC_SLOTS];

/* The next set id; 0 is never handed out (it marks an empty slot). */
static atomic_uint_fast64_t vc_next_id = 1;

struct tls_trust {
    atomic_int refs;
    int require_eku;
    uint64_t id;                    /* unique in the process, for the cache */
    X509_STORE *store;              /* intermediates as anchors */
    STACK_OF(X509) *roots;          /* self-signed CAs of client_ca */
    STACK_OF(X509) *intermediates;  /* the pinned issuers */
    STACK_OF(X509_CRL) *crls;       /* NULL when none loaded */
    int *crl_issuer;                /* per CRL: index in intermediates */
    EVP_MD *sha256;                 /* fetched once, for the cache keys */
};

static const char *const refusal_names[] = {
#define TLS_X_NAME(e, s) s,
    TLS_REFUSALS(TLS_X_NAME)
#undef TLS_X_NAME
};

const char *tls_refusal_name(enum tls_refusal r)
{
    if ((int)r < 0 || r >= TLS_REFUSAL__COUNT)
        return "unknown";
    return refusal_names[r];
}

enum tls_refusal tls_refusal_from_x509_error(int x509_err)
{
    switch (x509_err) {
    case X509_V_OK:
        return TLS_OK;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
        return TLS_REFUSE_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
        return TLS_REFUSE_NOT_YET_VALID;
    case X509_V_ERR_CERT_REVOKED:
        return TLS_REFUSE_REVOKED;
    case X509_V_ERR_INVALID_PURPOSE:
    case X509_V_ERR_INVALID_NON_CA:
    case X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE:
        return TLS_REFUSE_BAD_USAGE;
    default:
        /* Every chain failure: unknown issuer, self-signed, bad signature,
         * wrong CA, chain too long, trust setting rejected, ... */
        return TLS_REFUSE_UNTRUSTED_ISSUER;
    }
}

/* The OpenSSL error code that leaf_rules() sets for each of its reasons; it
 * decides the TLS alert (see ssl_x509err2alert in OpenSSL's statem_lib.c). */
static int refusal_x509_error(enum tls_refusal r)
{
    switch (r) {
    case TLS_REFUSE_UNTRUSTED_ISSUER:
        return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY; /* unknown_ca */
    case TLS_REFUSE_BAD_USAGE:
        return X509_V_ERR_INVALID_PURPOSE;                  /* unsupported_certificate */
    case TLS_REFUSE_BAD_SUBJECT:
        return X509_V_ERR_CERT_REJECTED;                    /* bad_certificate */
    case TLS_REFUSE_REVOKED:
        return X509_V_ERR_CERT_REVOKED;                     /* certificate_revoked */
    case TLS_REFUSE_EXPIRED:
        return X509_V_ERR_CERT_HAS_EXPIRED;                 /* certificate_expired */
    case TLS_REFUSE_NOT_YET_VALID:
        return X509_V_ERR_CERT_NOT_YET_VALID;               /* bad_certificate */
    default:
        return X509_V_ERR_APPLICATION_VERIFICATION;         /* handshake_failure */
    }
}

void tls_trust_ref(struct tls_trust *t)
{
    if (t != NULL)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void tls_trust_unref(struct tls_trust *t)
{
    if (t == NULL)
        return;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    X509_STORE_free(t->store);
    sk_X509_pop_free(t->roots, X509_free);
    sk_X509_pop_free(t->intermediates, X509_free);
    sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
    free(t->crl_issuer);
    EVP_MD_free(t->sha256);
    free(t);
}

X509_STORE *tls_trust_get0_store(const struct tls_trust *t)
{
    return t->store;
}

const STACK_OF(X509) *tls_trust_get0_intermediates(const struct tls_trust *t)
{
    return t->intermediates;
}

time_t tls_trust_valid_until(const struct tls_trust *t, const X509 *leaf)
{
    const STACK_OF(X509) *im = t != NULL ? t->intermediates : NULL;
    time_t until, ca;
    int i;

    if (leaf == NULL || tls_asn1_time_epoch(X509_get0_notAfter(leaf), &until) != 0)
        return 0;
    for (i = 0; i < sk_X509_num(im); i++) {
        X509 *x = sk_X509_value(im, i);

        if (X509_check_issued(x, (X509 *)leaf) == X509_V_OK &&
            tls_asn1_time_epoch(X509_get0_notAfter(x), &ca) == 0 && ca < until)
            until = ca;
    }
    return until;
}

const STACK_OF(X509) *tls_trust_get0_roots(const struct tls_trust *t)
{
    return t->roots;
}

const STACK_OF(X509_CRL) *tls_trust_get0_crls(const struct tls_trust *t)
{
    return t->crls;
}

/*
 * Verifies intermediate `x` against the roots (other intermediates may sit
 * between them) at the current time. An intermediate whose own
 * extendedKeyUsage excludes clientAuth is refused too: OpenSSL would refuse
 * every client it issued (the purpose check covers the whole chain), so
 * this is said once at load time instead of at every handshake.
 * 0 / -1 with the reason in err.
 */
static int verify_intermediate(const char *path, X509 *x, STACK_OF(X509) *roots,
                               STACK_OF(X509) *intermediates, char *err, size_t errlen)
{
    X509_STORE *rs = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    char subj[256];
    int i, rc = -1, verr;

    tls_x509_subject(x, subj, sizeof(subj));
    if (tls_x509_has_eku(x) && !tls_x509_eku_client(x)) {
        snprintf(err, errlen, "%s: client intermediate %s has an extendedKeyUsage without "
                 "clientAuth: it cannot issue client certificates", path, subj);
        goto out;
    }
    if (rs == NULL || ctx == NULL) {
        tls_err_set(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (i = 0; i < sk_X509_num(roots); i++) {
        if (!X509_STORE_add_cert(rs, sk_X509_value(roots, i))) {
            tls_err_set(err, errlen, "%s: cannot add root to store", path);
            goto out;
        }
    }
    if (!X509_STORE_CTX_init(ctx, rs, x, intermediates)) {
        tls_err_set(err, errlen, "%s: cannot set up verification", path);
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        verr = X509_STORE_CTX_get_error(ctx);
        ERR_clear_error();
        snprintf(err, errlen, "%s: client intermediate %s does not verify against a root in "
                 "the same file: %s", path, subj, X509_verify_cert_error_string(verr));
        goto out;
    }
    rc = 0;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(rs);
    return rc;
}

/*
 * Matches every CRL to the intermediate that issued it (same name AND a
 * signature that verifies with its key). 0 / -1 with the reason in err.
 */
static int match_crls(struct tls_trust *t, const char *path, char *err, size_t errlen)
{
    int i, j, n = sk_X509_CRL_num(t->crls), name_match;
    char issuer[256];

    if ((t->crl_issuer = calloc((size_t)n, sizeof(*t->crl_issuer))) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (i = 0; i < n; i++) {
        X509_CRL *crl = sk_X509_CRL_value(t->crls, i);
        const X509_NAME *in = X509_CRL_get_issuer(crl);
        BIO *b = NULL;

        t->crl_issuer[i] = -1;
        name_match = 0;
        for (j = 0; j < sk_X509_num(t->intermediates); j++) {
            X509 *ca = sk_X509_value(t->intermediates, j);

            if (X509_NAME_cmp(in, X509_get_subject_name(ca)) != 0)
                continue;
            name_match = 1;
            if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) {
                t->crl_issuer[i] = j;
                break;
            }
        }
        ERR_clear_error();
        if (t->crl_issuer[i] >= 0)
            continue;
        issuer[0] = '\0';
        if ((b = BIO_new(BIO_s_mem())) != NULL &&
            X509_NAME_print_ex(b, in, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
            int len = BIO_read(b, issuer, (int)sizeof(issuer) - 1);
            issuer[len > 0 ? len : 0] = '\0';
        }
        BIO_free(b);
        ERR_clear_error();
        if (name_match)
            snprintf(err, errlen, "%s: CRL #%d (issuer %s): signature does not verify with "
                     "that client intermediate's key", path, i + 1, issuer);
        else
            snprintf(err, errlen, "%s: CRL #%d: issuer %s is not one of the client "
                     "intermediates", path, i + 1, issuer);
        return -1;
    }
    return 0;
}

struct tls_trust *tls_trust_load(const struct tls_trust_opts *opts, char *err, size_t errlen)
{
    struct tls_trust *t = NULL, *ret = NULL;
    STACK_OF(X509) *all = NULL;
    const char *path = opts->client_ca_path;
    char subj[256];
    int i;

    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "tls: client_ca: a file is required");
        goto out;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    atomic_init(&t->refs, 1);
    t->require_eku = opts->require_eku;
    t->id = atomic_fetch_add_explicit(&vc_next_id, 1, memory_order_relaxed);
    /* Without SHA-256 the cache stays off; verification is unaffected. */
    t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ERR_clear_error();
    if (tls_pem_load_certs(path, &all, err, errlen) != 0)
        goto out;
    t->roots = sk_X509_new_null();
    t->intermediates = sk_X509_new_null();
    t->store = X509_STORE_new();
    if (t->roots == NULL || t->intermediates == NULL || t->store == NULL) {
        tls_err_set(err, errlen, "%s: out of memory", path);
        goto out;
    }
    /* Split: self-signed CAs are roots, other CAs are intermediates. */
    while (sk_X509_num(all) > 0) {
        X509 *x = sk_X509_shift(all);
        int ss;

        if (!tls_x509_is_ca(x)) {
            snprintf(err, errlen, "%s: %s is not a CA certificate (client_ca holds only the "
                     "client intermediates and their roots)", path,
                     tls_x509_subject(x, subj, sizeof(subj)));
            X509_free(x);
            goto out;
        }
        ss = X509_self_signed(x, 1);
        ERR_clear_error();
        if (!sk_X509_push(ss == 1 ? t->roots : t->intermediates, x)) {
            X509_free(x);
            tls_err_set(err, errlen, "%s: out of memory", path);
            goto out;
        }
    }
    if (sk_X509_num(t->intermediates) == 0) {
        snprintf(err, errlen, "%s: no client intermediate (a CA certificate that is not "
                 "self-signed); the gateway pins the intermediate, a root alone is not enough",
                 path);
        goto out;
    }
    for (i = 0; i < sk_X509_num(t->intermediates); i++) {
        X509 *x = sk_X509_value(t->intermediates, i);

        if (verify_intermediate(path, x, t->roots, t->intermediates, err, errlen) != 0)
            goto out;
        if (!X509_STORE_add_cert(t->store, x)) {
            tls_err_set(err, errlen, "%s: cannot add %s to the store", path,
                        tls_x509_subject(x, subj, sizeof(subj)));
            goto out;
        }
    }
    if (!X509_STORE_set_flags(t->store, X509_V_FLAG_PARTIAL_CHAIN) ||
        !X509_STORE_set_purpose(t->store, X509_PURPOSE_SSL_CLIENT) ||
        !X509_STORE_set_trust(t->store, X509_TRUST_SSL_CLIENT)) {
        tls_err_set(err, errlen, "%s: cannot set store parameters", path);
        goto out;
    }
    if (opts->crl_path != NULL && opts->crl_path[0] != '\0') {
        if (tls_pem_load_crls(opts->crl_path, &t->crls, err, errlen) != 0)
            goto out;
        if (match_crls(t, opts->crl_path, err, errlen) != 0)
            goto out;
    }
    ret = t;
    t = NULL;
out:
    sk_X509_pop_free(all, X509_free);
    tls_trust_unref(t);
    return ret;
}

int tls_trust_crl_stale(const struct tls_trust *t, time_t now, char *detail, size_t detaillen)
{
    int i, stale = 0;
    char when[64], issuer[256];

    if (detail != NULL && detaillen > 0)
        detail[0] = '\0';
    for (i = 0; i < sk_X509_CRL_num(t->crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(t->crls, i);
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        X509 *ca = sk_X509_value(t->intermediates, t->crl_issuer[i]);
        struct tm tm;

        if (next == NULL || !ASN1_TIME_to_tm(next, &tm) || timegm(&tm) >= now)
            continue;
        if (stale++ == 0 && detail != NULL && detaillen > 0)
            snprintf(detail, detaillen, "CRL of %s is past its nextUpdate (%s); its "
                     "revocations are still enforced",
                     tls_x509_subject(ca, issuer, sizeof(issuer)),
                     tls_time_str(timegm(&tm), when, sizeof(when)));
    }
    ERR_clear_error();
    return stale;
}

/* Index in t->intermediates of the certificate equal to x, or -1. */
static int find_intermediate(const struct tls_trust *t, const X509 *x)
{
    int i;

    if (x == NULL)
        return -1;
    for (i = 0; i < sk_X509_num(t->intermediates); i++)
        if (X509_cmp(sk_X509_value(t->intermediates, i), x) == 0)
            return i;
    return -1;
}

/*
 * The leaf rules, given the verified issuer (chain[1], NULL when the chain
 * is the leaf alone). Order: CA, issuer, EKU, subject, revocation; the first
 * failing one is the reason.
 */
static enum tls_refusal leaf_rules(const struct tls_trust *t, X509 *leaf, X509 *issuer,
                                   char *detail, size_t detaillen)
{
    char cn[TLS_CN_MAX + 1], buf[256], when[64], serial[80];
    int idx, i;

    if (tls_x509_is_ca(leaf)) {
        snprintf(detail, detaillen, "%s is a CA certificate, not a client certificate",
                 tls_x509_subject(leaf, buf, sizeof(buf)));
        return TLS_REFUSE_BAD_USAGE;
    }
    if ((idx = find_intermediate(t, issuer)) < 0) {
        snprintf(detail, detaillen, "issuer %s is not a trusted client intermediate",
                 tls_x509_issuer(leaf, buf, sizeof(buf)));
        return TLS_REFUSE_UNTRUSTED_ISSUER;
    }
    if (!tls_x509_has_eku(leaf)) {
        if (t->require_eku) {
            snprintf(detail, detaillen, "certificate has no extendedKeyUsage (clientAuth "
                     "required)");
            return TLS_REFUSE_BAD_USAGE;
        }
    } else if (!tls_x509_eku_client(leaf)) {
        snprintf(detail, detaillen, "extendedKeyUsage does not include clientAuth");
        return TLS_REFUSE_BAD_USAGE;
    }
    if (tls_x509_get_cn(leaf, cn) != 0) {
        snprintf(detail, detaillen, "subject %s must have exactly one printable CN of at "
                 "most %d characters", tls_x509_subject(leaf, buf, sizeof(buf)), TLS_CN_MAX);
        return TLS_REFUSE_BAD_SUBJECT;
    }
    for (i = 0; i < sk_X509_CRL_num(t->crls); i++) {
        X509_REVOKED *rev = NULL;

        if (t->crl_issuer[i] != idx)
            continue;
        if (X509_CRL_get0_by_cert(sk_X509_CRL_value(t->crls, i), &rev, leaf) == 1) {
            struct tm tm;
            const ASN1_TIME *rd = X509_REVOKED_get0_revocationDate(rev);

            if (rd != NULL && ASN1_TIME_to_tm(rd, &tm))
                tls_time_str(timegm(&tm), when, sizeof(when));
            else
                snprintf(when, sizeof(when), "an unknown date");
            snprintf(detail, detaillen, "serial %s revoked by %s on %s",
                     tls_x509_serial_hex(leaf, serial, sizeof(serial)),
                     tls_x509_subject(issuer, buf, sizeof(buf)), when);
            ERR_clear_error();
            return TLS_REFUSE_REVOKED;
        }
    }
    ERR_clear_error();
    if (detaillen > 0)
        detail[0] = '\0';
    return TLS_OK;
}

/* A sentence for an OpenSSL verification error at the current cert of ctx. */
static void describe_store_error(X509_STORE_CTX *ctx, int verr, char *detail, size_t detaillen)
{
    X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
    int depth = X509_STORE_CTX_get_error_depth(ctx);
    char buf[256], when[64];
    time_t tt;
    const char *what = depth == 0 ? "certificate" : "chain certificate";

    switch (verr) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        if (cur != NULL && tls_x509_not_after(cur, &tt) == 0) {
            snprintf(detail, detaillen, "%s %s expired on %s", what,
                     tls_x509_subject(cur, buf, sizeof(buf)), tls_time_str(tt, when, sizeof(when)));
            return;
        }
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        if (cur != NULL && tls_x509_not_before(cur, &tt) == 0) {
            snprintf(detail, detaillen, "%s %s is not valid before %s", what,
                     tls_x509_subject(cur, buf, sizeof(buf)), tls_time_str(tt, when, sizeof(when)));
            return;
        }
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        /* Name the leaf's issuer: that is the CA the operator must recognise. */
        if (X509_STORE_CTX_get0_cert(ctx) != NULL) {
            snprintf(detail, detaillen, "issuer %s is not a trusted client intermediate "
                     "(%s at depth %d)",
                     tls_x509_issuer(X509_STORE_CTX_get0_cert(ctx), buf, sizeof(buf)),
                     X509_verify_cert_error_string(verr), depth);
            return;
        }
        break;
    default:
        break;
    }
    if (cur != NULL)
        snprintf(detail, detaillen, "%s at depth %d: %s", tls_x509_subject(cur, buf, sizeof(buf)),
                 depth, X509_verify_cert_error_string(verr));
    else
        snprintf(detail, detaillen, "%s", X509_verify_cert_error_string(verr));
}

enum tls_refusal tls_trust_check_store_ctx(const struct tls_trust *t, X509_STORE_CTX *ctx,
                                           char *detail, size_t detaillen)
{
    STACK_OF(X509) *chain;
    X509 *leaf, *issuer;
    int verr = X509_STORE_CTX_get_error(ctx);
    enum tls_refusal r;

    if (detaillen > 0)
        detail[0] = '\0';
    if (verr != X509_V_OK) {
        describe_store_error(ctx, verr, detail, detaillen);
        return tls_refusal_from_x509_error(verr);
    }
    if (X509_STORE_CTX_get_error_depth(ctx) != 0)
        return TLS_OK;
    chain = X509_STORE_CTX_get0_chain(ctx);
    leaf = sk_X509_value(chain, 0);
    if (leaf == NULL) {
        snprintf(detail, detaillen, "no certificate in the verified chain");
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_UNSPECIFIED);
        return TLS_REFUSE_UNTRUSTED_ISSUER;
    }
    issuer = sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : NULL;
    r = leaf_rules(t, leaf, issuer, detail, detaillen);
    if (r != TLS_OK)
        X509_STORE_CTX_set_error(ctx, refusal_x509_error(r));
    return r;
}

/* The cache key of x into fp; 0, or -1 when the cache is off. */
static int vc_key(const struct tls_trust *t, X509 *x, unsigned char fp[32])
{
    unsigned int len = 0;

    if (t->sha256 == NULL || X509_digest(x, t->sha256, fp, &len) != 1 || len != 32) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static size_t vc_slot(const unsigned char fp[32])
{
    return ((size_t)fp[0] | (size_t)fp[1] << 8) % VC_SLOTS;
}

/* 1 when fp passed set t before (on this thread) and now is inside its
 * window. */
static int vc_hit(const struct tls_trust *t, const unsigned char fp[32], time_t now)
{
    const struct vc_entry *e = &vc_cache[vc_slot(fp)];

    return e->set_id == t->id && memcmp(e->fp, fp, 32) == 0 && now >= e->not_before &&
           now <= e->not_after;
}

/* Remembers, for this thread, that fp passed set t with the verified chain
 * (its validity window). */
static void vc_put(const struct tls_trust *t, const unsigned char fp[32], STACK_OF(X509) *chain)
{
    time_t nb = 0, na = 0, tt;
    struct vc_entry *e;
    int i;

    for (i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);

        if (tls_x509_not_before(x, &tt) != 0)
            return;
        if (i == 0 || tt > nb)
            nb = tt;
        if (tls_x509_not_after(x, &tt) != 0)
            return;
        if (i == 0 || tt < na)
            na = tt;
    }
    if (sk_X509_num(chain) == 0)
        return;
    e = &vc_cache[vc_slot(fp)];
    e->set_id = t->id;
    memcpy(e->fp, fp, 32);
    e->not_before = nb;
    e->not_after = na;
}

enum tls_refusal tls_trust_check(const struct tls_trust *t, X509 *leaf, STACK_OF(X509) *untrusted,
                                 time_t now, char *detail, size_t detaillen)
{
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *chain;
    enum tls_refusal r = TLS_REFUSE_UNTRUSTED_ISSUER;
    unsigned char fp[32];
    int cacheable;

    if (detaillen > 0)
        detail[0] = '\0';
    if (leaf == NULL) {
        snprintf(detail, detaillen, "no certificate");
        r = TLS_REFUSE_NO_CERTIFICATE;
        goto out;
    }
    cacheable = vc_key(t, leaf, fp) == 0;
    if (cacheable && vc_hit(t, fp, now)) {
        r = TLS_OK;
        goto out;
    }
    ctx = X509_STORE_CTX_new();
    if (ctx == NULL || !X509_STORE_CTX_init(ctx, t->store, leaf, untrusted) ||
        !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)) {
        snprintf(detail, detaillen, "cannot set up verification: out of memory");
        goto out;
    }
    X509_STORE_CTX_set_time(ctx, 0, now);
    if (X509_verify_cert(ctx) != 1) {
        int verr = X509_STORE_CTX_get_error(ctx);

        if (verr == X509_V_OK)
            verr = X509_V_ERR_UNSPECIFIED;
        describe_store_error(ctx, verr, detail, detaillen);
        r = tls_refusal_from_x509_error(verr);
        goto out;
    }
    chain = X509_STORE_CTX_get0_chain(ctx);
    r = leaf_rules(t, leaf, sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : NULL,
                   detail, detaillen);
    if (r == TLS_OK && cacheable)
        vc_put(t, fp, chain);
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return r;
}
