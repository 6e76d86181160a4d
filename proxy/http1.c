/*
 * http1.c - strict HTTP/1.1 head parser and chunked decoder (see http1.h).
 *
 * The head parser finds each line with memchr('\n') inside
 * min(len, max_head), insists on the CR before it, and validates the line
 * byte by byte against the read-only class table below; a CR anywhere else
 * is a bare CR because no class admits it. The chunked decoder is a byte
 * state machine whose state lives in the caller's struct http1_chunked.
 */
#include "http1.h"

#include <string.h>

/* Character classes, RFC 9110 §5.6.2 / §5.5 / RFC 3986. */
enum {
    C_TCHAR = 1,   /* token character */
    C_VALUE = 2,   /* field-value byte: HTAB, SP, VCHAR, obs-text */
    C_TARGET = 4,  /* request-target byte: VCHAR except '#' */
    C_HOST = 8,    /* uri-host [ ":" port ] byte */
    C_HEX = 16,    /* HEXDIG */
    C_QDTEXT = 32, /* quoted-string text: HTAB SP ! #-[ ]-~ obs-text */
};

static const unsigned char cls[256] = {
    /* 0x00 */  0,  0,  0,  0,  0,  0,  0,  0,  0, 34,  0,  0,  0,  0,  0,  0,
    /* 0x10 */  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    /* 0x20 */ 34, 47,  6, 35, 47, 47, 47, 47, 46, 46, 47, 47, 46, 47, 47, 38,
    /* 0x30 */ 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 46, 46, 38, 46, 38, 38,
    /* 0x40 */ 38, 63, 63, 63, 63, 63, 63, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    /* 0x50 */ 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 46,  6, 46, 39, 47,
    /* 0x60 */ 39, 63, 63, 63, 63, 63, 63, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    /* 0x70 */ 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 38, 39, 38, 47,  0,
    /* 0x80 */ 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    /* 0x90 */ 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    /* 0xa0 */ 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    /* 0xb0 */ 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    /* 0xc0 */ 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    /* 0xd0 */ 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    /* 0xe0 */ 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    /* 0xf0 */ 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
};

#define IS(c, k) ((cls[(unsigned char)(c)] & (k)) != 0)
#define IS_WS(c) ((c) == ' ' || (c) == '\t')
#define HEAD_INT64_MAX UINT64_C(9223372036854775807)

/* ASCII lowercase, independent of the locale. */
static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* 1 when s[0..n) equals the lowercase literal lit, ignoring ASCII case. */
static int ci_eq(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return 0;
    }
    return lit[n] == '\0';
}

/* 1 when a[0..n) and b[0..n) are equal ignoring ASCII case. */
static int ci_eq_mixed(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    }
    return 1;
}

/* 1 when s[0..n) equals lit exactly (case-sensitive: methods). */
static int cs_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/*
 * Iterates a comma-separated list of tokens (RFC 9110 §5.6.1) in
 * v[0..n), resuming at *pos. Returns 1 with the next token, 0 at the end,
 * -1 when an element is not OWS token OWS. Empty elements are skipped and
 * counted in *empty. The value was already checked for CTLs.
 */
static int list_next(const char *v, size_t n, size_t *pos, const char **tok,
                     size_t *tok_len, int *empty)
{
    size_t i = *pos, t;

    while (i < n) {
        while (i < n && IS_WS(v[i]))
            i++;
        t = i;
        while (i < n && IS(v[i], C_TCHAR))
            i++;
        *tok = v + t;
        *tok_len = i - t;
        while (i < n && IS_WS(v[i]))
            i++;
        if (i < n && v[i] != ',')
            return -1;
        if (i < n && ++i == n)       /* the comma, and an empty last element */
            (*empty)++;
        *pos = i;
        if (*tok_len > 0)
            return 1;
        (*empty)++;
    }
    *pos = i;
    return 0;
}

