/*
 * test_certs_store.c - certs-tool's store (certs-tool/store.h): name
 * validation, all-or-nothing writes (nothing left behind on failure, even
 * a write that fails halfway), directory rollback, the index format
 * (round trip, the issuing generation, index lines from before generations,
 * strict parsing), the generation registry cas.tsv (round trip, its
 * consistency rules), the names of earlier generations' files, the order
 * of the trusted intermediates, and the revocation reasons.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "store.h"

/* ---- helpers --------------------------------------------------------------- */

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/test-certs-store-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* tmpdir/rel in one of four rotating buffers. */
static const char *P(const char *rel)
{
    static char buf[4][512];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, rel);
    return buf[i];
}

/* Number of directory entries (besides . and ..) in dir; -1 if unreadable. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* The whole file as a string (static buffer), or "" when unreadable. */
static const char *read_text(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = 0;

    buf[0] = '\0';
    if (f == NULL)
        return buf;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* ---- names ------------------------------------------------------------------ */

static void test_names_accepted(void **state)
{
    static const char *const ok[] = {
        "attestor1", "a", "A.b-c_d", "user@example.com", "db-1", "x.y.z", "9",
        "a123456789b123456789c123456789d123456789e123456789f123456789abcd", /* 64 */
    };
    char err[CT_ERR_MAX];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        err[0] = '\0';
        if (ct_name_check(ok[i], err, sizeof(err)) != 0)
            fail_msg("'%s' refused: %s", ok[i], err);
    }
}

static void test_names_refused(void **state)
{
    static const struct {
        const char *name;
        const char *why; /* must appear in the message */
    } bad[] = {
        {"", "name is empty"},
        {"a/b", "name 'a/b' contains '/'"},
        {"/etc", "contains '/'"},
        {"..", "contains '..'"},
        {"../x", "contains '/'"},
        {"a..b", "contains '..'"},
        {".hidden", "starts with '.'"},
        {".", "starts with '.'"},
        {"-rf", "starts with '-'"},
        {"a\nb", "name 'a\\nb' contains a newline"},
        {"a\tb", "contains a control character"},
        {"a\x7f", "contains a control character"},
        {"a b", "contains ' '"},
        {"a*b", "contains '*'"},
        {"a\\b", "contains '\\'"},
        {"caf\xc3\xa9", "non-ASCII"},
        {"a123456789b123456789c123456789d123456789e123456789f123456789abcde",
         "longer than 64 characters"},
    };
    char err[CT_ERR_MAX];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (ct_name_check(bad[i].name, err, sizeof(err)) == 0)
            fail_msg("name #%zu accepted", i);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("name #%zu: '%s' lacks '%s'", i, err, bad[i].why);
        /* Messages go on one stderr line: never a raw control character. */
        for (const char *p = err; *p; p++)
            assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    }
}

static void test_quote(void **state)
{
    char buf[16];

    (void)state;
    assert_string_equal(ct_quote("a\nb\x01", buf, sizeof(buf)), "a\\nb\\x01");
    /* Long input is cut with "..." and stays NUL-terminated within len. */
    assert_string_equal(ct_quote("0123456789abcdefghij", buf, sizeof(buf)), "0123456789ab...");
    assert_true(strlen(buf) < sizeof(buf));
    assert_string_equal(ct_quote(NULL, buf, sizeof(buf)), "");
}

static void test_list_append(void **state)
{
    char buf[12];
    size_t used = 0;

    (void)state;
    buf[0] = '\0';
    ct_list_append(buf, sizeof(buf), &used, "ab");
    assert_string_equal(buf, "ab");
    ct_list_append(buf, sizeof(buf), &used, "cd");
    assert_string_equal(buf, "ab, cd");
    assert_int_equal(used, 6);
    /* Full: the list is cut, stays NUL-terminated, and later items are dropped. */
    ct_list_append(buf, sizeof(buf), &used, "efghijkl");
    assert_string_equal(buf, "ab, cd, efg");
    assert_true(used >= sizeof(buf));
    ct_list_append(buf, sizeof(buf), &used, "x");
    assert_string_equal(buf, "ab, cd, efg");
}

/* ---- transactions ------------------------------------------------------------- */

