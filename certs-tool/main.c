/*
 * main.c - certs-tool: dispatch to the subcommand named by argv[1].
 *
 * Exit status 0 on success; 1 with exactly one line on stderr
 * ("certs-tool: COMMAND: what went wrong") on failure.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "store.h"

static const struct ct_command *const commands[] = {
    &ct_cmd_init, &ct_cmd_issue, &ct_cmd_sign_csr, &ct_cmd_revoke,
    &ct_cmd_crl,  &ct_cmd_list,  &ct_cmd_verify,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: certs-tool COMMAND [OPTIONS] [ARGS]\n\n"
               "Makes and keeps the mTLS chain: a root, a client intermediate (what servers\n"
               "trust for client certificates), a server intermediate, and the leaves.\n\n"
               "Commands:\n");
    for (i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->spec->name, commands[i]->spec->summary);
    fprintf(f, "\nEvery command takes --dir DIR (default ./pki) and --help.\n");
}

/* Makes sure the error is one line, whatever a lower layer put in it. */
static void one_line(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

int main(int argc, char **argv)
{
    char err[CT_ERR_MAX];
    size_t i;

    if (argc < 2) {
        fprintf(stderr, "certs-tool: missing command (init, issue, sign-csr, revoke, crl, list, "
                        "verify; see certs-tool --help)\n");
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("certs-tool %s\n", MTLSGATE_VERSION);
        return 0;
    }
    for (i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i]->spec->name) != 0)
            continue;
        err[0] = '\0';
        if (commands[i]->run(argc - 1, argv + 1, err, sizeof(err)) != 0) {
            one_line(err);
            fflush(stdout);
            fprintf(stderr, "certs-tool: %s: %s\n", argv[1], err[0] ? err : "failed");
            return 1;
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "certs-tool: %s: cannot write to stdout\n", argv[1]);
            return 1;
        }
        return 0;
    }
    one_line(argv[1]);
    fprintf(stderr, "certs-tool: unknown command '%.64s' (see certs-tool --help)\n", argv[1]);
    return 1;
}
