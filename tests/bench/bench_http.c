/*
 * bench_http.c - HTTP/1.1 framing helpers of the benchmark programs.
 */
#include "bench_http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    CH_SIZE = 0,     /* reading hex digits of a chunk size */
    CH_EXT,          /* skipping a chunk extension up to LF */
    CH_SIZE_LF,      /* saw CR after the size line, expect LF */
    CH_DATA,         /* inside chunk data */
    CH_DATA_CR,      /* after data, expect CR (or a bare LF) */
    CH_DATA_LF,      /* after data CR, expect LF */
    CH_TRAILER_BOL,  /* at the start of a trailer line */
    CH_TRAILER_LINE, /* inside a trailer field line */
    CH_TRAILER_LF,   /* saw CR of the empty line ending the body */
    CH_DONE
};

/* Contract in bench_http.h. */
size_t bh_head_len(const char *buf, size_t len)
{
    const char *end = len >= 4 ? memmem(buf, len, "\r\n\r\n", 4) : NULL;

    return end ? (size_t)(end - buf) + 4 : 0;
}

/*
 * Whether the comma-separated value v[0..n) has token tok (any case).
 */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;

    while (i < n) {
        size_t s, e;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/*
 * Whether the last comma-separated token of v[0..n) is tok (any case).
 */
static int last_token_is(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), e = n, s;

    while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == ','))
        e--;
    s = e;
    while (s > 0 && v[s - 1] != ',' && v[s - 1] != ' ' && v[s - 1] != '\t')
        s--;
    return e - s == tl && strncasecmp(v + s, tok, tl) == 0;
}

/*
 * Parses the start line line[0..n). 0 / -1.
 */
static int parse_start_line(const char *line, size_t n, int is_response,
                            struct bh_head *h)
{
    int rc = -1;

    if (is_response) {
        if (n < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
            goto out;
        h->http10 = line[7] == '0';
        if (!isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
            !isdigit((unsigned char)line[11]))
            goto out;
        h->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    } else {
        const char *sp = memchr(line, ' ', n);

        if (sp == NULL || n < 9 || memcmp(line + n - 8, "HTTP/1.", 7) != 0)
            goto out;
        h->is_post = (size_t)(sp - line) == 4 && memcmp(line, "POST", 4) == 0;
        h->http10 = line[n - 1] == '0';
    }
    rc = 0;
out:
    return rc;
}

/* Contract in bench_http.h. */
int bh_parse_head(const char *buf, size_t len, int is_response, struct bh_head *h)
{
    const char *p = buf, *end = buf + len;
    int rc = -1, first = 1, keep_alive = 0;

    memset(h, 0, sizeof(*h));
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le, *colon, *v, *ve;
        size_t nl;

        if (eol == NULL)
            goto out;
        le = eol;
        if (le > p && le[-1] == '\r')
            le--;
        if (le == p)
            break;                          /* the empty line */
        if (first) {
            if (parse_start_line(p, (size_t)(le - p), is_response, h) != 0)
                goto out;
            first = 0;
            p = eol + 1;
            continue;
        }
        colon = memchr(p, ':', (size_t)(le - p));
        if (colon == NULL)
            goto out;
        nl = (size_t)(colon - p);
        v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t'))
            v++;
        ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (nl == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            uint64_t cl = 0;
            const char *d;

            if (v == ve)
                goto out;
            for (d = v; d < ve; d++) {
                if (!isdigit((unsigned char)*d) || cl > (UINT64_MAX - 9) / 10)
                    goto out;
                cl = cl * 10 + (uint64_t)(*d - '0');
            }
            if (h->has_length && h->content_length != cl)
                goto out;
            h->has_length = 1;
            h->content_length = cl;
        } else if (nl == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            h->chunked = last_token_is(v, (size_t)(ve - v), "chunked");
        } else if (nl == 10 && strncasecmp(p, "Connection", 10) == 0) {
            if (has_token(v, (size_t)(ve - v), "close"))
                h->conn_close = 1;
            if (has_token(v, (size_t)(ve - v), "keep-alive"))
                keep_alive = 1;
        } else if (nl == 11 && strncasecmp(p, "X-Client-CN", 11) == 0) {
            h->has_client_cn = 1;
        }
        p = eol + 1;
    }
    if (first)
        goto out;
    if (h->http10 && !keep_alive)
        h->conn_close = 1;
    rc = 0;
out:
    return rc;
}

/* Contract in bench_http.h. */
void bh_chunked_init(struct bh_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
}

/*
 * Value of hex digit ch, or -1.
 */
static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/*
 * The size line ended: start the chunk's data, or the trailer section
 * after the last (zero-size) chunk. 0 / -1 (no digits).
 */
static int size_line_done(struct bh_chunked *c)
{
    if (c->digits == 0)
        return -1;
    c->state = c->size == 0 ? CH_TRAILER_BOL : CH_DATA;
    return 0;
}

/* Contract in bench_http.h. */
ssize_t bh_chunked_feed(struct bh_chunked *c, const char *p, size_t n, int *done)
{
    size_t i = 0;

    *done = 0;
    while (i < n && c->state != CH_DONE) {
        char ch = p[i];
        int hv;

        switch (c->state) {
        case CH_SIZE:
            hv = hexval(ch);
            if (hv >= 0) {
                if (c->digits >= 15)
                    return -1;              /* over 2^60: nobody sends that */
                c->size = c->size * 16 + (uint64_t)hv;
                c->digits++;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                if (size_line_done(c) != 0)
                    return -1;
            } else {
                return -1;
            }
            i++;
            break;
        case CH_EXT:
            if (ch == '\n' && size_line_done(c) != 0)
                return -1;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n' || size_line_done(c) != 0)
                return -1;
            i++;
            break;
        case CH_DATA: {
            size_t take = n - i;

            if ((uint64_t)take > c->size)
                take = (size_t)c->size;
            c->size -= take;
            i += take;
            if (c->size == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch == '\r')
                c->state = CH_DATA_LF;
            else if (ch == '\n')
                c->state = CH_SIZE, c->digits = 0;
            else
                return -1;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return -1;
            c->state = CH_SIZE;
            c->digits = 0;
            i++;
            break;
        case CH_TRAILER_BOL:
            if (ch == '\r')
                c->state = CH_TRAILER_LF;
            else if (ch == '\n')
                c->state = CH_DONE;
            else
                c->state = CH_TRAILER_LINE;
            i++;
            break;
        case CH_TRAILER_LINE:
            if (ch == '\n')
                c->state = CH_TRAILER_BOL;
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                return -1;
            c->state = CH_DONE;
            i++;
            break;
        default:
            return -1;
        }
    }
    if (c->state == CH_DONE)
        *done = 1;
    return (ssize_t)i;
}

/* Contract in bench_http.h. */
int bh_parse_size(const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;
    uint64_t mul = 1;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    v = strtoull(s, &end, 10);
    if (end[0] != '\0') {
        switch (tolower((unsigned char)end[0])) {
        case 'k': mul = 1024; break;
        case 'm': mul = 1024 * 1024; break;
        case 'g': mul = 1024ull * 1024 * 1024; break;
        default: return -1;
        }
        if (end[1] != '\0' && !(tolower((unsigned char)end[1]) == 'b' && end[2] == '\0'))
            return -1;
    }
    if (v > UINT64_MAX / mul)
        return -1;
    *out = (uint64_t)v * mul;
    return 0;
}