static void test_txn_commit(void **state)
{
    struct ct_txn *t = ct_txn_new();
    char err[CT_ERR_MAX];

    (void)state;
    assert_non_null(t);
    write_text(P("old.crt"), "old contents\n");
    assert_int_equal(ct_txn_put(t, P("a.key"), "secret\n", 7, 0600, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_put(t, P("old.crt"), "new\n", 4, 0644, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_remove(t, P("gone"), err, sizeof(err)), 0);
    /* Nothing is visible before the commit: only temporaries exist. */
    assert_false(ct_exists(P("a.key")));
    assert_string_equal(read_text(P("old.crt")), "old contents\n");
    /* Staging a path twice is refused. */
    assert_int_equal(ct_txn_put(t, P("a.key"), "x", 1, 0600, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "twice"));
    write_text(P("gone"), "bye\n");
    assert_int_equal(ct_txn_commit(t, err, sizeof(err)), 0);
    ct_txn_free(t);
    assert_string_equal(read_text(P("a.key")), "secret\n");
    assert_int_equal(mode_of(P("a.key")), 0600);
    assert_string_equal(read_text(P("old.crt")), "new\n");
    assert_int_equal(mode_of(P("old.crt")), 0644);
    assert_false(ct_exists(P("gone")));
    /* a.key and old.crt, no temporary left */
    assert_int_equal(count_entries(tmpdir), 2);
    unlink(P("a.key"));
    unlink(P("old.crt"));
}

static void test_txn_abort_leaves_nothing(void **state)
{
    struct ct_txn *t = ct_txn_new();
    char err[CT_ERR_MAX];

    (void)state;
    write_text(P("keep.crt"), "original\n");
    assert_int_equal(ct_txn_put(t, P("keep.crt"), "changed\n", 8, 0644, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_put(t, P("new.key"), "k", 1, 0600, err, sizeof(err)), 0);
    assert_int_equal(count_entries(tmpdir), 3); /* keep.crt + two temporaries */
    /* A later step fails: staging into a directory that does not exist. */
    assert_int_equal(ct_txn_put(t, P("missing/x.crt"), "x", 1, 0644, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing/x.crt"));
    ct_txn_free(t); /* never committed */
    assert_string_equal(read_text(P("keep.crt")), "original\n");
    assert_false(ct_exists(P("new.key")));
    assert_int_equal(count_entries(tmpdir), 1);
    unlink(P("keep.crt"));
}

static void test_txn_commit_refuses_directory_target(void **state)
{
    struct ct_txn *t = ct_txn_new();
    char err[CT_ERR_MAX];

    (void)state;
    write_text(P("a.crt"), "a\n");
    assert_int_equal(mkdir(P("b.crt"), 0755), 0);
    assert_int_equal(ct_txn_put(t, P("a.crt"), "A\n", 2, 0644, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_put(t, P("b.crt"), "B\n", 2, 0644, err, sizeof(err)), 0);
    /* Checked before the first rename: a.crt must not change either. */
    assert_int_equal(ct_txn_commit(t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is a directory"));
    ct_txn_free(t);
    assert_string_equal(read_text(P("a.crt")), "a\n");
    assert_int_equal(count_entries(tmpdir), 2);
    unlink(P("a.crt"));
    rmdir(P("b.crt"));
}

/* Removes the staged temporary of tmpdir/base (".base.tmp-XXXXXX"): its rename will fail. */
static void lose_temporary(const char *base)
{
    char prefix[128];
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    snprintf(prefix, sizeof(prefix), ".%s.tmp-", base);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            assert_int_equal(unlink(P(de->d_name)), 0);
            n++;
        }
    }
    closedir(d);
    assert_int_equal(n, 1);
}

/*
 * A commit whose rename fails halfway (after other files were renamed into
 * place and one removed) puts everything back: old contents and modes, the
 * removed file, no new file, nothing hidden left behind; and says so.
 */
static void test_txn_commit_rollback(void **state)
{
    struct ct_txn *t = ct_txn_new();
    char err[CT_ERR_MAX];

    (void)state;
    assert_non_null(t);
    write_text(P("a.crt"), "a old\n");
    assert_false(ct_exists(P("a.key")));
    write_text(P("c.crl"), "c old\n");
    write_text(P("d.pem"), "d old\n");
    write_text(P("index.tsv"), "index old\n");
    /* index.tsv staged first: committed last all the same */
    assert_int_equal(ct_index_stage(t, tmpdir, &(struct ct_index){NULL, 0, 0}, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_put(t, P("a.crt"), "a new\n", 6, 0644, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_put(t, P("a.key"), "k\n", 2, 0600, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_remove(t, P("c.crl"), err, sizeof(err)), 0);
    assert_int_equal(ct_txn_put(t, P("d.pem"), "d new\n", 6, 0644, err, sizeof(err)), 0);
    assert_int_equal(chmod(P("a.crt"), 0640), 0);
    lose_temporary("d.pem");
    assert_int_equal(ct_txn_commit(t, err, sizeof(err)), -1);
    ct_txn_free(t);
    assert_string_equal(read_text(P("a.crt")), "a old\n");
    assert_int_equal(mode_of(P("a.crt")), 0640);
    assert_false(ct_exists(P("a.key")));
    assert_string_equal(read_text(P("c.crl")), "c old\n");
    assert_string_equal(read_text(P("d.pem")), "d old\n");
    assert_string_equal(read_text(P("index.tsv")), "index old\n");
    assert_int_equal(count_entries(tmpdir), 4); /* no temporary, no kept copy */
    if (strstr(err, "d.pem: cannot rename into place") == NULL ||
        strstr(err, "nothing was changed") == NULL)
        fail_msg("commit error: %s", err);

    /* The late item failing (the index, last) undoes all the others too. */
    t = ct_txn_new();
    assert_int_equal(ct_index_stage(t, tmpdir, &(struct ct_index){NULL, 0, 0}, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_put(t, P("a.crt"), "a new\n", 6, 0644, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_remove(t, P("c.crl"), err, sizeof(err)), 0);
    lose_temporary("index.tsv");
    assert_int_equal(ct_txn_commit(t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "index.tsv: cannot rename into place"));
    ct_txn_free(t);
    assert_string_equal(read_text(P("a.crt")), "a old\n");
    assert_string_equal(read_text(P("c.crl")), "c old\n");
    assert_int_equal(count_entries(tmpdir), 4);

    /* And the same changes, committed, leave no kept copy either. */
    t = ct_txn_new();
    assert_int_equal(ct_txn_put(t, P("a.crt"), "a new\n", 6, 0644, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_remove(t, P("c.crl"), err, sizeof(err)), 0);
    assert_int_equal(ct_txn_commit(t, err, sizeof(err)), 0);
    ct_txn_free(t);
    assert_string_equal(read_text(P("a.crt")), "a new\n");
    assert_false(ct_exists(P("c.crl")));
    assert_int_equal(count_entries(tmpdir), 3);
    unlink(P("a.crt"));
    unlink(P("d.pem"));
    unlink(P("index.tsv"));
}

/*
 * A write that fails halfway (file size limit: EFBIG) must leave no partial
 * file and no temporary. Run in a child so the limit does not leak.
 */
static void test_txn_write_failure_midway(void **state)
{
    pid_t pid;
    int status = 0;

    (void)state;
    write_text(P("big.crt"), "previous\n");
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {100, 100};
        static char data[4096];
        char err[CT_ERR_MAX];
        struct ct_txn *t = ct_txn_new();
        int rc;

        signal(SIGXFSZ, SIG_IGN);
        memset(data, 'x', sizeof(data));
        if (t == NULL || setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        rc = ct_txn_put(t, P("big.crt"), data, sizeof(data), 0644, err, sizeof(err));
        ct_txn_free(t);
        _exit(rc == -1 && strstr(err, "cannot write") != NULL ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_equal(read_text(P("big.crt")), "previous\n");
    assert_int_equal(count_entries(tmpdir), 1);
    unlink(P("big.crt"));
}

static void test_txn_mkdir_rollback(void **state)
{
    struct ct_txn *t = ct_txn_new();
    char err[CT_ERR_MAX];

    (void)state;
    assert_int_equal(ct_txn_mkdir(t, P("private"), 0700, err, sizeof(err)), 0);
    assert_int_equal(mode_of(P("private")), 0700);
    assert_int_equal(ct_txn_put(t, P("private/k.key"), "k", 1, 0600, err, sizeof(err)), 0);
    ct_txn_free(t); /* aborted: the directory it made goes too */
    assert_false(ct_exists(P("private")));

    /* Committed: the directory stays with its mode, even against the umask. */
    t = ct_txn_new();
    umask(077);
    assert_int_equal(ct_txn_mkdir(t, P("clients"), 0755, err, sizeof(err)), 0);
    umask(022);
    assert_int_equal(ct_txn_put(t, P("clients/a.crt"), "c", 1, 0644, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_commit(t, err, sizeof(err)), 0);
    ct_txn_free(t);
    assert_int_equal(mode_of(P("clients")), 0755);
    assert_string_equal(read_text(P("clients/a.crt")), "c");

    /* An existing directory gets its mode fixed at commit, and is never removed. */
    assert_int_equal(chmod(P("clients"), 0777), 0);
    t = ct_txn_new();
    assert_int_equal(ct_txn_mkdir(t, P("clients"), 0755, err, sizeof(err)), 0);
    ct_txn_free(t);
    assert_true(ct_exists(P("clients/a.crt")));
    t = ct_txn_new();
    assert_int_equal(ct_txn_mkdir(t, P("clients"), 0700, err, sizeof(err)), 0);
    assert_int_equal(ct_txn_commit(t, err, sizeof(err)), 0);
    ct_txn_free(t);
    assert_int_equal(mode_of(P("clients")), 0700);
    unlink(P("clients/a.crt"));
    rmdir(P("clients"));

    /* A file in the way is an error naming it. */
    write_text(P("servers"), "not a dir");
    t = ct_txn_new();
    assert_int_equal(ct_txn_mkdir(t, P("servers"), 0755, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a directory"));
    ct_txn_free(t);
    unlink(P("servers"));
    assert_int_equal(count_entries(tmpdir), 0);
}

static void test_read_file(void **state)
{
    char err[CT_ERR_MAX], *out = NULL;
    size_t len = 0;

    (void)state;
    write_text(P("f"), "hello");
    assert_int_equal(ct_read_file(P("f"), 100, &out, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 5);
    assert_string_equal(out, "hello");
    free(out);
    assert_int_equal(ct_read_file(P("f"), 4, &out, &len, err, sizeof(err)), -1);
    assert_null(out);
    assert_non_null(strstr(err, "larger than"));
    assert_int_equal(ct_read_file(P("nope"), 100, &out, &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nope: cannot read"));
    unlink(P("f"));
}

static void test_pki_open_missing(void **state)
{
    struct ct_pki pki;
    char err[CT_ERR_MAX];

    (void)state;
    assert_int_equal(ct_pki_open(&pki, P("no-such-pki"), 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no PKI directory"));
    assert_false(ct_exists(P("no-such-pki")));
    ct_pki_close(&pki);
    /* An empty directory is not a PKI either. */
    assert_int_equal(mkdir(P("empty"), 0755), 0);
    assert_int_equal(ct_pki_open(&pki, P("empty"), 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "root.crt missing"));
    ct_pki_close(&pki);
    assert_int_equal(count_entries(P("empty")), 0);
    rmdir(P("empty"));
}

/* ---- the index ---------------------------------------------------------------- */

static struct ct_index_entry entry(const char *serial, const char *name, enum ct_kind kind,
                                   time_t not_after, int revoked, time_t at, int reason)
{
    struct ct_index_entry e;

    memset(&e, 0, sizeof(e));
    snprintf(e.serial, sizeof(e.serial), "%s", serial);
    snprintf(e.name, sizeof(e.name), "%s", name);
    e.kind = kind;
    e.not_after = not_after;
    e.status = revoked ? CT_STATUS_REVOKED : CT_STATUS_VALID;
    e.revoked_at = revoked ? at : 0;
    e.reason = revoked ? reason : -1;
    return e;
}

static void test_index_round_trip(void **state)
{
    struct ct_index idx = {NULL, 0, 0}, back = {NULL, 0, 0};
    struct ct_index_entry es[4];
    char err[CT_ERR_MAX], *text = NULL, *text2 = NULL;
    size_t len = 0, len2 = 0, i;

    (void)state;
    es[0] = entry("532993E99BEF08F0A469262435F60643", "attestor1", CT_KIND_CLIENT, 1826000000, 0, 0, 0);
    es[1] = entry("7F16B4179744A84BCB1F440640BDB8F9", "localhost", CT_KIND_SERVER, 1826000001, 0, 0, 0);
    es[2] = entry("4A8259009784F3B58D700F420152EC0F", "attestor2", CT_KIND_CLIENT, 1826000002, 1,
                  1790000000, CRL_REASON_KEY_COMPROMISE);
    es[3] = entry("1", "user@example.com", CT_KIND_CLIENT, 0, 1, 1790000001, CRL_REASON_UNSPECIFIED);
    es[0].ca_gen = 1;
    es[1].ca_gen = 1;
    es[2].ca_gen = 2;
    es[3].ca_gen = 12;
    for (i = 0; i < 4; i++)
        assert_int_equal(ct_index_add(&idx, &es[i], err, sizeof(err)), 0);
    assert_int_equal(ct_index_format(&idx, &text, &len, err, sizeof(err)), 0);
    assert_non_null(strstr(text, "# serial\tname\tkind\tnot-after\tstatus\trevoked-at\treason\tca-gen\n"));
    assert_non_null(strstr(text, "4A8259009784F3B58D700F420152EC0F\tattestor2\tclient\t"
                                 "2027-11-12T06:13:22Z\trevoked\t2026-09-21T14:13:20Z\tkeyCompromise\t2\n"));
    assert_non_null(strstr(text, "\tlocalhost\tserver\t2027-11-12T06:13:21Z\tvalid\t-\t-\t1\n"));
    assert_non_null(strstr(text, "\tuser@example.com\tclient\t1970-01-01T00:00:00Z\trevoked\t"
                                 "2026-09-21T14:13:21Z\tunspecified\t12\n"));
    assert_int_equal(ct_index_parse(text, len, "index.tsv", &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 4);
    for (i = 0; i < 4; i++) {
        assert_string_equal(back.v[i].serial, es[i].serial);
        assert_string_equal(back.v[i].name, es[i].name);
        assert_int_equal(back.v[i].kind, es[i].kind);
        assert_int_equal(back.v[i].not_after, es[i].not_after);
        assert_int_equal(back.v[i].status, es[i].status);
        assert_int_equal(back.v[i].revoked_at, es[i].revoked_at);
        assert_int_equal(back.v[i].reason, es[i].reason);
        assert_int_equal(back.v[i].ca_gen, es[i].ca_gen);
    }
    assert_int_equal(ct_index_format(&back, &text2, &len2, err, sizeof(err)), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(text, text2, len);
    /* The newest valid entry of a name and kind. */
    assert_ptr_equal(ct_index_find_valid(&back, "attestor1", CT_KIND_CLIENT), &back.v[0]);
    assert_null(ct_index_find_valid(&back, "attestor1", CT_KIND_SERVER));
    assert_null(ct_index_find_valid(&back, "attestor2", CT_KIND_CLIENT)); /* revoked */

    /* Through the file, as the commands read it. */
    write_text(P("index.tsv"), text);
    ct_index_free(&back);
    assert_int_equal(ct_index_load(tmpdir, &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 4);
    unlink(P("index.tsv"));

    /* An index written before generations (7 fields): generation 1, written back with it. */
    ct_index_free(&back);
    free(text2);
    text2 = NULL;
    {
        static const char old[] = "# serial\tname\tkind\tnot-after\tstatus\trevoked-at\treason\n"
                                  "AB\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\n";

        assert_int_equal(ct_index_parse(old, strlen(old), "index.tsv", &back, err, sizeof(err)), 0);
        assert_int_equal(back.n, 1);
        assert_int_equal(back.v[0].ca_gen, 1);
        assert_int_equal(ct_index_format(&back, &text2, &len2, err, sizeof(err)), 0);
        assert_non_null(strstr(text2, "AB\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\t1\n"));
    }
    /* An entry built without a generation (0) is written as generation 1. */
    es[0].ca_gen = 0;
    ct_index_free(&back);
    assert_int_equal(ct_index_add(&back, &es[0], err, sizeof(err)), 0);
    free(text2);
    assert_int_equal(ct_index_format(&back, &text2, &len2, err, sizeof(err)), 0);
    assert_non_null(strstr(text2, "\tattestor1\tclient\t2027-11-12T06:13:20Z\tvalid\t-\t-\t1\n"));
    ct_index_free(&back);

    /* An empty index is just the header, and parses back empty. */
    ct_index_free(&idx);
    free(text);
    assert_int_equal(ct_index_format(&idx, &text, &len, err, sizeof(err)), 0);
    assert_int_equal(text[0], '#');
    ct_index_free(&back);
    assert_int_equal(ct_index_parse(text, len, "index.tsv", &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 0);
    ct_index_free(&back);
    ct_index_free(&idx);
    ct_index_free(NULL);
    free(text);
    free(text2);
}

static void test_index_parse_errors(void **state)
{
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"# h\nxyz\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\n", "index.tsv:2: bad serial 'xyz'"},
        {"AB\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\n", "index.tsv:1: expected 8"},
        {"AB\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\t1\t-\n", "expected 8"},
        {"AB\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\t-\n", "bad ca-gen '-'"},
        {"AB\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\t0\n", "bad ca-gen '0'"},
        {"AB\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\t02\n", "bad ca-gen '02'"},
        {"AB\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\t1000000\n", "bad ca-gen"},
        {"AB\tattestor1\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\t-3\n", "bad ca-gen"},
        {"AB\ta/b\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\n", "index.tsv:1: name 'a/b' contains '/'"},
        {"AB\tx\tboth\t2027-01-01T00:00:00Z\tvalid\t-\t-\n", "bad kind 'both'"},
        {"AB\tx\tclient\t2027-13-01T00:00:00Z\tvalid\t-\t-\n", "bad not-after"},
        {"AB\tx\tclient\t2027-01-01 00:00:00\tvalid\t-\t-\n", "bad not-after"},
        {"AB\tx\tclient\t2027-01-01T00:00:00Z\tok\t-\t-\n", "bad status 'ok'"},
        {"AB\tx\tclient\t2027-01-01T00:00:00Z\tvalid\t2027-01-01T00:00:00Z\t-\n",
         "a valid entry has a revocation"},
        {"AB\tx\tclient\t2027-01-01T00:00:00Z\trevoked\t-\tkeyCompromise\n", "bad revoked-at"},
        {"AB\tx\tclient\t2027-01-01T00:00:00Z\trevoked\t2027-01-01T00:00:00Z\tbored\n",
         "bad reason 'bored'"},
        {"AB\tx\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\n"
         "AB\ty\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\n", "index.tsv:2: serial AB listed twice"},
        {"AB\tx\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-", "last line has no newline"},
        {"ab\tx\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\n", "bad serial"},
    };
    struct ct_index idx;
    char err[CT_ERR_MAX];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (ct_index_parse(bad[i].text, strlen(bad[i].text), "index.tsv", &idx, err, sizeof(err)) == 0)
            fail_msg("case %zu parsed", i);
        assert_null(idx.v);
        assert_int_equal(idx.n, 0);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].why);
    }
    /* A NUL byte inside is refused too. */
    assert_int_equal(ct_index_parse("A\0B\n", 4, "index.tsv", &idx, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NUL"));
}

/* ---- the generation registry (cas.tsv) --------------------------------------------- */

static void test_gens_round_trip(void **state)
{
    static const char text[] =
        "# kind\tgeneration\tserial\tnot-after\tstatus\tretired-at\trevoked-at\treason\n"
        "client\t1\t66174A6FFF242462D2E04350AECD149F\t2031-11-21T11:00:48Z\tretired\t"
        "2026-11-22T11:00:51Z\t2026-11-23T00:00:00Z\tcaCompromise\n"
        "server\t1\t71F6618444F522C61CEC47D527B7E9DA\t2031-11-21T11:00:48Z\tcurrent\t-\t-\t-\n"
        "client\t2\t64FFC3B372F8118BBF855C617B4E264B\t2031-11-21T11:00:48Z\tprevious\t-\t-\t-\n"
        "client\t3\t6247EC7E15B62DC8318F1018E437118F\t2031-11-21T11:00:49Z\tcurrent\t-\t-\t-\n";
    struct ct_gens gens = {NULL, 0, 0};
    struct ct_gen *g;
    char err[CT_ERR_MAX], *out = NULL;
    size_t len = 0;

    (void)state;
    if (ct_gens_parse(text, strlen(text), "cas.tsv", &gens, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(gens.n, 4);
    g = ct_gens_current(&gens, CT_KIND_CLIENT);
    assert_non_null(g);
    assert_int_equal(g->gen, 3);
    assert_int_equal(ct_gens_current(&gens, CT_KIND_SERVER)->gen, 1);
    g = ct_gens_find(&gens, CT_KIND_CLIENT, 1);
    assert_non_null(g);
    assert_int_equal(g->status, CT_GEN_RETIRED);
    assert_int_equal(g->retired_at, 1795345251);
    assert_int_equal(g->revoked_at, 1795392000);
    assert_int_equal(g->reason, CRL_REASON_CA_COMPROMISE);
    assert_string_equal(g->serial, "66174A6FFF242462D2E04350AECD149F");
    assert_int_equal(ct_gens_find(&gens, CT_KIND_CLIENT, 2)->status, CT_GEN_PREVIOUS);
    assert_null(ct_gens_find(&gens, CT_KIND_SERVER, 2));
    assert_int_equal(ct_gens_format(&gens, &out, &len, err, sizeof(err)), 0);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(out, text, len);
    assert_string_equal(ct_gen_status_name(CT_GEN_PREVIOUS), "previous");
    free(out);
    ct_gens_free(&gens);
    ct_gens_free(NULL);
}

static void test_gens_parse_errors(void **state)
{
#define GL(kind, gen, status, retired, revoked, reason) \
    kind "\t" gen "\tAB\t2031-01-01T00:00:00Z\t" status "\t" retired "\t" revoked "\t" reason "\n"
#define SRV GL("server", "1", "current", "-", "-", "-")
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {SRV, "cas.tsv: no current client generation"},
        {GL("client", "1", "current", "-", "-", "-"), "no current server generation"},
        {SRV GL("client", "1", "current", "-", "-", "-") GL("client", "2", "current", "-", "-", "-"),
         "cas.tsv:3: a second current client generation"},
        {SRV GL("client", "1", "current", "-", "-", "-") GL("client", "1", "previous", "-", "-", "-"),
         "cas.tsv:3: client generation 1 listed twice"},
        {SRV GL("cli", "1", "current", "-", "-", "-"), "cas.tsv:2: bad kind 'cli'"},
        {SRV GL("client", "0", "current", "-", "-", "-"), "bad generation '0'"},
        {SRV GL("client", "x", "current", "-", "-", "-"), "bad generation 'x'"},
        {SRV GL("client", "1", "active", "-", "-", "-"), "bad status 'active'"},
        {SRV GL("client", "1", "retired", "-", "-", "-"), "disagree"},
        {SRV GL("client", "1", "previous", "2026-01-01T00:00:00Z", "-", "-"), "disagree"},
        {SRV GL("client", "1", "retired", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "-"),
         "disagree"},
        {SRV GL("client", "1", "previous", "-", "2026-01-01T00:00:00Z", "superseded"),
         "a revoked generation must be retired"},
        {SRV GL("client", "1", "retired", "2026-01-01T00:00:00Z", "-", "bored"), "bad reason 'bored'"},
        {SRV GL("client", "1", "retired", "yesterday", "-", "-"), "bad retired-at or revoked-at"},
        {SRV "client\t1\tAB\t2031-01-01T00:00:00Z\tcurrent\t-\t-\n", "cas.tsv:2: expected 8"},
        {SRV "client\t1\tab\t2031-01-01T00:00:00Z\tcurrent\t-\t-\t-\n", "bad serial 'ab'"},
        {SRV "client\t1\tAB\t2031-01-01\tcurrent\t-\t-\t-\n", "bad not-after"},
        {SRV "client\t1\tAB\t2031-01-01T00:00:00Z\tcurrent\t-\t-\t-", "last line has no newline"},
    };
#undef SRV
#undef GL
    struct ct_gens gens;
    char err[CT_ERR_MAX];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (ct_gens_parse(bad[i].text, strlen(bad[i].text), "cas.tsv", &gens, err, sizeof(err)) == 0)
            fail_msg("case %zu parsed", i);
        assert_null(gens.v);
        assert_int_equal(gens.n, 0);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].why);
    }
}

static void test_gen_file_names(void **state)
{
    char buf[CT_REL_MAX];
    int kind = -1, gen = 0;

    (void)state;
    assert_string_equal(ct_gen_cert_rel(buf, CT_KIND_CLIENT, 2), "cas/client-ca.2.crt");
    assert_string_equal(ct_gen_key_rel(buf, CT_KIND_SERVER, 17), "private/server-ca.17.key");
    assert_string_equal(ct_chain_file(CT_KIND_SERVER), "server-chain.crt");
    assert_true(ct_gen_file_name("client-ca.2.crt", ".crt", &kind, &gen));
    assert_int_equal(kind, CT_KIND_CLIENT);
    assert_int_equal(gen, 2);
    assert_true(ct_gen_file_name("server-ca.17.key", ".key", &kind, &gen));
    assert_int_equal(kind, CT_KIND_SERVER);
    assert_int_equal(gen, 17);
    /* The current files, other names and malformed numbers are not generation files. */
    assert_false(ct_gen_file_name("client-ca.key", ".key", &kind, &gen));
    assert_false(ct_gen_file_name("client-ca.crt", ".crt", &kind, &gen));
    assert_false(ct_gen_file_name("root.key", ".key", &kind, &gen));
    assert_false(ct_gen_file_name("client-ca.2.crt", ".key", &kind, &gen));
    assert_false(ct_gen_file_name("client-ca.02.crt", ".crt", &kind, &gen));
    assert_false(ct_gen_file_name("client-ca.0.crt", ".crt", &kind, &gen));
    assert_false(ct_gen_file_name("client-ca..crt", ".crt", &kind, &gen));
    assert_false(ct_gen_file_name("client-ca.2x.crt", ".crt", &kind, &gen));
    assert_false(ct_gen_file_name(".client-ca.2.crt.tmp-abc", ".crt", &kind, &gen));
}

/* A registry entry holding a placeholder certificate (ct_pki_live only needs it non-NULL). */
static void add_gen(struct ct_pki *pki, enum ct_kind kind, int gen, enum ct_gen_status st)
{
    struct ct_gen g;
    char err[CT_ERR_MAX];

    memset(&g, 0, sizeof(g));
    g.kind = kind;
    g.gen = gen;
    g.status = st;
    g.reason = -1;
    snprintf(g.serial, sizeof(g.serial), "%X", gen);
    if (st != CT_GEN_CURRENT)
        g.ca.cert = X509_new();
    assert_int_equal(ct_gens_add(&pki->gens, &g, err, sizeof(err)), 0);
}

static void test_pki_live_order(void **state)
{
    struct ct_pki pki;
    struct ct_live_ca live[CT_LIVE_MAX];
    size_t n;

    (void)state;
    memset(&pki, 0, sizeof(pki));
    pki.lock_fd = -1;
    /* A PKI built by hand, without a registry: generation 1 only. */
    n = ct_pki_live(&pki, CT_KIND_CLIENT, live, CT_LIVE_MAX);
    assert_int_equal(n, 1);
    assert_int_equal(live[0].gen, 1);
    assert_true(live[0].current);
    assert_ptr_equal(live[0].ca, &pki.client_ca);
    assert_int_equal(ct_pki_current_gen(&pki, CT_KIND_SERVER), 1);

    add_gen(&pki, CT_KIND_CLIENT, 1, CT_GEN_PREVIOUS);
    add_gen(&pki, CT_KIND_CLIENT, 2, CT_GEN_RETIRED);
    add_gen(&pki, CT_KIND_SERVER, 1, CT_GEN_CURRENT);
    add_gen(&pki, CT_KIND_CLIENT, 3, CT_GEN_PREVIOUS);
    add_gen(&pki, CT_KIND_CLIENT, 5, CT_GEN_CURRENT);
    add_gen(&pki, CT_KIND_SERVER, 4, CT_GEN_PREVIOUS);
    add_gen(&pki, CT_KIND_CLIENT, 4, CT_GEN_PREVIOUS);
    assert_int_equal(ct_pki_current_gen(&pki, CT_KIND_CLIENT), 5);
    /* current first, then the previous ones newest first; never the retired one */
    n = ct_pki_live(&pki, CT_KIND_CLIENT, live, CT_LIVE_MAX);
    assert_int_equal(n, 4);
    assert_int_equal(live[0].gen, 5);
    assert_true(live[0].current);
    assert_ptr_equal(live[0].ca, &pki.client_ca);
    assert_int_equal(live[1].gen, 4);
    assert_int_equal(live[2].gen, 3);
    assert_int_equal(live[3].gen, 1);
    assert_false(live[3].current);
    assert_ptr_equal(live[3].ca, &pki.gens.v[0].ca);
    /* room for two: the current one and the newest previous */
    n = ct_pki_live(&pki, CT_KIND_CLIENT, live, 2);
    assert_int_equal(n, 2);
    assert_int_equal(live[1].gen, 4);
    n = ct_pki_live(&pki, CT_KIND_SERVER, live, CT_LIVE_MAX);
    assert_int_equal(n, 2);
    assert_ptr_equal(live[0].ca, &pki.server_ca);
    assert_int_equal(live[1].gen, 4);
    ct_pki_close(&pki); /* frees the registry and its certificates */
    assert_null(pki.gens.v);
}

static void test_reasons(void **state)
{
    (void)state;
    assert_int_equal(ct_reason_code("keyCompromise"), CRL_REASON_KEY_COMPROMISE);
    assert_int_equal(ct_reason_code("KEYCOMPROMISE"), CRL_REASON_KEY_COMPROMISE);
    assert_int_equal(ct_reason_code("superseded"), CRL_REASON_SUPERSEDED);
    assert_int_equal(ct_reason_code("privilegeWithdrawn"), CRL_REASON_PRIVILEGE_WITHDRAWN);
    assert_int_equal(ct_reason_code("certificateHold"), -1);
    assert_int_equal(ct_reason_code("removeFromCRL"), -1);
    assert_string_equal(ct_reason_name(CRL_REASON_CESSATION_OF_OPERATION), "cessationOfOperation");
    assert_null(ct_reason_name(CRL_REASON_CERTIFICATE_HOLD));
}

static void test_parse_kind_and_reason(void **state)
{
    enum ct_kind kind = CT_KIND_CLIENT;
    char err[CT_ERR_MAX];
    int code = 0;

    (void)state;
    assert_int_equal(ct_kind_parse("server", &kind), 0);
    assert_int_equal(kind, CT_KIND_SERVER);
    assert_int_equal(ct_kind_parse("client", &kind), 0);
    assert_int_equal(kind, CT_KIND_CLIENT);
    assert_int_equal(ct_kind_parse("Server", &kind), -1);
    assert_int_equal(ct_kind_parse("", &kind), -1);
    assert_int_equal(ct_reason_parse("caCompromise", &code, err, sizeof(err)), 0);
    assert_int_equal(code, CRL_REASON_CA_COMPROMISE);
    assert_int_equal(ct_reason_parse("certificateHold", &code, err, sizeof(err)), -1);
    assert_string_equal(err, "unknown reason 'certificateHold' (unspecified, keyCompromise, "
                             "caCompromise, affiliationChanged, superseded, cessationOfOperation, "
                             "privilegeWithdrawn)");
}

static void test_paths(void **state)
{
    char out[CT_PATH_MAX], err[CT_ERR_MAX], longdir[CT_PATH_MAX + 10];

    (void)state;
    assert_int_equal(ct_leaf_path(out, "pki", CT_KIND_CLIENT, "a", "pk8", err, sizeof(err)), 0);
    assert_string_equal(out, "pki/clients/a.pk8");
    assert_int_equal(ct_leaf_path(out, "pki", CT_KIND_SERVER, "db", "bundle.crt", err, sizeof(err)), 0);
    assert_string_equal(out, "pki/servers/db.bundle.crt");
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[sizeof(longdir) - 1] = '\0';
    assert_int_equal(ct_path(out, longdir, "root.crt", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "path too long"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_accepted),
        cmocka_unit_test(test_names_refused),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_list_append),
        cmocka_unit_test(test_txn_commit),
        cmocka_unit_test(test_txn_abort_leaves_nothing),
        cmocka_unit_test(test_txn_commit_refuses_directory_target),
        cmocka_unit_test(test_txn_commit_rollback),
        cmocka_unit_test(test_txn_write_failure_midway),
        cmocka_unit_test(test_txn_mkdir_rollback),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_pki_open_missing),
        cmocka_unit_test(test_index_round_trip),
        cmocka_unit_test(test_index_parse_errors),
        cmocka_unit_test(test_gens_round_trip),
        cmocka_unit_test(test_gens_parse_errors),
        cmocka_unit_test(test_gen_file_names),
        cmocka_unit_test(test_pki_live_order),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_parse_kind_and_reason),
        cmocka_unit_test(test_paths),
    };

    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
