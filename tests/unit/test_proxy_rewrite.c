/*
 * test_proxy_rewrite.c - the heads mtlsgate writes, from parsed heads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "http1.h"
#include "rewrite.h"

static const struct gw_hdr_names names = {
    "X-Client-Identity", "X-Client-CN", "X-Client-Cert-Sha256", "X-Request-Id",
};

static const struct gw_fwd_info info = {
    .names = &names,
    .identity = "svc-attestor-1",
    .cn = "attestor1",
    .cert_sha256 = "ab12",
    .client_ip = "127.0.0.1",
    .request_id = "00ff",
    .default_host = "127.0.0.1:8080",
};

/* The bytes of out as a NUL-terminated string (caller frees). */
static char *drain_str(struct evbuffer *out)
{
    size_t n = evbuffer_get_length(out);
    char *s = calloc(1, n + 1);

    assert_non_null(s);
    evbuffer_remove(out, s, n);
    return s;
}

static char *rewrite_req(const char *raw)
{
    struct http1_head h;
    struct evbuffer *out = evbuffer_new();
    char *s;

    assert_int_equal(http1_parse_request(raw, strlen(raw), 16384, &h), HTTP1_OK);
    assert_int_equal(gw_rw_request(&h, &info, out), 0);
    s = drain_str(out);
    evbuffer_free(out);
    return s;
}

static void test_request_spoofed_headers_dropped(void **state)
{
    char *s;

    (void)state;
    s = rewrite_req("GET /x?y=1 HTTP/1.1\r\nHost: gw\r\nx-client-identity: admin\r\n"
                    "X-CLIENT-CN: root\r\nX-Client-Cert-Sha256: 00\r\nX-Request-Id: mine\r\n"
                    "X-Forwarded-For: 6.6.6.6\r\nx-forwarded-proto: http\r\nForwarded: for=x\r\n"
                    "Accept: */*\r\n\r\n");
    assert_string_equal(s, "GET /x?y=1 HTTP/1.1\r\nHost: gw\r\nAccept: */*\r\n"
                           "X-Client-Identity: svc-attestor-1\r\nX-Client-CN: attestor1\r\n"
                           "X-Client-Cert-Sha256: ab12\r\nX-Forwarded-For: 127.0.0.1\r\n"
                           "X-Forwarded-Proto: https\r\nX-Request-Id: 00ff\r\n"
                           "Connection: keep-alive\r\n\r\n");
    free(s);
}

/* CGI/WSGI backends read X_Client_Identity and X-Client-Identity as the
 * same HTTP_X_CLIENT_IDENTITY: underscore look-alikes of the gateway's own
 * names are dropped too; other names with '_' pass. */
static void test_request_underscore_lookalikes_dropped(void **state)
{
    char *s;

    (void)state;
    s = rewrite_req("GET /x HTTP/1.1\r\nHost: gw\r\nX_Client_Identity: admin\r\n"
                    "x_client-cn: root\r\nX-CLIENT_CERT_SHA256: 00\r\nX_Request_Id: mine\r\n"
                    "X_Forwarded_For: 6.6.6.6\r\nx_forwarded_proto: http\r\n"
                    "X_Custom_Thing: kept\r\nX_Client_Identity_Extra: kept2\r\n\r\n");
    assert_string_equal(s, "GET /x HTTP/1.1\r\nHost: gw\r\nX_Custom_Thing: kept\r\n"
                           "X_Client_Identity_Extra: kept2\r\n"
                           "X-Client-Identity: svc-attestor-1\r\nX-Client-CN: attestor1\r\n"
                           "X-Client-Cert-Sha256: ab12\r\nX-Forwarded-For: 127.0.0.1\r\n"
                           "X-Forwarded-Proto: https\r\nX-Request-Id: 00ff\r\n"
                           "Connection: keep-alive\r\n\r\n");
    free(s);
}

/* A backend that folds '_' into '-' must not see a framing or hop-by-hop
 * header the gateway did not check: those look-alikes are dropped; other
 * names with '_' pass. */
static void test_request_framing_lookalikes_dropped(void **state)
{
    char *s;

    (void)state;
    s = rewrite_req("POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n"
                    "Transfer_Encoding: chunked\r\ncontent_length: 99\r\nProxy_Authorization: x\r\n"
                    "Keep_Alive: 1\r\nProxy_Connection: close\r\nX_Trace_Id: t1\r\n"
                    "Connection_Id: c7\r\nUp_grade: kept\r\n\r\nabc");
    assert_null(strstr(s, "Transfer_Encoding"));
    assert_null(strstr(s, "content_length"));
    assert_null(strstr(s, "Proxy_Authorization"));
    assert_null(strstr(s, "Keep_Alive"));
    assert_null(strstr(s, "Proxy_Connection"));
    assert_non_null(strstr(s, "POST /x HTTP/1.1\r\nHost: gw\r\nX_Trace_Id: t1\r\n"
                              "Connection_Id: c7\r\nUp_grade: kept\r\n"));
    assert_non_null(strstr(s, "Content-Length: 3\r\n\r\n"));
    free(s);
}

