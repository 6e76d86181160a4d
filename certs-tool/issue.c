/*
 * issue.c - `certs-tool issue`: a new key and a client (or, with --server,
 * server) certificate; plus everything after the key that sign-csr shares
 * (issue.h).
 */
#include "issue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "commands.h"
#include "keygen.h"
#include "profile.h"
#include "revoke.h"
#include "tls_errors.h"
#include "tls_x509.h"

#define PASS_MAX 4096

/* ---- shared with sign-csr ------------------------------------------------ */

/* The extensions of every file a leaf of kind may be written to (ct_issue_stage). */
static const char *const client_exts[] = {"crt", "pem", "key", "pk8", "p12", NULL};
static const char *const server_exts[] = {"crt", CT_BUNDLE_EXT, "key", NULL};

const char *const *ct_issue_exts(enum ct_kind kind)
{
    return kind == CT_KIND_SERVER ? server_exts : client_exts;
}

/* 1 when the index lists a certificate (valid or revoked) of kind named name. */
static int index_knows(const struct ct_index *idx, enum ct_kind kind, const char *name)
{
    size_t i;

    for (i = 0; i < idx->n; i++)
        if (idx->v[i].kind == kind && strcmp(idx->v[i].name, name) == 0)
            return 1;
    return 0;
}

/* 1 when server `other` exists: listed in the index (any status), or its key is on disk. */
static int server_exists(const char *dir, const struct ct_index *idx, const char *other)
{
    char path[CT_PATH_MAX], e2[CT_ERR_MAX];

    if (index_knows(idx, CT_KIND_SERVER, other))
        return 1;
    return ct_leaf_path(path, dir, CT_KIND_SERVER, other, "key", e2, sizeof(e2)) == 0 &&
           ct_exists(path);
}

/*
 * Server names are the only ones whose files can meet: servers/X.bundle.crt
 * (X's bundle) is also the certificate of server "X.bundle". Refuses name
 * when the other name of such a pair exists, --force or not: --force
 * replaces name's own files, never another name's.
 */
static int check_server_clash(const char *dir, const struct ct_index *idx, const char *name,
                              char *err, size_t errlen)
{
    static const char suffix[] = "." CT_BUNDLE_STEM;
    char other[CT_NAME_MAX + sizeof(suffix)], path[CT_PATH_MAX];
    size_t n = strlen(name), sl = sizeof(suffix) - 1;

    /* name's bundle would be other's certificate */
    snprintf(other, sizeof(other), "%s%s", name, suffix);
    if (server_exists(dir, idx, other)) {
        if (ct_leaf_path(path, dir, CT_KIND_SERVER, name, CT_BUNDLE_EXT, err, errlen) != 0)
            return -1;
        snprintf(err, errlen, "server name '%s' clashes with server '%s': %s would be both "
                 "the bundle of '%s' and the certificate of '%s'; pick another name", name, other,
                 path, name, other);
        return -1;
    }
    /* name's certificate would be other's bundle */
    if (n > sl && strcmp(name + n - sl, suffix) == 0) {
        snprintf(other, sizeof(other), "%.*s", (int)(n - sl), name);
        if (server_exists(dir, idx, other) ||
            (ct_leaf_path(path, dir, CT_KIND_SERVER, other, "crt", err, errlen) == 0 &&
             ct_exists(path))) {
            if (ct_leaf_path(path, dir, CT_KIND_SERVER, name, "crt", err, errlen) != 0)
                return -1;
            snprintf(err, errlen, "server name '%s' clashes with server '%s': %s would be both "
                     "the certificate of '%s' and the bundle of '%s'; pick another name", name,
                     other, path, name, other);
            return -1;
        }
    }
    return 0;
}

