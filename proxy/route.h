/*
 * route.h - is this request-target safe, may this identity ask for it, and
 * may the request be sent twice.
 *
 * Pure functions over the parsed request line, table-tested in
 * tests/unit/test_proxy_route.c.
 */
#ifndef MTLS_PROXY_ROUTE_H
#define MTLS_PROXY_ROUTE_H

#include <stddef.h>

#include "config.h"

/*
 * 1 when the path part (before '?') of an origin-form path is one the
 * gateway will match rules against and forward; 0 (a 400) when it does not
 * start with '/', or has a dot-segment ("/./", "/../", a final "/." or
 * "/..", also with path parameters: "/..;/", "/.;x/", "/..%3b/"), a
 * backslash, or a percent-encoded '.', '/' or '\' (%2e %2f %5c, any case):
 * forms that a backend might normalise into a path the rules never saw.
 * The query is not examined. "*" (asterisk-form) is safe.
 */
int gw_route_path_safe(const char *path, size_t len);

/*
 * 1 when rule r matches: its method is NULL (any) or equal to method
 * (case-sensitive, as methods are), and path starts with its prefix at a
 * segment boundary: "/attestations" matches "/attestations",
 * "/attestations/x" and "/attestations?q" but not "/attestationsX"; a
 * prefix ending in '/' ("/", "/api/") matches everything under it. "*"
 * matches only a rule whose prefix is "/".
 */
int gw_route_rule_match(const struct cfg_rule *r, const char *method, size_t method_len,
                        const char *path, size_t path_len);

/*
 * 1 when the request is allowed: no allow list (has_allow 0), or any rule
 * matches. An empty list with has_allow allows nothing.
 */
int gw_route_allowed(const struct cfg_rule *rules, size_t n, int has_allow,
                     const char *method, size_t method_len, const char *path, size_t path_len);

/*
 * 1 when method (case-sensitive) is idempotent by RFC 9110 9.2.2: GET,
 * HEAD, OPTIONS, TRACE, PUT, DELETE. Only such a request may be sent to an
 * upstream a second time when a pooled connection closed without a byte of
 * answer (the first copy may have been processed); the same list as
 * nginx's proxy_next_upstream uses.
 */
int gw_route_method_idempotent(const char *method, size_t len);

#endif
