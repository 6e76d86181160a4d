/*
 * revoke.c - `certs-tool revoke` and `certs-tool crl`, and the CRLs both
 * write (see revoke.h).
 */
#include "revoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "commands.h"
#include "profile.h"
#include "tls_errors.h"
#include "tls_pem.h"
#include "tls_x509.h"

/* ---- building CRLs ------------------------------------------------------------ */

const char *ct_crl_file(enum ct_kind kind)
{
    return kind == CT_KIND_SERVER ? "server-ca.crl" : "client-ca.crl";
}

int ct_crl_read_number(const char *path, long *out, char *err, size_t errlen)
{
    STACK_OF(X509_CRL) *crls = NULL;
    ASN1_INTEGER *num = NULL;
    int crit, i, rc = -1;
    long v;

    *out = 0;
    if (!ct_exists(path))
        return 0;
    if (tls_pem_load_crls(path, &crls, err, errlen) != 0)
        return -1;
    /* One CRL per trusted intermediate: the next number is above all of them. */
    for (i = 0; i < sk_X509_CRL_num(crls); i++) {
        crit = 0;
        num = X509_CRL_get_ext_d2i(sk_X509_CRL_value(crls, i), NID_crl_number, &crit, NULL);
        if (num == NULL && crit != -1) {
            tls_err_set(err, errlen, "%s: unreadable CRL number", path);
            goto out;
        }
        v = num ? ASN1_INTEGER_get(num) : 0;
        ASN1_INTEGER_free(num);
        num = NULL;
        if (v < 0) {
            snprintf(err, errlen, "%s: CRL number out of range", path);
            goto out;
        }
        if (v > *out)
            *out = v;
    }
    rc = 0;
out:
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    ERR_clear_error();
    return rc;
}

/* One revoked entry: serial (hex), date, and reason unless unspecified. */
static int add_revoked(X509_CRL *crl, const char *serial_hex, time_t revoked_at, int reason_code)
{
    X509_REVOKED *rev = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = NULL;
    ASN1_ENUMERATED *reason = NULL;
    int rc = -1;

    if (rev == NULL || !BN_hex2bn(&bn, serial_hex) ||
        (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        !X509_REVOKED_set_serialNumber(rev, serial) ||
        (when = ASN1_TIME_set(NULL, revoked_at)) == NULL ||
        !X509_REVOKED_set_revocationDate(rev, when))
        goto out;
    /* RFC 5280 5.3.1: leave the reasonCode out rather than say "unspecified". */
    if (reason_code > CRL_REASON_UNSPECIFIED) {
        if ((reason = ASN1_ENUMERATED_new()) == NULL || !ASN1_ENUMERATED_set(reason, reason_code) ||
            !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0))
            goto out;
    }
    if (!X509_CRL_add0_revoked(crl, rev))
        goto out;
    rev = NULL; /* owned by the CRL now */
    rc = 0;
out:
    X509_REVOKED_free(rev);
    BN_free(bn);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(when);
    ASN1_ENUMERATED_free(reason);
    return rc;
}

/* A v2 CRL of ca, without entries yet: issuer, lastUpdate, nextUpdate. */
static X509_CRL *crl_start(const struct ct_ca *ca, int days, time_t now)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = NULL, *next = NULL;
    int ok = 0;

    if (crl == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
        (last = X509_time_adj_ex(NULL, 0, -CT_BACKDATE_SECONDS, &now)) == NULL ||
        (next = X509_time_adj_ex(NULL, days, 0, &now)) == NULL ||
        !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next))
        goto out;
    ok = 1;
out:
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    if (!ok) {
        X509_CRL_free(crl);
        crl = NULL;
    }
    return crl;
}

/*
 * Sorts the entries, adds the authority key identifier (= ca's subject key
 * identifier) and the CRL number, and signs with ca's key. what names the
 * CA in messages ("client intermediate generation 2", "root").
 */
