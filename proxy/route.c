/*
 * route.c - request-target safety and allow-rule matching (see route.h).
 */
#include "route.h"

#include <string.h>
#include <strings.h>

/* 1 when p[0..2] is "%2e"/"%2f"/"%5c" in any case. */
static int is_encoded_special(const char *p, size_t left)
{
    if (left < 3 || p[0] != '%')
        return 0;
    return strncasecmp(p, "%2e", 3) == 0 || strncasecmp(p, "%2f", 3) == 0 ||
           strncasecmp(p, "%5c", 3) == 0;
}

int gw_route_path_safe(const char *path, size_t len)
{
    size_t end, i;

    if (len == 1 && path[0] == '*')
        return 1;
    if (len == 0 || path[0] != '/')
        return 0;
    for (end = 0; end < len && path[end] != '?'; end++)
        ;
    for (i = 0; i < end; i++) {
        if (path[i] == '\\' || is_encoded_special(path + i, end - i))
            return 0;
        if (path[i] == '/') {
            /* A segment "." or ".." following this slash, also with path
             * parameters behind it ("..;x", "..;", "..%3b"): Tomcat, Jetty
             * and Spring strip ";..." from a segment before resolving dot
             * segments, so "/allowed/..;/admin" becomes "/admin" there. */
            size_t seg = i + 1, n = 0;

            while (seg + n < end && path[seg + n] == '.')
                n++;
            if ((n == 1 || n == 2) &&
                (seg + n == end || path[seg + n] == '/' || path[seg + n] == ';' ||
                 (end - (seg + n) >= 3 && strncasecmp(path + seg + n, "%3b", 3) == 0)))
                return 0;
        }
    }
    return 1;
}

int gw_route_rule_match(const struct cfg_rule *r, const char *method, size_t method_len,
                        const char *path, size_t path_len)
{
    size_t plen;

    if (r->method && (strlen(r->method) != method_len ||
                      memcmp(r->method, method, method_len) != 0))
        return 0;
    if (!r->path_prefix)
        return 1;
    plen = strlen(r->path_prefix);
    if (path_len == 1 && path[0] == '*')
        return plen == 1 && r->path_prefix[0] == '/';
    if (path_len < plen || memcmp(path, r->path_prefix, plen) != 0)
        return 0;
    if (path_len == plen || (plen > 0 && r->path_prefix[plen - 1] == '/'))
        return 1;
    return path[plen] == '/' || path[plen] == '?';
}

int gw_route_allowed(const struct cfg_rule *rules, size_t n, int has_allow,
                     const char *method, size_t method_len, const char *path, size_t path_len)
{
    size_t i;

    if (!has_allow)
        return 1;
    for (i = 0; i < n; i++)
        if (gw_route_rule_match(&rules[i], method, method_len, path, path_len))
            return 1;
    return 0;
}

int gw_route_method_idempotent(const char *method, size_t len)
{
    static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    size_t i;

    for (i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++)
        if (strlen(idempotent[i]) == len && memcmp(idempotent[i], method, len) == 0)
            return 1;
    return 0;
}
