/*
 * verify.c - `certs-tool verify`: check a certificate against this PKI and
 * say in words why it fails.
 *
 * The explicit checks (CA or not, which intermediate issued it, EKU) run
 * before OpenSSL's chain verification so that the usual mistakes get their
 * own sentence instead of a generic "unsuitable certificate purpose".
 */
#include "verify.h"

#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "commands.h"
#include "revoke.h"
#include "tls_pem.h"
#include "tls_x509.h"

/*
 * "the client intermediate" (the current generation), "the client
 * intermediate generation N" (another one), "the root", or the subject of x.
 */
static const char *who(const struct ct_pki *pki, X509 *x, char *buf, size_t len)
{
    char subj[256];
    size_t i;

    if (X509_cmp(x, pki->root.cert) == 0)
        return "the root";
    if (X509_cmp(x, pki->client_ca.cert) == 0)
        return "the client intermediate";
    if (X509_cmp(x, pki->server_ca.cert) == 0)
        return "the server intermediate";
    for (i = 0; i < pki->gens.n; i++) {
        const struct ct_gen *g = &pki->gens.v[i];

        if (g->ca.cert != NULL && X509_cmp(x, g->ca.cert) == 0) {
            snprintf(buf, len, "the %s intermediate generation %d", ct_kind_name(g->kind), g->gen);
            return buf;
        }
    }
    snprintf(buf, len, "'%s'", tls_x509_subject(x, subj, sizeof(subj)));
    return buf;
}

/* The trusted generation of kind that issued cert (0 when none did). */
static int issuing_gen(const struct ct_pki *pki, X509 *cert, enum ct_kind kind)
{
    struct ct_live_ca live[CT_LIVE_MAX];
    size_t n = ct_pki_live(pki, kind, live, CT_LIVE_MAX), i;

    for (i = 0; i < n; i++)
        if (X509_check_issued(live[i].ca->cert, cert) == X509_V_OK)
            return live[i].gen;
    return 0;
}

/* The retired generation (of either kind) that issued cert, or NULL. */
static const struct ct_gen *retired_issuer(const struct ct_pki *pki, X509 *cert)
{
    size_t i;

    for (i = 0; i < pki->gens.n; i++) {
        const struct ct_gen *g = &pki->gens.v[i];

        if (g->status == CT_GEN_RETIRED && g->ca.cert != NULL &&
            X509_check_issued(g->ca.cert, cert) == X509_V_OK)
            return g;
    }
    return NULL;
}

/* 1 when a trusted generation of kind issued cert. */
static int issued_by_kind(const struct ct_pki *pki, X509 *cert, enum ct_kind kind)
{
    return issuing_gen(pki, cert, kind) != 0;
}

/* The revocation date and reason of x in crls, into why. */
static void revoked_why(STACK_OF(X509_CRL) *crls, X509 *x, char *why, size_t len)
{
    X509_REVOKED *rev = NULL;
    ASN1_ENUMERATED *reason;
    struct tm tm;
    char ts[64];
    const char *rname = NULL;
    int i;

    for (i = 0; i < sk_X509_CRL_num(crls); i++)
        if (X509_CRL_get0_by_cert(sk_X509_CRL_value(crls, i), &rev, x) == 1)
            break;
    if (rev == NULL || !ASN1_TIME_to_tm(X509_REVOKED_get0_revocationDate(rev), &tm)) {
        snprintf(why, len, "revoked");
        return;
    }
    tls_time_str(timegm(&tm), ts, sizeof(ts));
    reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    if (reason != NULL)
        rname = ct_reason_name((int)ASN1_ENUMERATED_get(reason));
    ASN1_ENUMERATED_free(reason);
    snprintf(why, len, "revoked on %s (%s)", ts, rname ? rname : "unspecified");
}

/* Words for a failed X509_verify_cert. */
static void explain(const struct ct_pki *pki, X509_STORE_CTX *ctx, STACK_OF(X509_CRL) *crls,
                    enum ct_kind kind, char *why, size_t len)
{
    int e = X509_STORE_CTX_get_error(ctx);
    int depth = X509_STORE_CTX_get_error_depth(ctx);
    X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
    char ts[64], wbuf[300], prefix[320];
    time_t t = 0;
    const char *crl_name = ct_crl_file(kind);

