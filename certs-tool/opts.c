/*
 * opts.c - the table-driven option parser and help generator (see opts.h).
 */
#include "opts.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTS 64

/* The option named name[0..len) in opts (sections skipped), its index in *index; or NULL. */
static const struct ct_opt *find_opt(const struct ct_opt *opts, const char *name, size_t len,
                                     int *index)
{
    int i;

    for (i = 0; opts[i].type != CT_OPT_END; i++) {
        if (opts[i].type == CT_OPT_SECTION)
            continue;
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) {
            *index = i;
            return &opts[i];
        }
    }
    return NULL;
}

/* Parses a decimal int for option o and checks its range; 0 / -1 with err. */
static int parse_int(const struct ct_opt *o, const char *s, int *out, char *err, size_t errlen)
{
    char *end;
    long v;
    char q[64];

    errno = 0;
    v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < INT_MIN || v > INT_MAX) {
        snprintf(err, errlen, "--%s: '%s' is not a number", o->name, ct_quote(s, q, sizeof(q)));
        return -1;
    }
    if (v < o->min || v > o->max) {
        snprintf(err, errlen, "--%s: %ld is not in %d..%d", o->name, v, o->min, o->max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int ct_opts_parse(const struct ct_cmd_spec *spec, int argc, char **argv, void *out,
                  const char **args, int *nargs, int *help, char *err, size_t errlen)
{
    unsigned char seen[MAX_OPTS] = {0};
    int i, only_args = 0;
    char q[96];

    *nargs = 0;
    *help = 0;
    /* --help wins over everything else, even over bad options before it. */
    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = 1;
            return 0;
        }
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *eq, *val = NULL;
        const struct ct_opt *o;
        char *field;
        int idx = 0;

        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            if (*nargs >= spec->max_args) {
                snprintf(err, errlen, "unexpected argument '%s' (usage: certs-tool %s %s)",
                         ct_quote(a, q, sizeof(q)), spec->name, spec->usage);
                return -1;
            }
            args[(*nargs)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (a[1] != '-') {
            snprintf(err, errlen, "unknown option '%s' (see certs-tool %s --help)",
                     ct_quote(a, q, sizeof(q)), spec->name);
            return -1;
        }
        name = a + 2;
        eq = strchr(name, '=');
        o = find_opt(spec->opts, name, eq ? (size_t)(eq - name) : strlen(name), &idx);
        if (o == NULL || idx >= MAX_OPTS) {
            snprintf(err, errlen, "unknown option '%s' (see certs-tool %s --help)",
                     ct_quote(a, q, sizeof(q)), spec->name);
            return -1;
        }
        if (o->type != CT_OPT_LIST && seen[idx]) {
            snprintf(err, errlen, "--%s given twice", o->name);
            return -1;
        }
        seen[idx] = 1;
        field = (char *)out + o->offset;
        if (o->type == CT_OPT_FLAG) {
            if (eq != NULL) {
                snprintf(err, errlen, "--%s takes no value", o->name);
                return -1;
            }
            *(int *)(void *)field = 1;
            continue;
        }
        if (eq != NULL)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            snprintf(err, errlen, "--%s needs a value (%s)", o->name, o->arg ? o->arg : "VALUE");
            return -1;
        }
        switch (o->type) {
        case CT_OPT_STRING:
            *(const char **)(void *)field = val;
            break;
        case CT_OPT_INT:
            if (parse_int(o, val, (int *)(void *)field, err, errlen) != 0)
                return -1;
            break;
        case CT_OPT_LIST: {
            struct ct_strlist *l = (struct ct_strlist *)(void *)field;

            if (l->n >= CT_STRLIST_MAX) {
                snprintf(err, errlen, "--%s given more than %d times", o->name, CT_STRLIST_MAX);
                return -1;
            }
            l->v[l->n++] = val;
            break;
        }
        default:
            break;
        }
    }
    if (*nargs < spec->min_args) {
        snprintf(err, errlen, "missing argument (usage: certs-tool %s %s)", spec->name,
                 spec->usage);
        return -1;
    }
    return 0;
}

int ct_opts_parse_or_help(const struct ct_cmd_spec *spec, int argc, char **argv, void *out,
                          const char **args, int *help, char *err, size_t errlen)
{
    int nargs;

    if (ct_opts_parse(spec, argc, argv, out, args, &nargs, help, err, errlen) != 0)
        return -1;
    if (*help)
        ct_opts_help(spec, stdout);
    return 0;
}

void ct_opts_help(const struct ct_cmd_spec *spec, FILE *f)
{
    const struct ct_opt *o;
    char left[64];

    fprintf(f, "usage: certs-tool %s %s\n\n%s\n", spec->name, spec->usage, spec->summary);
    if (spec->description != NULL)
        fprintf(f, "\n%s\n", spec->description);
    fprintf(f, "\nOptions:\n");
    for (o = spec->opts; o->type != CT_OPT_END; o++) {
        if (o->type == CT_OPT_SECTION) {
            fprintf(f, "\n%s:\n", o->name);
            continue;
        }
        if (o->type == CT_OPT_FLAG)
            snprintf(left, sizeof(left), "--%s", o->name);
        else
            snprintf(left, sizeof(left), "--%s %s", o->name, o->arg ? o->arg : "VALUE");
        fprintf(f, "  %-24s %s", left, o->help);
        if (o->defval != NULL)
            fprintf(f, " (default: %s)", o->defval);
        if (o->type == CT_OPT_LIST)
            fprintf(f, " (repeatable)");
        fputc('\n', f);
    }
    fprintf(f, "  %-24s %s\n", "--help", "show this help and exit");
}
