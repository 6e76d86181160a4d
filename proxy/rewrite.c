/*
 * rewrite.c - heads towards the upstream and the client (see rewrite.h).
 */
#include "rewrite.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

/* One character of a header name as the gateway compares its own names:
 * ASCII case folded, and '_' taken as '-' (see gw_rw_is_own_header). */
static unsigned char own_fold(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return (unsigned char)(ch - 'A' + 'a');
    return ch == '_' ? '-' : ch;
}

/* 1 when h's name equals name under own_fold. */
static int name_is(const struct http1_header *h, const char *name)
{
    size_t i;

    if (!name)
        return 0;
    for (i = 0; i < h->name_len; i++) {
        if (name[i] == '\0' ||
            own_fold((unsigned char)h->name[i]) != own_fold((unsigned char)name[i]))
            return 0;
    }
    return name[h->name_len] == '\0';
}

/* 1 when h's name has a '_' and, '_' taken as '-', names a header that
 * frames a message or is hop-by-hop (see gw_rw_request). Only names with
 * a '-' have such look-alikes. */
static int framing_lookalike(const struct http1_header *h)
{
    static const char *const framing[] = {
        "Content-Length", "Transfer-Encoding", "Keep-Alive", "Proxy-Connection",
        "Proxy-Authenticate", "Proxy-Authorization",
    };
    size_t i;

    if (!memchr(h->name, '_', h->name_len))
        return 0;
    for (i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
        if (name_is(h, framing[i]))
            return 1;
    return 0;
}

int gw_rw_is_own_header(const struct gw_hdr_names *n, const struct http1_header *h)
{
    return name_is(h, n->identity) || name_is(h, n->cn) || name_is(h, n->cert_sha256) ||
           name_is(h, n->request_id) || name_is(h, "X-Forwarded-For") ||
           name_is(h, "X-Forwarded-Proto") || name_is(h, "Forwarded");
}

/*
 * Heads are assembled in a stack buffer by memcpy and appended to the
 * evbuffer in one piece (a second one only for heads above HB_CAP): no
 * printf and one evbuffer call per head on the request path. A failed
 * append is remembered and reported by hb_done().
 */
#define HB_CAP 4096

struct hb {
    struct evbuffer *out;
    size_t len;
    int err;
    char buf[HB_CAP];
};

static void hb_flush(struct hb *b)
{
    if (b->len > 0 && !b->err && evbuffer_add(b->out, b->buf, b->len) < 0)
        b->err = 1;
    b->len = 0;
}

/* Inlined: about fifty calls per forwarded request and answer. */
static inline __attribute__((always_inline)) void hb_put(struct hb *b, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > sizeof(b->buf)) {
        hb_flush(b);
        if (n > sizeof(b->buf)) {
            if (!b->err && evbuffer_add(b->out, p, n) < 0)
                b->err = 1;
            return;
        }
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}

static void hb_str(struct hb *b, const char *s)
{
    hb_put(b, s, strlen(s));
}

static void hb_u64(struct hb *b, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    hb_put(b, tmp + i, sizeof(tmp) - i);
}

/* 0, or -1 when an append failed. */
static int hb_done(struct hb *b)
{
    hb_flush(b);
    return b->err ? -1 : 0;
}

/* "Name: value\r\n" from a parsed header. */
static void add_header(struct hb *b, const struct http1_header *h)
{
    hb_put(b, h->name, h->name_len);
    hb_put(b, ": ", 2);
    hb_put(b, h->value, h->value_len);
    hb_put(b, "\r\n", 2);
}

static void add_named(struct hb *b, const char *name, const char *value)
{
    if (!name || !value)
        return;
    hb_str(b, name);
    hb_put(b, ": ", 2);
    hb_str(b, value);
    hb_put(b, "\r\n", 2);
}

int gw_rw_request(const struct http1_head *h, const struct gw_fwd_info *fi,
                  struct evbuffer *out)
{
    struct hb b = {.out = out};
    size_t i;
    int had_cl = 0;

    hb_put(&b, h->method, h->method_len);
    hb_put(&b, " ", 1);
    if (h->path_len == 0) {               /* absolute-form "http://host" means "/" */
        hb_put(&b, "/", 1);
    } else {
        if (h->path[0] == '?')            /* "http://host?q" means "/?q" */
            hb_put(&b, "/", 1);
        hb_put(&b, h->path, h->path_len);
    }
    hb_put(&b, " HTTP/1.1\r\n", 11);
    for (i = 0; i < h->n_headers; i++) {
        const struct http1_header *hd = &h->headers[i];

        if (hd->kind == HTTP1_H_CONTENT_LENGTH) {
            had_cl = 1;
            continue;
        }
        if (hd->kind == HTTP1_H_EXPECT || http1_is_hop_by_hop(h, hd) ||
            gw_rw_is_own_header(fi->names, hd) || framing_lookalike(hd))
            continue;
        add_header(&b, hd);
    }
    if (!h->host)
        add_named(&b, "Host", fi->default_host);
    add_named(&b, fi->names->identity, fi->identity);
    add_named(&b, fi->names->cn, fi->cn);
    add_named(&b, fi->names->cert_sha256, fi->cert_sha256);
    add_named(&b, "X-Forwarded-For", fi->client_ip);
    add_named(&b, "X-Forwarded-Proto", "https");
    add_named(&b, fi->names->request_id, fi->request_id);
    hb_put(&b, "Connection: keep-alive\r\n", 24);
    if (h->body == HTTP1_BODY_LENGTH) {
        hb_put(&b, "Content-Length: ", 16);
        hb_u64(&b, (unsigned long long)h->content_length);
        hb_put(&b, "\r\n", 2);
    } else if (h->body == HTTP1_BODY_CHUNKED) {
        hb_put(&b, "Transfer-Encoding: chunked\r\n", 28);
    } else if (had_cl) {
        hb_put(&b, "Content-Length: 0\r\n", 19);
    }
    hb_put(&b, "\r\n", 2);
    return hb_done(&b);
}

int gw_rw_response(const struct http1_head *h, enum gw_resp_framing framing, int close,
                   int keep_alive_10, struct evbuffer *out)
{
    struct hb b = {.out = out};
    size_t i;
    /* A 204 carries no Content-Length (RFC 9110 8.6): one from the upstream
     * would have a lenient client or proxy wait for a body that never comes
     * and take the next response as it. HEAD and 304 keep theirs. */
    int keep_cl = framing == GW_RESP_LENGTH || (framing == GW_RESP_NONE && h->status != 204);

    hb_put(&b, "HTTP/1.1 ", 9);
    hb_u64(&b, (unsigned long long)(h->status < 0 ? 0 : h->status));
    hb_put(&b, " ", 1);
    hb_put(&b, h->reason, h->reason_len);
    hb_put(&b, "\r\n", 2);
    for (i = 0; i < h->n_headers; i++) {
        const struct http1_header *hd = &h->headers[i];

        if (http1_is_hop_by_hop(h, hd))
            continue;
        if (!keep_cl && hd->kind == HTTP1_H_CONTENT_LENGTH)
            continue;
        add_header(&b, hd);
    }
    if (framing == GW_RESP_CHUNKED)
        hb_put(&b, "Transfer-Encoding: chunked\r\n", 28);
    if (close)
        hb_put(&b, "Connection: close\r\n", 19);
    else if (keep_alive_10)
        hb_put(&b, "Connection: keep-alive\r\n", 24);
    hb_put(&b, "\r\n", 2);
    return hb_done(&b);
}

const char *gw_rw_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

int gw_rw_error(struct evbuffer *out, int status, int keep_alive, const char *request_id_name,
                const char *request_id)
{
    const char *reason = gw_rw_reason(status);
    size_t body_len = strlen(reason) + 5; /* "NNN " reason "\n" */

    if (evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                            "Content-Length: %zu\r\n", status, reason, body_len) < 0)
        return -1;
    if (request_id && request_id_name &&
        evbuffer_add_printf(out, "%s: %s\r\n", request_id_name, request_id) < 0)
        return -1;
    if (!keep_alive && evbuffer_add(out, "Connection: close\r\n", 19) < 0)
        return -1;
    return evbuffer_add_printf(out, "\r\n%d %s\n", status, reason) < 0 ? -1 : 0;
}

