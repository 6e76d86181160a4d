/*
 * rewrite.h - the heads mtlsgate writes: to the upstream, back to the
 * client, and its own error answers.
 *
 * Pure functions from a parsed head (http1.h) to bytes appended to an
 * evbuffer; unit-tested in tests/unit/test_proxy_rewrite.c.
 */
#ifndef MTLS_PROXY_REWRITE_H
#define MTLS_PROXY_REWRITE_H

#include <stddef.h>

#include "http1.h"

#define GW_RW_MUSTCHECK __attribute__((warn_unused_result))

struct evbuffer;

/* The names of the headers only the gateway sets (configurable ones). */
struct gw_hdr_names {
    const char *identity;     /* X-Client-Identity */
    const char *cn;           /* X-Client-CN */
    const char *cert_sha256;  /* X-Client-Cert-Sha256 */
    const char *request_id;   /* X-Request-Id */
};

/* What the gateway adds to a forwarded request. */
struct gw_fwd_info {
    const struct gw_hdr_names *names;
    const char *identity;
    const char *cn;
    const char *cert_sha256;
    const char *client_ip;    /* X-Forwarded-For */
    const char *request_id;
    const char *default_host; /* Host to send when the request had none (1.0) */
};

/*
 * 1 when h must not be forwarded from a client: one of the gateway's own
 * names (the four above, X-Forwarded-For, X-Forwarded-Proto, Forwarded),
 * compared case-insensitively and with '_' taken as '-'. CGI, WSGI, PHP and
 * Rack backends read headers as HTTP_X_CLIENT_IDENTITY, where both
 * "X-Client-Identity" and "X_Client_Identity" land; a client-sent
 * "X_Client_Identity: admin" must not reach such a backend beside (or, in
 * some servers, instead of) the gateway's own header. Only look-alikes of
 * the gateway's own names are dropped; other names with '_' pass, since
 * dropping them all (nginx's underscores_in_headers off) would break
 * backends that use them legitimately.
 */
int gw_rw_is_own_header(const struct gw_hdr_names *names, const struct http1_header *h);

/*
 * Appends the upstream request head for h to out:
 * "METHOD PATH HTTP/1.1", every end-to-end header of the client except the
 * gateway's own names, Content-Length, Transfer-Encoding and Expect, and
 * except underscore look-alikes of the framing and hop-by-hop headers
 * ("Transfer_Encoding", "Content_Length", "Keep_Alive", "Proxy_*": a
 * backend that folds '_' into '-' would frame the body differently from
 * the gateway; nginx drops every name with '_'); then
 * Host (when the client sent none), the identity headers, X-Forwarded-For,
 * X-Forwarded-Proto: https, the request id, "Connection: keep-alive", and
 * the framing: "Content-Length: N" (a body of N bytes, or 0 when the client
 * sent Content-Length: 0) or "Transfer-Encoding: chunked" (the gateway
 * re-encodes the body). 0 / -1 (out of memory).
 */
int gw_rw_request(const struct http1_head *h, const struct gw_fwd_info *fi,
                  struct evbuffer *out) GW_RW_MUSTCHECK;

/* How the gateway frames a response body towards the client. */
enum gw_resp_framing {
    GW_RESP_NONE = 0,         /* no body (HEAD, 1xx, 204, 304) */
    GW_RESP_LENGTH,           /* Content-Length passed through */
    GW_RESP_CHUNKED,          /* (re-)encoded as chunked by the gateway */
    GW_RESP_RAW_CLOSE,        /* raw bytes, end marked by closing */
};

/*
 * Appends the client response head for the upstream response h:
 * "HTTP/1.1 STATUS REASON", every end-to-end header (hop-by-hop ones
 * dropped, and Content-Length dropped unless framing is LENGTH, or NONE
 * with a status other than 204),
 * "Transfer-Encoding: chunked" for CHUNKED, then "Connection: close" when
 * close is set, or "Connection: keep-alive" when keep_alive_10 is set (an
 * HTTP/1.0 client that asked for keep-alive). 0 / -1.
 */
int gw_rw_response(const struct http1_head *h, enum gw_resp_framing framing, int close,
                   int keep_alive_10, struct evbuffer *out) GW_RW_MUSTCHECK;

/*
 * Appends a complete answer made by the gateway itself: status line, a
 * short text body ("403 Forbidden\n"), Content-Length, Content-Type,
 * X-Request-Id when request_id is not NULL (under name request_id_name),
 * and "Connection: close" unless keep_alive. 0 / -1.
 */
int gw_rw_error(struct evbuffer *out, int status, int keep_alive, const char *request_id_name,
                const char *request_id) GW_RW_MUSTCHECK;

/* The reason phrase the gateway uses for status ("Bad Gateway"). */
const char *gw_rw_reason(int status);

/* Appends a chunk-size line "%zx\r\n" (n > 0). 0 / -1. */
int gw_rw_chunk_header(struct evbuffer *out, size_t n) GW_RW_MUSTCHECK;

/* Writes a new random 128-bit request id as 32 lowercase hex digits. */
void gw_rw_request_id(char out[33]);

/* Writes the 2 * n lowercase hex digits of in[0..n) to out, then '\0'
 * (out holds 2 * n + 1). */
void gw_rw_hex(char *out, const unsigned char *in, size_t n);

#endif
