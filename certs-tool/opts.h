/*
 * opts.h - command-line options from tables, with generated --help.
 *
 * Each subcommand declares one options struct and one table of struct
 * ct_opt describing its fields (name, type, placeholder, offset, range,
 * default shown in help, help text), grouped by CT_OPT_SECTION headings.
 * ct_opts_parse fills the struct from argv; ct_opts_help prints the
 * command's usage generated from the same table, so help and parser never
 * disagree.
 *
 * Accepted syntax: --name VALUE, --name=VALUE, flags as --name, "--" ends
 * the options; anything else is a positional argument. A non-list option
 * given twice is an error.
 */
#ifndef CT_OPTS_H
#define CT_OPTS_H

#include <stddef.h>
#include <stdio.h>

#include "store.h"

enum ct_opt_type {
    CT_OPT_END = 0,   /* terminates a table */
    CT_OPT_SECTION,   /* a heading in --help; name is the heading */
    CT_OPT_FLAG,      /* int field set to 1 */
    CT_OPT_STRING,    /* const char * field pointing into argv */
    CT_OPT_INT,       /* int field, checked against min..max */
    CT_OPT_LIST,      /* struct ct_strlist field; the option may repeat */
};

#define CT_STRLIST_MAX 16

/* Values of a repeatable option, in command-line order (pointers into argv). */
struct ct_strlist {
    const char *v[CT_STRLIST_MAX];
    int n;
};

struct ct_opt {
    enum ct_opt_type type;
    const char *name;   /* long name without "--" (section: the heading) */
    const char *arg;    /* placeholder in help ("N", "FILE"); NULL for flags */
    size_t offset;      /* offsetof(struct <cmd>_opts, field) */
    int min, max;       /* CT_OPT_INT range */
    const char *defval; /* shown as "(default: ...)" in help; NULL for none */
    const char *help;
};

/* Every command takes --dir; this is its table entry (field: const char *dir). */
#define CT_OPT_DIR_ENTRY(type) \
    {CT_OPT_STRING, "dir", "DIR", offsetof(type, dir), 0, 0, "./pki", "the PKI directory"}

struct ct_cmd_spec {
    const char *name;        /* "issue" */
    const char *usage;       /* after the command name: "[OPTIONS] NAME" */
    const char *summary;     /* one line, for `certs-tool --help` */
    const char *description; /* a paragraph for the command's --help; may be NULL */
    const struct ct_opt *opts;
    int min_args, max_args;  /* positional arguments accepted */
};

/*
 * Parses argv[1..argc-1] (argv[0] is the command name) into out, whose
 * fields the caller set to their defaults first. Positional arguments are
 * stored (pointers into argv) in args, which has room for
 * spec->max_args entries, and counted in *nargs. *help is set to 1 when
 * --help or -h was given (then nothing else is checked). Returns 0, or -1
 * with err like "--days: 'x' is not a number" or "unknown option '--foo'".
 */
int ct_opts_parse(const struct ct_cmd_spec *spec, int argc, char **argv, void *out,
                  const char **args, int *nargs, int *help, char *err, size_t errlen) CT_MUSTCHECK;

/* Writes the command's generated help (usage, description, options) to f. */
void ct_opts_help(const struct ct_cmd_spec *spec, FILE *f);

/*
 * How every command starts: ct_opts_parse (without the argument count:
 * spec's min_args..max_args are checked), and on --help the generated help
 * on stdout, with *help = 1: the command then returns 0 at once. Returns 0,
 * or -1 with err as ct_opts_parse.
 */
int ct_opts_parse_or_help(const struct ct_cmd_spec *spec, int argc, char **argv, void *out,
                          const char **args, int *help, char *err, size_t errlen) CT_MUSTCHECK;

#endif
