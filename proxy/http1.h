/*
 * http1.h - a strict HTTP/1.1 message-head parser and chunked decoder.
 *
 * Pure functions over caller memory: no allocation, no I/O, no mutable
 * state (only read-only character tables), so it is fuzzed on its own
 * (tests/fuzz/fuzz_http1.c). One pass over the input, O(n), never reads at
 * or past buf[len]. Strict by design, per RFC 9112: anything a lenient peer
 * might read differently from us is an error, since a disagreement between
 * us and the upstream is a smuggling hole.
 *
 * Rejected with HTTP1_E_BAD_REQUEST (400; for a response: 502):
 *  - Content-Length together with Transfer-Encoding; two Content-Length
 *    headers (even with equal values); a Content-Length that is not 1*DIGIT
 *    ("+5", "0x5", "5, 5", "", " 5 5") or is above INT64_MAX;
 *  - Transfer-Encoding in an HTTP/1.0 message; a Transfer-Encoding list
 *    that is malformed (empty element, non-token, parameters), that names
 *    "chunked" twice, or (requests) whose final coding is not "chunked"
 *    ("chunked, identity", "gzip");
 *  - obs-fold (a header line starting with SP/HTAB); a NUL, a bare CR, or
 *    any CTL other than HTAB (DEL included) in a header name or value;
 *    whitespace between a header name and the colon; an empty or non-token
 *    header name; a Connection value that is not a list of tokens;
 *  - a request line that is not "METHOD SP request-target SP HTTP/d.d CRLF"
 *    with single spaces, a token method and a visible-ASCII target without
 *    '#'; bare LF line ends anywhere; "http/1.1" (the name is case-
 *    sensitive); "HTTP/1.10", "HTTP/2" (not DIGIT "." DIGIT);
 *  - a request-target that is not origin-form ("/..."), absolute-form
 *    ("http://host[:port]/..." or https, no userinfo, non-empty authority,
 *    path empty or starting with '/' or '?') or asterisk-form ("*", OPTIONS
 *    only);
 *  - HTTP/1.1 without exactly one Host header, any request with two Host
 *    headers, a Host value with characters outside uri-host[:port].
 * HTTP1_E_VERSION (505): a well-formed HTTP/d.d other than 1.0 and 1.1
 * ("HTTP/1.2", "HTTP/2.0", "HTTP/0.9"), requests and responses alike.
 * HTTP1_E_NOT_IMPLEMENTED (501): the CONNECT method (a gateway in front of
 * one db-service has no use for tunnels); transfer codings other than
 * chunked applied before it ("gzip, chunked"); in a response with a body,
 * any Transfer-Encoding other than exactly "chunked".
 * HTTP1_E_TOO_LARGE (431): a head longer than max_head bytes, or more than
 * HTTP1_MAX_HEADERS header fields.
 * Accepted leniencies, none of which changes the framing: empty lines
 * (CRLF) before a request line (RFC 9112 §2.2); a status line without the
 * SP before an empty reason ("HTTP/1.1 200\r\n"); empty elements in a
 * Connection list.
 *
 * On an error the contents of *head are unspecified.
 */
#ifndef MTLS_HTTP1_H
#define MTLS_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#define HTTP1_MUSTCHECK __attribute__((warn_unused_result))

#define HTTP1_MAX_HEADERS 100
#define HTTP1_MAX_CHUNK_EXT 4096           /* bytes of extensions per chunk line */
#define HTTP1_DEFAULT_MAX_TRAILER 16384    /* http1_chunked.max_trailer = 0 */

enum http1_result {
    HTTP1_OK = 0,              /* a complete head was parsed */
    HTTP1_INCOMPLETE = 1,      /* need more bytes (and len < max_head) */
    HTTP1_E_BAD_REQUEST = -1,  /* 400 (or a bad upstream response: 502) */
    HTTP1_E_TOO_LARGE = -2,    /* 431 */
    HTTP1_E_NOT_IMPLEMENTED = -3, /* 501: CONNECT, unsupported transfer coding */
    HTTP1_E_VERSION = -4,      /* 505 */
};