static int crl_finish(X509_CRL *crl, const struct ct_ca *ca, const char *what, long number,
                      char *err, size_t errlen)
{
    AUTHORITY_KEYID *akid = NULL;
    ASN1_INTEGER *num = NULL;
    const ASN1_OCTET_STRING *ski;
    int rc = -1;

    if (!X509_CRL_sort(crl))
        goto fail;
    if ((ski = X509_get0_subject_key_id(ca->cert)) == NULL) {
        snprintf(err, errlen, "the %s has no subject key identifier", what);
        goto out;
    }
    if ((akid = AUTHORITY_KEYID_new()) == NULL || (akid->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL ||
        !X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0))
        goto fail;
    if ((num = ASN1_INTEGER_new()) == NULL || !ASN1_INTEGER_set(num, number) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
        goto fail;
    if (X509_CRL_sign(crl, ca->key, ct_sign_md(ca->key)) <= 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    tls_err_set(err, errlen, "cannot build the CRL of the %s", what);
out:
    AUTHORITY_KEYID_free(akid);
    ASN1_INTEGER_free(num);
    return rc;
}

/*
 * Every CRL is made here: crl_start, the revoked entries from fill(crl,
 * arg) (0 / -1, OpenSSL's error queue saying why), crl_finish; now = 0
 * means the current time. what names the CA in messages. The callers
 * check that ca's key is loaded, each with its own message.
 */
static X509_CRL *crl_make(const struct ct_ca *ca, const char *what, long number, int days,
                          time_t now, int (*fill)(X509_CRL *crl, const void *arg),
                          const void *arg, char *err, size_t errlen)
{
    X509_CRL *crl;
    int ok = 0;

    if (now == 0)
        now = time(NULL);
    if ((crl = crl_start(ca, days, now)) == NULL || fill(crl, arg) != 0) {
        tls_err_set(err, errlen, "cannot build the CRL of the %s", what);
        goto out;
    }
    if (crl_finish(crl, ca, what, number, err, errlen) != 0)
        goto out;
    ok = 1;
out:
    if (!ok) {
        X509_CRL_free(crl);
        crl = NULL;
    }
    return crl;
}

/* Which index entries a generation's CRL lists: the revoked ones of kind that gen issued. */
struct index_sel {
    const struct ct_index *idx;
    enum ct_kind kind;
    int gen;
};

/* crl_make's fill for an intermediate: arg is a struct index_sel. */
static int fill_from_index(X509_CRL *crl, const void *arg)
{
    const struct index_sel *sel = arg;
    size_t i;

    for (i = 0; i < sel->idx->n; i++) {
        const struct ct_index_entry *e = &sel->idx->v[i];

        if (e->kind != sel->kind || e->status != CT_STATUS_REVOKED ||
            (e->ca_gen ? e->ca_gen : 1) != sel->gen)
            continue;
        if (add_revoked(crl, e->serial, e->revoked_at, e->reason) != 0)
            return -1;
    }
    return 0;
}

/* crl_make's fill for the root: the revoked intermediates of the struct ct_gens arg. */
static int fill_from_gens(X509_CRL *crl, const void *arg)
{
    const struct ct_gens *gens = arg;
    size_t i;

    for (i = 0; i < gens->n; i++) {
        const struct ct_gen *g = &gens->v[i];

        if (g->revoked_at != 0 && add_revoked(crl, g->serial, g->revoked_at, g->reason) != 0)
            return -1;
    }
    return 0;
}

X509_CRL *ct_crl_build_gen(const struct ct_ca *ca, int gen, const struct ct_index *idx,
                           enum ct_kind kind, long number, int days, time_t now, char *err,
                           size_t errlen)
{
    struct index_sel sel = {idx, kind, gen};
    char what[64];

    snprintf(what, sizeof(what), "%s intermediate (generation %d)", ct_kind_name(kind), gen);
    if (ca->key == NULL) {
        snprintf(err, errlen, "cannot sign the CRL of the %s: its key is not loaded", what);
        return NULL;
    }
    return crl_make(ca, what, number, days, now, fill_from_index, &sel, err, errlen);
}

X509_CRL *ct_crl_build(const struct ct_pki *pki, const struct ct_index *idx, enum ct_kind kind,
                       long number, int days, time_t now, char *err, size_t errlen)
{
    const struct ct_ca *ca = kind == CT_KIND_SERVER ? &pki->server_ca : &pki->client_ca;

    return ct_crl_build_gen(ca, ct_pki_current_gen(pki, kind), idx, kind, number, days, now, err,
                            errlen);
}

/* The number of revoked entries of crl (its stack is NULL when empty). */
static int crl_entries(X509_CRL *crl)
{
    int n = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));

    return n > 0 ? n : 0;
}

