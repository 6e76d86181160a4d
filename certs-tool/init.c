/*
 * init.c - `certs-tool init`: the root, the client and server
 * intermediates (generation 1 of each, in cas.tsv), their chains, empty
 * CRLs (client-ca.crl, server-ca.crl, root.crl) and an empty index.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "commands.h"
#include "keygen.h"
#include "profile.h"
#include "revoke.h"
#include "store.h"
#include "tls_x509.h"

struct init_opts {
    const char *dir;
    const char *org;
    const char *key_type;
    int days;
    int ca_days;
    int force;
};

static const struct ct_opt init_table[] = {
    CT_OPT_DIR_ENTRY(struct init_opts),
    {CT_OPT_FLAG, "force", NULL, offsetof(struct init_opts, force), 0, 0, NULL,
     "replace an existing PKI (new keys; the index starts empty)"},
    {CT_OPT_SECTION, "Certificates", NULL, 0, 0, 0, NULL, NULL},
    {CT_OPT_STRING, "org", "NAME", offsetof(struct init_opts, org), 0, 0, CT_ORG_DEFAULT,
     "organisation (O=) of every certificate"},
    {CT_OPT_STRING, "key-type", "T", offsetof(struct init_opts, key_type), 0, 0,
     CT_KEY_TYPE_DEFAULT, "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519"},
    {CT_OPT_INT, "days", "N", offsetof(struct init_opts, days), 1, CT_DAYS_MAX, "3650",
     "validity of the root"},
    {CT_OPT_INT, "ca-days", "N", offsetof(struct init_opts, ca_days), 1, CT_DAYS_MAX, "1825",
     "validity of the intermediates (never beyond the root)"},
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec init_spec = {
    "init",
    "[OPTIONS]",
    "Create a PKI: a root CA, a client intermediate and a server intermediate.",
    "Writes root.crt, client-ca.crt, server-ca.crt, client-chain.crt (client intermediate +\n"
    "root: what a server trusts for client certificates), server-chain.crt (server\n"
    "intermediate + root), empty client-ca.crl, server-ca.crl and root.crl, index.tsv,\n"
    "cas.tsv (the intermediates' generations, 1 each), and the CA keys under private/\n"
    "(directory 0700, keys 0600). Refuses to touch an existing PKI unless --force\n"
    "(which also removes earlier generations' files under cas/ and private/).",
    init_table,
    0,
    0,
};

/* Refuses when dir already holds (part of) a PKI. */
static int check_empty(const char *dir, char *err, size_t errlen)
{
    static const char *const files[] = {"root.crt", "client-ca.crt", "server-ca.crt",
                                        "index.tsv", "cas.tsv", "private/root.key"};
    char path[CT_PATH_MAX];
    size_t i;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (ct_path(path, dir, files[i], err, errlen) != 0)
            return -1;
        if (ct_exists(path)) {
            snprintf(err, errlen, "%s: already holds a PKI (%s exists); --force replaces it",
                     dir, files[i]);
            return -1;
        }
    }
    return 0;
}

/*
 * Stages the removal of every earlier-generation file of a PKI being
 * replaced (cas/KIND-ca.N.crt, private/KIND-ca.N.key): the new PKI starts
 * at generation 1, and keys of the old one must not linger.
 */
static int remove_old_generations(struct ct_txn *t, const char *dir, char *err, size_t errlen)
{
    static const char *const sub[2] = {"cas", "private"};
    char path[CT_PATH_MAX], rel[CT_PATH_MAX];
    struct dirent *de;
    DIR *d;
    int i, rc = 0;

    for (i = 0; i < 2 && rc == 0; i++) {
        if (ct_path(path, dir, sub[i], err, errlen) != 0)
            return -1;
        if ((d = opendir(path)) == NULL)
            continue; /* nothing to remove */
        while (rc == 0 && (de = readdir(d)) != NULL) {
            const char *ext = i == 0 ? ".crt" : ".key";
            int kind, gen;

            if (!ct_gen_file_name(de->d_name, ext, &kind, &gen))
                continue;
            snprintf(rel, sizeof(rel), "%s/%s", sub[i], de->d_name);
            if (ct_path(path, dir, rel, err, errlen) != 0 || ct_txn_remove(t, path, err, errlen) != 0)
                rc = -1;
        }
        closedir(d);
    }
    return rc;
}

