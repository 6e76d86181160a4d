/*
 * commands.h - the subcommands of certs-tool, one file each.
 *
 * main.c dispatches on the command name; each command parses its own
 * options (opts.h), does its work in memory, stages every output in one
 * transaction (store.h) and commits it at the very end, so a failed
 * command changes nothing on disk.
 */
#ifndef CT_COMMANDS_H
#define CT_COMMANDS_H

#include <stddef.h>

#include "opts.h"

struct ct_command {
    const struct ct_cmd_spec *spec;
    /*
     * Runs the command; argv[0] is the command name. Prints progress and
     * results on stdout (and its --help). Returns 0 on success; -1 with one
     * line in err (no newline, no "certs-tool:" prefix) on failure.
     */
    int (*run)(int argc, char **argv, char *err, size_t errlen);
};

extern const struct ct_command ct_cmd_init;     /* init.c */
extern const struct ct_command ct_cmd_issue;    /* issue.c */
extern const struct ct_command ct_cmd_sign_csr; /* sign_csr.c */
extern const struct ct_command ct_cmd_revoke;   /* revoke.c */
extern const struct ct_command ct_cmd_crl;      /* revoke.c */
extern const struct ct_command ct_cmd_list;     /* list.c */
extern const struct ct_command ct_cmd_verify;   /* verify.c */
extern const struct ct_command ct_cmd_rollover; /* rollover.c */
extern const struct ct_command ct_cmd_retire;   /* rollover.c */

#endif
