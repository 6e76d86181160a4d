/*
 * http1.h - a strict HTTP/1.1 message-head parser and chunked decoder.
 *
 * Pure functions over caller memory: no allocation, no I/O, no globals, so
 * it is fuzzed on its own (tests/fuzz/fuzz_http1.c). Strict by design, per
 * RFC 9112: anything a lenient peer might read differently from us is an
 * error, since a disagreement between us and the upstream is a smuggling
 * hole. Rejected (HTTP1_E_BAD_REQUEST, i.e. 400):
 *  - Content-Length together with Transfer-Encoding; two Content-Length
 *    headers (even with equal values); a Content-Length that is not 1*DIGIT
 *    or overflows; Transfer-Encoding other than exactly "chunked"
 *    (HTTP1_E_NOT_IMPLEMENTED, 501, for an unknown coding);
 *  - obs-fold (a header line starting with SP/HTAB); a NUL, a bare CR, or
 *    any CTL other than HTAB in a header name or value; whitespace between a
 *    header name and the colon; an empty or non-token header name;
 *  - a request line that is not "METHOD SP request-target SP HTTP/1.x CRLF"
 *    with single spaces, a token method and a visible-ASCII target; bare LF
 *    line ends; HTTP versions other than 1.0/1.1 (HTTP1_E_VERSION, 505);
 *  - HTTP/1.1 without exactly one Host header.
 * Limits: a head longer than max_head bytes, or more than HTTP1_MAX_HEADERS
 * header fields, is HTTP1_E_TOO_LARGE (431).
 */
#ifndef MTLS_HTTP1_H
#define MTLS_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEADERS 100

enum http1_result {
    HTTP1_OK = 0,              /* a complete head was parsed */
    HTTP1_INCOMPLETE = 1,      /* need more bytes (and len < max_head) */
    HTTP1_E_BAD_REQUEST = -1,  /* 400 (or a bad upstream response: 502) */
    HTTP1_E_TOO_LARGE = -2,    /* 431 */
    HTTP1_E_NOT_IMPLEMENTED = -3, /* 501: unknown transfer coding */
    HTTP1_E_VERSION = -4,      /* 505 */
};

enum http1_body {
    HTTP1_BODY_NONE = 0,       /* no body (CL: 0, or none allowed) */
    HTTP1_BODY_LENGTH,         /* exactly content_length bytes */
    HTTP1_BODY_CHUNKED,        /* chunked; decode with http1_chunked_* */
    HTTP1_BODY_UNTIL_CLOSE,    /* responses only: until the peer closes */
};

struct http1_header {
    const char *name;          /* points into the caller's buffer */
    size_t name_len;
    const char *value;         /* leading/trailing OWS stripped */
    size_t value_len;
};

struct http1_head {
    /* request line (requests) */
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    /* status line (responses) */
    int status;
    const char *reason;
    size_t reason_len;

    int minor_version;         /* 0 or 1 */
    struct http1_header headers[HTTP1_MAX_HEADERS];
    size_t n_headers;
    size_t head_len;           /* bytes of the head, final CRLF included */

    enum http1_body body;
    uint64_t content_length;   /* with HTTP1_BODY_LENGTH */
    int keep_alive;            /* after Connection and the version defaults */
    int expect_continue;       /* "Expect: 100-continue" */
    int upgrade;               /* Connection: upgrade / Upgrade present */
};

/*
 * Parses a request head from buf[0..len). On HTTP1_OK, head->head_len
 * bytes were consumed and the body framing is in head->body. When no full
 * head is found within min(len, max_head) bytes: HTTP1_INCOMPLETE if
 * len < max_head, else HTTP1_E_TOO_LARGE.
 */
enum http1_result http1_parse_request(const char *buf, size_t len, size_t max_head,
                                      struct http1_head *head);

/*
 * Parses a response head. request_method is the method of the request it
 * answers ("HEAD" and 1xx/204/304 responses have no body); a response with
 * neither Content-Length nor chunked reads until close. 1xx responses other
 * than 101 are returned as heads with body NONE; the caller loops.
 */
enum http1_result http1_parse_response(const char *buf, size_t len, size_t max_head,
                                       const char *request_method, size_t method_len,
                                       struct http1_head *head);

/* Case-insensitive header name comparison helper. */
int http1_name_eq(const struct http1_header *h, const char *name);

/*
 * Hop-by-hop: Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization, plus
 * every name listed in the message's Connection header(s). 1 / 0.
 */
int http1_is_hop_by_hop(const struct http1_head *head, const struct http1_header *h);

/*
 * Incremental chunked-body decoder. Feed it the bytes as they come; it
 * reports the data spans inside them and validates the framing: chunk size
 * 1*HEXDIG (at most 15 digits, no sign, no whitespace), chunk extensions
 * skipped but limited to 4 KiB, CRLF after the data, trailers skipped
 * (limited to max_trailer bytes) and never forwarded.
 */
struct http1_chunked {
    int state;
    uint64_t remaining;        /* data bytes left in the current chunk */
    size_t aux;                /* digits / extension / trailer bytes seen */
    size_t max_trailer;        /* 0 = 16 KiB */
    uint64_t total;            /* data bytes decoded so far */
};

enum http1_chunk_result {
    HTTP1_CHUNK_MORE = 0,      /* all input consumed, need more */
    HTTP1_CHUNK_DATA = 1,      /* *data_off/*data_len is a data span */
    HTTP1_CHUNK_DONE = 2,      /* last chunk and trailers consumed */
    HTTP1_CHUNK_ERROR = -1,    /* bad framing: 400 */
};

void http1_chunked_init(struct http1_chunked *st);

/*
 * Consumes from buf[0..len). Returns DATA with a span of body bytes at
 * buf[*data_off .. *data_off + *data_len) (call again with the rest),
 * MORE when everything was consumed without more data, DONE after the final
 * CRLF, or ERROR. *consumed says how many bytes of buf were used (the data
 * span included); bytes after DONE are not consumed (the next message).
 */
enum http1_chunk_result http1_chunked_feed(struct http1_chunked *st, const char *buf,
                                           size_t len, size_t *consumed,
                                           size_t *data_off, size_t *data_len);

#endif