/*
 * Stages the first client-ca.crl, server-ca.crl and root.crl of a new PKI:
 * empty, number 1 (new CA keys: even on --force, where old files exist).
 */
static int stage_first_crls(struct ct_txn *t, const struct ct_pki *pki, char *err, size_t errlen)
{
    static const struct ct_index empty = {NULL, 0, 0};
    char path[CT_PATH_MAX];
    int k;

    for (k = 0; k < 3; k++) {
        enum ct_kind kind = k == 1 ? CT_KIND_SERVER : CT_KIND_CLIENT;
        X509_CRL *crl = k < 2 ? ct_crl_build(pki, &empty, kind, 1, CT_CRL_DAYS, 0, err, errlen)
                              : ct_root_crl_build(pki, 1, CT_CRL_DAYS, 0, err, errlen);
        char *pem = NULL;
        size_t len = 0;
        int ok = crl != NULL && ct_pem_crl(crl, &pem, &len, err, errlen) == 0 &&
                 ct_path(path, pki->dir, k < 2 ? ct_crl_file(kind) : CT_ROOT_CRL_FILE, err,
                         errlen) == 0 &&
                 ct_txn_put(t, path, pem, len, 0644, err, errlen) == 0;

        X509_CRL_free(crl);
        free(pem);
        if (!ok)
            return -1;
    }
    return 0;
}

/*
 * `init`: options first, then lock (creating) the directory, refuse an
 * existing PKI unless --force, make the three CAs in memory and stage every
 * file; only the final commit touches the tree. On failure a directory this
 * run created is removed again.
 */