enum http1_body {
    HTTP1_BODY_NONE = 0,       /* no body (CL: 0, or none allowed) */
    HTTP1_BODY_LENGTH,         /* exactly content_length bytes */
    HTTP1_BODY_CHUNKED,        /* chunked; decode with http1_chunked_* */
    HTTP1_BODY_UNTIL_CLOSE,    /* responses only: until the peer closes */
};

enum http1_target_form {
    HTTP1_TARGET_ORIGIN = 0,   /* "/path?query" */
    HTTP1_TARGET_ABSOLUTE,     /* "http://authority/path?query" */
    HTTP1_TARGET_ASTERISK,     /* "*" (OPTIONS) */
};

/* The header names the parser tells apart (matched once, at the parse). */
enum http1_hdr_kind {
    HTTP1_H_OTHER = 0,
    HTTP1_H_HOST,
    HTTP1_H_CONTENT_LENGTH,
    HTTP1_H_TRANSFER_ENCODING,
    HTTP1_H_CONNECTION,
    HTTP1_H_KEEP_ALIVE,
    HTTP1_H_PROXY_CONNECTION,
    HTTP1_H_TE,
    HTTP1_H_TRAILER,
    HTTP1_H_UPGRADE,
    HTTP1_H_EXPECT,
    HTTP1_H_PROXY_AUTHENTICATE,
    HTTP1_H_PROXY_AUTHORIZATION,
};

struct http1_header {
    const char *name;          /* points into the caller's buffer */
    uint32_t name_len;         /* a longer name is HTTP1_E_TOO_LARGE */
    enum http1_hdr_kind kind;  /* set by the parsers; HTTP1_H_OTHER otherwise */
    const char *value;         /* leading/trailing OWS stripped */
    size_t value_len;
};

struct http1_head {
    /* request line (requests) */
    const char *method;
    size_t method_len;
    const char *target;        /* the request-target as sent */
    size_t target_len;
    enum http1_target_form target_form;
    /*
     * The path and query: the target itself in origin-form, the part after
     * the authority in absolute-form (empty, or starting with '/' or '?';
     * empty means "/"), "*" in asterisk-form. Points into the buffer.
     */
    const char *path;
    size_t path_len;
    /* The Host header value (OWS stripped); NULL/0 when there is none. */
    const char *host;
    size_t host_len;
    /* status line (responses) */
    int status;
    const char *reason;        /* may be empty (reason_len 0) */
    size_t reason_len;

    int minor_version;         /* 0 or 1 */
    struct http1_header headers[HTTP1_MAX_HEADERS];
    size_t n_headers;
    size_t head_len;           /* bytes of the head, final CRLF included */

    enum http1_body body;
    /*
     * The Content-Length value when the header is present (even where it
     * does not frame a body, e.g. a response to HEAD), else 0. The body is
     * content_length bytes only with HTTP1_BODY_LENGTH.
     */
    uint64_t content_length;
    int keep_alive;            /* after Connection and the version defaults */
    int expect_continue;       /* "Expect: 100-continue" in an HTTP/1.1 request */
    int upgrade;               /* Connection: upgrade / Upgrade present */
    size_t n_connection;       /* Connection headers (http1_is_hop_by_hop) */
};

/*
 * Parses a request head from buf[0..len). On HTTP1_OK, head->head_len
 * bytes were consumed (leading empty lines included) and the body framing
 * is in head->body; bytes after head_len (a body, a pipelined request) are
 * not looked at. When no full head is found within min(len, max_head)
 * bytes: HTTP1_INCOMPLETE if len < max_head, else HTTP1_E_TOO_LARGE; an
 * error in the complete lines seen so far is reported at once. Stateless:
 * call again from the start with more bytes. buf may be NULL when len is 0.
 */
