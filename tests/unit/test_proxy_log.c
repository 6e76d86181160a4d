/*
 * test_proxy_log.c - the JSON form of the error and access logs (log.h):
 * absent numbers are null, counts are unsigned numbers, strings are escaped
 * and valid UTF-8 whatever the bytes given, and a message too long for one
 * line is cut inside its string so that the line stays one JSON object.
 *
 * The logger writes to files in a fresh directory under $TMPDIR (or /tmp);
 * the lines are read back and checked with a small JSON scanner (strings,
 * escapes, object end) and an UTF-8 check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

struct logdir {
    char dir[256];
    char access[300];
    char error[300];
};

static void logdir_make(struct logdir *d)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(d->dir, sizeof(d->dir), "%s/test_proxy_log.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->access, sizeof(d->access), "%s/access.log", d->dir);
    snprintf(d->error, sizeof(d->error), "%s/error.log", d->dir);
}

static void logdir_remove(const struct logdir *d)
{
    unlink(d->access);
    unlink(d->error);
    rmdir(d->dir);
}

/* The whole file, NUL-terminated (the caller frees). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* 1 when p[0..n) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
static int utf8_ok(const unsigned char *p, size_t n)
{
    size_t i = 0, k, len;
    uint32_t cp;

    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if ((p[i] & 0xe0) == 0xc0) {
            len = 2;
            cp = p[i] & 0x1f;
        } else if ((p[i] & 0xf0) == 0xe0) {
            len = 3;
            cp = p[i] & 0x0f;
        } else if ((p[i] & 0xf8) == 0xf0) {
            len = 4;
            cp = p[i] & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        i += len;
    }
    return 1;
}

/*
 * A flat JSON object of string, number and null values, as log.c writes
 * it: {"k":"v","k":123,"k":null}. Returns 1 when line[0..n) is exactly one.
 */
static int json_flat_object_ok(const char *line, size_t n)
{
    size_t i = 0;
    int want_key = 1;

    if (n < 2 || line[0] != '{' || line[n - 1] != '}')
        return 0;
    i = 1;
    while (i < n - 1) {
        if (line[i] != '"')
            return 0;
        for (i++; i < n - 1 && line[i] != '"'; i++) {
            if ((unsigned char)line[i] < 0x20)
                return 0;
            if (line[i] != '\\')
                continue;
            i++;
            if (i >= n - 1)
                return 0;
            if (line[i] == 'u') {
                size_t k;

                for (k = 1; k <= 4; k++)
                    if (i + k >= n - 1 || !strchr("0123456789abcdefABCDEF", line[i + k]))
                        return 0;
                i += 4;
            } else if (!strchr("\"\\/bfnrt", line[i])) {
                return 0;
            }
        }
        if (i >= n - 1)
            return 0; /* unterminated string */
        i++;
        if (want_key) {
            if (line[i] != ':')
                return 0;
            i++;
            want_key = 0;
            if (line[i] == '"')
                continue; /* the value, a string */
            if (strncmp(line + i, "null", 4) == 0) {
                i += 4;
            } else {
                if (line[i] < '0' || line[i] > '9')
                    return 0;
                while (line[i] >= '0' && line[i] <= '9')
                    i++;
            }
        }
        want_key = 1;
        if (i == n - 1)
            return 1;
        if (line[i] != ',')
            return 0;
        i++;
    }
    return 0;
}

/* Checks every line of buf; returns how many there were. */
static size_t check_lines(const char *buf, size_t len)
{
    const char *p = buf, *nl;
    size_t lines = 0;

    assert_true(utf8_ok((const unsigned char *)buf, len));
    while (p < buf + len) {
        nl = memchr(p, '\n', (size_t)(buf + len - p));
        assert_non_null(nl);
        if (!json_flat_object_ok(p, (size_t)(nl - p)))
            fail_msg("not one flat JSON object: %.*s", (int)(nl - p), p);
        p = nl + 1;
        lines++;
    }
    return lines;
}

