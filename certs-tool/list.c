/*
 * list.c - `certs-tool list`: every certificate of the PKI as a table.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "commands.h"
#include "store.h"
#include "tls_x509.h"

struct list_opts {
    const char *dir;
};

static const struct ct_opt list_table[] = {
    CT_OPT_DIR_ENTRY(struct list_opts),
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec list_spec = {
    "list",
    "[OPTIONS]",
    "Show every certificate: name, kind, generation, serial, not-after, days left, status.",
    "The CA certificates come first: the root, then every generation of the client and\n"
    "server intermediates (GEN; status current, previous = still trusted, retired,\n"
    "revoked, expired). Then every certificate of index.tsv in issue order, GEN being\n"
    "the generation of the intermediate that issued it; status is valid, expired or\n"
    "revoked (with date and reason), and \"valid (issuer retired)\" once its\n"
    "intermediate is no longer trusted.",
    list_table,
    0,
    0,
};

/* Whole days from now until t, rounded down (negative once past). */
static long days_left(time_t t, time_t now)
{
    long long d = (long long)t - (long long)now;

    return (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
}

/* One table line; not-after in UTC to the minute. */
static void row(int w, const char *name, const char *kind, const char *gen, const char *serial,
                time_t na, const char *status, time_t now)
{
    char ts[64];
    struct tm tm;

    if (gmtime_r(&na, &tm) == NULL || strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(ts, sizeof(ts), "?");
    printf("%-*s  %-6s  %3s  %-32s  %-16s  %6ld  %s\n", w, name, kind, gen, serial, ts,
           days_left(na, now), status);
}

/* The status words of an intermediate generation. */
static void gen_status(const struct ct_gen *g, time_t now, char *out, size_t len)
{
    char ts[64], ts2[64];

    if (g->revoked_at != 0)
        snprintf(out, len, "revoked %s (%s)", tls_time_str(g->revoked_at, ts, sizeof(ts)),
                 ct_reason_name(g->reason) ? ct_reason_name(g->reason) : "?");
    else if (g->status == CT_GEN_RETIRED)
        snprintf(out, len, "retired %s", tls_time_str(g->retired_at, ts2, sizeof(ts2)));
    else if (g->not_after < now)
        snprintf(out, len, "%s, expired", ct_gen_status_name(g->status));
    else
        snprintf(out, len, "%s", ct_gen_status_name(g->status));
}

/* `list`: the root, the intermediates' generations, then the index in issue order. */
static int list_run(int argc, char **argv, char *err, size_t errlen)
{
    struct list_opts o = {"pki"};
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    const char *args[1];
    char serial[CT_SERIAL_HEX_MAX + 8], status[128], ts[64], gen[16], name[32];
    size_t i;
    int help, w = 9, k, rc = -1;
    time_t now = time(NULL), na;

    memset(&pki, 0, sizeof(pki));
    if (ct_opts_parse_or_help(&list_spec, argc, argv, &o, args, &help, err, errlen) != 0)
        return -1;
    if (help)
        return 0;
    if (ct_pki_open(&pki, o.dir, 0, err, errlen) != 0 || ct_index_load(o.dir, &idx, err, errlen) != 0)
        goto out;
    for (i = 0; i < idx.n; i++)
        if ((int)strlen(idx.v[i].name) > w)
            w = (int)strlen(idx.v[i].name);
    printf("%-*s  %-6s  %3s  %-32s  %-16s  %6s  %s\n", w, "NAME", "KIND", "GEN", "SERIAL",
           "NOT-AFTER (UTC)", "DAYS", "STATUS");
    if (tls_x509_not_after(pki.root.cert, &na) != 0)
        na = 0;
    row(w, "root", "ca", "-", tls_x509_serial_hex(pki.root.cert, serial, sizeof(serial)), na,
        na < now ? "expired" : "valid", now);
    for (k = 0; k < 2; k++) {
        snprintf(name, sizeof(name), "%s-ca", ct_kind_name((enum ct_kind)k));
        for (i = 0; i < pki.gens.n; i++) {
            const struct ct_gen *g = &pki.gens.v[i];

            if (g->kind != (enum ct_kind)k)
                continue;
            snprintf(gen, sizeof(gen), "%d", g->gen);
            gen_status(g, now, status, sizeof(status));
            row(w, name, "ca", gen, g->serial, g->not_after, status, now);
        }
    }
    for (i = 0; i < idx.n; i++) {
        const struct ct_index_entry *e = &idx.v[i];
        const struct ct_gen *g = ct_gens_find(&pki.gens, e->kind, e->ca_gen ? e->ca_gen : 1);

        if (e->status == CT_STATUS_REVOKED)
            snprintf(status, sizeof(status), "revoked %s (%s)",
                     tls_time_str(e->revoked_at, ts, sizeof(ts)),
                     ct_reason_name(e->reason) ? ct_reason_name(e->reason) : "?");
        else if (e->not_after < now)
            snprintf(status, sizeof(status), "expired");
        else if (g == NULL || g->status == CT_GEN_RETIRED)
            snprintf(status, sizeof(status), "valid (issuer %s)", g ? "retired" : "unknown");
        else
            snprintf(status, sizeof(status), "valid");
        snprintf(gen, sizeof(gen), "%d", e->ca_gen ? e->ca_gen : 1);
        row(w, e->name, ct_kind_name(e->kind), gen, e->serial, e->not_after, status, now);
    }
    rc = 0;
out:
    ct_index_free(&idx);
    ct_pki_close(&pki);
    return rc;
}

const struct ct_command ct_cmd_list = {&list_spec, list_run};