enum http1_result http1_parse_request(const char *buf, size_t len, size_t max_head,
                                      struct http1_head *head) HTTP1_MUSTCHECK;

/*
 * Parses a response head. request_method is the method of the request it
 * answers (may be NULL/0: not HEAD); a response to HEAD and 1xx/204/304
 * responses have no body (HTTP1_BODY_NONE, whatever CL/TE say); otherwise
 * chunked, Content-Length, or else HTTP1_BODY_UNTIL_CLOSE with keep_alive
 * 0 (RFC 9112 §6.3). 1xx responses (101 included, with upgrade set when it
 * names Upgrade) are returned as heads with body NONE; the caller loops.
 * Same length rules as http1_parse_request; no empty lines are skipped.
 */
enum http1_result http1_parse_response(const char *buf, size_t len, size_t max_head,
                                       const char *request_method, size_t method_len,
                                       struct http1_head *head) HTTP1_MUSTCHECK;

/* 1 when the header's name equals name (NUL-terminated), ASCII case-insensitively, else 0. */
int http1_name_eq(const struct http1_header *h, const char *name);

/*
 * Hop-by-hop: Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization, plus
 * every name listed in the message's Connection header(s) -- except
 * Content-Length and Host, which are never reported even when listed: a
 * peer must not be able to make us drop the framing or the target of a
 * message we forward ("Connection: Content-Length" would desync the
 * upstream). h is one of head->headers, or any header whose kind is set as
 * the parsers set it. 1 / 0.
 */
int http1_is_hop_by_hop(const struct http1_head *head, const struct http1_header *h);

/*
 * Incremental chunked-body decoder. Feed it the bytes as they come, split
 * anywhere; it reports the data spans inside them and validates the
 * framing: chunk size 1*HEXDIG (at most 15 digits, leading zeros counted;
 * no sign, no whitespace before CRLF), chunk extensions
 * *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
 * checked and skipped, at most HTTP1_MAX_CHUNK_EXT bytes per chunk line;
 * CRLF after the data; trailer fields (token ":" field-value CRLF, no
 * obs-fold) checked and skipped, at most max_trailer bytes including the
 * final CRLF, never reported. Bare LF, bare CR -> error.
 */
struct http1_chunked {
    int state;
    uint64_t remaining;        /* data bytes left in the current chunk */
    size_t aux;                /* digits / extension / trailer bytes seen */
    size_t max_trailer;        /* 0 = HTTP1_DEFAULT_MAX_TRAILER */
    uint64_t total;            /* data bytes decoded so far */
};

enum http1_chunk_result {
    HTTP1_CHUNK_MORE = 0,      /* all input consumed, need more */
    HTTP1_CHUNK_DATA = 1,      /* *data_off, *data_len: a data span */
    HTTP1_CHUNK_DONE = 2,      /* last chunk and trailers consumed */
    HTTP1_CHUNK_ERROR = -1,    /* bad framing: 400 */
};

/* Resets st to the start of a chunked body (max_trailer 0: the default). */
void http1_chunked_init(struct http1_chunked *st);

/*
 * Consumes from buf[0..len). Returns DATA with a span of body bytes at
 * buf[*data_off .. *data_off + *data_len) with *data_len > 0 and
 * *data_off + *data_len == *consumed (call again with buf + *consumed),
 * MORE when all len bytes were consumed without more data, DONE after the
 * final CRLF, or ERROR (sticky; *consumed is where the bad byte is).
 * *consumed says how many bytes of buf were used; bytes after DONE are not
 * consumed (the next message), and once DONE every call returns DONE with
 * *consumed 0. *data_off and *data_len are 0 except with DATA. buf may be NULL
 * when len is 0.
 */
enum http1_chunk_result http1_chunked_feed(struct http1_chunked *st, const char *buf,
                                           size_t len, size_t *consumed,
                                           size_t *data_off, size_t *data_len) HTTP1_MUSTCHECK;

#endif