int ct_issue_check_free(const char *dir, struct ct_index *idx, enum ct_kind kind,
                        const char *name, int force, char *err, size_t errlen)
{
    char path[CT_PATH_MAX];
    const struct ct_index_entry *e;
    const char *const *ext;

    if (kind == CT_KIND_SERVER && check_server_clash(dir, idx, name, err, errlen) != 0)
        return -1;
    if (force)
        return 0;
    /* Every file the new certificate would write or remove: none may exist. */
    for (ext = ct_issue_exts(kind); *ext != NULL; ext++) {
        if (ct_leaf_path(path, dir, kind, name, *ext, err, errlen) != 0)
            return -1;
        if (ct_exists(path)) {
            snprintf(err, errlen,
                     "%s: already exists (--force replaces it and revokes the old certificate)",
                     path);
            return -1;
        }
    }
    if ((e = ct_index_find_valid(idx, name, kind)) != NULL) {
        snprintf(err, errlen,
                 "'%s' already has a valid %s certificate (serial %s) in %s/index.tsv; "
                 "--force replaces it", name, ct_kind_name(kind), e->serial, dir);
        return -1;
    }
    return 0;
}

int ct_issue_sans(const char *name, const struct ct_strlist *extra, struct ct_san_list *sans,
                  char *err, size_t errlen)
{
    int i;

    if (ct_san_add_name(sans, name, err, errlen) != 0)
        return -1;
    for (i = 0; i < extra->n; i++)
        if (ct_san_parse(extra->v[i], sans, err, errlen) != 0)
            return -1;
    return 0;
}

int ct_issue_open(struct ct_pki *pki, struct ct_index *idx, const char *dir, enum ct_kind kind,
                  const char *name, int force, char *err, size_t errlen)
{
    if (ct_pki_open(pki, dir, kind == CT_KIND_SERVER ? CT_PKI_KEY_SERVER : CT_PKI_KEY_CLIENT, err,
                    errlen) != 0 ||
        ct_index_load(dir, idx, err, errlen) != 0)
        return -1;
    return ct_issue_check_free(dir, idx, kind, name, force, err, errlen);
}

int ct_issue_certify(const struct ct_pki *pki, struct ct_leaf *leaf, EVP_PKEY *subject_key,
                     int days, const struct ct_san_list *sans, int *clamped, char *err,
                     size_t errlen)
{
    const struct ct_ca *ca = leaf->kind == CT_KIND_SERVER ? &pki->server_ca : &pki->client_ca;
    struct ct_cert_spec spec;
    char org[128];

    memset(&spec, 0, sizeof(spec));
    spec.profile = leaf->kind == CT_KIND_SERVER ? CT_PROFILE_SERVER : CT_PROFILE_CLIENT;
    spec.kind = leaf->kind;
    spec.cn = leaf->name;
    spec.subject_key = subject_key;
    spec.issuer = ca->cert;
    spec.issuer_key = ca->key;
    spec.org = ct_cert_org(spec.issuer, org, sizeof(org));
    spec.days = days;
    spec.sans = leaf->kind == CT_KIND_SERVER ? sans : NULL;
    leaf->cert = ct_profile_make(&spec, clamped, err, errlen);
    return leaf->cert != NULL ? 0 : -1;
}

/* DER PKCS#8 PrivateKeyInfo, unencrypted: what the PostgreSQL JDBC driver reads. */
static int der_pkcs8(EVP_PKEY *key, char **out, size_t *len, char *err, size_t errlen)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = -1;

    *out = NULL;
    if (bio == NULL || !i2d_PKCS8PrivateKeyInfo_bio(bio, key) ||
        ct_bio_take(bio, out, len, "DER PKCS#8", err, errlen) != 0)
        tls_err_set(err, errlen, "cannot encode the key as DER PKCS#8");
    else
        rc = 0;
    BIO_free(bio);
    return rc;
}

/*
 * PKCS#12 with the key, the certificate and the client intermediate: key and
 * certificates encrypted with AES-256-CBC (PBES2, PBKDF2 with HMAC-SHA256),
 * integrity by an HMAC-SHA256 MAC. Java 17 keytool and browsers read it.
 */
