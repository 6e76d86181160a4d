/*
 * fuzz_http1.c - libFuzzer target for proxy/http1.c.
 *
 * The first input byte steers (max_head, the request method for the
 * response parse, the trailer limit, the split pattern); the rest is parsed
 * as a request head (and the pipelined heads after it), as a response head,
 * and as a chunked body -- whole, in pseudo-random splits, and byte by
 * byte -- each piece in its own exact-size heap block. Every invariant of
 * the http1.h contract that can be checked from outside is checked, and a
 * violation calls abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)          \
    do {                     \
        if (!(cond))         \
            abort();         \
    } while (0)

/* 1 when [p, p+n) lies inside [base, base+len). */
static int within(const char *base, size_t len, const char *p, size_t n)
{
    if (n == 0 && p == NULL)
        return 1;
    return p >= base && (size_t)(p - base) <= len && n <= len - (size_t)(p - base);
}

/* No CR, LF or NUL inside a span the parser handed out. */
static int clean(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
            return 0;
    }
    return 1;
}

static int valid_result(enum http1_result r)
{
    return r == HTTP1_OK || r == HTTP1_INCOMPLETE || r == HTTP1_E_BAD_REQUEST ||
           r == HTTP1_E_TOO_LARGE || r == HTTP1_E_NOT_IMPLEMENTED || r == HTTP1_E_VERSION;
}

/* The invariants of an accepted head of buf[0..len) under max_head. */
static void check_head(const char *buf, size_t len, size_t max_head, const struct http1_head *h,
                       int is_request)
{
    size_t i, n_cl = 0, n_te = 0, n_host = 0;

    CHECK(h->head_len >= 4 && h->head_len <= len && h->head_len <= max_head);
    CHECK(memcmp(buf + h->head_len - 4, "\r\n\r\n", 4) == 0);
    CHECK(h->n_headers <= HTTP1_MAX_HEADERS);
    CHECK(h->minor_version == 0 || h->minor_version == 1);
    CHECK(h->keep_alive == 0 || h->keep_alive == 1);
    CHECK(h->body >= HTTP1_BODY_NONE && h->body <= HTTP1_BODY_UNTIL_CLOSE);
    CHECK(h->body != HTTP1_BODY_LENGTH || h->content_length > 0);
    CHECK(h->content_length <= UINT64_C(9223372036854775807));
    for (i = 0; i < h->n_headers; i++) {
        const struct http1_header *f = &h->headers[i];

        CHECK(f->name_len > 0 && within(buf, h->head_len, f->name, f->name_len));
        CHECK(within(buf, h->head_len, f->value, f->value_len));
        CHECK(clean(f->name, f->name_len) && clean(f->value, f->value_len));
        CHECK(f->value_len == 0 ||
              (f->value[0] != ' ' && f->value[0] != '\t' &&
               f->value[f->value_len - 1] != ' ' && f->value[f->value_len - 1] != '\t'));
        n_cl += (size_t)http1_name_eq(f, "content-length");
        n_te += (size_t)http1_name_eq(f, "transfer-encoding");
        n_host += (size_t)http1_name_eq(f, "host");
        /* a Connection listing can never strip the framing or the target */
        if (http1_name_eq(f, "content-length") || http1_name_eq(f, "host"))
            CHECK(http1_is_hop_by_hop(h, f) == 0);
        if (http1_name_eq(f, "connection") || http1_name_eq(f, "transfer-encoding"))
            CHECK(http1_is_hop_by_hop(h, f) == 1);
    }
    /* the smuggling properties, re-derived from the header list */
    CHECK(n_cl <= 1);
    CHECK(!(n_cl > 0 && n_te > 0));
    if (n_te > 0)
        CHECK(h->minor_version == 1);
    if (h->body == HTTP1_BODY_CHUNKED)
        CHECK(n_te > 0 && n_cl == 0);
    if (h->body == HTTP1_BODY_LENGTH)
        CHECK(n_cl == 1 && n_te == 0);
    CHECK(h->host == NULL || (n_host >= 1 && within(buf, h->head_len, h->host, h->host_len)));
    if (is_request) {
        CHECK(h->body != HTTP1_BODY_UNTIL_CLOSE);
        CHECK(n_host <= 1 && (h->minor_version == 0 || n_host == 1));
        CHECK(h->method_len > 0 && within(buf, h->head_len, h->method, h->method_len));
        CHECK(h->target_len > 0 && within(buf, h->head_len, h->target, h->target_len));
        CHECK(within(h->target, h->target_len, h->path, h->path_len));
        CHECK(clean(h->method, h->method_len) && clean(h->target, h->target_len));
        CHECK(!(h->method_len == 7 && memcmp(h->method, "CONNECT", 7) == 0));
    } else {
        CHECK(h->status >= 100 && h->status <= 599);
        CHECK(within(buf, h->head_len, h->reason, h->reason_len));
        CHECK(clean(h->reason, h->reason_len));
        if (h->body == HTTP1_BODY_UNTIL_CLOSE)
            CHECK(h->keep_alive == 0);
    }
}

