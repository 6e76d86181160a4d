/*
 * test_certs_opts.c - certs-tool's table-driven option parser and generated
 * help (certs-tool/opts.h): both syntaxes, flags, ints with ranges, lists,
 * positional arguments, "--", --help precedence, and the error messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

struct t_opts {
    const char *dir;
    int force;
    int days;
    const char *key_type;
    struct ct_strlist san;
};

static const struct ct_opt t_table[] = {
    CT_OPT_DIR_ENTRY(struct t_opts),
    {CT_OPT_FLAG, "force", NULL, offsetof(struct t_opts, force), 0, 0, NULL, "replace"},
    {CT_OPT_SECTION, "Certificate", NULL, 0, 0, 0, NULL, NULL},
    {CT_OPT_INT, "days", "N", offsetof(struct t_opts, days), 1, 100, "30", "validity"},
    {CT_OPT_STRING, "key-type", "T", offsetof(struct t_opts, key_type), 0, 0, "ec-p256", "key"},
    {CT_OPT_LIST, "san", "LIST", offsetof(struct t_opts, san), 0, 0, NULL, "names"},
    {CT_OPT_END, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const struct ct_cmd_spec t_spec = {"thing", "[OPTIONS] NAME", "Do a thing.", "Longer text.",
                                          t_table, 1, 2};

/* Parses a NULL-terminated argument list (argv[0] = "thing" is added). */
static int parse(struct t_opts *o, const char **args, int *nargs, int *help, char *err,
                 size_t errlen, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    const char *a;

    memset(o, 0, sizeof(*o));
    o->dir = "pki";
    o->days = 30;
    argv[argc++] = (char *)"thing";
    va_start(ap, errlen);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    return ct_opts_parse(&t_spec, argc, argv, o, args, nargs, help, err, errlen);
}

static void test_parse_ok(void **state)
{
    struct t_opts o;
    const char *args[2];
    char err[CT_ERR_MAX];
    int n, help;

    (void)state;
    assert_int_equal(parse(&o, args, &n, &help, err, sizeof(err), "--days", "7", "name",
                           "--key-type=ed25519", "--force", "--san", "DNS:a", "--san=IP:1.2.3.4",
                           "--dir", "/x", NULL), 0);
    assert_int_equal(help, 0);
    assert_int_equal(n, 1);
    assert_string_equal(args[0], "name");
    assert_int_equal(o.days, 7);
    assert_int_equal(o.force, 1);
    assert_string_equal(o.key_type, "ed25519");
    assert_string_equal(o.dir, "/x");
    assert_int_equal(o.san.n, 2);
    assert_string_equal(o.san.v[0], "DNS:a");
    assert_string_equal(o.san.v[1], "IP:1.2.3.4");

    /* defaults stay; "--" makes "--force" a positional argument; "-" is one too */
    assert_int_equal(parse(&o, args, &n, &help, err, sizeof(err), "-", "--", "--force", NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(args[0], "-");
    assert_string_equal(args[1], "--force");
    assert_int_equal(o.force, 0);
    assert_int_equal(o.days, 30);
    assert_string_equal(o.dir, "pki");
}

static void test_help_wins(void **state)
{
    struct t_opts o;
    const char *args[2];
    char err[CT_ERR_MAX];
    int n, help;

    (void)state;
    /* even with a bad option and no NAME */
    assert_int_equal(parse(&o, args, &n, &help, err, sizeof(err), "--bogus", "--help", NULL), 0);
    assert_int_equal(help, 1);
    assert_int_equal(parse(&o, args, &n, &help, err, sizeof(err), "-h", NULL), 0);
    assert_int_equal(help, 1);
    /* but not after "--" */
    assert_int_equal(parse(&o, args, &n, &help, err, sizeof(err), "--", "--help", NULL), 0);
    assert_int_equal(help, 0);
    assert_string_equal(args[0], "--help");
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *a[4];
        const char *why;
    } cases[] = {
        {{"--bogus", "x", NULL}, "unknown option '--bogus' (see certs-tool thing --help)"},
        {{"-f", "x", NULL}, "unknown option '-f'"},
        {{"--days", "0", "x", NULL}, "--days: 0 is not in 1..100"},
        {{"--days", "101", "x", NULL}, "--days: 101 is not in 1..100"},
        {{"--days", "7d", "x", NULL}, "--days: '7d' is not a number"},
        {{"--days=", "x", NULL}, "--days: '' is not a number"},
        {{"--days", "99999999999", "x", NULL}, "is not a number"},
        {{"x", "--days", NULL}, "--days needs a value (N)"},
        {{"--force=yes", "x", NULL}, "--force takes no value"},
        {{"--force", "--force", "x", NULL}, "--force given twice"},
        {{"--days", "1", "--days=2", NULL}, "--days given twice"},
        {{NULL}, "missing argument (usage: certs-tool thing [OPTIONS] NAME)"},
        {{"a", "b", "c", NULL}, "unexpected argument 'c'"},
        {{"a\nb", "b", "c\n", NULL}, "unexpected argument 'c\\n'"},
        {{"--dirx", "x", NULL}, "unknown option '--dirx'"},
    };
    struct t_opts o;
    const char *args[2];
    char err[CT_ERR_MAX];
    size_t i;
    int n, help;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (parse(&o, args, &n, &help, err, sizeof(err), cases[i].a[0], cases[i].a[1],
                  cases[i].a[2], cases[i].a[3]) == 0)
            fail_msg("case %zu parsed", i);
        if (strstr(err, cases[i].why) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].why);
        assert_null(strchr(err, '\n'));
    }
}

static void test_list_limit(void **state)
{
    struct t_opts o;
    const char *args[2];
    char err[CT_ERR_MAX], *argv[2 * CT_STRLIST_MAX + 4];
    int argc = 0, i, n, help;

    (void)state;
    memset(&o, 0, sizeof(o));
    argv[argc++] = (char *)"thing";
    for (i = 0; i <= CT_STRLIST_MAX; i++) {
        argv[argc++] = (char *)"--san";
        argv[argc++] = (char *)"DNS:x";
    }
    argv[argc++] = (char *)"name";
    assert_int_equal(ct_opts_parse(&t_spec, argc, argv, &o, args, &n, &help, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--san given more than 16 times"));
}

static void test_help_text(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    (void)state;
    assert_non_null(f);
    ct_opts_help(&t_spec, f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "usage: certs-tool thing [OPTIONS] NAME\n"));
    assert_non_null(strstr(text, "Do a thing."));
    assert_non_null(strstr(text, "Longer text."));
    assert_non_null(strstr(text, "--dir DIR"));
    assert_non_null(strstr(text, "the PKI directory (default: ./pki)"));
    assert_non_null(strstr(text, "\nCertificate:\n"));
    assert_non_null(strstr(text, "--days N"));
    assert_non_null(strstr(text, "validity (default: 30)"));
    assert_non_null(strstr(text, "--san LIST"));
    assert_non_null(strstr(text, "(repeatable)"));
    assert_non_null(strstr(text, "  --force "));
    assert_non_null(strstr(text, "--help"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_help_wins),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_list_limit),
        cmocka_unit_test(test_help_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