static int init_run(int argc, char **argv, char *err, size_t errlen)
{
    struct init_opts o = {"pki", CT_ORG_DEFAULT, CT_KEY_TYPE_DEFAULT, CT_DAYS_ROOT,
                          CT_DAYS_INTERMEDIATE, 0};
    struct ct_pki pki;
    struct ct_index empty = {NULL, 0, 0};
    struct ct_txn *t = NULL;
    enum ct_key_type kt;
    const char *args[1];
    char path[CT_PATH_MAX], ts[64];
    int help, created = 0, lock = -1, rc = -1;
    time_t na;

    memset(&pki, 0, sizeof(pki));
    pki.lock_fd = -1;
    if (ct_opts_parse_or_help(&init_spec, argc, argv, &o, args, &help, err, errlen) != 0)
        return -1;
    if (help)
        return 0;
    /* Every check that needs no disk comes first. */
    if (ct_org_check(o.org, err, errlen) != 0 || ct_key_type_parse(o.key_type, &kt, err, errlen) != 0)
        return -1;
    if (o.ca_days > o.days)
        o.ca_days = o.days;
    if (snprintf(pki.dir, sizeof(pki.dir), "%s", o.dir) >= (int)sizeof(pki.dir)) {
        snprintf(err, errlen, "%.200s: path too long", o.dir);
        return -1;
    }
    if ((lock = ct_dir_lock(o.dir, 1, &created, err, errlen)) < 0)
        return -1;
    if (!o.force && check_empty(o.dir, err, errlen) != 0)
        goto out;
    if (ct_ca_make(&pki.root, kt, CT_PROFILE_ROOT, CT_KIND_CLIENT, o.org, " Root CA", NULL, o.days,
                   NULL, err, errlen) != 0 ||
        ct_ca_make(&pki.client_ca, kt, CT_PROFILE_INTERMEDIATE, CT_KIND_CLIENT, o.org,
                   " Client CA", &pki.root, o.ca_days, NULL, err, errlen) != 0 ||
        ct_ca_make(&pki.server_ca, kt, CT_PROFILE_INTERMEDIATE, CT_KIND_SERVER, o.org,
                   " Server CA", &pki.root, o.ca_days, NULL, err, errlen) != 0)
        goto out;
    if ((t = ct_txn_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (ct_path(path, o.dir, "private", err, errlen) != 0 ||
        ct_txn_mkdir(t, path, 0700, err, errlen) != 0 ||
        ct_path(path, o.dir, "clients", err, errlen) != 0 ||
        ct_txn_mkdir(t, path, 0755, err, errlen) != 0 ||
        ct_path(path, o.dir, "servers", err, errlen) != 0 ||
        ct_txn_mkdir(t, path, 0755, err, errlen) != 0)
        goto out;
    if (o.force && remove_old_generations(t, o.dir, err, errlen) != 0)
        goto out;
    if (ct_stage_key(t, o.dir, "private/root.key", pki.root.key, err, errlen) != 0 ||
        ct_stage_key(t, o.dir, "private/client-ca.key", pki.client_ca.key, err, errlen) != 0 ||
        ct_stage_key(t, o.dir, "private/server-ca.key", pki.server_ca.key, err, errlen) != 0 ||
        ct_stage_certs(t, o.dir, "root.crt", &pki.root.cert, 1, err, errlen) != 0 ||
        ct_stage_certs(t, o.dir, "client-ca.crt", &pki.client_ca.cert, 1, err, errlen) != 0 ||
        ct_stage_certs(t, o.dir, "server-ca.crt", &pki.server_ca.cert, 1, err, errlen) != 0)
        goto out;
    /* Generation 1 of each intermediate; the chains and CRLs follow from it. */
    if (ct_gens_add_current(&pki.gens, CT_KIND_CLIENT, 1, pki.client_ca.cert, err, errlen) != 0 ||
        ct_gens_add_current(&pki.gens, CT_KIND_SERVER, 1, pki.server_ca.cert, err, errlen) != 0 ||
        ct_gens_stage(t, o.dir, &pki.gens, err, errlen) != 0 ||
        ct_chain_stage(t, &pki, CT_KIND_CLIENT, err, errlen) != 0 ||
        ct_chain_stage(t, &pki, CT_KIND_SERVER, err, errlen) != 0)
        goto out;
    if (ct_index_stage(t, o.dir, &empty, err, errlen) != 0 ||
        stage_first_crls(t, &pki, err, errlen) != 0 ||
        ct_txn_commit(t, err, errlen) != 0)
        goto out;
    if (tls_x509_not_after(pki.root.cert, &na) != 0)
        na = 0;
    printf("created PKI in %s (org '%s', %s keys, root valid until %s)\n", o.dir, o.org,
           o.key_type, tls_time_str(na, ts, sizeof(ts)));
    printf("  %s/root.crt  %s/client-ca.crt  %s/server-ca.crt\n", o.dir, o.dir, o.dir);
    printf("  %s/client-chain.crt  (trust this for client certificates)\n", o.dir);
    printf("  %s/server-chain.crt  (server intermediate + root)\n", o.dir);
    printf("  %s/client-ca.crl  %s/server-ca.crl  %s/root.crl  %s/index.tsv  %s/cas.tsv\n", o.dir,
           o.dir, o.dir, o.dir, o.dir);
    printf("  %s/private/{root,client-ca,server-ca}.key  (0600)\n", o.dir);
    rc = 0;
out:
    ct_txn_free(t);
    ct_pki_close(&pki);
    if (lock >= 0)
        close(lock);
    if (rc != 0 && created)
        rmdir(o.dir); /* only succeeds if nothing else appeared there */
    return rc;
}

const struct ct_command ct_cmd_init = {&init_spec, init_run};