/* What the semantic headers said, gathered during the field loop. */
struct fields {
    int cl_count;
    uint64_t cl;
    int te_count;                /* Transfer-Encoding headers */
    int te_bad;                  /* a malformed list */
    int te_chunked;              /* "chunked" elements */
    int te_last_chunked;         /* the last element seen is chunked */
    int te_other;                /* other codings */
    int host_count;
    int host_bad;
    int conn_bad;
    int conn_close;
    int conn_keep_alive;
    int conn_upgrade;
    size_t n_connection;         /* Connection headers */
    int upgrade_hdr;
    int expect_continue;
};

/* Content-Length: 1*DIGIT, at most INT64_MAX. 0 / -1. */
static int parse_content_length(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    size_t i;

    if (n == 0)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned char)v[i] - (unsigned)'0';

        if (d > 9 || x > (HEAD_INT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Which of the names the gateway acts on a header's name is, picked by length first. */
static enum http1_hdr_kind classify(const char *name, size_t len)
{
    switch (len) {
    case 2:
        return ci_eq(name, 2, "te") ? HTTP1_H_TE : HTTP1_H_OTHER;
    case 4:
        return ci_eq(name, 4, "host") ? HTTP1_H_HOST : HTTP1_H_OTHER;
    case 6:
        return ci_eq(name, 6, "expect") ? HTTP1_H_EXPECT : HTTP1_H_OTHER;
    case 7:
        if (ci_eq(name, 7, "upgrade"))
            return HTTP1_H_UPGRADE;
        return ci_eq(name, 7, "trailer") ? HTTP1_H_TRAILER : HTTP1_H_OTHER;
    case 10:
        if (ci_eq(name, 10, "connection"))
            return HTTP1_H_CONNECTION;
        return ci_eq(name, 10, "keep-alive") ? HTTP1_H_KEEP_ALIVE : HTTP1_H_OTHER;
    case 14:
        return ci_eq(name, 14, "content-length") ? HTTP1_H_CONTENT_LENGTH : HTTP1_H_OTHER;
    case 16:
        return ci_eq(name, 16, "proxy-connection") ? HTTP1_H_PROXY_CONNECTION : HTTP1_H_OTHER;
    case 17:
        return ci_eq(name, 17, "transfer-encoding") ? HTTP1_H_TRANSFER_ENCODING : HTTP1_H_OTHER;
    case 18:
        return ci_eq(name, 18, "proxy-authenticate") ? HTTP1_H_PROXY_AUTHENTICATE
                                                      : HTTP1_H_OTHER;
    case 19:
        return ci_eq(name, 19, "proxy-authorization") ? HTTP1_H_PROXY_AUTHORIZATION
                                                       : HTTP1_H_OTHER;
    default:
        return HTTP1_H_OTHER;
    }
}

/* Records what a semantic header says (h->kind is set); HTTP1_OK or an
 * error found at once. */
static enum http1_result note_field(struct fields *f, const struct http1_header *h)
{
    const char *tok;
    size_t tl, pos = 0, i;
    int r, empty = 0;

    switch (h->kind) {
    case HTTP1_H_HOST:
        f->host_count++;
        for (i = 0; i < h->value_len; i++) {
            if (!IS(h->value[i], C_HOST))
                f->host_bad = 1;
        }
        break;
    case HTTP1_H_EXPECT:
        if (ci_eq(h->value, h->value_len, "100-continue"))
            f->expect_continue = 1;
        break;
    case HTTP1_H_UPGRADE:
        f->upgrade_hdr = 1;
        break;
    case HTTP1_H_CONNECTION:
        f->n_connection++;
        while ((r = list_next(h->value, h->value_len, &pos, &tok, &tl, &empty)) == 1) {
            if (ci_eq(tok, tl, "close"))
                f->conn_close = 1;
            else if (ci_eq(tok, tl, "keep-alive"))
                f->conn_keep_alive = 1;
            else if (ci_eq(tok, tl, "upgrade"))
                f->conn_upgrade = 1;
        }
        if (r < 0)
            f->conn_bad = 1;
        break;
    case HTTP1_H_CONTENT_LENGTH:
        /* Duplicates are refused even when equal: one reading only. */
        if (++f->cl_count > 1 || parse_content_length(h->value, h->value_len, &f->cl) != 0)
            return HTTP1_E_BAD_REQUEST;
        break;
    case HTTP1_H_TRANSFER_ENCODING:
        f->te_count++;
        if (h->value_len == 0)
            f->te_bad = 1;
        while ((r = list_next(h->value, h->value_len, &pos, &tok, &tl, &empty)) == 1) {
            if (ci_eq(tok, tl, "chunked")) {
                f->te_chunked++;
                f->te_last_chunked = 1;
            } else {
                f->te_other++;
                f->te_last_chunked = 0;
            }
        }
        if (r < 0 || empty > 0)
            f->te_bad = 1;
        break;
    default:
        break;
    }
    return HTTP1_OK;
}

/*
 * Finds the line starting at pos: on 1, the content is buf[pos..*cr) and
 * the next line starts at *next. 0: no LF within limit; -1: bare LF.
 */
static int next_line(const char *buf, size_t pos, size_t limit, size_t *cr, size_t *next)
{
    const char *lf;
    size_t at;

    if (pos >= limit)
        return 0;
    lf = memchr(buf + pos, '\n', limit - pos);
    if (lf == NULL)
        return 0;
    at = (size_t)(lf - buf);
    if (at == pos || buf[at - 1] != '\r')
        return -1;
    *cr = at - 1;
    *next = at + 1;
    return 1;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, exactly p[0..n). */
static enum http1_result parse_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' ||
        p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return HTTP1_E_BAD_REQUEST;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return HTTP1_E_VERSION;
    *minor = p[7] - '0';
    return HTTP1_OK;
}

/* Splits an absolute-form target (scheme already checked: skip bytes). */
static enum http1_result parse_absolute(struct http1_head *head, size_t skip)
{
    const char *t = head->target;
    size_t n = head->target_len, i = skip;

    while (i < n && t[i] != '/' && t[i] != '?') {
        if (!IS(t[i], C_HOST))       /* '@' (userinfo) and the like */
            return HTTP1_E_BAD_REQUEST;
        i++;
    }
    if (i == skip)                   /* empty authority (RFC 9110 §4.2.1) */
        return HTTP1_E_BAD_REQUEST;
    head->target_form = HTTP1_TARGET_ABSOLUTE;
    head->path = t + i;
    head->path_len = n - i;
    return HTTP1_OK;
}

/* request-line = method SP request-target SP HTTP-version, in buf[pos..cr). */
static enum http1_result parse_request_line(const char *buf, size_t pos, size_t cr,
                                            struct http1_head *head)
{
    enum http1_result r;
    size_t i = pos, t0;

    while (i < cr && IS(buf[i], C_TCHAR))
        i++;
    if (i == pos || i >= cr || buf[i] != ' ')
        return HTTP1_E_BAD_REQUEST;
    head->method = buf + pos;
    head->method_len = i - pos;
    t0 = ++i;
    while (i < cr && IS(buf[i], C_TARGET))
        i++;
    if (i == t0 || i >= cr || buf[i] != ' ')
        return HTTP1_E_BAD_REQUEST;
    head->target = buf + t0;
    head->target_len = i - t0;
    i++;
    r = parse_version(buf + i, cr - i, &head->minor_version);
    if (r != HTTP1_OK)
        return r;
    if (cs_eq(head->method, head->method_len, "CONNECT"))
        return HTTP1_E_NOT_IMPLEMENTED;

    if (head->target[0] == '/') {
        head->target_form = HTTP1_TARGET_ORIGIN;
        head->path = head->target;
        head->path_len = head->target_len;
        return HTTP1_OK;
    }
    if (head->target_len == 1 && head->target[0] == '*') {
        if (!cs_eq(head->method, head->method_len, "OPTIONS"))
            return HTTP1_E_BAD_REQUEST;
        head->target_form = HTTP1_TARGET_ASTERISK;
        head->path = head->target;
        head->path_len = 1;
        return HTTP1_OK;
    }
    if (head->target_len > 7 && ci_eq(head->target, 7, "http://"))
        return parse_absolute(head, 7);
    if (head->target_len > 8 && ci_eq(head->target, 8, "https://"))
        return parse_absolute(head, 8);
    return HTTP1_E_BAD_REQUEST;
}

/*
 * status-line = HTTP-version SP status-code SP [ reason-phrase ], in
 * buf[pos..cr); the SP before an empty reason may be missing.
 */
static enum http1_result parse_status_line(const char *buf, size_t pos, size_t cr,
                                           struct http1_head *head)
{
    enum http1_result r;
    const char *p = buf + pos;
    size_t n = cr - pos, i;

    if (n < 12)
        return n >= 8 && parse_version(p, 8, &head->minor_version) == HTTP1_E_VERSION ?
               HTTP1_E_VERSION : HTTP1_E_BAD_REQUEST;
    r = parse_version(p, 8, &head->minor_version);
    if (r != HTTP1_OK)
        return r;
    if (p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
        p[11] < '0' || p[11] > '9')
        return HTTP1_E_BAD_REQUEST;
    head->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    head->reason = p + n;
    head->reason_len = 0;
    if (n == 12)
        return HTTP1_OK;
    if (p[12] != ' ')
        return HTTP1_E_BAD_REQUEST;
    for (i = 13; i < n; i++) {
        if (!IS(p[i], C_VALUE))
            return HTTP1_E_BAD_REQUEST;
    }
    head->reason = p + 13;
    head->reason_len = n - 13;
    return HTTP1_OK;
}

/* field-line = field-name ":" OWS field-value OWS, in buf[pos..cr). */
static enum http1_result parse_field_line(const char *buf, size_t pos, size_t cr,
                                          struct http1_header *h)
{
    size_t i = pos, v0, v1;

    while (i < cr && IS(buf[i], C_TCHAR))
        i++;
    /* An empty name covers obs-fold (a leading SP/HTAB) and junk. */
    if (i == pos || i >= cr || buf[i] != ':')
        return HTTP1_E_BAD_REQUEST;
    if (i - pos > UINT32_MAX)
        return HTTP1_E_TOO_LARGE;
    h->name = buf + pos;
    h->name_len = (uint32_t)(i - pos);
    i++;
    while (i < cr && IS_WS(buf[i]))
        i++;
    v0 = i;
    for (; i < cr; i++) {
        if (!IS(buf[i], C_VALUE))    /* NUL, bare CR, other CTLs, DEL */
            return HTTP1_E_BAD_REQUEST;
    }
    v1 = cr;
    while (v1 > v0 && IS_WS(buf[v1 - 1]))
        v1--;
    h->value = buf + v0;
    h->value_len = v1 - v0;
    return HTTP1_OK;
}

/* Reads the header fields from pos up to and including the empty line. */
static enum http1_result parse_fields(const char *buf, size_t pos, size_t limit, size_t len,
                                      size_t max_head, struct http1_head *head,
                                      struct fields *f)
{
    struct http1_header *h;
    enum http1_result r;
    size_t cr, next;
    int l;

    for (;;) {
        l = next_line(buf, pos, limit, &cr, &next);
        if (l == 0)
            return len < max_head ? HTTP1_INCOMPLETE : HTTP1_E_TOO_LARGE;
        if (l < 0)
            return HTTP1_E_BAD_REQUEST;
        if (cr == pos) {
            head->head_len = next;
            return HTTP1_OK;
        }
        if (head->n_headers == HTTP1_MAX_HEADERS)
            return HTTP1_E_TOO_LARGE;
        h = &head->headers[head->n_headers];
        r = parse_field_line(buf, pos, cr, h);
        if (r != HTTP1_OK)
            return r;
        h->kind = classify(h->name, h->name_len);
        r = note_field(f, h);
        if (r != HTTP1_OK)
            return r;
        if (h->kind == HTTP1_H_HOST && f->host_count == 1) {
            head->host = h->value;
            head->host_len = h->value_len;
        }
        head->n_headers++;
        pos = next;
    }
}

/* Sets the fields every parse starts from (the header array is not cleared). */
static void head_reset(struct http1_head *head)
{
    head->method = NULL;
    head->method_len = 0;
    head->target = NULL;
    head->target_len = 0;
    head->target_form = HTTP1_TARGET_ORIGIN;
    head->path = NULL;
    head->path_len = 0;
    head->host = NULL;
    head->host_len = 0;
    head->status = 0;
    head->reason = NULL;
    head->reason_len = 0;
    head->minor_version = 0;
    head->n_headers = 0;
    head->head_len = 0;
    head->body = HTTP1_BODY_NONE;
    head->content_length = 0;
    head->keep_alive = 0;
    head->expect_continue = 0;
    head->upgrade = 0;
    head->n_connection = 0;
}

/* Connection semantics shared by requests and responses (RFC 9112 §9.3). */
static void set_persistence(struct http1_head *head, const struct fields *f)
{
    if (head->minor_version >= 1)
        head->keep_alive = !f->conn_close;
    else
        head->keep_alive = f->conn_keep_alive && !f->conn_close;
    head->upgrade = f->conn_upgrade || f->upgrade_hdr;
    head->n_connection = f->n_connection;
}

enum http1_result http1_parse_request(const char *buf, size_t len, size_t max_head,
                                      struct http1_head *head)
{
    struct fields f;
    enum http1_result r;
    size_t limit = len < max_head ? len : max_head, pos = 0, cr, next;
    int l;

    head_reset(head);
    memset(&f, 0, sizeof(f));
    if (limit == 0)
        return len < max_head ? HTTP1_INCOMPLETE : HTTP1_E_TOO_LARGE;
    /* RFC 9112 §2.2: a server SHOULD ignore empty lines before the request. */
    while (pos + 1 < limit && buf[pos] == '\r' && buf[pos + 1] == '\n')
        pos += 2;
    l = next_line(buf, pos, limit, &cr, &next);
    if (l == 0)
        return len < max_head ? HTTP1_INCOMPLETE : HTTP1_E_TOO_LARGE;
    if (l < 0)
        return HTTP1_E_BAD_REQUEST;
    r = parse_request_line(buf, pos, cr, head);
    if (r != HTTP1_OK)
        return r;
    r = parse_fields(buf, next, limit, len, max_head, head, &f);
    if (r != HTTP1_OK)
        return r;

    if (f.host_count > 1 || f.host_bad || (head->minor_version == 1 && f.host_count != 1) ||
        f.conn_bad)
        return HTTP1_E_BAD_REQUEST;
    if (f.te_count > 0) {
        /* RFC 9112 §6.1, §6.3: TE in HTTP/1.0 and TE with CL are faulty framing. */
        if (head->minor_version == 0 || f.cl_count > 0 || f.te_bad ||
            f.te_chunked != 1 || !f.te_last_chunked)
            return HTTP1_E_BAD_REQUEST;
        if (f.te_other > 0)
            return HTTP1_E_NOT_IMPLEMENTED;
        head->body = HTTP1_BODY_CHUNKED;
    } else if (f.cl_count > 0) {
        head->content_length = f.cl;
        head->body = f.cl > 0 ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE;
    }
    head->expect_continue = head->minor_version == 1 && f.expect_continue;
    set_persistence(head, &f);
    return HTTP1_OK;
}

enum http1_result http1_parse_response(const char *buf, size_t len, size_t max_head,
                                       const char *request_method, size_t method_len,
                                       struct http1_head *head)
{
    struct fields f;
    enum http1_result r;
    size_t limit = len < max_head ? len : max_head, cr, next;
    int l, no_body;

    head_reset(head);
    memset(&f, 0, sizeof(f));
    if (limit == 0)
        return len < max_head ? HTTP1_INCOMPLETE : HTTP1_E_TOO_LARGE;
    l = next_line(buf, 0, limit, &cr, &next);
    if (l == 0)
        return len < max_head ? HTTP1_INCOMPLETE : HTTP1_E_TOO_LARGE;
    if (l < 0)
        return HTTP1_E_BAD_REQUEST;
    r = parse_status_line(buf, 0, cr, head);
    if (r != HTTP1_OK)
        return r;
    r = parse_fields(buf, next, limit, len, max_head, head, &f);
    if (r != HTTP1_OK)
        return r;

    /* Host means nothing in a response: only Connection is checked here. */
    if (f.conn_bad)
        return HTTP1_E_BAD_REQUEST;
    if (f.te_count > 0 && (f.cl_count > 0 || head->minor_version == 0 || f.te_bad ||
                           f.te_chunked > 1))
        return HTTP1_E_BAD_REQUEST;
    if (f.cl_count > 0)
        head->content_length = f.cl;
    set_persistence(head, &f);

    /* RFC 9112 §6.3, in its order. */
    no_body = (request_method != NULL && cs_eq(request_method, method_len, "HEAD")) ||
              head->status < 200 || head->status == 204 || head->status == 304;
    if (no_body) {
        head->body = HTTP1_BODY_NONE;
    } else if (f.te_count > 0) {
        if (f.te_chunked != 1 || !f.te_last_chunked || f.te_other > 0)
            return HTTP1_E_NOT_IMPLEMENTED;
        head->body = HTTP1_BODY_CHUNKED;
    } else if (f.cl_count > 0) {
        head->body = f.cl > 0 ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE;
    } else {
        head->body = HTTP1_BODY_UNTIL_CLOSE;
        head->keep_alive = 0;
    }
    return HTTP1_OK;
}

int http1_name_eq(const struct http1_header *h, const char *name)
{
    size_t i;

    for (i = 0; i < h->name_len; i++) {
        if (name[i] == '\0' || lower((unsigned char)h->name[i]) != lower((unsigned char)name[i]))
            return 0;
    }
    return name[h->name_len] == '\0';
}

int http1_is_hop_by_hop(const struct http1_head *head, const struct http1_header *h)
{
    const char *tok;
    size_t i, pos, tl;
    int empty;

    switch (h->kind) {
    case HTTP1_H_HOST:
    case HTTP1_H_CONTENT_LENGTH:
        return 0; /* a Connection listing removes neither the target nor the framing */
    case HTTP1_H_TE:
    case HTTP1_H_TRAILER:
    case HTTP1_H_UPGRADE:
    case HTTP1_H_CONNECTION:
    case HTTP1_H_KEEP_ALIVE:
    case HTTP1_H_PROXY_CONNECTION:
    case HTTP1_H_TRANSFER_ENCODING:
    case HTTP1_H_PROXY_AUTHENTICATE:
    case HTTP1_H_PROXY_AUTHORIZATION:
        return 1;
    default:
        break;
    }
    if (head->n_connection == 0)
        return 0;
    for (i = 0; i < head->n_headers; i++) {
        const struct http1_header *c = &head->headers[i];

        if (c->kind != HTTP1_H_CONNECTION)
            continue;
        pos = 0;
        empty = 0;
        while (list_next(c->value, c->value_len, &pos, &tok, &tl, &empty) == 1) {
            if (tl == h->name_len && ci_eq_mixed(tok, h->name, tl))
                return 1;
        }
    }
    return 0;
}

/* Decoder states; 0 is the start of a chunk-size line. */
enum {
    CS_SIZE = 0,      /* chunk-size hex digits (aux: digits) */
    CS_SIZE_BWS,      /* BWS after the size: only ';' may follow */
    CS_EXT_NAME0,     /* after ';': BWS, then a token */
    CS_EXT_NAME,      /* in an extension name */
    CS_EXT_AFTER_NAME,/* BWS after a name: '=', ';' or CR next */
    CS_EXT_VAL0,      /* after '=': BWS, then a token or a quoted-string */
    CS_EXT_VAL,       /* in a token value */
    CS_EXT_AFTER_VAL, /* BWS after a value: ';' or CR next */
    CS_EXT_QUOTED,    /* in a quoted-string */
    CS_EXT_ESC,       /* after a backslash in a quoted-string */
    CS_SIZE_LF,       /* the LF ending the chunk-size line */
    CS_DATA,          /* chunk data (remaining bytes) */
    CS_DATA_CR,       /* the CRLF after the data */
    CS_DATA_LF,
    CS_TRAILER0,      /* start of a trailer line or of the final CRLF */
    CS_TRAILER_NAME,
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_FINAL_LF,
    CS_DONE,
    CS_ERROR,
};

void http1_chunked_init(struct http1_chunked *st)
{
    memset(st, 0, sizeof(*st));
    st->state = CS_SIZE;
}

/* Value of one hex digit (the caller checked C_HEX). */
static unsigned hexval(unsigned char c)
{
    if (c <= '9')
        return c - (unsigned)'0';
    return (unsigned)(lower(c) - 'a' + 10);
}

/*
 * After an extension name or value: BWS keeps ws_state, ';' starts the
 * next extension, CR ends the line (BWS before CRLF is harmless: it cannot
 * move the framing).
 */
static int ext_after(unsigned char c, int ws_state)
{
    if (IS_WS(c))
        return ws_state;
    if (c == ';')
        return CS_EXT_NAME0;
    return c == '\r' ? CS_SIZE_LF : CS_ERROR;
}

/* Extension bytes, on the chunk-size line after the digits. */
static int ext_state(int s)
{
    return s >= CS_SIZE_BWS && s <= CS_EXT_ESC;
}

/* Trailer-section bytes, after the last-chunk line. */
static int trailer_state(int s)
{
    return s >= CS_TRAILER0 && s <= CS_FINAL_LF;
}

/* One framing byte: the next state, or CS_ERROR. */
static int chunk_step(struct http1_chunked *st, unsigned char c)
{
    switch (st->state) {
    case CS_SIZE:
        if (IS(c, C_HEX)) {
            if (++st->aux > 15)
                return CS_ERROR;
            st->remaining = st->remaining * 16 + hexval(c);
            return CS_SIZE;
        }
        if (st->aux == 0)
            return CS_ERROR;
        st->aux = 0;                 /* from here on: extension bytes */
        if (c == '\r')
            return CS_SIZE_LF;
        if (c == ';')
            return CS_EXT_NAME0;
        if (IS_WS(c))
            return CS_SIZE_BWS;
        return CS_ERROR;
    case CS_SIZE_BWS:
        if (IS_WS(c))
            return CS_SIZE_BWS;
        return c == ';' ? CS_EXT_NAME0 : CS_ERROR;
    case CS_EXT_NAME0:
        if (IS_WS(c))
            return CS_EXT_NAME0;
        return IS(c, C_TCHAR) ? CS_EXT_NAME : CS_ERROR;
    case CS_EXT_NAME:
        if (IS(c, C_TCHAR))
            return CS_EXT_NAME;
        return c == '=' ? CS_EXT_VAL0 : ext_after(c, CS_EXT_AFTER_NAME);
    case CS_EXT_AFTER_NAME:
        return c == '=' ? CS_EXT_VAL0 : ext_after(c, CS_EXT_AFTER_NAME);
    case CS_EXT_VAL0:
        if (IS_WS(c))
            return CS_EXT_VAL0;
        if (c == '"')
            return CS_EXT_QUOTED;
        return IS(c, C_TCHAR) ? CS_EXT_VAL : CS_ERROR;
    case CS_EXT_VAL:
        if (IS(c, C_TCHAR))
            return CS_EXT_VAL;
        return ext_after(c, CS_EXT_AFTER_VAL);
    case CS_EXT_AFTER_VAL:
        return ext_after(c, CS_EXT_AFTER_VAL);
    case CS_EXT_QUOTED:
        if (c == '"')
            return CS_EXT_AFTER_VAL;
        if (c == '\\')
            return CS_EXT_ESC;
        return IS(c, C_QDTEXT) ? CS_EXT_QUOTED : CS_ERROR;
    case CS_EXT_ESC:
        /* quoted-pair = "\\" ( HTAB / SP / VCHAR / obs-text ) */
        return IS(c, C_VALUE) ? CS_EXT_QUOTED : CS_ERROR;
    case CS_SIZE_LF:
        if (c != '\n')
            return CS_ERROR;
        st->aux = 0;
        return st->remaining > 0 ? CS_DATA : CS_TRAILER0;
    case CS_DATA_CR:
        return c == '\r' ? CS_DATA_LF : CS_ERROR;
    case CS_DATA_LF:
        if (c != '\n')
            return CS_ERROR;
        st->aux = 0;
        st->remaining = 0;
        return CS_SIZE;
    case CS_TRAILER0:
        if (c == '\r')
            return CS_FINAL_LF;
        return IS(c, C_TCHAR) ? CS_TRAILER_NAME : CS_ERROR;
    case CS_TRAILER_NAME:
        if (IS(c, C_TCHAR))
            return CS_TRAILER_NAME;
        return c == ':' ? CS_TRAILER_VALUE : CS_ERROR;
    case CS_TRAILER_VALUE:
        if (c == '\r')
            return CS_TRAILER_LF;
        return IS(c, C_VALUE) ? CS_TRAILER_VALUE : CS_ERROR;
    case CS_TRAILER_LF:
        return c == '\n' ? CS_TRAILER0 : CS_ERROR;
    case CS_FINAL_LF:
        return c == '\n' ? CS_DONE : CS_ERROR;
    default:
        return CS_ERROR;
    }
}

enum http1_chunk_result http1_chunked_feed(struct http1_chunked *st, const char *buf,
                                           size_t len, size_t *consumed,
                                           size_t *data_off, size_t *data_len)
{
    size_t i = 0, max_trailer = st->max_trailer ? st->max_trailer : HTTP1_DEFAULT_MAX_TRAILER;
    enum http1_chunk_result res = HTTP1_CHUNK_MORE;
    int next;

    *data_off = 0;
    *data_len = 0;
    while (st->state != CS_DONE && st->state != CS_ERROR && i < len) {
        if (st->state == CS_DATA) {
            size_t n = len - i;

            if ((uint64_t)n > st->remaining)
                n = (size_t)st->remaining;
            *data_off = i;
            *data_len = n;
            st->remaining -= n;
            st->total += n;
            if (st->remaining == 0)
                st->state = CS_DATA_CR;
            i += n;
            res = HTTP1_CHUNK_DATA;
            goto out;
        }
        next = chunk_step(st, (unsigned char)buf[i]);
        /* extension bytes: from the first byte after the digits to the CR */
        if (next != CS_ERROR && (ext_state(st->state) || ext_state(next)) &&
            ++st->aux > HTTP1_MAX_CHUNK_EXT)
            next = CS_ERROR;
        if (next != CS_ERROR && trailer_state(st->state) && ++st->aux > max_trailer)
            next = CS_ERROR;
        st->state = next;
        if (next == CS_ERROR)
            break;
        i++;
    }
    if (st->state == CS_ERROR)
        res = HTTP1_CHUNK_ERROR;
    else if (st->state == CS_DONE)
        res = HTTP1_CHUNK_DONE;
out:
    *consumed = i;
    return res;
}