    prefix[0] = '\0';
    if (depth > 0 && cur != NULL)
        snprintf(prefix, sizeof(prefix), "%s ", who(pki, cur, wbuf, sizeof(wbuf)));
    switch (e) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        if (cur != NULL)
            (void)tls_x509_not_after(cur, &t);
        snprintf(why, len, "%sexpired on %s", prefix, tls_time_str(t, ts, sizeof(ts)));
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        if (cur != NULL)
            (void)tls_x509_not_before(cur, &t);
        snprintf(why, len, "%snot yet valid until %s", prefix, tls_time_str(t, ts, sizeof(ts)));
        break;
    case X509_V_ERR_CERT_REVOKED:
        revoked_why(crls, cur, why, len);
        break;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        snprintf(why, len, "%ssignature does not verify (same issuer name, another key?)", prefix);
        break;
    case X509_V_ERR_INVALID_PURPOSE:
        snprintf(why, len, "%snot valid for %s (key usage or extended key usage)", prefix,
                 kind == CT_KIND_SERVER ? "serverAuth" : "clientAuth");
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        snprintf(why, len, "unknown issuer: %sdoes not chain to this PKI's root", prefix);
        break;
    case X509_V_ERR_CRL_HAS_EXPIRED:
        snprintf(why, len, "%s has expired (run certs-tool crl)", crl_name);
        break;
    case X509_V_ERR_CRL_NOT_YET_VALID:
        snprintf(why, len, "%s is not yet valid (clock skew?)", crl_name);
        break;
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
        snprintf(why, len, "%s is not signed by the %s intermediate (%s)", crl_name,
                 ct_kind_name(kind), X509_verify_cert_error_string(e));
        break;
    default:
        snprintf(why, len, "%s%s", prefix, X509_verify_cert_error_string(e));
        break;
    }
}

/* The checks with a sentence of their own, before chain verification. */
static int precheck(const struct ct_pki *pki, X509 *cert, enum ct_kind kind, char *why, size_t len)
{
    X509 *want = kind == CT_KIND_SERVER ? pki->server_ca.cert : pki->client_ca.cert;
    enum ct_kind other_kind = kind == CT_KIND_SERVER ? CT_KIND_CLIENT : CT_KIND_SERVER;
    const char *kn = ct_kind_name(kind);
    const char *other_kn = ct_kind_name(other_kind);
    const char *usage = kind == CT_KIND_SERVER ? "serverAuth" : "clientAuth";
    const struct ct_gen *retired;
    char wbuf[300], issuer[256], ts[64];
    int r;

    if (tls_x509_is_ca(cert)) {
        snprintf(why, len, "is a CA certificate (%s), not a %s certificate",
                 who(pki, cert, wbuf, sizeof(wbuf)), kn);
        return -1;
    }
    if (!issued_by_kind(pki, cert, kind)) {
        r = X509_check_issued(want, cert);
        if ((retired = retired_issuer(pki, cert)) != NULL && retired->kind == kind)
            snprintf(why, len, "issued by the %s intermediate generation %d, which was %s on %s "
                     "(no longer trusted)", kn, retired->gen,
                     retired->revoked_at ? "revoked" : "retired",
                     tls_time_str(retired->revoked_at ? retired->revoked_at : retired->retired_at,
                                  ts, sizeof(ts)));
        else if (issued_by_kind(pki, cert, other_kind) ||
                 (retired != NULL && retired->kind == other_kind))
            snprintf(why, len, "issued by the %s intermediate, not the %s intermediate", other_kn,
                     kn);
        else if (X509_check_issued(pki->root.cert, cert) == X509_V_OK)
            snprintf(why, len, "issued directly by the root, not the %s intermediate", kn);
        else if (r == X509_V_ERR_AKID_SKID_MISMATCH || r == X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH)
            snprintf(why, len,
                     "unknown issuer: '%s' has the %s intermediate's name but another key "
                     "(another PKI?)", tls_x509_issuer(cert, issuer, sizeof(issuer)), kn);
        else
            snprintf(why, len, "unknown issuer: '%s' is not the %s intermediate of %s",
                     tls_x509_issuer(cert, issuer, sizeof(issuer)), kn, pki->dir);
        return -1;
    }
    if (!tls_x509_has_eku(cert)) {
        snprintf(why, len, "has no extended key usage at all (%s required)", usage);
        return -1;
    }
    if (kind == CT_KIND_CLIENT ? !tls_x509_eku_client(cert) : !tls_x509_eku_server(cert)) {
        snprintf(why, len, "no %s usage (its extended key usage allows %s)", usage,
                 tls_x509_eku_client(cert) ? "clientAuth"
                 : tls_x509_eku_server(cert) ? "serverAuth" : "neither");
        return -1;
    }
    return 0;
}

