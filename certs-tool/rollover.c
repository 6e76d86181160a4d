/*
 * rollover.c - `certs-tool rollover` and `certs-tool retire`: replacing an
 * intermediate without downtime.
 *
 * rollover makes a new generation of the client (or server) intermediate
 * and makes it current; the previous one stays trusted (in KIND-chain.crt,
 * with its own CRL in KIND-ca.crl) so that certificates it issued keep
 * working while they are replaced. retire then drops old generations from
 * the chain and CRL files (their certificate and key stay on disk), and
 * with --revoke also lists them in root.crl. See store.h for the layout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "commands.h"
#include "keygen.h"
#include "profile.h"
#include "revoke.h"
#include "store.h"
#include "tls_x509.h"

/* "client" / "server" to a kind; 0 / -1 with err. */
static int parse_kind(const char *s, enum ct_kind *kind, char *err, size_t errlen)
{
    char q[96];

    if (ct_kind_parse(s, kind) != 0) {
        snprintf(err, errlen, "unknown intermediate '%s' (client or server)",
                 ct_quote(s, q, sizeof(q)));
        return -1;
    }
    return 0;
}

/* The highest generation number of kind in gens. */
static int max_gen(const struct ct_gens *gens, enum ct_kind kind)
{
    size_t i;
    int m = 0;

    for (i = 0; i < gens->n; i++)
        if (gens->v[i].kind == kind && gens->v[i].gen > m)
            m = gens->v[i].gen;
    return m;
}

/* Prints "generation N (serial S, until T)" for each trusted generation but the current. */
static void print_previous(const struct ct_pki *pki, enum ct_kind kind)
{
    struct ct_live_ca live[CT_LIVE_MAX];
    char serial[CT_SERIAL_HEX_MAX + 8], ts[64];
    size_t n = ct_pki_live(pki, kind, live, CT_LIVE_MAX), i;
    time_t na;

    for (i = 0; i < n; i++) {
        if (live[i].current)
            continue;
        if (tls_x509_not_after(live[i].ca->cert, &na) != 0)
            na = 0;
        printf("  generation %d (serial %s, valid until %s) stays trusted until retired\n",
               live[i].gen, tls_x509_serial_hex(live[i].ca->cert, serial, sizeof(serial)),
               tls_time_str(na, ts, sizeof(ts)));
    }
}

/* ---- rollover --------------------------------------------------------------- */

struct rollover_opts {
    const char *dir;
    int days;
    const char *key_type;
};

