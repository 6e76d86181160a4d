/*
 * cfg_parse.c - the value syntaxes of the configuration: durations, sizes
 * and listen/upstream addresses. Pure functions of a string, so that they
 * can be tested from tables and reused by the gateway.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/*
 * Reads the leading decimal digits of s into *n (at least one digit, no
 * sign, no overflow past UINT64_MAX). Returns the first byte after them,
 * or NULL.
 */
static const char *read_digits(const char *s, uint64_t *n)
{
    uint64_t v = 0;
    const char *p = s;

    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');

        if (v > (UINT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
    }
    if (p == s)
        return NULL;
    *n = v;
    return p;
}

/*
 * "500ms", "10s", "2m", "1h", or a plain number of seconds, into
 * milliseconds that fit an unsigned. Anything else (signs, spaces,
 * fractions, other units) is refused and *ms left alone.
 */
int cfg_parse_duration(const char *s, unsigned *ms)
{
    uint64_t n, mult;
    const char *unit;

    if (s == NULL || ms == NULL || (unit = read_digits(s, &n)) == NULL)
        return -1;
    if (strcmp(unit, "ms") == 0)
        mult = 1;
    else if (*unit == '\0' || strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600 * 1000;
    else
        return -1;
    if (n > UINT_MAX / mult)
        return -1;
    *ms = (unsigned)(n * mult);
    return 0;
}

/*
 * "512", "16k", "1m", "1g" (either case; powers of 1024) into bytes.
 * Refuses overflow, signs, spaces and other suffixes; *bytes left alone.
 */
int cfg_parse_size(const char *s, uint64_t *bytes)
{
    uint64_t n;
    unsigned shift;
    const char *unit;

    if (s == NULL || bytes == NULL || (unit = read_digits(s, &n)) == NULL)
        return -1;
    switch (*unit) {
    case '\0': shift = 0; break;
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    default: return -1;
    }
    if (shift != 0 && unit[1] != '\0')
        return -1;
    if (n > (UINT64_MAX >> shift))
        return -1;
    *bytes = n << shift;
    return 0;
}

/* A host name or IPv4 address: letters, digits, '.', '-', '_'. */
static int host_ok(const char *h, size_t len)
{
    size_t i;

    if (len == 0 || len > 253)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)h[i];

        if (!isalnum(ch) && ch != '.' && ch != '-' && ch != '_')
            return 0;
    }
    return 1;
}

/* The inside of "[...]": an IPv6 address with an optional "%zone". */
static int v6_ok(const char *h, size_t len)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    unsigned char bin[16];
    const char *pct = memchr(h, '%', len);
    size_t alen = pct != NULL ? (size_t)(pct - h) : len;
    size_t i;

    if (alen == 0 || alen >= sizeof(tmp))
        return 0;
    memcpy(tmp, h, alen);
    tmp[alen] = '\0';
    if (inet_pton(AF_INET6, tmp, bin) != 1)
        return 0;
    if (pct != NULL) {
        size_t zlen = len - alen - 1;

        if (zlen == 0 || zlen > 15)
            return 0;
        for (i = alen + 1; i < len; i++)
            if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '_' && h[i] != '.')
                return 0;
    }
    return 1;
}

/*
 * Splits an address into host and port (see config.h). The port must be
 * decimal 1..65535 and is stored normalised ("08443" -> "8443").
 */
int cfg_parse_addr(const char *s, struct cfg_addr *out)
{
    const char *host, *port;
    size_t hlen;
    uint64_t pn;
    const char *end;
    char pbuf[8];
    int rc = -1;

    if (out == NULL)
        return -1;
    out->host = NULL;
    out->port = NULL;
    if (s == NULL)
        goto out;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL || close[1] != ':')
            goto out;
        host = s + 1;
        hlen = (size_t)(close - host);
        if (!v6_ok(host, hlen))
            goto out;
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');

        if (colon == NULL)
            goto out;
        host = s;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL)
            goto out;           /* a bare IPv6 address: needs brackets */
        if (hlen == 0) {
            host = "0.0.0.0";
            hlen = strlen(host);
        } else if (!host_ok(host, hlen)) {
            goto out;
        }
        port = colon + 1;
    }
    if (strlen(port) > 5 || (end = read_digits(port, &pn)) == NULL || *end != '\0' ||
        pn < 1 || pn > 65535)
        goto out;
    snprintf(pbuf, sizeof(pbuf), "%u", (unsigned)pn);
    if ((out->host = strndup(host, hlen)) == NULL || (out->port = strdup(pbuf)) == NULL)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        cfg_addr_free(out);
    return rc;
}

/* Frees host and port and NULLs them; a itself belongs to the caller. */
void cfg_addr_free(struct cfg_addr *a)
{
    if (a == NULL)
        return;
    free(a->host);
    free(a->port);
    a->host = NULL;
    a->port = NULL;
}