static int make_p12(const char *pass, const char *name, EVP_PKEY *key, X509 *cert, X509 *ca,
                    char **out, size_t *len, char *err, size_t errlen)
{
    STACK_OF(X509) *cas = sk_X509_new_null();
    PKCS12 *p12 = NULL;
    BIO *bio = NULL;
    int rc = -1;

    *out = NULL;
    if (cas == NULL || !sk_X509_push(cas, ca))
        goto fail;
    /* mac_iter -1: no MAC here, so that the MAC digest is chosen below. */
    p12 = PKCS12_create(pass, name, key, cert, cas, NID_aes_256_cbc, NID_aes_256_cbc,
                        PKCS12_DEFAULT_ITER, -1, 0);
    if (p12 == NULL ||
        !PKCS12_set_mac(p12, pass, -1, NULL, 0, PKCS12_DEFAULT_ITER, EVP_sha256()))
        goto fail;
    if ((bio = BIO_new(BIO_s_mem())) == NULL || !i2d_PKCS12_bio(bio, p12) ||
        ct_bio_take(bio, out, len, "PKCS#12", err, errlen) != 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    tls_err_set(err, errlen, "cannot build the PKCS#12 file");
out:
    sk_X509_free(cas); /* the stack only: ca belongs to the caller */
    PKCS12_free(p12);
    BIO_free(bio);
    return rc;
}

/*
 * Stages one leaf file from *buf, which it then frees (wiping it when the
 * file is secret) and sets to NULL, on success and on failure.
 */
static int put_buf(struct ct_txn *t, const char *dir, const struct ct_leaf *leaf, const char *ext,
                   char **buf, size_t len, mode_t mode, char *err, size_t errlen)
{
    char path[CT_PATH_MAX];
    int rc = -1;

    if (ct_leaf_path(path, dir, leaf->kind, leaf->name, ext, err, errlen) == 0)
        rc = ct_txn_put(t, path, *buf, len, mode, err, errlen);
    if (mode == 0600)
        OPENSSL_cleanse(*buf, len);
    free(*buf);
    *buf = NULL;
    return rc;
}

/* Stages the removal of DIR/<kind dir>/NAME.ext. */
static int remove_leaf_file(struct ct_txn *t, const char *dir, const struct ct_leaf *leaf,
                            const char *ext, char *err, size_t errlen)
{
    char path[CT_PATH_MAX];

    if (ct_leaf_path(path, dir, leaf->kind, leaf->name, ext, err, errlen) != 0)
        return -1;
    return ct_txn_remove(t, path, err, errlen);
}

/* Marks every valid entry of leaf's name and kind revoked (superseded); returns how many. */
static int supersede(struct ct_index *idx, const struct ct_leaf *leaf, time_t now)
{
    size_t i;
    int n = 0;

    for (i = 0; i < idx->n; i++) {
        struct ct_index_entry *old = &idx->v[i];

        if (old->kind == leaf->kind && old->status == CT_STATUS_VALID &&
            strcmp(old->name, leaf->name) == 0) {
            old->status = CT_STATUS_REVOKED;
            old->revoked_at = now;
            old->reason = CRL_REASON_SUPERSEDED;
            n++;
        }
    }
    return n;
}

/* Stages the key files of a leaf with a key: .key, and for clients .pk8 and .p12. */
static int stage_key_files(struct ct_txn *t, const struct ct_pki *pki, const struct ct_leaf *leaf,
                           X509 *ca_cert, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;

    if (ct_pem_key(leaf->key, &buf, &len, err, errlen) != 0 ||
        put_buf(t, pki->dir, leaf, "key", &buf, len, 0600, err, errlen) != 0)
        return -1;
    if (leaf->kind != CT_KIND_CLIENT)
        return 0;
    if (der_pkcs8(leaf->key, &buf, &len, err, errlen) != 0 ||
        put_buf(t, pki->dir, leaf, "pk8", &buf, len, 0600, err, errlen) != 0)
        return -1;
    if (make_p12(leaf->p12_pass ? leaf->p12_pass : "", leaf->p12_alias ? leaf->p12_alias : leaf->name,
                 leaf->key, leaf->cert, ca_cert,
                 &buf, &len, err, errlen) != 0 ||
        put_buf(t, pki->dir, leaf, "p12", &buf, len, 0600, err, errlen) != 0)
        return -1;
    return 0;
}

int ct_issue_stage(struct ct_txn *t, const struct ct_pki *pki, struct ct_index *idx,
                   const struct ct_leaf *leaf, int *superseded, char *err, size_t errlen)
{
    const struct ct_ca *ca = leaf->kind == CT_KIND_SERVER ? &pki->server_ca : &pki->client_ca;
    struct ct_index_entry e;
    X509 *chain[2];
    char *buf = NULL;
    size_t len = 0;
    int n, rc = -1;

    if (superseded != NULL)
        *superseded = 0;
    /* The index first: it is what `revoke` and the CRLs are built from. */
    n = supersede(idx, leaf, leaf->now ? leaf->now : time(NULL));
    memset(&e, 0, sizeof(e));
    tls_x509_serial_hex(leaf->cert, e.serial, sizeof(e.serial));
    snprintf(e.name, sizeof(e.name), "%s", leaf->name);
    e.kind = leaf->kind;
    e.status = CT_STATUS_VALID;
    e.reason = -1;
    e.ca_gen = ct_pki_current_gen(pki, leaf->kind); /* its CRL is that generation's */
    if (tls_x509_not_after(leaf->cert, &e.not_after) != 0) {
        snprintf(err, errlen, "%s: unreadable notAfter", leaf->name);
        goto out;
    }
    if (ct_index_add(idx, &e, err, errlen) != 0)
        goto out;

    if (ct_pem_certs(&leaf->cert, 1, &buf, &len, err, errlen) != 0 ||
        put_buf(t, pki->dir, leaf, "crt", &buf, len, 0644, err, errlen) != 0)
        goto out;
    chain[0] = leaf->cert;
    chain[1] = ca->cert;
    if (ct_pem_certs(chain, 2, &buf, &len, err, errlen) != 0 ||
        put_buf(t, pki->dir, leaf, leaf->kind == CT_KIND_SERVER ? CT_BUNDLE_EXT : "pem", &buf, len,
                0644, err, errlen) != 0)
        goto out;
    if (leaf->key != NULL) {
        if (stage_key_files(t, pki, leaf, ca->cert, err, errlen) != 0)
            goto out;
    } else {
        /* Key files of an earlier certificate would not match this one. */
        if (remove_leaf_file(t, pki->dir, leaf, "key", err, errlen) != 0)
            goto out;
        if (leaf->kind == CT_KIND_CLIENT &&
            (remove_leaf_file(t, pki->dir, leaf, "pk8", err, errlen) != 0 ||
             remove_leaf_file(t, pki->dir, leaf, "p12", err, errlen) != 0))
            goto out;
    }
    if (ct_index_stage(t, pki->dir, idx, err, errlen) != 0)
        goto out;
    if (n > 0 && ct_crl_stage(t, pki, idx, leaf->kind, CT_CRL_DAYS, NULL, err, errlen) != 0)
        goto out;
    if (superseded != NULL)
        *superseded = n;
    rc = 0;
out:
    free(buf);
    return rc;
}

void ct_issue_report(const char *dir, const struct ct_leaf *leaf, int superseded, int clamped)
{
    char subj[256], serial[CT_SERIAL_HEX_MAX + 8], ts[64];
    const char *sub = leaf->kind == CT_KIND_SERVER ? "servers" : "clients";
    time_t na = 0;

    (void)tls_x509_not_after(leaf->cert, &na);
    printf("issued %s certificate '%s' (%s), serial %s, valid until %s\n",
           ct_kind_name(leaf->kind), leaf->name,
           tls_x509_subject(leaf->cert, subj, sizeof(subj)),
           tls_x509_serial_hex(leaf->cert, serial, sizeof(serial)), tls_time_str(na, ts, sizeof(ts)));
    printf("  %s/%s/%s.crt  certificate\n", dir, sub, leaf->name);
    if (leaf->kind == CT_KIND_SERVER) {
        printf("  %s/%s/%s.bundle.crt  certificate + server intermediate (what a server presents)\n",
               dir, sub, leaf->name);
        if (leaf->key != NULL)
            printf("  %s/%s/%s.key  private key, PEM PKCS#8 (0600)\n", dir, sub, leaf->name);
    } else {
        printf("  %s/%s/%s.pem  certificate + client intermediate (curl --cert)\n", dir, sub,
               leaf->name);
        if (leaf->key != NULL) {
            printf("  %s/%s/%s.key  private key, PEM PKCS#8 (0600)\n", dir, sub, leaf->name);
            printf("  %s/%s/%s.pk8  private key, DER PKCS#8 (PostgreSQL JDBC sslkey, 0600)\n", dir,
                   sub, leaf->name);
            printf("  %s/%s/%s.p12  PKCS#12 key + chain (%s, 0600)\n", dir, sub, leaf->name,
                   leaf->p12_pass && leaf->p12_pass[0] ? "password from --p12-pass-file"
                                                       : "empty password");
        }
    }
    if (clamped)
        printf("note: validity cut to the %s intermediate's notAfter\n", ct_kind_name(leaf->kind));
    if (superseded > 0)
        printf("note: the previous certificate of '%s' is now revoked (superseded); %s/%s updated\n",
               leaf->name, dir, ct_crl_file(leaf->kind));
}

int ct_issue_commit(const struct ct_pki *pki, struct ct_index *idx, const struct ct_leaf *leaf,
                    int clamped, char *err, size_t errlen)
{
    struct ct_txn *t = ct_txn_new();
    int superseded = 0, rc = -1;

    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (ct_issue_stage(t, pki, idx, leaf, &superseded, err, errlen) != 0 ||
        ct_txn_commit(t, err, errlen) != 0)
        goto out;
    ct_issue_report(pki->dir, leaf, superseded, clamped);
    rc = 0;
out:
    ct_txn_free(t);
    return rc;
}

int ct_issue_read_pass(const char *path, char **out, char *err, size_t errlen)
{
    char *text = NULL, *nl;
    size_t len = 0;

    *out = NULL;
    if (ct_read_file(path, PASS_MAX, &text, &len, err, errlen) != 0)
        return -1;
    if ((nl = strchr(text, '\n')) != NULL)
        *nl = '\0';
    len = strlen(text);
    if (len > 0 && text[len - 1] == '\r')
        text[--len] = '\0';
    *out = text;
    return 0;
}

void ct_issue_pass_free(char *pass)
{
    if (pass == NULL)
        return;
    OPENSSL_cleanse(pass, strlen(pass));
    free(pass);
}

/* ---- the command ---------------------------------------------------------- */

struct issue_opts {
    const char *dir;
    int server;
    int force;
    int days;
    const char *key_type;
    struct ct_strlist san;
    const char *p12_pass_file;
    const char *p12_alias;
};

static const struct ct_opt issue_table[] = {
    CT_OPT_DIR_ENTRY(struct issue_opts),
    {CT_OPT_FLAG, "server", NULL, offsetof(struct issue_opts, server), 0, 0, NULL,
     "issue a server certificate (server intermediate, serverAuth) instead of a client one"},
    {CT_OPT_FLAG, "force", NULL, offsetof(struct issue_opts, force), 0, 0, NULL,
     "replace an existing NAME; its previous certificate is revoked (superseded)"},
    {CT_OPT_SECTION, "Certificate", NULL, 0, 0, 0, NULL, NULL},
    {CT_OPT_INT, "days", "N", offsetof(struct issue_opts, days), 1, CT_DAYS_MAX, "365",
     "validity (never beyond the intermediate's)"},
    {CT_OPT_STRING, "key-type", "T", offsetof(struct issue_opts, key_type), 0, 0,
     CT_KEY_TYPE_DEFAULT, "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519"},
    {CT_OPT_LIST, "san", "LIST", offsetof(struct issue_opts, san), 0, 0, NULL,
     "--server only: more subjectAltNames, DNS:host,IP:addr,... (NAME is always one)"},
    {CT_OPT_SECTION, "Output", NULL, 0, 0, 0, NULL, NULL},
    {CT_OPT_STRING, "p12-pass-file", "FILE", offsetof(struct issue_opts, p12_pass_file), 0, 0,
     NULL, "client only: the .p12 password is the first line of FILE (else empty)"},
    {CT_OPT_STRING, "p12-alias", "ALIAS", offsetof(struct issue_opts, p12_alias), 0, 0, "NAME",
     "client only: the .p12 friendly name, i.e. the Java keystore alias (the PostgreSQL\n"
     "                           JDBC driver's sslkey=NAME.p12 looks for the alias 'user')"},
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec issue_spec = {
    "issue",
    "[OPTIONS] NAME",
    "Issue a client certificate CN=NAME (or a server certificate with --server) with a new key.",
    "Client: clients/NAME.crt, NAME.pem (certificate + client intermediate, for curl --cert),\n"
    "NAME.key (PEM, 0600), NAME.pk8 (DER PKCS#8, for the PostgreSQL JDBC driver) and\n"
    "NAME.p12 (PKCS#12, AES-256; password from --p12-pass-file, empty otherwise).\n"
    "Server: servers/NAME.crt, NAME.bundle.crt (certificate + server intermediate) and\n"
    "NAME.key. NAME: 1-64 characters from A-Z a-z 0-9 . _ @ -, not starting with '.' or '-'.",
    issue_table,
    1,
    1,
};

/*
 * `issue`: every check that needs no disk (name, key type, SANs, the
 * password file) before the PKI is opened and locked; then a new key and
 * certificate, staged with ct_issue_stage and committed at once.
 */
static int issue_run(int argc, char **argv, char *err, size_t errlen)
{
    struct issue_opts o;
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    struct ct_san_list sans;
    struct ct_leaf leaf;
    enum ct_key_type kt;
    const char *args[1];
    char *pass = NULL;
    int help, clamped = 0, rc = -1;
    enum ct_kind kind;

    memset(&o, 0, sizeof(o));
    o.dir = "pki";
    o.days = CT_DAYS_LEAF;
    o.key_type = CT_KEY_TYPE_DEFAULT;
    memset(&pki, 0, sizeof(pki));
    memset(&sans, 0, sizeof(sans));
    memset(&leaf, 0, sizeof(leaf));
    if (ct_opts_parse_or_help(&issue_spec, argc, argv, &o, args, &help, err, errlen) != 0)
        return -1;
    if (help)
        return 0;
    kind = o.server ? CT_KIND_SERVER : CT_KIND_CLIENT;
    /* Everything that needs no disk is checked before the PKI is opened. */
    if (ct_name_check(args[0], err, errlen) != 0 || ct_key_type_parse(o.key_type, &kt, err, errlen) != 0)
        return -1;
    if (!o.server && o.san.n > 0) {
        snprintf(err, errlen, "--san applies to server certificates (add --server)");
        return -1;
    }
    if (o.server && (o.p12_pass_file != NULL || o.p12_alias != NULL)) {
        snprintf(err, errlen, "--p12-pass-file and --p12-alias apply to client certificates");
        return -1;
    }
    if (o.p12_alias != NULL && ct_name_check(o.p12_alias, err, errlen) != 0)
        return -1;
    if (o.server && ct_issue_sans(args[0], &o.san, &sans, err, errlen) != 0)
        return -1;
    if (o.p12_pass_file != NULL && ct_issue_read_pass(o.p12_pass_file, &pass, err, errlen) != 0)
        return -1;
    if (ct_issue_open(&pki, &idx, o.dir, kind, args[0], o.force, err, errlen) != 0)
        goto out;
    leaf.kind = kind;
    leaf.name = args[0];
    leaf.p12_pass = pass;
    leaf.p12_alias = o.p12_alias;
    if ((leaf.key = ct_keygen(kt, err, errlen)) == NULL ||
        ct_issue_certify(&pki, &leaf, leaf.key, o.days, &sans, &clamped, err, errlen) != 0 ||
        ct_issue_commit(&pki, &idx, &leaf, clamped, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    X509_free(leaf.cert);
    EVP_PKEY_free(leaf.key);
    ct_index_free(&idx);
    ct_pki_close(&pki);
    ct_issue_pass_free(pass);
    return rc;
}

const struct ct_command ct_cmd_issue = {&issue_spec, issue_run};
