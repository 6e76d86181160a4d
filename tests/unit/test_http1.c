/*
 * test_http1.c - the strict HTTP/1.1 parser and chunked decoder, as tables
 * of accepted and rejected inputs with their expected results. Every
 * chunked input is fed whole, split in two at every position, and byte by
 * byte; each piece lives in its own exact-size heap block so that a read
 * past len is an ASan error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http1.h"

#define S(x) x, sizeof(x) - 1
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAXH 8192

/* Fails the test naming the case when got != want. */
#define CHECK_EQ(name, got, want)                                                  \
    do {                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                   \
        if (g_ != w_)                                                              \
            fail_msg("case '%s': %s = %lld, want %lld", (name), #got, g_, w_);      \
    } while (0)

/* A heap copy of exactly len bytes (ASan catches any read past it). */
static char *dup_exact(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);

    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

struct req_case {
    const char *name;
    const char *raw;
    size_t len;
    enum http1_result want;
    enum http1_body body;
    uint64_t cl;
    int keep_alive;
};

#define H11 "GET / HTTP/1.1\r\nHost: a\r\n"
#define P11 "POST /x HTTP/1.1\r\nHost: a\r\n"

static const struct req_case req_cases[] = {
    /* accepted */
    { "simple 1.1", S(H11 "\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "1.0 without Host", S("GET / HTTP/1.0\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 0 },
    { "1.0 keep-alive", S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "1.0 keep-alive and close", S("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_NONE, 0, 0 },
    { "1.1 close", S(H11 "Connection: close\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 0 },
    { "1.1 close in a list", S(H11 "Connection: Keep-Alive ,CLOSE\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_NONE, 0, 0 },
    { "1.1 second Connection header", S(H11 "Connection: x-a\r\nConnection: close\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_NONE, 0, 0 },
    { "Connection empty elements", S(H11 "Connection: , upgrade ,\r\nUpgrade: x\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "POST CL 5", S(P11 "Content-Length: 5\r\n\r\nhello"), HTTP1_OK, HTTP1_BODY_LENGTH, 5, 1 },
    { "CL 0", S(P11 "Content-Length: 0\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "CL leading zeros", S(P11 "content-length: 005\r\n\r\n"), HTTP1_OK, HTTP1_BODY_LENGTH, 5, 1 },
    { "CL with OWS", S(P11 "Content-Length: \t 7 \t\r\n\r\n"), HTTP1_OK, HTTP1_BODY_LENGTH, 7, 1 },
    { "CL INT64_MAX", S(P11 "Content-Length: 9223372036854775807\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_LENGTH, UINT64_C(9223372036854775807), 1 },
    { "TE chunked", S(P11 "Transfer-Encoding: chunked\r\n\r\n"), HTTP1_OK, HTTP1_BODY_CHUNKED, 0, 1 },
    { "TE Chunked with OWS", S(P11 "transfer-encoding:  Chunked \r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_CHUNKED, 0, 1 },
    { "absolute-form", S("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "absolute-form https no path", S("GET HTTPS://example.com:8443 HTTP/1.1\r\nHost: x\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "asterisk-form", S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "lowercase method is a token", S("get / HTTP/1.1\r\nHost: a\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "extension method", S("PURGE /a HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "leading empty lines", S("\r\n\r\n" H11 "\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "obs-text in value", S(H11 "X-A: caf\xc3\xa9\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "HTAB in value", S(H11 "X-A: a\tb\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "empty value", S(H11 "X-Empty:\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "empty Host", S("GET / HTTP/1.1\r\nHost:\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "IPv6 Host", S("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"), HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },
    { "query with odd chars", S("GET /a?b=c&d=%20|{} HTTP/1.1\r\nHost: a\r\n\r\n"),
      HTTP1_OK, HTTP1_BODY_NONE, 0, 1 },

    /* framing: the smuggling classics */
    { "CL + TE", S(P11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE + CL", S(P11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE chunked, identity", S(P11 "Transfer-Encoding: chunked, identity\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE identity", S(P11 "Transfer-Encoding: identity\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE gzip only", S(P11 "Transfer-Encoding: gzip\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE gzip, chunked", S(P11 "Transfer-Encoding: gzip, chunked\r\n\r\n"),
      HTTP1_E_NOT_IMPLEMENTED, 0, 0, 0 },
    { "TE chunked twice in one", S(P11 "Transfer-Encoding: chunked, chunked\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE chunked in two headers",
      S(P11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE chunked then gzip header",
      S(P11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE trailing comma", S(P11 "Transfer-Encoding: chunked,\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE empty", S(P11 "Transfer-Encoding:\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE with parameter", S(P11 "Transfer-Encoding: chunked;q=1\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE quoted", S(P11 "Transfer-Encoding: \"chunked\"\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE xchunked", S(P11 "Transfer-Encoding: xchunked\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE space before colon", S(P11 "Transfer-Encoding : chunked\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE tab before colon", S(P11 "Transfer-Encoding\t: chunked\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE in HTTP/1.0", S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL space before colon", S(P11 "Content-Length : 5\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL +5", S(P11 "Content-Length: +5\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL -1", S(P11 "Content-Length: -1\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL 0x5", S(P11 "Content-Length: 0x5\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL 5, 5", S(P11 "Content-Length: 5, 5\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL 5 5", S(P11 "Content-Length: 5 5\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL empty", S(P11 "Content-Length:\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL 5.0", S(P11 "Content-Length: 5.0\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL above INT64_MAX", S(P11 "Content-Length: 9223372036854775808\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL overflow", S(P11 "Content-Length: 184467440737095516160\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "duplicate CL equal", S(P11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "duplicate CL different", S(P11 "Content-Length: 5\r\ncontent-length: 6\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },

    /* header syntax */
    { "obs-fold", S(H11 "X-A: a\r\n b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "obs-fold with HTAB", S(H11 "X-A: a\r\n\tb\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "SP before the first header", S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "NUL in value", S(H11 "X-A: a\0b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "NUL in name", S(H11 "X-\0A: b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "NUL in target", S("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "bare CR in value", S(H11 "X-A: a\rb\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "bare CR as line end", S(H11 "X-A: a\rX-B: b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "bare CR in request line", S("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "bare LF header line", S(H11 "X-A: a\nX-B: b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "bare LF request line", S("GET / HTTP/1.1\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "bare LF final line", S(H11 "\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "bare LF everywhere", S("GET / HTTP/1.1\nHost: a\n\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "leading bare LF", S("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "DEL in value", S(H11 "X-A: a\x7f\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CTL in value", S(H11 "X-A: a\x01\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "VT in value", S(H11 "X-A: a\x0b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "no colon", S(H11 "X-A\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "empty name", S(H11 ": b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "non-token name", S(H11 "X(A): b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "obs-text in name", S(H11 "X-\xc3\xa9: b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "Connection not a token list", S(H11 "Connection: close;x\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },

    /* request line */
    { "double SP after method", S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "double SP after target", S("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "trailing SP", S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "leading SP", S(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "HTAB separator", S("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "non-token method", S("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "no version", S("GET /\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "no target", S("GET HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "HTTP/1.2", S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), HTTP1_E_VERSION, 0, 0, 0 },
    { "HTTP/2.0", S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), HTTP1_E_VERSION, 0, 0, 0 },
    { "HTTP/0.9", S("GET / HTTP/0.9\r\n\r\n"), HTTP1_E_VERSION, 0, 0, 0 },
    { "lowercase http/1.1", S("GET / http/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "HTTP/1.10", S("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "HTTP/1", S("GET / HTTP/1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "HTTP/11.1", S("GET / HTTP/11.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "HTTP/1.x", S("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "fragment in target", S("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "obs-text in target", S("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "relative target", S("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "asterisk with GET", S("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "authority-form with GET", S("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "absolute-form empty authority", S("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "absolute-form userinfo", S("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "absolute-form other scheme", S("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CONNECT", S("CONNECT db:443 HTTP/1.1\r\nHost: db:443\r\n\r\n"),
      HTTP1_E_NOT_IMPLEMENTED, 0, 0, 0 },

    /* Host */
    { "1.1 without Host", S("GET / HTTP/1.1\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "two Hosts", S(H11 "Host: a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "two Hosts in 1.0", S("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "Host with space", S("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "Host with slash", S("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "Host with userinfo", S("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), HTTP1_E_BAD_REQUEST, 0, 0, 0 },
};

static void test_request_table(void **state)
{
    struct http1_head head;
    size_t i;

    (void)state;
    for (i = 0; i < NELEM(req_cases); i++) {
        const struct req_case *c = &req_cases[i];
        char *buf = dup_exact(c->raw, c->len);
        enum http1_result r = http1_parse_request(buf, c->len, MAXH, &head);

        CHECK_EQ(c->name, r, c->want);
        if (r == HTTP1_OK) {
            CHECK_EQ(c->name, head.body, c->body);
            CHECK_EQ(c->name, head.content_length, c->cl);
            CHECK_EQ(c->name, head.keep_alive, c->keep_alive);
            if (head.head_len > c->len)
                fail_msg("case '%s': head_len %zu > len %zu", c->name, head.head_len, c->len);
            if (memcmp(c->raw + head.head_len - 4, "\r\n\r\n", 4) != 0)
                fail_msg("case '%s': head_len does not end at the empty line", c->name);
        }
        free(buf);
    }
}

/* Every strict prefix of an accepted head is INCOMPLETE, never an error. */
static void test_request_prefixes(void **state)
{
    struct http1_head head;
    size_t i, n;

    (void)state;
    for (i = 0; i < NELEM(req_cases); i++) {
        const struct req_case *c = &req_cases[i];
        size_t hl;

        if (c->want != HTTP1_OK)
            continue;
        assert_int_equal(http1_parse_request(c->raw, c->len, MAXH, &head), HTTP1_OK);
        hl = head.head_len;
        for (n = 0; n < hl; n++) {
            char *buf = dup_exact(c->raw, n);

            CHECK_EQ(c->name, http1_parse_request(n ? buf : NULL, n, MAXH, &head),
                     HTTP1_INCOMPLETE);
            free(buf);
        }
    }
}

static void test_request_fields(void **state)
{
    static const char raw[] =
        "POST /api/v1?q=1 HTTP/1.1\r\n"
        "Host:  db.example:8080 \r\n"
        "X-Trim:\t a b \t\r\n"
        "Expect: 100-Continue\r\n"
        "Content-Length: 12\r\n"
        "\r\n"
        "hello world!";
    struct http1_head head;

    (void)state;
    assert_int_equal(http1_parse_request(raw, sizeof(raw) - 1, MAXH, &head), HTTP1_OK);
    assert_int_equal(head.method_len, 4);
    assert_memory_equal(head.method, "POST", 4);
    assert_int_equal(head.target_len, 11);
    assert_memory_equal(head.target, "/api/v1?q=1", 11);
    assert_int_equal(head.target_form, HTTP1_TARGET_ORIGIN);
    assert_ptr_equal(head.path, head.target);
    assert_int_equal(head.minor_version, 1);
    assert_int_equal(head.n_headers, 4);
    assert_int_equal(head.host_len, 15);
    assert_memory_equal(head.host, "db.example:8080", 15);
    assert_int_equal(head.headers[1].name_len, 6);
    assert_memory_equal(head.headers[1].value, "a b", 3);
    assert_int_equal(head.headers[1].value_len, 3);
    assert_true(head.expect_continue);
    assert_int_equal(head.body, HTTP1_BODY_LENGTH);
    assert_int_equal(head.content_length, 12);
    assert_int_equal(head.head_len, sizeof(raw) - 1 - 12);
    assert_false(head.upgrade);

    /* absolute-form: the path is what follows the authority */
    {
        static const char abs[] = "GET http://h:1/p/q?x HTTP/1.1\r\nHost: h:1\r\n\r\n";

        assert_int_equal(http1_parse_request(abs, sizeof(abs) - 1, MAXH, &head), HTTP1_OK);
        assert_int_equal(head.target_form, HTTP1_TARGET_ABSOLUTE);
        assert_int_equal(head.path_len, 6);
        assert_memory_equal(head.path, "/p/q?x", 6);
    }
    {
        static const char abs[] = "GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n";

        assert_int_equal(http1_parse_request(abs, sizeof(abs) - 1, MAXH, &head), HTTP1_OK);
        assert_int_equal(head.path_len, 2);
        assert_memory_equal(head.path, "?x", 2);
    }
    {
        static const char ast[] = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";

        assert_int_equal(http1_parse_request(ast, sizeof(ast) - 1, MAXH, &head), HTTP1_OK);
        assert_int_equal(head.target_form, HTTP1_TARGET_ASTERISK);
        assert_int_equal(head.path_len, 1);
    }
    /* Expect in HTTP/1.0 is ignored (RFC 9110 §10.1.1). */
    {
        static const char e10[] = "POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n";

        assert_int_equal(http1_parse_request(e10, sizeof(e10) - 1, MAXH, &head), HTTP1_OK);
        assert_false(head.expect_continue);
        assert_null(head.host);
    }
}

/* The head limit: exactly max_head bytes fit; one more is 431. */
static void test_request_limits(void **state)
{
    static const char raw[] = "GET /abc HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789\r\n\r\nGET";
    const size_t hl = sizeof(raw) - 1 - 3;
    struct http1_head head;
    char *buf = dup_exact(raw, sizeof(raw) - 1);

    (void)state;
    assert_int_equal(http1_parse_request(buf, sizeof(raw) - 1, hl, &head), HTTP1_OK);
    assert_int_equal(head.head_len, hl);
    assert_int_equal(http1_parse_request(buf, hl, hl, &head), HTTP1_OK);
    assert_int_equal(http1_parse_request(buf, hl, hl - 1, &head), HTTP1_E_TOO_LARGE);
    assert_int_equal(http1_parse_request(buf, sizeof(raw) - 1, hl - 1, &head), HTTP1_E_TOO_LARGE);
    assert_int_equal(http1_parse_request(buf, hl - 1, hl, &head), HTTP1_INCOMPLETE);
    assert_int_equal(http1_parse_request(buf, hl - 1, hl - 1, &head), HTTP1_E_TOO_LARGE);
    assert_int_equal(http1_parse_request(buf, hl - 2, hl - 1, &head), HTTP1_INCOMPLETE);
    assert_int_equal(http1_parse_request(buf, 10, 10, &head), HTTP1_E_TOO_LARGE);
    assert_int_equal(http1_parse_request(NULL, 0, 10, &head), HTTP1_INCOMPLETE);
    assert_int_equal(http1_parse_request(NULL, 0, 0, &head), HTTP1_E_TOO_LARGE);
    /* an error in the complete lines wins over INCOMPLETE */
    assert_int_equal(http1_parse_request(S("GET / HTTP/1.1\r\nX-A: \0"), MAXH, &head),
                     HTTP1_INCOMPLETE);
    assert_int_equal(http1_parse_request(S("GET / HTTP/1.1\r\nX-A: \0\r\n"), MAXH, &head),
                     HTTP1_E_BAD_REQUEST);
    assert_int_equal(http1_parse_request(S("GET / HTTP/1.1\nX"), MAXH, &head),
                     HTTP1_E_BAD_REQUEST);
    free(buf);
}

/* Builds a request with n X-N headers plus Host; returns its length. */
static size_t many_headers(char *out, size_t cap, int n)
{
    size_t len = 0;
    int i;

    len += (size_t)snprintf(out + len, cap - len, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "X-%d: v\r\n", i);
    len += (size_t)snprintf(out + len, cap - len, "\r\n");
    assert_true(len < cap);
    return len;
}

static void test_request_header_count(void **state)
{
    char buf[4096];
    struct http1_head head;
    size_t len;

    (void)state;
    len = many_headers(buf, sizeof(buf), HTTP1_MAX_HEADERS - 1);
    assert_int_equal(http1_parse_request(buf, len, MAXH, &head), HTTP1_OK);
    assert_int_equal(head.n_headers, HTTP1_MAX_HEADERS);
    len = many_headers(buf, sizeof(buf), HTTP1_MAX_HEADERS);
    assert_int_equal(http1_parse_request(buf, len, MAXH, &head), HTTP1_E_TOO_LARGE);
    len = many_headers(buf, sizeof(buf), 150);
    assert_int_equal(http1_parse_request(buf, len, MAXH, &head), HTTP1_E_TOO_LARGE);
}

/* Two requests in one buffer parse as two; head_len is exact. */
static void test_request_pipelined(void **state)
{
    static const char raw[] =
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    const size_t first = 48, second = 28;
    struct http1_head head;
    size_t off = 0, len = sizeof(raw) - 1;

    (void)state;
    assert_int_equal(http1_parse_request(raw, len, MAXH, &head), HTTP1_OK);
    assert_int_equal(head.head_len, first);
    assert_int_equal(head.body, HTTP1_BODY_LENGTH);
    assert_memory_equal(head.target, "/a", 2);
    off = head.head_len + head.content_length;
    assert_int_equal(http1_parse_request(raw + off, len - off, MAXH, &head), HTTP1_OK);
    assert_int_equal(head.head_len, second);
    assert_memory_equal(head.target, "/b", 2);
    assert_true(head.keep_alive);
    off += head.head_len;
    assert_int_equal(http1_parse_request(raw + off, len - off, MAXH, &head), HTTP1_OK);
    assert_memory_equal(head.target, "/c", 2);
    assert_false(head.keep_alive);
    assert_int_equal(off + head.head_len, len);
}

/* ------------------------------------------------------------------ */
/* Responses                                                          */

struct resp_case {
    const char *name;
    const char *raw;
    size_t len;
    const char *method;
    enum http1_result want;
    enum http1_body body;
    int status;
    int keep_alive;
};

static const struct resp_case resp_cases[] = {
    { "200 CL", S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), "GET",
      HTTP1_OK, HTTP1_BODY_LENGTH, 200, 1 },
    { "200 until close", S("HTTP/1.1 200 OK\r\n\r\n"), "GET", HTTP1_OK, HTTP1_BODY_UNTIL_CLOSE, 200, 0 },
    { "200 CL 0", S("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), "GET",
      HTTP1_OK, HTTP1_BODY_NONE, 200, 1 },
    { "empty reason", S("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"), "GET",
      HTTP1_OK, HTTP1_BODY_NONE, 200, 1 },
    { "no reason no SP", S("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), NULL,
      HTTP1_OK, HTTP1_BODY_NONE, 200, 1 },
    { "reason with SP and obs-text", S("HTTP/1.1 404 Not  Found \xe2\x9c\x97\r\nContent-Length: 0\r\n\r\n"),
      "GET", HTTP1_OK, HTTP1_BODY_NONE, 404, 1 },
    { "chunked", S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET",
      HTTP1_OK, HTTP1_BODY_CHUNKED, 200, 1 },
    { "204 with CL ignored", S("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"), "GET",
      HTTP1_OK, HTTP1_BODY_NONE, 204, 1 },
    { "304", S("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"), "GET",
      HTTP1_OK, HTTP1_BODY_NONE, 304, 1 },
    { "204 with TE ignored", S("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET",
      HTTP1_OK, HTTP1_BODY_NONE, 204, 1 },
    { "100 Continue", S("HTTP/1.1 100 Continue\r\n\r\n"), "POST", HTTP1_OK, HTTP1_BODY_NONE, 100, 1 },
    { "101", S("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"),
      "GET", HTTP1_OK, HTTP1_BODY_NONE, 101, 1 },
    { "HEAD with CL", S("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), "HEAD",
      HTTP1_OK, HTTP1_BODY_NONE, 200, 1 },
    { "HEAD with chunked", S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "HEAD",
      HTTP1_OK, HTTP1_BODY_NONE, 200, 1 },
    { "HEAD without framing", S("HTTP/1.1 200 OK\r\n\r\n"), "HEAD", HTTP1_OK, HTTP1_BODY_NONE, 200, 1 },
    { "1.0 CL", S("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n"), "GET",
      HTTP1_OK, HTTP1_BODY_LENGTH, 200, 0 },
    { "1.0 keep-alive", S("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n"),
      "GET", HTTP1_OK, HTTP1_BODY_LENGTH, 200, 1 },
    { "1.1 close", S("HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 3\r\n\r\n"),
      "GET", HTTP1_OK, HTTP1_BODY_LENGTH, 500, 0 },
    { "599", S("HTTP/1.1 599 x\r\nContent-Length: 0\r\n\r\n"), "GET", HTTP1_OK, HTTP1_BODY_NONE, 599, 1 },

    { "CL + TE", S("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
      "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "CL + TE on HEAD", S("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
      "HEAD", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "duplicate CL", S("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
      "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "bad CL", S("HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE gzip", S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), "GET",
      HTTP1_E_NOT_IMPLEMENTED, 0, 0, 0 },
    { "TE gzip, chunked", S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), "GET",
      HTTP1_E_NOT_IMPLEMENTED, 0, 0, 0 },
    { "TE chunked twice", S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), "GET",
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "TE in 1.0", S("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET",
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "status 099", S("HTTP/1.1 099 x\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "status 600", S("HTTP/1.1 600 x\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "status 2 digits", S("HTTP/1.1 20 OK\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "status 4 digits", S("HTTP/1.1 2000 OK\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "status letters", S("HTTP/1.1 2x0 OK\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "no status", S("HTTP/1.1\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "HTTP/1.2", S("HTTP/1.2 200 OK\r\n\r\n"), "GET", HTTP1_E_VERSION, 0, 0, 0 },
    { "HTTP/2.0 short", S("HTTP/2.0\r\n\r\n"), "GET", HTTP1_E_VERSION, 0, 0, 0 },
    { "HTTP/2", S("HTTP/2 200\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "lowercase http", S("http/1.1 200 OK\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "bare LF", S("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "NUL in reason", S("HTTP/1.1 200 O\0K\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "obs-fold", S("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "leading empty line", S("\r\nHTTP/1.1 200 OK\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "junk", S("SSH-2.0-OpenSSH\r\n\r\n"), "GET", HTTP1_E_BAD_REQUEST, 0, 0, 0 },
    { "Host is not checked in responses", S("HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\nContent-Length: 0\r\n\r\n"),
      "GET", HTTP1_OK, HTTP1_BODY_NONE, 200, 1 },
    { "Connection not a token list", S("HTTP/1.1 200 OK\r\nConnection: a b\r\n\r\n"), "GET",
      HTTP1_E_BAD_REQUEST, 0, 0, 0 },
};

static void test_response_table(void **state)
{
    struct http1_head head;
    size_t i, n;

    (void)state;
    for (i = 0; i < NELEM(resp_cases); i++) {
        const struct resp_case *c = &resp_cases[i];
        char *buf = dup_exact(c->raw, c->len);
        size_t ml = c->method ? strlen(c->method) : 0;
        enum http1_result r = http1_parse_response(buf, c->len, MAXH, c->method, ml, &head);

        CHECK_EQ(c->name, r, c->want);
        if (r == HTTP1_OK) {
            CHECK_EQ(c->name, head.body, c->body);
            CHECK_EQ(c->name, head.status, c->status);
            CHECK_EQ(c->name, head.keep_alive, c->keep_alive);
            for (n = 0; n < head.head_len; n++)
                CHECK_EQ(c->name, http1_parse_response(buf, n, MAXH, c->method, ml, &head),
                         HTTP1_INCOMPLETE);
        }
        free(buf);
    }
}

static void test_response_fields(void **state)
{
    static const char raw[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc";
    static const char none[] = "HTTP/1.1 200\r\n\r\n";
    struct http1_head head;

    (void)state;
    assert_int_equal(http1_parse_response(raw, sizeof(raw) - 1, MAXH, "GET", 3, &head), HTTP1_OK);
    assert_int_equal(head.reason_len, 9);
    assert_memory_equal(head.reason, "Not Found", 9);
    assert_int_equal(head.content_length, 3);
    assert_int_equal(head.head_len, sizeof(raw) - 1 - 3);
    assert_int_equal(http1_parse_response(none, sizeof(none) - 1, MAXH, "GET", 3, &head), HTTP1_OK);
    assert_int_equal(head.reason_len, 0);
    assert_int_equal(http1_parse_response(raw, 20, 20, "GET", 3, &head), HTTP1_E_TOO_LARGE);
    assert_int_equal(http1_parse_response(raw, 20, 21, "GET", 3, &head), HTTP1_INCOMPLETE);
    /* "HEAD" is case-sensitive: a "head" request is another method */
    assert_int_equal(http1_parse_response(raw, sizeof(raw) - 1, MAXH, "head", 4, &head), HTTP1_OK);
    assert_int_equal(head.body, HTTP1_BODY_LENGTH);
}

/* ------------------------------------------------------------------ */
/* Chunked                                                            */

struct chunk_case {
    const char *name;
    const char *raw;
    size_t len;
    enum http1_chunk_result want;  /* after all input: DONE, ERROR or MORE */
    const char *data;
    size_t data_len;
    size_t end;                    /* DONE: stream offset after the final CRLF */
};

#define D(x) x, sizeof(x) - 1

static const struct chunk_case chunk_cases[] = {
    { "one chunk", S("5\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_DONE, D("hello"), 15 },
    { "two chunks", S("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), HTTP1_CHUNK_DONE, D("abcde"), 20 },
    { "empty body", S("0\r\n\r\n"), HTTP1_CHUNK_DONE, D(""), 5 },
    { "hex upper", S("A\r\n0123456789\r\n0\r\n\r\n"), HTTP1_CHUNK_DONE, D("0123456789"), 20 },
    { "hex lower", S("a\r\n0123456789\r\n0\r\n\r\n"), HTTP1_CHUNK_DONE, D("0123456789"), 20 },
    { "leading zeros", S("0005\r\nhello\r\n000\r\n\r\n"), HTTP1_CHUNK_DONE, D("hello"), 20 },
    { "15 digits", S("000000000000005\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_DONE, D("hello"), 29 },
    { "binary data", S("4\r\n\r\n\0\n\r\n0\r\n\r\n"), HTTP1_CHUNK_DONE, D("\r\n\0\n"), 14 },
    { "extension", S("5;name=value\r\nhello\r\n0;x\r\n\r\n"), HTTP1_CHUNK_DONE, D("hello"), 28 },
    { "extensions quoted", S("5;a=\"b c\\\"d\";e\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_DONE, D("hello"), 28 },
    { "extension BWS", S("5 ;a = b ; c\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_DONE, D("hello"), 26 },
    { "trailers", S("2\r\nhi\r\n0\r\nX-T: 1\r\nY:\r\n\r\n"), HTTP1_CHUNK_DONE, D("hi"), 24 },
    { "next message after DONE", S("1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), HTTP1_CHUNK_DONE, D("x"), 11 },
    { "incomplete: no final CRLF", S("5\r\nhello\r\n0\r\n"), HTTP1_CHUNK_MORE, D("hello"), 0 },
    { "incomplete: mid data", S("5\r\nhel"), HTTP1_CHUNK_MORE, D("hel"), 0 },
    { "incomplete: final CR", S("0\r\n\r"), HTTP1_CHUNK_MORE, D(""), 0 },
    { "incomplete: in trailer", S("0\r\nX: y"), HTTP1_CHUNK_MORE, D(""), 0 },

    { "16 digits", S("0000000000000005\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "no digits", S("\r\nhello\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "minus", S("-5\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "plus", S("+5\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "0x prefix", S("0x5\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "leading SP", S(" 5\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "trailing SP", S("5 \r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "non-hex", S("5g\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "bare LF after size", S("5\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "bare CR after size", S("5\rhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "bare LF after data", S("5\r\nhello\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D("hello"), 0 },
    { "data longer than size", S("5\r\nhelloX\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D("hello"), 0 },
    { "data shorter than size", S("5\r\nhell\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D("hell\r"), 0 },
    { "empty extension", S("5;\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "extension without name", S("5;=x\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "extension empty value", S("5;a=\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "extension bare LF", S("5;a=b\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "extension LF in quotes", S("5;a=\"\n\"\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "extension CR in quotes", S("5;a=\"\r\"\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "extension NUL", S("5;a\0\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "extension junk after quote", S("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "trailer obs-fold", S("0\r\nX: 1\r\n 2\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "trailer bare LF", S("0\r\nX: 1\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "trailer no colon", S("0\r\nX\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "trailer SP before colon", S("0\r\nX : 1\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "trailer NUL", S("0\r\nX: \0\r\n\r\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "final bare LF", S("0\r\n\n"), HTTP1_CHUNK_ERROR, D(""), 0 },
    { "final CR junk", S("0\r\n\rX"), HTTP1_CHUNK_ERROR, D(""), 0 },
};

struct decoded {
    enum http1_chunk_result res;
    char data[256];
    size_t data_len;
    size_t end;        /* stream offset where DONE/ERROR happened */
};

/*
 * Feeds raw[0..len) to a fresh decoder in pieces ending at cuts[] (the
 * last piece ends at len), each piece in its own exact-size heap block,
 * checking the span invariants on every call.
 */
static void decode_pieces(const char *name, const char *raw, size_t len, const size_t *cuts,
                          size_t ncuts, size_t max_trailer, struct decoded *out)
{
    struct http1_chunked st;
    size_t start = 0, k;

    http1_chunked_init(&st);
    st.max_trailer = max_trailer;
    out->res = HTTP1_CHUNK_MORE;
    out->data_len = 0;
    out->end = 0;
    for (k = 0; k <= ncuts; k++) {
        size_t stop = k < ncuts ? cuts[k] : len, plen = stop - start, off = 0;
        char *piece = dup_exact(raw + start, plen);

        for (;;) {
            size_t used = 99, doff = 99, dlen = 99;
            enum http1_chunk_result r =
                http1_chunked_feed(&st, plen ? piece + off : NULL, plen - off, &used, &doff, &dlen);

            if (used > plen - off)
                fail_msg("case '%s': consumed %zu > len %zu", name, used, plen - off);
            if (r == HTTP1_CHUNK_DATA) {
                if (dlen == 0 || doff + dlen != used)
                    fail_msg("case '%s': bad span %zu+%zu / %zu", name, doff, dlen, used);
                assert_true(out->data_len + dlen <= sizeof(out->data));
                memcpy(out->data + out->data_len, piece + off + doff, dlen);
                out->data_len += dlen;
                off += used;
                continue;
            }
            if (doff != 0 || dlen != 0)
                fail_msg("case '%s': span set without DATA", name);
            off += used;
            out->res = r;
            if (r == HTTP1_CHUNK_MORE && off != plen)
                fail_msg("case '%s': MORE with %zu bytes left", name, plen - off);
            break;
        }
        free(piece);
        if (out->res == HTTP1_CHUNK_DONE || out->res == HTTP1_CHUNK_ERROR) {
            enum http1_chunk_result again;
            size_t used, doff, dlen;

            out->end = start + off;
            /* sticky: DONE and ERROR stay, and consume nothing more */
            again = http1_chunked_feed(&st, "0\r\n\r\n", 5, &used, &doff, &dlen);
            CHECK_EQ(name, again, out->res);
            if (out->res == HTTP1_CHUNK_DONE)
                CHECK_EQ(name, used, 0);
            return;
        }
        start = stop;
    }
}

static void check_decoded(const struct chunk_case *c, const struct decoded *d, const char *how)
{
    if (d->res != c->want)
        fail_msg("case '%s' (%s): result %d, want %d", c->name, how, d->res, c->want);
    if (d->data_len != c->data_len || memcmp(d->data, c->data, c->data_len) != 0)
        fail_msg("case '%s' (%s): data (%zu bytes) differs", c->name, how, d->data_len);
    if (c->want == HTTP1_CHUNK_DONE && d->end != c->end)
        fail_msg("case '%s' (%s): DONE at %zu, want %zu", c->name, how, d->end, c->end);
}

static void test_chunked_table(void **state)
{
    struct decoded d;
    size_t i, cut, k;
    size_t cuts[128];

    (void)state;
    for (i = 0; i < NELEM(chunk_cases); i++) {
        const struct chunk_case *c = &chunk_cases[i];

        assert_true(c->len < NELEM(cuts));
        decode_pieces(c->name, c->raw, c->len, NULL, 0, 0, &d);
        check_decoded(c, &d, "whole");
        for (cut = 0; cut <= c->len; cut++) {
            decode_pieces(c->name, c->raw, c->len, &cut, 1, 0, &d);
            check_decoded(c, &d, "split");
        }
        for (k = 0; k < c->len; k++)
            cuts[k] = k;
        decode_pieces(c->name, c->raw, c->len, cuts, c->len, 0, &d);
        check_decoded(c, &d, "byte by byte");
    }
}

/* Extensions: 4096 bytes after the digits pass, 4097 fail; likewise trailers. */
static void test_chunked_limits(void **state)
{
    char buf[HTTP1_MAX_CHUNK_EXT + 64];
    struct decoded d;
    size_t n, ext;

    (void)state;
    for (ext = HTTP1_MAX_CHUNK_EXT - 1; ext <= HTTP1_MAX_CHUNK_EXT; ext++) {
        /* "1;aaaa...\r\nx\r\n0\r\n\r\n": the extension bytes are ';' a... and the CR */
        n = 0;
        buf[n++] = '1';
        buf[n++] = ';';
        memset(buf + n, 'a', ext - 2);
        n += ext - 2;
        memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
        n += 10;
        decode_pieces("ext limit", buf, n, NULL, 0, 0, &d);
        assert_int_equal(d.res, HTTP1_CHUNK_DONE);
    }
    n = 0;
    buf[n++] = '1';
    buf[n++] = ';';
    memset(buf + n, 'a', HTTP1_MAX_CHUNK_EXT - 1);
    n += HTTP1_MAX_CHUNK_EXT - 1;
    memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
    n += 10;
    decode_pieces("ext over limit", buf, n, NULL, 0, 0, &d);
    assert_int_equal(d.res, HTTP1_CHUNK_ERROR);

    /* trailer section "X: 12\r\n\r\n" is 9 bytes */
    decode_pieces("trailer fits", S("0\r\nX: 12\r\n\r\n"), NULL, 0, 9, &d);
    assert_int_equal(d.res, HTTP1_CHUNK_DONE);
    decode_pieces("trailer too long", S("0\r\nX: 12\r\n\r\n"), NULL, 0, 8, &d);
    assert_int_equal(d.res, HTTP1_CHUNK_ERROR);
    /* the default (16 KiB) bounds an endless trailer */
    {
        static char big[HTTP1_DEFAULT_MAX_TRAILER + 16];

        memcpy(big, "0\r\nX: ", 6);
        memset(big + 6, 'v', sizeof(big) - 6);
        decode_pieces("default trailer bound", big, sizeof(big), NULL, 0, 0, &d);
        assert_int_equal(d.res, HTTP1_CHUNK_ERROR);
    }
}

/* A large chunk size is streamed: the decoder never needs the whole chunk. */
static void test_chunked_large(void **state)
{
    struct http1_chunked st;
    char block[4096];
    size_t used, off, len;
    uint64_t i;
    enum http1_chunk_result r;

    (void)state;
    http1_chunked_init(&st);
    r = http1_chunked_feed(&st, "fffffffffffffff\r\n", 17, &used, &off, &len);
    assert_int_equal(r, HTTP1_CHUNK_MORE);
    assert_int_equal(used, 17);
    memset(block, 'z', sizeof(block));
    for (i = 0; i < 1000; i++) {
        r = http1_chunked_feed(&st, block, sizeof(block), &used, &off, &len);
        assert_int_equal(r, HTTP1_CHUNK_DATA);
        assert_int_equal(off, 0);
        assert_int_equal(len, sizeof(block));
    }
    assert_int_equal(st.total, 1000 * sizeof(block));
    assert_int_equal(st.remaining, UINT64_C(0xfffffffffffffff) - 1000 * sizeof(block));
}

/* ------------------------------------------------------------------ */
/* Header helpers                                                     */

static void test_hop_by_hop(void **state)
{
    static const char raw[] =
        "GET / HTTP/1.1\r\n"
        "Host: h\r\n"
        "Connection: X-Foo, close\r\n"
        "connection: content-length, HOST, x-bar\r\n"
        "X-Foo: 1\r\n"
        "x-bar: 1\r\n"
        "Keep-Alive: timeout=5\r\n"
        "TE: trailers\r\n"
        "Proxy-Authorization: x\r\n"
        "Upgrade: y\r\n"
        "X-Foo-Bar: 1\r\n"
        "Content-Length: 0\r\n"
        "Accept: */*\r\n"
        "\r\n";
    static const struct { const char *name; int hop; } want[] = {
        { "Host", 0 }, { "Connection", 1 }, { "connection", 1 }, { "X-Foo", 1 },
        { "x-bar", 1 }, { "Keep-Alive", 1 }, { "TE", 1 }, { "Proxy-Authorization", 1 },
        { "Upgrade", 1 }, { "X-Foo-Bar", 0 }, { "Content-Length", 0 }, { "Accept", 0 },
    };
    struct http1_head head;
    size_t i;

    (void)state;
    assert_int_equal(http1_parse_request(raw, sizeof(raw) - 1, MAXH, &head), HTTP1_OK);
    assert_int_equal(head.n_headers, NELEM(want));
    assert_false(head.keep_alive);
    assert_true(head.upgrade);
    for (i = 0; i < head.n_headers; i++) {
        assert_true(http1_name_eq(&head.headers[i], want[i].name));
        CHECK_EQ(want[i].name, http1_is_hop_by_hop(&head, &head.headers[i]), want[i].hop);
    }
}

/* Every name the parser tells apart, in a response, with near misses. */
static void test_header_kinds(void **state)
{
    static const char raw[] =
        "HTTP/1.1 200 OK\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Trailer: X-Sum\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "Proxy-Authenticate: Basic\r\n"
        "PROXY-AUTHORIZATION: x\r\n"
        "te: trailers\r\n"
        "keep-alive: timeout=5\r\n"
        "upgrade: h2c\r\n"
        "Expect: 100-continue\r\n"
        "HOST: a\r\n"
        "TE-X: 1\r\n"
        "Transfer-Encodings: x\r\n"
        "Proxy-Connections: x\r\n"
        "Trailers: x\r\n"
        "\r\n";
    static const struct { enum http1_hdr_kind kind; int hop; } want[] = {
        { HTTP1_H_TRANSFER_ENCODING, 1 }, { HTTP1_H_TRAILER, 1 },
        { HTTP1_H_PROXY_CONNECTION, 1 }, { HTTP1_H_PROXY_AUTHENTICATE, 1 },
        { HTTP1_H_PROXY_AUTHORIZATION, 1 }, { HTTP1_H_TE, 1 }, { HTTP1_H_KEEP_ALIVE, 1 },
        { HTTP1_H_UPGRADE, 1 }, { HTTP1_H_EXPECT, 0 }, { HTTP1_H_HOST, 0 },
        { HTTP1_H_OTHER, 0 }, { HTTP1_H_OTHER, 0 }, { HTTP1_H_OTHER, 0 }, { HTTP1_H_OTHER, 0 },
    };
    struct http1_head head;
    size_t i;

    (void)state;
    assert_int_equal(http1_parse_response(raw, sizeof(raw) - 1, MAXH, "GET", 3, &head), HTTP1_OK);
    assert_int_equal(head.n_headers, NELEM(want));
    assert_int_equal(head.body, HTTP1_BODY_CHUNKED);
    for (i = 0; i < head.n_headers; i++) {
        assert_int_equal(head.headers[i].kind, want[i].kind);
        assert_int_equal(http1_is_hop_by_hop(&head, &head.headers[i]), want[i].hop);
    }
}

static void test_name_eq(void **state)
{
    struct http1_header h = {.name = "Content-Length", .name_len = 14, .value = "5", .value_len = 1};

    (void)state;
    assert_true(http1_name_eq(&h, "content-length"));
    assert_true(http1_name_eq(&h, "CONTENT-LENGTH"));
    assert_false(http1_name_eq(&h, "content-lengt"));
    assert_false(http1_name_eq(&h, "content-lengths"));
    assert_false(http1_name_eq(&h, "content_length"));
    assert_false(http1_name_eq(&h, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_prefixes),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_request_header_count),
        cmocka_unit_test(test_request_pipelined),
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_response_fields),
        cmocka_unit_test(test_chunked_table),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_chunked_large),
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_header_kinds),
        cmocka_unit_test(test_name_eq),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