/* Parses requests back to back, as a pipelining server would. */
static void fuzz_requests(const char *buf, size_t len, size_t max_head)
{
    static struct http1_head head, again;
    size_t off = 0;
    int rounds;

    for (rounds = 0; rounds < 8; rounds++) {
        const char *p = buf + off;
        size_t n = len - off;
        enum http1_result r = http1_parse_request(n ? p : NULL, n, max_head, &head);

        CHECK(valid_result(r));
        if (r == HTTP1_INCOMPLETE)
            CHECK(n < max_head);
        if (r != HTTP1_OK)
            return;
        check_head(p, n, max_head, &head, 1);
        /* stateless: the head alone gives the same answer, a byte less does not */
        CHECK(http1_parse_request(p, head.head_len, max_head, &again) == HTTP1_OK);
        CHECK(again.head_len == head.head_len && again.body == head.body &&
              again.content_length == head.content_length &&
              again.keep_alive == head.keep_alive && again.n_headers == head.n_headers);
        CHECK(http1_parse_request(p, head.head_len - 1, max_head, &again) == HTTP1_INCOMPLETE);
        off += head.head_len;
        if (head.body == HTTP1_BODY_LENGTH) {
            if (head.content_length > len - off)
                return;
            off += (size_t)head.content_length;
        } else if (head.body == HTTP1_BODY_CHUNKED) {
            return;
        }
    }
}

static void fuzz_response(const char *buf, size_t len, size_t max_head, const char *method)
{
    static struct http1_head head, again;
    size_t ml = method ? strlen(method) : 0;
    enum http1_result r = http1_parse_response(len ? buf : NULL, len, max_head, method, ml, &head);

    CHECK(valid_result(r));
    if (r == HTTP1_INCOMPLETE)
        CHECK(len < max_head);
    if (r != HTTP1_OK)
        return;
    check_head(buf, len, max_head, &head, 0);
    CHECK(http1_parse_response(buf, head.head_len, max_head, method, ml, &again) == HTTP1_OK);
    CHECK(again.head_len == head.head_len && again.body == head.body &&
          again.status == head.status);
    CHECK(http1_parse_response(buf, head.head_len - 1, max_head, method, ml, &again) ==
          HTTP1_INCOMPLETE);
}

struct outcome {
    enum http1_chunk_result res;
    uint64_t data_len;
    uint64_t hash;             /* FNV-1a of the data bytes */
    size_t end;                /* stream offset after the last consumed byte */
};

/* Small PRNG for the split points (xorshift64). */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * Decodes buf[0..len) as a chunked body in pieces: mode 0 whole, 1 byte by
 * byte, else random piece lengths from the seed.
 */
static void decode(const char *buf, size_t len, int mode, uint64_t seed, size_t max_trailer,
                   struct outcome *o)
{
    struct http1_chunked st;
    size_t start = 0;