static const struct ct_opt rollover_table[] = {
    CT_OPT_DIR_ENTRY(struct rollover_opts),
    {CT_OPT_INT, "days", "N", offsetof(struct rollover_opts, days), 1, CT_DAYS_MAX, "1825",
     "validity of the new intermediate (never beyond the root)"},
    {CT_OPT_STRING, "key-type", "T", offsetof(struct rollover_opts, key_type), 0, 0,
     "the current intermediate's", "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519"},
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec rollover_spec = {
    "rollover",
    "[OPTIONS] client|server",
    "Make a new client (or server) intermediate current; the old one stays trusted.",
    "Generates a new key and intermediate \"<org> Client CA N\" (N = the next generation),\n"
    "signed by the root. The current one moves to cas/client-ca.M.crt and\n"
    "private/client-ca.M.key and stays trusted: client-chain.crt lists every trusted\n"
    "client intermediate + the root, client-ca.crl one CRL per trusted intermediate,\n"
    "each signed by it. From now on `issue` signs with the new one (client-ca.crt,\n"
    "private/client-ca.key). Reload the servers, re-issue the certificates, then\n"
    "`certs-tool retire client --all-but-current`. Same for server (server-chain.crt,\n"
    "server-ca.crl). Needs the root key. Generations are recorded in cas.tsv.",
    rollover_table,
    1,
    1,
};

/* The current intermediate of kind (what rollover replaces). */
static struct ct_ca *current_ca(struct ct_pki *pki, enum ct_kind kind)
{
    return kind == CT_KIND_SERVER ? &pki->server_ca : &pki->client_ca;
}

/*
 * Makes generation newgen of kind's intermediate into *fresh (the caller
 * frees it): a new key of type *kt (kt_given 0: the current
 * intermediate's type, into *kt), O= of the current intermediate (else
 * the root's, else the default), CN "<org> Client CA N" (Server), signed by
 * the root. *clamped as for ct_ca_make.
 */
static int rollover_make(struct ct_pki *pki, enum ct_kind kind, int newgen, enum ct_key_type *kt,
                         int kt_given, int days, struct ct_ca *fresh, int *clamped, char *err,
                         size_t errlen)
{
    struct ct_ca *ca = current_ca(pki, kind);
    char org[128], suffix[32];

    if (!kt_given && ct_key_type_of(ca->key, kt, err, errlen) != 0)
        return -1;
    ct_cert_org(ca->cert, org, sizeof(org));
    if (org[0] == '\0')
        ct_cert_org(pki->root.cert, org, sizeof(org));
    if (org[0] == '\0')
        snprintf(org, sizeof(org), "%s", CT_ORG_DEFAULT);
    snprintf(suffix, sizeof(suffix), " %s CA %d", kind == CT_KIND_SERVER ? "Server" : "Client",
             newgen);
    return ct_ca_make(fresh, *kt, CT_PROFILE_INTERMEDIATE, kind, org, suffix, &pki->root, days,
                      clamped, err, errlen);
}

/*
 * Stages the rollover in t: the archive copies of the current generation
 * first (cas/, so that a crash never loses the old key), then fresh as
 * KIND-ca.crt and its key; then, in memory, the current generation becomes
 * a previous one and fresh (moved into pki, *fresh emptied) generation
 * newgen, the current; last cas.tsv, the chain and the CRLs from that.
 * On failure before the move *fresh is still the caller's.
 */
static int rollover_stage(struct ct_txn *t, struct ct_pki *pki, const struct ct_index *idx,
                          enum ct_kind kind, struct ct_ca *fresh, int newgen, char *err,
                          size_t errlen)
{
    struct ct_ca *ca = current_ca(pki, kind);
    struct ct_gen *cur = ct_gens_current(&pki->gens, kind);
    char rel[CT_REL_MAX], krel[CT_REL_MAX], path[CT_PATH_MAX], crt[32], key[32];

    snprintf(crt, sizeof(crt), "%s-ca.crt", ct_kind_name(kind));
    snprintf(key, sizeof(key), "private/%s-ca.key", ct_kind_name(kind));
    if (ct_path(path, pki->dir, "cas", err, errlen) != 0 ||
        ct_txn_mkdir(t, path, 0755, err, errlen) != 0 ||
        ct_stage_certs(t, pki->dir, ct_gen_cert_rel(rel, kind, cur->gen), &ca->cert, 1, err,
                       errlen) != 0 ||
        ct_stage_key(t, pki->dir, ct_gen_key_rel(krel, kind, cur->gen), ca->key, err,
                     errlen) != 0 ||
        ct_stage_key(t, pki->dir, key, fresh->key, err, errlen) != 0 ||
        ct_stage_certs(t, pki->dir, crt, &fresh->cert, 1, err, errlen) != 0)
        return -1;
    cur->status = CT_GEN_PREVIOUS;
    cur->ca = *ca;
    *ca = *fresh;
    fresh->cert = NULL;
    fresh->key = NULL;
    if (ct_gens_add_current(&pki->gens, kind, newgen, ca->cert, err, errlen) != 0 ||
        ct_gens_stage(t, pki->dir, &pki->gens, err, errlen) != 0 ||
        ct_chain_stage(t, pki, kind, err, errlen) != 0 ||
        ct_crl_stage(t, pki, idx, kind, CT_CRL_DAYS, NULL, err, errlen) != 0)
        return -1;
    return 0;
}

/* What rollover prints once committed: the new generation, the files, what to do next. */
static void rollover_report(const struct ct_pki *pki, enum ct_kind kind, int oldgen, int newgen,
                            enum ct_key_type kt, int clamped)
{
    const struct ct_ca *ca = kind == CT_KIND_SERVER ? &pki->server_ca : &pki->client_ca;
    struct ct_live_ca live[CT_LIVE_MAX];
    char rel[CT_REL_MAX], krel[CT_REL_MAX];
    char subj[256], serial[CT_SERIAL_HEX_MAX + 8], ts[64];
    const char *dir = pki->dir;
    size_t nlive = ct_pki_live(pki, kind, live, CT_LIVE_MAX);
    time_t na = 0;

    if (tls_x509_not_after(ca->cert, &na) != 0)
        na = 0;
    tls_x509_subject(ca->cert, subj, sizeof(subj));
    tls_x509_serial_hex(ca->cert, serial, sizeof(serial));
    printf("rolled the %s intermediate over: generation %d is current (%s, serial %s, %s, "
           "valid until %s)\n", ct_kind_name(kind), newgen, subj, serial, ct_key_type_name(kt),
           tls_time_str(na, ts, sizeof(ts)));
    print_previous(pki, kind);
    printf("  %s/%s-ca.crt, %s/private/%s-ca.key  the new current intermediate (issue signs with it)\n",
           dir, ct_kind_name(kind), dir, ct_kind_name(kind));
    printf("  %s/%s, %s/%s  generation %d, kept\n", dir, ct_gen_cert_rel(rel, kind, oldgen), dir,
           ct_gen_key_rel(krel, kind, oldgen), oldgen);
    printf("  %s/%s  %zu trusted %s intermediates + root\n", dir, ct_chain_file(kind), nlive,
           ct_kind_name(kind));
    printf("  %s/%s  one CRL per trusted %s intermediate\n", dir, ct_crl_file(kind),
           ct_kind_name(kind));
    if (clamped)
        printf("note: validity cut to the root's notAfter\n");
    if (kind == CT_KIND_CLIENT)
        printf("next: reload the servers trusting %s/client-chain.crt and %s/client-ca.crl "
               "(mtlsgate -s reload -c FILE), re-issue the client certificates "
               "(certs-tool issue NAME --force), then certs-tool retire client --all-but-current "
               "and reload again\n", dir, dir);
    else
        printf("next: re-issue the server certificates (certs-tool issue --server NAME --force) "
               "and reload the servers; clients trusting %s/root.crt need nothing; then "
               "certs-tool retire server --all-but-current\n", dir);
}

/*
 * `rollover`: opens the PKI with the root key and the keys of every trusted
 * generation of the kind (their CRLs are re-signed), refuses when too many
 * generations are trusted or no number is left, makes the new intermediate
 * in memory (rollover_make), stages everything (rollover_stage); one commit.
 */
static int rollover_run(int argc, char **argv, char *err, size_t errlen)
{
    struct rollover_opts o = {"pki", CT_DAYS_INTERMEDIATE, NULL};
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    struct ct_live_ca live[CT_LIVE_MAX];
    struct ct_ca fresh = {NULL, NULL};
    struct ct_txn *t = NULL;
    enum ct_key_type kt;
    enum ct_kind kind;
    const char *args[1];
    int help, oldgen, newgen, clamped = 0, rc = -1;
    size_t nlive;

    memset(&pki, 0, sizeof(pki));
    if (ct_opts_parse_or_help(&rollover_spec, argc, argv, &o, args, &help, err, errlen) != 0)
        return -1;
    if (help)
        return 0;
    if (parse_kind(args[0], &kind, err, errlen) != 0)
        return -1;
    if (o.key_type != NULL && ct_key_type_parse(o.key_type, &kt, err, errlen) != 0)
        return -1;
    if (ct_pki_open(&pki, o.dir,
                    CT_PKI_KEY_ROOT | (kind == CT_KIND_SERVER ? CT_PKI_KEY_SERVER : CT_PKI_KEY_CLIENT),
                    err, errlen) != 0 ||
        ct_index_load(o.dir, &idx, err, errlen) != 0)
        goto out;
    nlive = ct_pki_live(&pki, kind, live, CT_LIVE_MAX);
    if (nlive >= CT_LIVE_MAX) {
        snprintf(err, errlen, "already %zu trusted %s intermediates; retire old ones first "
                 "(certs-tool retire %s --all-but-current)", nlive, ct_kind_name(kind),
                 ct_kind_name(kind));
        goto out;
    }
    oldgen = ct_pki_current_gen(&pki, kind);
    newgen = max_gen(&pki.gens, kind) + 1;
    if (newgen > CT_GEN_MAX) {
        snprintf(err, errlen, "no %s generation number left (%d is the last)", ct_kind_name(kind),
                 CT_GEN_MAX);
        goto out;
    }
    if (rollover_make(&pki, kind, newgen, &kt, o.key_type != NULL, o.days, &fresh, &clamped, err,
                      errlen) != 0)
        goto out;
    if ((t = ct_txn_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (rollover_stage(t, &pki, &idx, kind, &fresh, newgen, err, errlen) != 0 ||
        ct_txn_commit(t, err, errlen) != 0)
        goto out;
    rollover_report(&pki, kind, oldgen, newgen, kt, clamped);
    rc = 0;
out:
    ct_txn_free(t);
    X509_free(fresh.cert);
    EVP_PKEY_free(fresh.key);
    ct_index_free(&idx);
    ct_pki_close(&pki);
    return rc;
}

const struct ct_command ct_cmd_rollover = {&rollover_spec, rollover_run};

/* ---- retire ----------------------------------------------------------------- */

struct retire_opts {
    const char *dir;
    int generation;
    int all_but_current;
    int revoke;
    const char *reason;
    int days;
};

static const struct ct_opt retire_table[] = {
    CT_OPT_DIR_ENTRY(struct retire_opts),
    {CT_OPT_SECTION, "Which generations (exactly one)", NULL, 0, 0, 0, NULL, NULL},
    {CT_OPT_INT, "generation", "N", offsetof(struct retire_opts, generation), 1, CT_GEN_MAX, NULL,
     "retire generation N (see certs-tool list)"},
    {CT_OPT_FLAG, "all-but-current", NULL, offsetof(struct retire_opts, all_but_current), 0, 0,
     NULL, "retire every generation but the current one"},
    {CT_OPT_SECTION, "Revocation", NULL, 0, 0, 0, NULL, NULL},
    {CT_OPT_FLAG, "revoke", NULL, offsetof(struct retire_opts, revoke), 0, 0, NULL,
     "also revoke it in root.crl (needs the root key); also for a generation already retired"},
    {CT_OPT_STRING, "reason", "R", offsetof(struct retire_opts, reason), 0, 0, "superseded",
     "with --revoke: superseded, caCompromise, cessationOfOperation, ..."},
    {CT_OPT_INT, "days", "N", offsetof(struct retire_opts, days), 1, CT_DAYS_MAX, "30",
     "nextUpdate of the rewritten CRLs, in days"},
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec retire_spec = {
    "retire",
    "[OPTIONS] client|server",
    "Stop trusting old generations of the client (or server) intermediate.",
    "Rewrites client-chain.crt and client-ca.crl (server-chain.crt, server-ca.crl)\n"
    "without them; their files under cas/ and private/ are kept, and cas.tsv marks them\n"
    "retired. The current generation cannot be retired (roll over first). Reload the\n"
    "servers afterwards: certificates the retired generations issued are refused.",
    retire_table,
    1,
    1,
};

/* Lists (up to a few names) the valid, unexpired certificates issued by retired generations in targets. */
static void report_orphans(const struct ct_index *idx, enum ct_kind kind, const int *targets,
                           size_t ntargets)
{
    char names[256];
    size_t i, j, used = 0;
    int n = 0;
    time_t now = time(NULL);

    names[0] = '\0';
    for (i = 0; i < idx->n; i++) {
        const struct ct_index_entry *e = &idx->v[i];
        int hit = 0;

        if (e->kind != kind || e->status != CT_STATUS_VALID || e->not_after < now)
            continue;
        for (j = 0; j < ntargets; j++)
            hit |= (e->ca_gen ? e->ca_gen : 1) == targets[j];
        if (!hit)
            continue;
        if (n < 5) {
            ct_list_append(names, sizeof(names), &used, e->name);
        } else if (n == 5 && used < sizeof(names)) {
            snprintf(names + used, sizeof(names) - used, ", ...");
            used = sizeof(names);
        }
        n++;
    }
    if (n > 0)
        printf("note: %d valid %s certificate%s issued by %s will be refused once servers reload: "
               "%s (re-issue: certs-tool issue %sNAME --force)\n", n, ct_kind_name(kind),
               n == 1 ? "" : "s", ntargets == 1 ? "it" : "them", names,
               kind == CT_KIND_SERVER ? "--server " : "");
}

/* The generations one retire run acts on. */
struct retire_pick {
    int targets[CT_LIVE_MAX * 4];
    size_t ntargets;
    char list[256]; /* "2, 3": their numbers, for the messages */
    int nretired;   /* how many of them were still trusted (now retired) */
};

/*
 * With --generation N: refuses an unknown generation, the current one, and
 * one with nothing left to do (retired, and revoked or no --revoke).
 */
static int retire_check_generation(struct ct_pki *pki, enum ct_kind kind,
                                   const struct retire_opts *o, char *err, size_t errlen)
{
    struct ct_gen *g = ct_gens_find(&pki->gens, kind, o->generation);

    if (g == NULL) {
        snprintf(err, errlen, "there is no %s intermediate generation %d (see certs-tool list)",
                 ct_kind_name(kind), o->generation);
        return -1;
    }
    if (g->status == CT_GEN_CURRENT) {
        snprintf(err, errlen, "generation %d is the current %s intermediate; roll over first "
                 "(certs-tool rollover %s)", g->gen, ct_kind_name(kind), ct_kind_name(kind));
        return -1;
    }
    if (g->status == CT_GEN_RETIRED && (!o->revoke || g->revoked_at != 0)) {
        snprintf(err, errlen, "%s intermediate generation %d is already %s", ct_kind_name(kind),
                 g->gen, g->revoked_at != 0 ? "retired and revoked" : "retired");
        return -1;
    }
    return 0;
}

/*
 * Marks in pki->gens what o asks for: --generation N, or (--all-but-current)
 * every previous generation of kind and, with --revoke, every retired one
 * not yet revoked. A previous one becomes retired at now; with --revoke
 * each gets revoked_at = now and reason. Fills *pick.
 */
static void retire_mark(struct ct_pki *pki, enum ct_kind kind, const struct retire_opts *o,
                        int reason, time_t now, struct retire_pick *pick)
{
    size_t i, used = 0;
    char num[16];

    memset(pick, 0, sizeof(*pick));
    for (i = 0; i < pki->gens.n; i++) {
        struct ct_gen *g = &pki->gens.v[i];

        if (g->kind != kind || g->status == CT_GEN_CURRENT)
            continue;
        if (o->generation != 0 ? g->gen != o->generation
                               : !(g->status == CT_GEN_PREVIOUS || (o->revoke && g->revoked_at == 0)))
            continue;
        if (pick->ntargets >= sizeof(pick->targets) / sizeof(pick->targets[0]))
            break;
        pick->targets[pick->ntargets++] = g->gen;
        if (g->status == CT_GEN_PREVIOUS) {
            g->status = CT_GEN_RETIRED;
            g->retired_at = now;
            pick->nretired++;
        }
        if (o->revoke) {
            g->revoked_at = now;
            g->reason = reason;
        }
        snprintf(num, sizeof(num), "%d", g->gen);
        ct_list_append(pick->list, sizeof(pick->list), &used, num);
    }
}

/*
 * `retire`: checks the options, picks and marks the generations in memory
 * (retire_check_generation, retire_mark), then stages cas.tsv, the chain,
 * the CRLs of the generations still trusted and, with --revoke, root.crl;
 * one commit.
 */
static int retire_run(int argc, char **argv, char *err, size_t errlen)
{
    struct retire_opts o = {"pki", 0, 0, 0, NULL, CT_CRL_DAYS};
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    struct ct_live_ca live[CT_LIVE_MAX];
    struct retire_pick pick;
    struct ct_txn *t = NULL;
    enum ct_kind kind;
    const char *args[1];
    size_t i, nlive;
    int help, reason = CRL_REASON_SUPERSEDED, rc = -1;
    unsigned keys;
    time_t now = time(NULL);

    memset(&pki, 0, sizeof(pki));
    if (ct_opts_parse_or_help(&retire_spec, argc, argv, &o, args, &help, err, errlen) != 0)
        return -1;
    if (help)
        return 0;
    if (parse_kind(args[0], &kind, err, errlen) != 0)
        return -1;
    if ((o.generation != 0) == (o.all_but_current != 0)) {
        snprintf(err, errlen, "give exactly one of --generation N and --all-but-current");
        return -1;
    }
    if (o.reason != NULL && !o.revoke) {
        snprintf(err, errlen, "--reason applies with --revoke");
        return -1;
    }
    if (o.reason != NULL && ct_reason_parse(o.reason, &reason, err, errlen) != 0)
        return -1;
    keys = (kind == CT_KIND_SERVER ? CT_PKI_KEY_SERVER : CT_PKI_KEY_CLIENT) |
           (o.revoke ? CT_PKI_KEY_ROOT : 0);
    if (ct_pki_open(&pki, o.dir, keys, err, errlen) != 0 ||
        ct_index_load(o.dir, &idx, err, errlen) != 0)
        goto out;
    if (o.generation != 0 && retire_check_generation(&pki, kind, &o, err, errlen) != 0)
        goto out;
    retire_mark(&pki, kind, &o, reason, now, &pick);
    if (pick.ntargets == 0) {
        snprintf(err, errlen, "no %s%s intermediate to retire (only the current generation %d "
                 "is trusted)", o.revoke ? "unrevoked " : "", ct_kind_name(kind),
                 ct_pki_current_gen(&pki, kind));
        goto out;
    }
    if ((t = ct_txn_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (ct_gens_stage(t, o.dir, &pki.gens, err, errlen) != 0 ||
        ct_chain_stage(t, &pki, kind, err, errlen) != 0 ||
        ct_crl_stage(t, &pki, &idx, kind, o.days, NULL, err, errlen) != 0 ||
        (o.revoke && ct_root_crl_stage(t, &pki, o.days, NULL, err, errlen) != 0) ||
        ct_txn_commit(t, err, errlen) != 0)
        goto out;
    nlive = ct_pki_live(&pki, kind, live, CT_LIVE_MAX);
    if (pick.nretired > 0)
        printf("retired %s intermediate generation%s %s: no longer in %s/%s or %s/%s (files kept "
               "under %s/cas/ and %s/private/)\n", ct_kind_name(kind), pick.ntargets > 1 ? "s" : "",
               pick.list, o.dir, ct_chain_file(kind), o.dir, ct_crl_file(kind), o.dir, o.dir);
    if (o.revoke)
        printf("revoked %s intermediate generation%s %s in %s/root.crl (reason %s)\n",
               ct_kind_name(kind), pick.ntargets > 1 ? "s" : "", pick.list, o.dir,
               ct_reason_name(reason));
    printf("  trusted now: generation %d (current)", ct_pki_current_gen(&pki, kind));
    for (i = 1; i < nlive; i++)
        printf(", %d", live[i].gen);
    printf("\n");
    report_orphans(&idx, kind, pick.targets, pick.ntargets);
    printf("next: reload the servers (mtlsgate -s reload -c FILE)\n");
    rc = 0;
out:
    ct_txn_free(t);
    ct_index_free(&idx);
    ct_pki_close(&pki);
    return rc;
}

const struct ct_command ct_cmd_retire = {&retire_spec, retire_run};