static void start_json(const struct logdir *d)
{
    struct gw_log_opts o = {d->access, d->error, CFG_LOG_JSON, CFG_LOG_DEBUG};
    char err[256];

    if (gw_log_start(&o, err, sizeof(err)) != 0)
        fail_msg("gw_log_start: %s", err);
}

static void test_access_json_nulls_and_numbers(void **state)
{
    struct logdir d;
    struct gw_access_rec refused = {
        .client = "127.0.0.1:5555", .cn = "attestor2", .identity = "svc-attestor-2",
        .method = "POST", .path = "/admin", .status = 403, .bytes = 134,
        .upstream_ms = -1, .total_ms = 0, .tls_version = "TLSv1.3",
        .request_id = "0123456789abcdef0123456789abcdef",
    };
    struct gw_access_rec proxied = {
        .client = "[::1]:5556", .cn = "caf\xc3\xa9", .identity = NULL, .method = "GET",
        .path = "/q\"\\x", .status = 200, .bytes = UINT64_MAX, .upstream_ms = 7,
        .total_ms = 9, .tls_version = "TLSv1.2", .request_id = NULL,
    };
    char *buf;
    size_t len;

    (void)state;
    logdir_make(&d);
    start_json(&d);
    gw_log_access(NULL, &refused);
    gw_log_access(NULL, &proxied);
    gw_log_stop();
    buf = slurp(d.access, &len);
    assert_int_equal(check_lines(buf, len), 2);
    assert_non_null(strstr(buf, "\"status\":403,\"bytes\":134,\"upstream_ms\":null,\"total_ms\":0,"));
    assert_null(strstr(buf, "\"upstream_ms\":\"-\""));
    assert_non_null(strstr(buf, "\"bytes\":18446744073709551615,\"upstream_ms\":7,\"total_ms\":9,"));
    assert_non_null(strstr(buf, "\"cn\":\"caf\xc3\xa9\",\"identity\":\"-\","));
    assert_non_null(strstr(buf, "\"path\":\"/q\\\"\\\\x\","));
    assert_non_null(strstr(buf, "\"request_id\":\"-\"}"));
    free(buf);
    logdir_remove(&d);
}

static void test_error_json_bytes_and_cut(void **state)
{
    struct logdir d;
    char big[5000];
    char *buf, *p;
    size_t len;

    (void)state;
    /* Every byte that needs an escape, and ill-formed UTF-8: a stray
     * continuation, an overlong '/', a surrogate, a lead byte cut by the end. */
    logdir_make(&d);
    start_json(&d);
    gw_log(NULL, CFG_LOG_WARN, 42, "ctl \x01\x1f\x7f tab\t quote\" bs\\ "
           "bad \x80 \xc0\xaf \xed\xa0\x80 ok \xe2\x82\xac end \xe2");
    /* A message longer than a line, made only of bytes that escape to 6 or
     * 2 bytes: the cut must fall between escapes and leave the object closed. */
    memset(big, '\x01', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    gw_log(NULL, CFG_LOG_ERROR, 0, "%s", big);
    memset(big, '"', sizeof(big) - 1);
    gw_log(NULL, CFG_LOG_ERROR, UINT64_MAX, "%s", big);
    gw_log_stop();
    buf = slurp(d.error, &len);
    assert_int_equal(check_lines(buf, len), 3);
    assert_non_null(strstr(buf, "\"conn\":42,\"msg\":\"ctl \\u0001\\u001f\\u007f tab\\u0009 "
                                "quote\\\" bs\\\\ bad \\ufffd \\ufffd\\ufffd "
                                "\\ufffd\\ufffd\\ufffd ok \xe2\x82\xac end \\ufffd\"}\n"));
    assert_non_null(strstr(buf, "\"conn\":0,\"msg\":\"\\u0001\\u0001"));
    assert_non_null(strstr(buf, "\"conn\":18446744073709551615,\"msg\":\"\\\"\\\""));
    for (p = buf; (p = strchr(p, '\n')) != NULL; p++)
        assert_true(p == buf + len - 1 || p[1] == '{');
    free(buf);
    logdir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_json_nulls_and_numbers),
        cmocka_unit_test(test_error_json_bytes_and_cut),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
