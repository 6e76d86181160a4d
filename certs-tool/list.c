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
    "Show every certificate: name, kind, serial, not-after, days left, status.",
    "The CA certificates come first, then every certificate of index.tsv in issue order.\n"
    "Status is valid, expired or revoked (with date and reason).",
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
static void row(int w, const char *name, const char *kind, const char *serial, time_t na,
                const char *status, time_t now)
{
    char ts[64];
    struct tm tm;

    if (gmtime_r(&na, &tm) == NULL || strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(ts, sizeof(ts), "?");
    printf("%-*s  %-6s  %-32s  %-16s  %6ld  %s\n", w, name, kind, serial, ts, days_left(na, now),
           status);
}

/* `list`: the CA certificates, then the index in issue order. */
static int list_run(int argc, char **argv, char *err, size_t errlen)
{
    struct list_opts o = {"pki"};
    struct ct_pki pki;
    struct ct_index idx = {NULL, 0, 0};
    const char *args[1];
    const char *ca_names[3] = {"root", "client-ca", "server-ca"};
    X509 *cas[3];
    char serial[CT_SERIAL_HEX_MAX + 8], status[128], ts[64];
    size_t i;
    int nargs, help, w = 9, k, rc = -1;
    time_t now = time(NULL), na;

    memset(&pki, 0, sizeof(pki));
    if (ct_opts_parse(&list_spec, argc, argv, &o, args, &nargs, &help, err, errlen) != 0)
        return -1;
    if (help) {
        ct_opts_help(&list_spec, stdout);
        return 0;
    }
    if (ct_pki_open(&pki, o.dir, 0, err, errlen) != 0 || ct_index_load(o.dir, &idx, err, errlen) != 0)
        goto out;
    for (i = 0; i < idx.n; i++)
        if ((int)strlen(idx.v[i].name) > w)
            w = (int)strlen(idx.v[i].name);
    printf("%-*s  %-6s  %-32s  %-16s  %6s  %s\n", w, "NAME", "KIND", "SERIAL", "NOT-AFTER (UTC)",
           "DAYS", "STATUS");
    cas[0] = pki.root.cert;
    cas[1] = pki.client_ca.cert;
    cas[2] = pki.server_ca.cert;
    for (k = 0; k < 3; k++) {
        if (tls_x509_not_after(cas[k], &na) != 0)
            na = 0;
        row(w, ca_names[k], "ca", tls_x509_serial_hex(cas[k], serial, sizeof(serial)), na,
            na < now ? "expired" : "valid", now);
    }
    for (i = 0; i < idx.n; i++) {
        const struct ct_index_entry *e = &idx.v[i];

        if (e->status == CT_STATUS_REVOKED)
            snprintf(status, sizeof(status), "revoked %s (%s)",
                     tls_time_str(e->revoked_at, ts, sizeof(ts)),
                     ct_reason_name(e->reason) ? ct_reason_name(e->reason) : "?");
        else
            snprintf(status, sizeof(status), "%s", e->not_after < now ? "expired" : "valid");
        row(w, e->name, ct_kind_name(e->kind), e->serial, e->not_after, status, now);
    }
    rc = 0;
out:
    ct_index_free(&idx);
    ct_pki_close(&pki);
    return rc;
}

const struct ct_command ct_cmd_list = {&list_spec, list_run};