int ct_verify_cert(const struct ct_pki *pki, X509 *cert, enum ct_kind kind,
                   STACK_OF(X509_CRL) *crls, time_t now, char *why, size_t whylen)
{
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL;
    struct ct_live_ca live[CT_LIVE_MAX];
    unsigned long flags = X509_V_FLAG_X509_STRICT;
    size_t n, i;
    int rc = -1;

    ERR_clear_error();
    if (precheck(pki, cert, kind, why, whylen) != 0)
        goto out;
    /* Only the root is a trust anchor; the intermediate must chain to it. */
    if ((store = X509_STORE_new()) == NULL || !X509_STORE_add_cert(store, pki->root.cert) ||
        (untrusted = sk_X509_new_null()) == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    /* Every trusted generation of the intermediate, none of the retired ones. */
    n = ct_pki_live(pki, kind, live, CT_LIVE_MAX);
    for (i = 0; i < n; i++) {
        if (!sk_X509_push(untrusted, live[i].ca->cert)) {
            snprintf(why, whylen, "out of memory");
            goto out;
        }
    }
    if ((ctx = X509_STORE_CTX_new()) == NULL || !X509_STORE_CTX_init(ctx, store, cert, untrusted)) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    if (crls != NULL) {
        X509_STORE_CTX_set0_crls(ctx, crls);
        flags |= X509_V_FLAG_CRL_CHECK;
    }
    X509_STORE_CTX_set_flags(ctx, flags);
    if (!X509_STORE_CTX_set_purpose(ctx, kind == CT_KIND_SERVER ? X509_PURPOSE_SSL_SERVER
                                                                 : X509_PURPOSE_SSL_CLIENT)) {
        snprintf(why, whylen, "cannot set the verification purpose");
        goto out;
    }
    if (now != 0)
        X509_STORE_CTX_set_time(ctx, 0, now);
    if (X509_verify_cert(ctx) != 1) {
        explain(pki, ctx, crls, kind, why, whylen);
        goto out;
    }
    rc = 0;
out:
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted); /* the stack only: the certificates belong to pki */
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

/* ---- the command ---------------------------------------------------------- */

struct verify_opts {
    const char *dir;
    int server;
};

static const struct ct_opt verify_table[] = {
    CT_OPT_DIR_ENTRY(struct verify_opts),
    {CT_OPT_FLAG, "server", NULL, offsetof(struct verify_opts, server), 0, 0, NULL,
     "check FILE as a server certificate (default: as a client certificate)"},
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec verify_spec = {
    "verify",
    "[OPTIONS] FILE",
    "Check a certificate against this PKI and explain why it is not valid.",
    "FILE is PEM; its first certificate is checked. Trusts only root.crt, requires a\n"
    "trusted generation of the client intermediate (server intermediate with --server:\n"
    "the current one or a previous one not yet retired), clientAuth (serverAuth) usage,\n"
    "validity now, and checks client-ca.crl (server-ca.crl) when it exists.\n"
    "Exit 0 and \"OK: ...\" when valid.",
    verify_table,
    1,
    1,
};

/* `verify`: the file's first certificate against the PKI and its CRL if present. */
static int verify_run(int argc, char **argv, char *err, size_t errlen)
{
    struct verify_opts o = {"pki", 0};
    struct ct_pki pki;
    STACK_OF(X509) *certs = NULL;
    STACK_OF(X509_CRL) *crls = NULL;
    X509 *cert;
    enum ct_kind kind;
    const char *args[1];
    char why[CT_ERR_MAX], path[CT_PATH_MAX], subj[256], serial[CT_SERIAL_HEX_MAX + 8], ts[64];
    int help, gen, rc = -1;
    time_t na = 0;

    memset(&pki, 0, sizeof(pki));
    if (ct_opts_parse_or_help(&verify_spec, argc, argv, &o, args, &help, err, errlen) != 0)
        return -1;
    if (help)
        return 0;
    kind = o.server ? CT_KIND_SERVER : CT_KIND_CLIENT;
    if (tls_pem_load_certs(args[0], &certs, err, errlen) != 0)
        return -1;
    cert = sk_X509_value(certs, 0);
    if (ct_pki_open(&pki, o.dir, 0, err, errlen) != 0 ||
        ct_path(path, o.dir, ct_crl_file(kind), err, errlen) != 0)
        goto out;
    if (ct_exists(path) && tls_pem_load_crls(path, &crls, err, errlen) != 0)
        goto out;
    if (ct_verify_cert(&pki, cert, kind, crls, 0, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", args[0], why);
        goto out;
    }
    (void)tls_x509_not_after(cert, &na);
    gen = issuing_gen(&pki, cert, kind);
    printf("OK: %s is a valid %s certificate (issued by the %s intermediate generation %d%s, "
           "serial %s, valid until %s%s)\n", tls_x509_subject(cert, subj, sizeof(subj)),
           ct_kind_name(kind), ct_kind_name(kind), gen,
           gen == ct_pki_current_gen(&pki, kind) ? ", current" : ", still trusted",
           tls_x509_serial_hex(cert, serial, sizeof(serial)),
           tls_time_str(na, ts, sizeof(ts)), crls ? ", not revoked" : ", no CRL checked");
    rc = 0;
out:
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    sk_X509_pop_free(certs, X509_free);
    ct_pki_close(&pki);
    return rc;
}

const struct ct_command ct_cmd_verify = {&verify_spec, verify_run};