int gw_rw_chunk_header(struct evbuffer *out, size_t n)
{
    return evbuffer_add_printf(out, "%zx\r\n", n) < 0 ? -1 : 0;
}

/* Random bytes for request ids, drawn from OpenSSL in batches: one DRBG
 * call (and its fork check) per 64 ids instead of one per request. Per
 * thread, so no lock; cleansed as they are handed out. */
#define RID_POOL 1024
static _Thread_local unsigned char rid_pool[RID_POOL];
static _Thread_local size_t rid_left;

/* "00" "01" .. "ff": a byte's two hex digits at 2 * byte. */
#define HEX_ROW(d) d "0" d "1" d "2" d "3" d "4" d "5" d "6" d "7" \
                   d "8" d "9" d "a" d "b" d "c" d "d" d "e" d "f"
static const char hex_pairs[] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3")
    HEX_ROW("4") HEX_ROW("5") HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9")
    HEX_ROW("a") HEX_ROW("b") HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");

void gw_rw_hex(char *out, const unsigned char *in, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        memcpy(out + 2 * i, hex_pairs + 2 * in[i], 2);
    out[2 * n] = '\0';
}

void gw_rw_request_id(char out[33])
{
    unsigned char rnd[16];

    if (rid_left < sizeof(rnd)) {
        /* OpenSSL 3's DRBG is per thread: no lock on the request path. */
        if (RAND_bytes(rid_pool, sizeof(rid_pool)) == 1)
            rid_left = sizeof(rid_pool);
    }
    if (rid_left >= sizeof(rnd)) {
        rid_left -= sizeof(rnd);
        memcpy(rnd, rid_pool + rid_left, sizeof(rnd));
        OPENSSL_cleanse(rid_pool + rid_left, sizeof(rnd));
    } else {
        /* The DRBG failed: the id is still unique enough for logs
         * (address + time). */
        uintptr_t a = (uintptr_t)out;

        memset(rnd, 0, sizeof(rnd));
        memcpy(rnd, &a, sizeof(a) < sizeof(rnd) ? sizeof(a) : sizeof(rnd));
    }
    gw_rw_hex(out, rnd, sizeof(rnd));
}
