/*
 * sign_csr.c - `certs-tool sign-csr`: certify the key of a CSR that a client
 * (or server) made itself, with the same profile as `issue`.
 *
 * Only the CSR's public key (after its self-signature verifies) and, unless
 * --name is given, its one CN are used. Whatever extensions the CSR asks
 * for (CA:TRUE, key usages, SANs...) are ignored: the profile decides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "commands.h"
#include "issue.h"
#include "keygen.h"
#include "profile.h"
#include "tls_errors.h"
#include "tls_pem.h"
#include "tls_x509.h"

struct sign_opts {
    const char *dir;
    int server;
    int force;
    int days;
    const char *name;
    struct ct_strlist san;
};

static const struct ct_opt sign_table[] = {
    CT_OPT_DIR_ENTRY(struct sign_opts),
    {CT_OPT_FLAG, "server", NULL, offsetof(struct sign_opts, server), 0, 0, NULL,
     "make a server certificate (server intermediate, serverAuth) instead of a client one"},
    {CT_OPT_FLAG, "force", NULL, offsetof(struct sign_opts, force), 0, 0, NULL,
     "replace an existing NAME; its previous certificate is revoked (superseded)"},
    {CT_OPT_SECTION, "Certificate", NULL, 0, 0, 0, NULL, NULL},
    {CT_OPT_STRING, "name", "NAME", offsetof(struct sign_opts, name), 0, 0, "the CSR's CN",
     "subject CN and file name"},
    {CT_OPT_INT, "days", "N", offsetof(struct sign_opts, days), 1, CT_DAYS_MAX, "365",
     "validity (never beyond the intermediate's)"},
    {CT_OPT_LIST, "san", "LIST", offsetof(struct sign_opts, san), 0, 0, NULL,
     "--server only: more subjectAltNames, DNS:host,IP:addr,... (NAME is always one)"},
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec sign_spec = {
    "sign-csr",
    "[OPTIONS] FILE.csr",
    "Sign a certificate request whose private key stays with its owner.",
    "Checks the CSR's signature, takes its public key (RSA >= 2048, EC P-256/384/521,\n"
    "Ed25519) and its one CN (or --name), and applies the profile of `issue`: extensions\n"
    "requested in the CSR, CA:TRUE included, are never copied. Writes clients/NAME.crt and\n"
    "NAME.pem (or servers/NAME.crt and NAME.bundle.crt with --server).",
    sign_table,
    1,
    1,
};

/* The CSR's one CN (by the same rules as for certificates). */
static int csr_cn(X509_REQ *req, char cn[TLS_CN_MAX + 1])
{
    X509 *tmp = X509_new();
    int rc = -1;

    /* tls_x509_get_cn reads a certificate's subject: lend it the CSR's. */
    if (tmp != NULL && X509_set_subject_name(tmp, X509_REQ_get_subject_name(req)))
        rc = tls_x509_get_cn(tmp, cn);
    X509_free(tmp);
    ERR_clear_error();
    return rc;
}

/* Lists the extensions the CSR asked for (which are ignored) into buf. */
static void requested_exts(X509_REQ *req, char *buf, size_t len)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    size_t used = 0;
    int i;

    buf[0] = '\0';
    for (i = 0; i < sk_X509_EXTENSION_num(exts) && used < len; i++) {
        ASN1_OBJECT *obj = X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));
        const char *sn = OBJ_nid2sn(OBJ_obj2nid(obj));

        ct_list_append(buf, len, &used, sn && OBJ_obj2nid(obj) != NID_undef ? sn : "unknown");
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
}

/*
 * `sign-csr`: load the CSR, check its signature and key, pick the name,
 * then the same path as `issue` without a key (ct_issue_stage).
 */
static int sign_run(int argc, char **argv, char *err, size_t errlen)
{
    struct sign_opts o;
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    struct ct_san_list sans;
    struct ct_leaf leaf;
    X509_REQ *req = NULL;
    EVP_PKEY *pub;
    const char *args[1], *name;
    char cn[TLS_CN_MAX + 1], why[CT_ERR_MAX], exts[256];
    int help, clamped = 0, rc = -1;
    enum ct_kind kind;

    memset(&o, 0, sizeof(o));
    o.dir = "pki";
    o.days = CT_DAYS_LEAF;
    memset(&pki, 0, sizeof(pki));
    memset(&sans, 0, sizeof(sans));
    memset(&leaf, 0, sizeof(leaf));
    if (ct_opts_parse_or_help(&sign_spec, argc, argv, &o, args, &help, err, errlen) != 0)
        return -1;
    if (help)
        return 0;
    kind = o.server ? CT_KIND_SERVER : CT_KIND_CLIENT;
    if (!o.server && o.san.n > 0) {
        snprintf(err, errlen, "--san applies to server certificates (add --server)");
        return -1;
    }
    if (tls_pem_load_csr(args[0], &req, err, errlen) != 0)
        return -1;
    if ((pub = X509_REQ_get0_pubkey(req)) == NULL) {
        tls_err_set(err, errlen, "%s: unreadable public key", args[0]);
        goto out;
    }
    if (X509_REQ_verify(req, pub) != 1) {
        tls_err_set(err, errlen, "%s: the CSR's signature does not verify", args[0]);
        goto out;
    }
    if (ct_key_acceptable(pub, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", args[0], why);
        goto out;
    }
    if (o.name != NULL) {
        name = o.name;
    } else if (csr_cn(req, cn) == 0) {
        name = cn;
    } else {
        snprintf(err, errlen, "%s: the CSR's subject has no single usable CN; pass --name", args[0]);
        goto out;
    }
    if (ct_name_check(name, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s%s%s", o.name ? "" : args[0], o.name ? "" : ": CN: ", why);
        goto out;
    }
    if (o.server && ct_issue_sans(name, &o.san, &sans, err, errlen) != 0)
        goto out;
    if (ct_issue_open(&pki, &idx, o.dir, kind, name, o.force, err, errlen) != 0)
        goto out;
    leaf.kind = kind;
    leaf.name = name;
    if (ct_issue_certify(&pki, &leaf, pub, o.days, &sans, &clamped, err, errlen) != 0 ||
        ct_issue_commit(&pki, &idx, &leaf, clamped, err, errlen) != 0)
        goto out;
    requested_exts(req, exts, sizeof(exts));
    if (exts[0] != '\0')
        printf("note: extensions requested by the CSR were ignored: %s\n", exts);
    rc = 0;
out:
    X509_free(leaf.cert);
    X509_REQ_free(req);
    ct_index_free(&idx);
    ct_pki_close(&pki);
    return rc;
}

const struct ct_command ct_cmd_sign_csr = {&sign_spec, sign_run};
