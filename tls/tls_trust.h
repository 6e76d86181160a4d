/*
 * tls_trust.h - which client certificates the gateway admits, and why not.
 *
 * A trust set is built once from a client_ca file (one or more client
 * intermediates and the root(s) they chain to) and optional CRLs, then never
 * changes: a reload builds a new one. It is shared by every worker and by
 * live connections through a reference count.
 *
 * A client certificate is admitted only when ALL of these hold:
 *  - its chain verifies, and its issuer is one of the intermediates listed in
 *    client_ca (compared as certificates, not names: a look-alike CA from
 *    another root with identical names is refused), and that intermediate was
 *    itself verified against a root in client_ca when the set was loaded;
 *  - it is within its validity period; it is not a CA;
 *  - it has an extendedKeyUsage with clientAuth (no EKU at all is refused
 *    unless require_eku is 0);
 *  - its subject has exactly one CN (see tls_x509_get_cn);
 *  - it is not revoked by a loaded CRL of its issuer.
 *
 * CRLs: each CRL must be signed by one of the intermediates (checked at
 * load); a leaf is looked up only in the CRLs of its own issuer, so an
 * intermediate without a CRL is allowed. A CRL past its nextUpdate is still
 * used (its revocations stay enforced: refusing every client because a CRL
 * was not refreshed in time would turn a late cron job into an outage);
 * tls_trust_crl_stale() tells the caller so it can warn and export it.
 *
 * Every function here may be called from several threads at once on the
 * same set (it is immutable after tls_trust_load).
 */
#ifndef MTLS_TLS_TRUST_H
#define MTLS_TLS_TRUST_H

#include <stddef.h>
#include <time.h>
#include <openssl/types.h>
#include <openssl/safestack.h>
#include <openssl/x509.h>

#include "tls_pem.h"
#include "tls_x509.h"

/*
 * Why a client was refused. The names are the metric label values and the
 * words in log lines; keep them stable.
 */
#define TLS_REFUSALS(X)                                   \
    X(TLS_OK, "ok")                                       \
    X(TLS_REFUSE_NO_CERTIFICATE, "no_certificate")        \
    X(TLS_REFUSE_UNTRUSTED_ISSUER, "untrusted_issuer")    \
    X(TLS_REFUSE_EXPIRED, "expired")                      \
    X(TLS_REFUSE_NOT_YET_VALID, "not_yet_valid")          \
    X(TLS_REFUSE_REVOKED, "revoked")                      \
    X(TLS_REFUSE_BAD_USAGE, "bad_usage")                  \
    X(TLS_REFUSE_BAD_SUBJECT, "bad_subject")              \
    X(TLS_REFUSE_UNKNOWN_IDENTITY, "unknown_identity")    \
    X(TLS_REFUSE_FORBIDDEN, "forbidden")                  \
    X(TLS_REFUSE_PROTOCOL, "protocol")

enum tls_refusal {
#define TLS_X_ENUM(e, s) e,
    TLS_REFUSALS(TLS_X_ENUM)
#undef TLS_X_ENUM
    TLS_REFUSAL__COUNT
};

/* "untrusted_issuer" etc.; never NULL. */
const char *tls_refusal_name(enum tls_refusal r);

struct tls_trust_opts {
    const char *client_ca_path;   /* required: intermediates + roots, PEM */
    const char *crl_path;         /* optional (NULL): one or more PEM CRLs */
    int require_eku;              /* 1 (default): a cert without EKU is refused */
};

struct tls_trust; /* opaque, immutable, reference counted */

/*
 * Loads and checks a trust set. Fails (NULL, reason in err naming the file)
 * when the file has no intermediate (a CA certificate that is not
 * self-signed), when an intermediate does not verify against a root in the
 * same file, or when a CRL is corrupt, not signed by one of the
 * intermediates, or unreadable. Returns a set with one reference.
 */
struct tls_trust *tls_trust_load(const struct tls_trust_opts *opts,
                                 char *err, size_t errlen) TLS_MUSTCHECK;

void tls_trust_ref(struct tls_trust *t);
void tls_trust_unref(struct tls_trust *t); /* NULL is fine */

/*
 * The X509_STORE to give to a server SSL_CTX (SSL_CTX_set1_verify_cert_store):
 * the trusted client intermediates as anchors (partial chain), so the root's
 * signature is not re-checked on every handshake.
 */
X509_STORE *tls_trust_get0_store(const struct tls_trust *t);

/*
 * Until when a certificate this set admits stays valid: the earlier of its
 * notAfter and that of the trusted intermediate that issued it (the anchor
 * of its chain), seconds since 1970; 0 when leaf's notAfter cannot be read.
 */
time_t tls_trust_valid_until(const struct tls_trust *t, const X509 *leaf);

/* The trusted client intermediates (for metrics: expiry of each CA). */
const STACK_OF(X509) *tls_trust_get0_intermediates(const struct tls_trust *t);
const STACK_OF(X509) *tls_trust_get0_roots(const struct tls_trust *t);
/* The loaded CRLs, or NULL when none. */
const STACK_OF(X509_CRL) *tls_trust_get0_crls(const struct tls_trust *t);

/*
 * Checks a client certificate outside a handshake (certs-tool verify, and
 * the re-check of a resumed session): builds and verifies the chain (extra
 * intermediates from `untrusted` may be NULL), then applies every rule
 * above at time `now`. Returns TLS_OK or the reason, with a sentence in
 * detail (e.g. "expired on 2026-01-01 00:00:00 UTC",
 * "issuer CN=Demo Server CA is not a trusted client intermediate").
 */
enum tls_refusal tls_trust_check(const struct tls_trust *t, X509 *leaf,
                                 STACK_OF(X509) *untrusted, time_t now,
                                 char *detail, size_t detaillen);

/*
 * The leaf-only rules (not a CA, EKU, one CN, issuer pinning, CRL) for use
 * inside an OpenSSL verify callback, where OpenSSL has already built and
 * verified the chain in ctx. Returns TLS_OK or the reason and sets the
 * matching X509_V_ERR_* on ctx so that OpenSSL sends the right alert.
 * Call it on every callback invocation: when ctx already carries an
 * OpenSSL error (preverify_ok == 0) it returns that error's reason with a
 * sentence (e.g. "certificate CN=... expired on ..."); at depth > 0 without
 * an error it returns TLS_OK; at depth 0 it applies the leaf rules.
 * Alerts (checked with openssl s_client, TLS 1.2 and 1.3):
 *   untrusted_issuer -> unknown_ca, expired -> certificate_expired,
 *   not_yet_valid -> bad_certificate, revoked -> certificate_revoked,
 *   bad_usage -> unsupported_certificate, bad_subject -> bad_certificate.
 */
enum tls_refusal tls_trust_check_store_ctx(const struct tls_trust *t, X509_STORE_CTX *ctx,
                                           char *detail, size_t detaillen);

/*
 * Number of loaded CRLs whose nextUpdate is before `now` (0 when all are
 * current or none is loaded); for the first one, a sentence in detail
 * ("CRL of CN=... is past its nextUpdate (2026-...); its revocations are
 * still enforced"). detail may be NULL.
 */
int tls_trust_crl_stale(const struct tls_trust *t, time_t now, char *detail, size_t detaillen);

/* Maps an OpenSSL X509_V_ERR_* code to a refusal reason. */
enum tls_refusal tls_refusal_from_x509_error(int x509_err);

#endif
