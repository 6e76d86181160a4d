/*
 * bench_http.h - the little HTTP/1.1 framing that the benchmark programs
 * (mtls-loadgen, bench-upstream) share: finding the end of a header block,
 * reading the few header fields that decide framing, and an incremental
 * chunked-body decoder that discards the data.
 *
 * This is benchmark plumbing, not the gateway's parser (proxy/http1.h): it
 * is lenient where leniency is harmless and rejects only what would make
 * it lose the framing.
 */
#ifndef MTLS_BENCH_HTTP_H
#define MTLS_BENCH_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BH_MUSTCHECK __attribute__((warn_unused_result))

/* What the head of a request or response says about framing. */
struct bh_head {
    int status;               /* responses: the status code; requests: 0 */
    int is_post;              /* requests: method is POST */
    int http10;               /* HTTP/1.0 on the start line */
    int has_length;           /* a Content-Length was present */
    uint64_t content_length;
    int chunked;              /* Transfer-Encoding ends in chunked */
    int conn_close;           /* Connection: close (or 1.0 without keep-alive) */
    int has_client_cn;        /* an X-Client-CN field was present */
};

/*
 * Returns the length of the header block at buf (up to and including the
 * empty line), or 0 when buf[0..len) does not contain a whole block yet.
 */
size_t bh_head_len(const char *buf, size_t len);

/*
 * Parses the header block buf[0..len) (len from bh_head_len). is_response
 * selects "HTTP/1.x NNN ..." or "METHOD target HTTP/1.x" as the start line.
 * Returns 0 and fills *h, or -1 when the start line or a framing field is
 * malformed (two different Content-Lengths, a non-numeric one).
 */
int bh_parse_head(const char *buf, size_t len, int is_response,
                  struct bh_head *h) BH_MUSTCHECK;

/* Incremental chunked-body decoder; zero it (or bh_chunked_init) to start. */
struct bh_chunked {
    int state;
    uint64_t size;            /* current chunk size / bytes left in it */
    int digits;
};

void bh_chunked_init(struct bh_chunked *c);

/*
 * Consumes up to n bytes of a chunked body from p, discarding chunk data.
 * Returns the number of bytes consumed (all n unless the body ended inside
 * p) and sets *done to 1 once the last chunk and the trailer section have
 * been read; returns -1 on a malformed chunk size or framing.
 */
ssize_t bh_chunked_feed(struct bh_chunked *c, const char *p, size_t n,
                        int *done) BH_MUSTCHECK;

/* Parses "512", "64k", "1m", "1g" (powers of 1024). 0 / -1. */
int bh_parse_size(const char *s, uint64_t *out) BH_MUSTCHECK;

#endif