    http1_chunked_init(&st);
    st.max_trailer = max_trailer;
    o->res = HTTP1_CHUNK_MORE;
    o->data_len = 0;
    o->hash = UINT64_C(14695981039346656037);
    o->end = 0;
    while (start < len) {
        size_t plen = len - start, off = 0;
        char *piece;

        if (mode == 1)
            plen = 1;
        else if (mode != 0)
            plen = 1 + (size_t)(next_rand(&seed) % (plen < 64 ? plen : 64));
        piece = malloc(plen);
        CHECK(piece != NULL);
        memcpy(piece, buf + start, plen);
        for (;;) {
            size_t used = (size_t)-1, doff = (size_t)-1, dlen = (size_t)-1, i;
            enum http1_chunk_result r =
                http1_chunked_feed(&st, piece + off, plen - off, &used, &doff, &dlen);

            CHECK(used <= plen - off);
            if (r == HTTP1_CHUNK_DATA) {
                CHECK(dlen > 0 && doff + dlen == used);
                for (i = 0; i < dlen; i++)
                    o->hash = (o->hash ^ (unsigned char)piece[off + doff + i]) *
                              UINT64_C(1099511628211);
                o->data_len += dlen;
                off += used;
                continue;
            }
            CHECK(doff == 0 && dlen == 0);
            off += used;
            o->res = r;
            CHECK(r == HTTP1_CHUNK_MORE || r == HTTP1_CHUNK_DONE || r == HTTP1_CHUNK_ERROR);
            if (r == HTTP1_CHUNK_MORE)
                CHECK(off == plen);
            break;
        }
        free(piece);
        o->end = start + off;
        if (o->res != HTTP1_CHUNK_MORE)
            break;
        start += plen;
    }
    CHECK(st.total == o->data_len);
    if (o->res == HTTP1_CHUNK_DONE) {
        size_t used, doff, dlen;

        CHECK(http1_chunked_feed(&st, buf, len, &used, &doff, &dlen) == HTTP1_CHUNK_DONE);
        CHECK(used == 0);
    }
}

static void fuzz_chunked(const char *buf, size_t len, uint64_t seed, size_t max_trailer)
{
    struct outcome whole, other;

    decode(buf, len, 0, seed, max_trailer, &whole);
    decode(buf, len, 2, seed, max_trailer, &other);
    CHECK(other.res == whole.res && other.data_len == whole.data_len && other.hash == whole.hash);
    if (whole.res != HTTP1_CHUNK_MORE)
        CHECK(other.end == whole.end);
    if (len <= 4096) {
        decode(buf, len, 1, seed, max_trailer, &other);
        CHECK(other.res == whole.res && other.data_len == whole.data_len &&
              other.hash == whole.hash);
        if (whole.res != HTTP1_CHUNK_MORE)
            CHECK(other.end == whole.end);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t heads[] = { 8192, 64, 0, 1 };
    static const size_t trailers[] = { 0, 8, 1, 64 };
    const char *buf;
    size_t len, max_head, off;
    unsigned ctl;
    static struct http1_head head;

    if (size == 0)
        return 0;
    ctl = data[0];
    buf = (const char *)data + 1;
    len = size - 1;
    max_head = heads[ctl & 3];
    if (max_head == 0)
        max_head = len;              /* the head may fill the buffer exactly */
    else if (max_head == 1)
        max_head = len / 2;

    fuzz_requests(buf, len, max_head);
    fuzz_response(buf, len, max_head, (ctl & 4) ? "HEAD" : ((ctl & 8) ? NULL : "GET"));
    fuzz_chunked(buf, len, (uint64_t)ctl * UINT64_C(0x9e3779b97f4a7c15) + len + 1,
                 trailers[(ctl >> 4) & 3]);
    /* the body after a chunked request head, as the gateway would read it */
    if (http1_parse_request(len ? buf : NULL, len, 8192, &head) == HTTP1_OK &&
        head.body == HTTP1_BODY_CHUNKED) {
        off = head.head_len;
        fuzz_chunked(buf + off, len - off, ctl + 7, 0);
    }
    return 0;
}
