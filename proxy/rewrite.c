/*
 * rewrite.c - heads towards the upstream and the client (see rewrite.h).
 */
#include "rewrite.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/rand.h>

static int name_is(const struct http1_header *h, const char *name)
{
    return name && http1_name_eq(h, name);
}

int gw_rw_is_own_header(const struct gw_hdr_names *n, const struct http1_header *h)
{
    return name_is(h, n->identity) || name_is(h, n->cn) || name_is(h, n->cert_sha256) ||
           name_is(h, n->request_id) || name_is(h, "X-Forwarded-For") ||
           name_is(h, "X-Forwarded-Proto") || name_is(h, "Forwarded");
}

/* "Name: value\r\n" from a parsed header. */
static int add_header(struct evbuffer *out, const struct http1_header *h)
{
    return evbuffer_add_printf(out, "%.*s: %.*s\r\n", (int)h->name_len, h->name,
                               (int)h->value_len, h->value) < 0 ? -1 : 0;
}

static int add_named(struct evbuffer *out, const char *name, const char *value)
{
    if (!name || !value)
        return 0;
    return evbuffer_add_printf(out, "%s: %s\r\n", name, value) < 0 ? -1 : 0;
}

int gw_rw_request(const struct http1_head *h, const struct gw_fwd_info *fi,
                  struct evbuffer *out)
{
    const char *path = h->path;
    size_t path_len = h->path_len, i;
    int had_cl = 0, rc = -1;

    if (path_len == 0) {          /* absolute-form "http://host" means "/" */
        path = "/";
        path_len = 1;
    } else if (path[0] == '?') {  /* "http://host?q" means "/?q" */
        if (evbuffer_add_printf(out, "%.*s /%.*s HTTP/1.1\r\n", (int)h->method_len,
                                h->method, (int)path_len, path) < 0)
            goto out;
        path = NULL;
    }
    if (path && evbuffer_add_printf(out, "%.*s %.*s HTTP/1.1\r\n", (int)h->method_len,
                                    h->method, (int)path_len, path) < 0)
        goto out;
    for (i = 0; i < h->n_headers; i++) {
        const struct http1_header *hd = &h->headers[i];

        if (http1_name_eq(hd, "Content-Length")) {
            had_cl = 1;
            continue;
        }
        if (http1_is_hop_by_hop(h, hd) || gw_rw_is_own_header(fi->names, hd) ||
            http1_name_eq(hd, "Expect"))
            continue;
        if (add_header(out, hd) < 0)
            goto out;
    }
    if (!h->host && add_named(out, "Host", fi->default_host) < 0)
        goto out;
    if (add_named(out, fi->names->identity, fi->identity) < 0 ||
        add_named(out, fi->names->cn, fi->cn) < 0 ||
        add_named(out, fi->names->cert_sha256, fi->cert_sha256) < 0 ||
        add_named(out, "X-Forwarded-For", fi->client_ip) < 0 ||
        add_named(out, "X-Forwarded-Proto", "https") < 0 ||
        add_named(out, fi->names->request_id, fi->request_id) < 0 ||
        evbuffer_add(out, "Connection: keep-alive\r\n", 24) < 0)
        goto out;
    if (h->body == HTTP1_BODY_LENGTH) {
        if (evbuffer_add_printf(out, "Content-Length: %llu\r\n",
                                (unsigned long long)h->content_length) < 0)
            goto out;
    } else if (h->body == HTTP1_BODY_CHUNKED) {
        if (evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28) < 0)
            goto out;
    } else if (had_cl) {
        if (evbuffer_add(out, "Content-Length: 0\r\n", 19) < 0)
            goto out;
    }
    if (evbuffer_add(out, "\r\n", 2) < 0)
        goto out;
    rc = 0;
out:
    return rc;
}

int gw_rw_response(const struct http1_head *h, enum gw_resp_framing framing, int close,
                   int keep_alive_10, struct evbuffer *out)
{
    size_t i;
    int keep_cl = framing == GW_RESP_LENGTH || framing == GW_RESP_NONE;

    if (evbuffer_add_printf(out, "HTTP/1.1 %d %.*s\r\n", h->status, (int)h->reason_len,
                            h->reason) < 0)
        return -1;
    for (i = 0; i < h->n_headers; i++) {
        const struct http1_header *hd = &h->headers[i];

        if (http1_is_hop_by_hop(h, hd))
            continue;
        if (!keep_cl && http1_name_eq(hd, "Content-Length"))
            continue;
        if (add_header(out, hd) < 0)
            return -1;
    }
    if (framing == GW_RESP_CHUNKED && evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28) < 0)
        return -1;
    if (close) {
        if (evbuffer_add(out, "Connection: close\r\n", 19) < 0)
            return -1;
    } else if (keep_alive_10) {
        if (evbuffer_add(out, "Connection: keep-alive\r\n", 24) < 0)
            return -1;
    }
    return evbuffer_add(out, "\r\n", 2) < 0 ? -1 : 0;
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

void gw_rw_request_id(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[16];
    size_t i;

    /* OpenSSL 3's DRBG is per thread: no lock on the request path. If it
     * ever fails the id is still unique enough for logs (address + time). */
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        uintptr_t a = (uintptr_t)out;

        memset(rnd, 0, sizeof(rnd));
        memcpy(rnd, &a, sizeof(a) < sizeof(rnd) ? sizeof(a) : sizeof(rnd));
    }
    for (i = 0; i < 16; i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    out[32] = '\0';
}