/* Appends the PEM of crl to *buf (growing it); 0 / -1. */
static int append_crl_pem(X509_CRL *crl, char **buf, size_t *len, char *err, size_t errlen)
{
    char *pem = NULL, *nb;
    size_t plen = 0;

    if (ct_pem_crl(crl, &pem, &plen, err, errlen) != 0)
        return -1;
    if ((nb = realloc(*buf, *len + plen + 1)) == NULL) {
        free(pem);
        snprintf(err, errlen, "CRL PEM: out of memory");
        return -1;
    }
    memcpy(nb + *len, pem, plen);
    *len += plen;
    nb[*len] = '\0';
    *buf = nb;
    free(pem);
    return 0;
}

/* DIR/file into path, and the number its next CRLs get: the file's highest + 1. */
static int crl_next_number(const char *dir, const char *file, char path[CT_PATH_MAX], long *next,
                           char *err, size_t errlen)
{
    long number = 0;

    if (ct_path(path, dir, file, err, errlen) != 0 ||
        ct_crl_read_number(path, &number, err, errlen) != 0)
        return -1;
    *next = number + 1;
    return 0;
}

int ct_crl_stage(struct ct_txn *t, const struct ct_pki *pki, const struct ct_index *idx,
                 enum ct_kind kind, int days, int *revoked, char *err, size_t errlen)
{
    struct ct_live_ca live[CT_LIVE_MAX];
    char path[CT_PATH_MAX], *pem = NULL;
    size_t len = 0, n, i;
    long number = 0;
    time_t now = time(NULL);
    X509_CRL *crl = NULL;
    int total = 0, rc = -1;

    if (crl_next_number(pki->dir, ct_crl_file(kind), path, &number, err, errlen) != 0)
        goto out;
    n = ct_pki_live(pki, kind, live, CT_LIVE_MAX);
    for (i = 0; i < n; i++) {
        if ((crl = ct_crl_build_gen(live[i].ca, live[i].gen, idx, kind, number, days, now, err,
                                    errlen)) == NULL ||
            append_crl_pem(crl, &pem, &len, err, errlen) != 0)
            goto out;
        total += crl_entries(crl);
        X509_CRL_free(crl);
        crl = NULL;
    }
    if (ct_txn_put(t, path, pem, len, 0644, err, errlen) != 0)
        goto out;
    if (revoked != NULL)
        *revoked = total;
    rc = 0;
out:
    X509_CRL_free(crl);
    free(pem);
    return rc;
}

X509_CRL *ct_root_crl_build(const struct ct_pki *pki, long number, int days, time_t now,
                            char *err, size_t errlen)
{
    if (pki->root.key == NULL) {
        snprintf(err, errlen, "cannot sign root.crl: the root key is not loaded");
        return NULL;
    }
    return crl_make(&pki->root, "root", number, days, now, fill_from_gens, &pki->gens, err,
                    errlen);
}

int ct_root_crl_stage(struct ct_txn *t, const struct ct_pki *pki, int days, int *revoked,
                      char *err, size_t errlen)
{
    char path[CT_PATH_MAX], *pem = NULL;
    size_t len = 0;
    long number = 0;
    X509_CRL *crl = NULL;
    int rc = -1;

    if (crl_next_number(pki->dir, CT_ROOT_CRL_FILE, path, &number, err, errlen) != 0)
        goto out;
    if ((crl = ct_root_crl_build(pki, number, days, 0, err, errlen)) == NULL ||
        ct_pem_crl(crl, &pem, &len, err, errlen) != 0 ||
        ct_txn_put(t, path, pem, len, 0644, err, errlen) != 0)
        goto out;
    if (revoked != NULL)
        *revoked = crl_entries(crl);
    rc = 0;
out:
    X509_CRL_free(crl);
    free(pem);
    return rc;
}

/* ---- revoke --------------------------------------------------------------- */

struct revoke_opts {
    const char *dir;
    int server;
    const char *reason;
    int days;
};