static void test_request_hop_by_hop_and_framing(void **state)
{
    char *s;

    (void)state;
    /* hop-by-hop (and what Connection names) dropped, Expect dropped,
     * chunked re-declared by the gateway */
    s = rewrite_req("POST /a HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, X-Secret\r\n"
                    "X-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\n"
                    "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_non_null(strstr(s, "POST /a HTTP/1.1\r\nHost: gw\r\nX-Client-Identity:"));
    assert_null(strstr(s, "X-Secret"));
    assert_null(strstr(s, "Keep-Alive:"));
    assert_null(strstr(s, "TE:"));
    assert_null(strstr(s, "Upgrade"));
    assert_null(strstr(s, "Expect"));
    assert_non_null(strstr(s, "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"));
    free(s);
    s = rewrite_req("POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello");
    assert_non_null(strstr(s, "Connection: keep-alive\r\nContent-Length: 5\r\n\r\n"));
    assert_int_equal(strstr(s, "Content-Length") - s, strlen(s) - 21); /* only ours, last */
    free(s);
    s = rewrite_req("POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n");
    assert_non_null(strstr(s, "Content-Length: 0\r\n\r\n"));
    free(s);
}

static void test_request_http10_and_absolute(void **state)
{
    char *s;

    (void)state;
    s = rewrite_req("GET /ten HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(s, "GET /ten HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
    free(s);
    s = rewrite_req("GET http://gw/abs?q HTTP/1.1\r\nHost: gw\r\n\r\n");
    assert_non_null(strstr(s, "GET /abs?q HTTP/1.1\r\n"));
    free(s);
    s = rewrite_req("GET http://gw HTTP/1.1\r\nHost: gw\r\n\r\n");
    assert_non_null(strstr(s, "GET / HTTP/1.1\r\n"));
    free(s);
}

static char *rewrite_resp(const char *raw, const char *method, enum gw_resp_framing f,
                          int close, int ka10)
{
    struct http1_head h;
    struct evbuffer *out = evbuffer_new();
    char *s;

    assert_int_equal(http1_parse_response(raw, strlen(raw), 16384, method, strlen(method), &h),
                     HTTP1_OK);
    assert_int_equal(gw_rw_response(&h, f, close, ka10, out), 0);
    s = drain_str(out);
    evbuffer_free(out);
    return s;
}

static void test_response(void **state)
{
    char *s;

    (void)state;
    s = rewrite_resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n"
                     "Keep-Alive: timeout=5\r\nX-A: b\r\n\r\nok", "GET", GW_RESP_LENGTH, 0, 0);
    assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n");
    free(s);
    s = rewrite_resp("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", "POST",
                     GW_RESP_CHUNKED, 1, 0);
    assert_string_equal(s, "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
                           "Connection: close\r\n\r\n");
    free(s);
    s = rewrite_resp("HTTP/1.0 200 OK\r\nX-A: b\r\n\r\n", "GET", GW_RESP_CHUNKED, 0, 0);
    assert_string_equal(s, "HTTP/1.1 200 OK\r\nX-A: b\r\nTransfer-Encoding: chunked\r\n\r\n");
    free(s);
    s = rewrite_resp("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "GET", GW_RESP_LENGTH, 0, 1);
    assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: keep-alive\r\n\r\n");
    free(s);
    /* No body: a 204's Content-Length goes, HEAD's and 304's stay. */
    s = rewrite_resp("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-A: b\r\n\r\n", "GET",
                     GW_RESP_NONE, 0, 0);
    assert_string_equal(s, "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n");
    free(s);
    s = rewrite_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", GW_RESP_NONE, 0, 0);
    assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    free(s);
    s = rewrite_resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET",
                     GW_RESP_NONE, 0, 0);
    assert_string_equal(s, "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n");
    free(s);
}

static void test_error(void **state)
{
    struct evbuffer *out = evbuffer_new();
    char *s;

    (void)state;
    assert_int_equal(gw_rw_error(out, 403, 1, "X-Request-Id", "abc"), 0);
    s = drain_str(out);
    assert_string_equal(s, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 14\r\nX-Request-Id: abc\r\n\r\n403 Forbidden\n");
    free(s);
    assert_int_equal(gw_rw_error(out, 502, 0, "X-Request-Id", NULL), 0);
    s = drain_str(out);
    assert_string_equal(s, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 16\r\nConnection: close\r\n\r\n502 Bad Gateway\n");
    free(s);
    evbuffer_free(out);
}

static void test_request_id(void **state)
{
    char a[33], b[33];
    size_t i;

    (void)state;
    gw_rw_request_id(a);
    gw_rw_request_id(b);
    assert_int_equal(strlen(a), 32);
    for (i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    assert_string_not_equal(a, b);
}

static void test_hex(void **state)
{
    static const unsigned char in[] = {0x00, 0x0f, 0xa5, 0xff, 0x10};
    char out[2 * sizeof(in) + 1];

    (void)state;
    gw_rw_hex(out, in, sizeof(in));
    assert_string_equal(out, "000fa5ff10");
    gw_rw_hex(out, in, 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_request_spoofed_headers_dropped),
        cmocka_unit_test(test_request_underscore_lookalikes_dropped),
        cmocka_unit_test(test_request_framing_lookalikes_dropped),
        cmocka_unit_test(test_request_hop_by_hop_and_framing),
        cmocka_unit_test(test_request_http10_and_absolute),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_request_id),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
