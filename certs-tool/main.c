/*
 * main.c - certs-tool: dispatch to the subcommand named by argv[1].
 *
 * Exit status 0 on success; 1 with exactly one line on stderr
 * ("certs-tool: COMMAND: what went wrong") on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "store.h"

static const struct ct_command *const commands[] = {
    &ct_cmd_init, &ct_cmd_issue,  &ct_cmd_sign_csr, &ct_cmd_revoke, &ct_cmd_crl,
    &ct_cmd_list, &ct_cmd_verify, &ct_cmd_rollover, &ct_cmd_retire,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The top-level help, generated from the command table. */
static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: certs-tool COMMAND [OPTIONS] [ARGS]\n\n"
               "Makes and keeps the mTLS chain: a root, a client intermediate (what servers\n"
               "trust for client certificates), a server intermediate, and the leaves;\n"
               "rolls the intermediates over without downtime (rollover, then retire).\n\n"
               "Commands:\n");
    for (i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->spec->name, commands[i]->spec->summary);
    fprintf(f, "\nEvery command takes --dir DIR (default ./pki; also accepted before COMMAND)\n"
               "and --help. See certs-tool COMMAND --help.\n");
}

/* Makes sure the error is one line, whatever a lower layer put in it. */
static void one_line(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

/*
 * Runs the command named argv[0]. A global --dir DIR given before the
 * command is passed on as the command's own --dir option.
 */
static int dispatch(int argc, char **argv, const char *dir)
{
    char err[CT_ERR_MAX], **cargv = NULL;
    const struct ct_command *cmd = NULL;
    size_t i;
    int rc = 1;

    for (i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[0], commands[i]->spec->name) == 0)
            cmd = commands[i];
    if (cmd == NULL) {
        one_line(argv[0]);
        fprintf(stderr, "certs-tool: unknown command '%.64s' (see certs-tool --help)\n", argv[0]);
        return 1;
    }
    if ((cargv = calloc((size_t)argc + 3, sizeof(*cargv))) == NULL) {
        fprintf(stderr, "certs-tool: %s: out of memory\n", argv[0]);
        return 1;
    }
    cargv[0] = argv[0];
    if (dir != NULL) {
        cargv[1] = (char *)"--dir";
        cargv[2] = (char *)dir;
    }
    memcpy(cargv + (dir ? 3 : 1), argv + 1, (size_t)(argc - 1) * sizeof(*cargv));
    err[0] = '\0';
    if (cmd->run(argc + (dir ? 2 : 0), cargv, err, sizeof(err)) != 0) {
        one_line(err);
        fflush(stdout);
        fprintf(stderr, "certs-tool: %s: %s\n", argv[0], err[0] ? err : "failed");
        goto out;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "certs-tool: %s: cannot write to stdout\n", argv[0]);
        goto out;
    }
    rc = 0;
out:
    free(cargv);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int i = 1;

    /* Global options before the command: only --dir. */
    while (i < argc && strncmp(argv[i], "--dir", 5) == 0 && (argv[i][5] == '\0' || argv[i][5] == '=')) {
        if (argv[i][5] == '=') {
            dir = argv[i] + 6;
            i++;
        } else if (i + 1 < argc) {
            dir = argv[i + 1];
            i += 2;
        } else {
            fprintf(stderr, "certs-tool: --dir needs a value (DIR)\n");
            return 1;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "certs-tool: missing command (init, issue, sign-csr, revoke, crl, list, "
                        "verify, rollover, retire; see certs-tool --help)\n");
        return 1;
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
        strcmp(argv[i], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[i], "--version") == 0) {
        printf("certs-tool %s\n", MTLSGATE_VERSION);
        return 0;
    }
    return dispatch(argc - i, argv + i, dir);
}