static const struct ct_opt revoke_table[] = {
    CT_OPT_DIR_ENTRY(struct revoke_opts),
    {CT_OPT_FLAG, "server", NULL, offsetof(struct revoke_opts, server), 0, 0, NULL,
     "revoke the server certificate NAME (default: the client certificate)"},
    {CT_OPT_STRING, "reason", "R", offsetof(struct revoke_opts, reason), 0, 0, "unspecified",
     "unspecified, keyCompromise, caCompromise, affiliationChanged, superseded, "
     "cessationOfOperation or privilegeWithdrawn"},
    {CT_OPT_INT, "days", "N", offsetof(struct revoke_opts, days), 1, CT_DAYS_MAX, "30",
     "the refreshed CRL's nextUpdate, in days"},
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec revoke_spec = {
    "revoke",
    "[OPTIONS] NAME",
    "Revoke the valid certificate of NAME and refresh the CRL.",
    "Marks it revoked in index.tsv and rewrites client-ca.crl (server-ca.crl with\n"
    "--server): one CRL per trusted intermediate, each signed by it, so that\n"
    "servers loading the file reject the certificate. NAME already revoked: the\n"
    "CRL file is written again (the recorded date and reason are kept).",
    revoke_table,
    1,
    1,
};

/* The newest revoked entry of kind named name, or NULL. */
static const struct ct_index_entry *last_revoked(const struct ct_index *idx, enum ct_kind kind,
                                                 const char *name)
{
    size_t i;

    for (i = idx->n; i-- > 0;)
        if (idx->v[i].kind == kind && idx->v[i].status == CT_STATUS_REVOKED &&
            strcmp(idx->v[i].name, name) == 0)
            return &idx->v[i];
    return NULL;
}

/*
 * `revoke`: marks every valid entry of NAME (of the kind) revoked, then
 * stages the index and the refreshed CRL file of the kind (one CRL per
 * trusted generation) together. When NAME has no valid entry but a revoked
 * one, only the CRL file is written again: a revoke is idempotent, and
 * running it again completes one whose CRL never got written.
 */
static int revoke_run(int argc, char **argv, char *err, size_t errlen)
{
    struct revoke_opts o = {"pki", 0, "unspecified", CT_CRL_DAYS};
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    struct ct_txn *t = NULL;
    enum ct_kind kind;
    const char *args[1];
    char serials[256], ts[64];
    size_t i, used = 0;
    int help, reason, n = 0, total = 0, retired_gen = 0, rc = -1;
    const struct ct_index_entry *again = NULL;
    time_t now = time(NULL);

    memset(&pki, 0, sizeof(pki));
    if (ct_opts_parse_or_help(&revoke_spec, argc, argv, &o, args, &help, err, errlen) != 0)
        return -1;
    if (help)
        return 0;
    kind = o.server ? CT_KIND_SERVER : CT_KIND_CLIENT;
    if (ct_name_check(args[0], err, errlen) != 0)
        return -1;
    if (ct_reason_parse(o.reason, &reason, err, errlen) != 0)
        return -1;
    if (ct_pki_open(&pki, o.dir, o.server ? CT_PKI_KEY_SERVER : CT_PKI_KEY_CLIENT, err, errlen) != 0)
        goto out;
    if (ct_index_load(o.dir, &idx, err, errlen) != 0)
        goto out;
    serials[0] = '\0';
    for (i = 0; i < idx.n; i++) {
        struct ct_index_entry *e = &idx.v[i];

        if (e->kind != kind || e->status != CT_STATUS_VALID || strcmp(e->name, args[0]) != 0)
            continue;
        e->status = CT_STATUS_REVOKED;
        e->revoked_at = now;
        e->reason = reason;
        {
            const struct ct_gen *g = ct_gens_find(&pki.gens, kind, e->ca_gen ? e->ca_gen : 1);

            if (g != NULL && g->status == CT_GEN_RETIRED)
                retired_gen = g->gen;
        }
        ct_list_append(serials, sizeof(serials), &used, e->serial);
        n++;
    }
    /* Already revoked: the CRL is written again (it may have missed the entry). */
    if (n == 0 && (again = last_revoked(&idx, kind, args[0])) == NULL) {
        snprintf(err, errlen, "no %s certificate named '%s' in %s/index.tsv",
                 ct_kind_name(kind), args[0], o.dir);
        goto out;
    }
    if ((t = ct_txn_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if ((n > 0 && ct_index_stage(t, o.dir, &idx, err, errlen) != 0) ||
        ct_crl_stage(t, &pki, &idx, kind, o.days, &total, err, errlen) != 0 ||
        ct_txn_commit(t, err, errlen) != 0)
        goto out;
    if (n > 0)
        printf("revoked %s certificate '%s' (serial %s) on %s, reason %s\n", ct_kind_name(kind),
               args[0], serials, tls_time_str(now, ts, sizeof(ts)), ct_reason_name(reason));
    else
        printf("%s certificate '%s' (serial %s) was already revoked on %s, reason %s; "
               "CRL written again\n", ct_kind_name(kind), args[0], again->serial,
               tls_time_str(again->revoked_at, ts, sizeof(ts)),
               ct_reason_name(again->reason) ? ct_reason_name(again->reason) : "unspecified");
    printf("  %s/%s updated: %d revoked certificate%s\n", o.dir, ct_crl_file(kind), total,
           total == 1 ? "" : "s");
    if (retired_gen != 0)
        printf("note: it was issued by %s intermediate generation %d, which is retired (no longer "
               "trusted, its CRL no longer published)\n", ct_kind_name(kind), retired_gen);
    rc = 0;
out:
    ct_txn_free(t);
    ct_index_free(&idx);
    ct_pki_close(&pki);
    return rc;
}

const struct ct_command ct_cmd_revoke = {&revoke_spec, revoke_run};

/* ---- crl ---------------------------------------------------------------------- */

struct crl_opts {
    const char *dir;
    int days;
};

static const struct ct_opt crl_table[] = {
    CT_OPT_DIR_ENTRY(struct crl_opts),
    {CT_OPT_INT, "days", "N", offsetof(struct crl_opts, days), 1, CT_DAYS_MAX, "30",
     "nextUpdate, in days"},
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec crl_spec = {
    "crl",
    "[OPTIONS]",
    "Rewrite client-ca.crl, server-ca.crl and root.crl from the index.",
    "client-ca.crl (server-ca.crl) holds one CRL per trusted client (server)\n"
    "intermediate, each signed by it; root.crl, signed by the root, lists revoked\n"
    "intermediates. Run it before nextUpdate passes (e.g. from cron): nginx and\n"
    "PostgreSQL reject every client certificate once a CRL they check has expired\n"
    "(mtlsgate keeps enforcing a stale CRL and exports its nextUpdate in /metrics).",
    crl_table,
    0,
    0,
};

/*
 * `crl`: client-ca.crl and server-ca.crl rebuilt from the index, root.crl
 * from cas.tsv, numbers increased, one commit.
 */
static int crl_run(int argc, char **argv, char *err, size_t errlen)
{
    struct crl_opts o = {"pki", CT_CRL_DAYS};
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    struct ct_txn *t = NULL;
    const char *args[1];
    char ts[64];
    int help, nclient = 0, nserver = 0, nroot = 0, rc = -1;

    memset(&pki, 0, sizeof(pki));
    if (ct_opts_parse_or_help(&crl_spec, argc, argv, &o, args, &help, err, errlen) != 0)
        return -1;
    if (help)
        return 0;
    if (ct_pki_open(&pki, o.dir, CT_PKI_KEY_ROOT | CT_PKI_KEY_CLIENT | CT_PKI_KEY_SERVER, err,
                    errlen) != 0)
        goto out;
    if (ct_index_load(o.dir, &idx, err, errlen) != 0)
        goto out;
    if ((t = ct_txn_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (ct_crl_stage(t, &pki, &idx, CT_KIND_CLIENT, o.days, &nclient, err, errlen) != 0 ||
        ct_crl_stage(t, &pki, &idx, CT_KIND_SERVER, o.days, &nserver, err, errlen) != 0 ||
        ct_root_crl_stage(t, &pki, o.days, &nroot, err, errlen) != 0 ||
        ct_txn_commit(t, err, errlen) != 0)
        goto out;
    printf("wrote %s/client-ca.crl (%d revoked), %s/server-ca.crl (%d revoked) and "
           "%s/root.crl (%d revoked intermediates), next update %s\n", o.dir, nclient, o.dir,
           nserver, o.dir, nroot,
           tls_time_str(time(NULL) + (time_t)o.days * 86400, ts, sizeof(ts)));
    rc = 0;
out:
    ct_txn_free(t);
    ct_index_free(&idx);
    ct_pki_close(&pki);
    return rc;
}

const struct ct_command ct_cmd_crl = {&crl_spec, crl_run};
