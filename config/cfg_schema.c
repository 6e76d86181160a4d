/*
 * cfg_schema.c - every configuration key, once: its dotted name, type,
 * field, default, range and flags. Loading, defaults, freeing, reload
 * comparison and the documentation all walk this table; adding a key is
 * adding a line here (and to config.h, the example file and the README).
 */
#include <ctype.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cfg_internal.h"

#define FIELD(m) offsetof(struct cfg, m), sizeof(((struct cfg *)0)->m)
#define MS_1H (3600u * 1000u)

static const struct cfg_name unknown_names[] = {
    {"reject", CFG_UNKNOWN_REJECT}, {"cn", CFG_UNKNOWN_CN}, {NULL, 0}};
static const struct cfg_name format_names[] = {
    {"text", CFG_LOG_TEXT}, {"json", CFG_LOG_JSON}, {NULL, 0}};
static const struct cfg_name level_names[] = {
    {"debug", CFG_LOG_DEBUG}, {"info", CFG_LOG_INFO}, {"warn", CFG_LOG_WARN},
    {"warning", CFG_LOG_WARN}, {"error", CFG_LOG_ERROR}, {NULL, 0}};
static const struct cfg_name access_words[] = {{"stderr", 0}, {"off", 0}, {NULL, 0}};
static const struct cfg_name error_words[] = {{"stderr", 0}, {NULL, 0}};

/* tls.min_version: the two protocol versions the gateway speaks. */
static int check_min_version(const char *s, char *why, size_t len)
{
    if (strcmp(s, "1.2") == 0 || strcmp(s, "1.3") == 0)
        return 0;
    snprintf(why, len, "must be \"1.2\" or \"1.3\"");
    return -1;
}

/*
 * headers.*: an RFC 9110 token, and not a name whose meaning the proxy
 * depends on (framing, hop-by-hop, forwarding), so that setting it can
 * never change how a request is delimited or routed.
 */
static int check_header_name(const char *s, char *why, size_t len)
{
    static const char *const reserved[] = {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive",
        "te", "trailer", "upgrade", "expect", "proxy-connection", "proxy-authorization",
        "x-forwarded-for", "x-forwarded-proto", "forwarded"};
    size_t i, n = strlen(s);

    if (n > 64) {
        snprintf(why, len, "is longer than 64 characters");
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (!isalnum(ch) && strchr("!#$%&'*+-.^_`|~", ch) == NULL) {
            snprintf(why, len, "is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)");
            return -1;
        }
    }
    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcasecmp(s, reserved[i]) == 0) {
            snprintf(why, len, "is a header the proxy itself handles; choose another name");
            return -1;
        }
    }
    return 0;
}

/*
 * user: must exist now, so that a typo is found by -t and not at start, and
 * must not be root (uid 0): dropping to root drops nothing.
 */
static int check_user(const char *s, char *why, size_t len)
{
    const struct passwd *pw = getpwnam(s);

    if (pw == NULL) {
        snprintf(why, len, "is not a user on this system");
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(why, len, "has uid 0 (root): name an unprivileged user to drop privileges to");
        return -1;
    }
    return 0;
}

/* tls.ciphers & co: handed to OpenSSL as is; refuse only obvious junk. */
static int check_list_text(const char *s, char *why, size_t len)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e) {
            snprintf(why, len, "may contain only printable characters without spaces");
            return -1;
        }
    }
    return 0;
}

#define DUR(name, m, def, help) \
    {name, CT_DURATION, FIELD(m), 0, def, 1, MS_1H, 0, NULL, NULL, "duration", help}

const struct cfg_key cfg_keys[] = {
    {"listen", CT_ADDRS, FIELD(listen), offsetof(struct cfg, n_listen), NULL, 0, 0,
     CF_REQUIRED | CF_RESTART, NULL, NULL, "list of addresses",
     "addresses to accept mTLS connections on: \"host:port\", \"[v6]:port\", \":port\""},
    {"workers", CT_UINT, FIELD(workers), 0, "auto", 1, 1024, CF_AUTO | CF_RESTART, NULL, NULL,
     "auto or integer", "worker threads, each with its own event loop; auto = online cores"},
    {"user", CT_STRING, FIELD(user), 0, NULL, 0, 0, CF_NONEMPTY | CF_RESTART, NULL, check_user,
     "string", "when started as root: bind, then drop privileges to this user"},
    {"pid_file", CT_PATH, FIELD(pid_file), 0, NULL, 0, 0, CF_PARENT | CF_RESTART, NULL, NULL,
     "path", "write the process id here (used by mtlsgate -s reload)"},
    {"watch", CT_DURATION, FIELD(watch_interval_ms), 0, "off", 1000, MS_1H, CF_OFF, NULL, NULL,
     "duration or off",
     "re-check certificate, key, CA and CRL files this often; reload when their content changes"},

    {"tls", CT_SECTION, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping", "the client-facing TLS"},
    {"tls.certificate", CT_PATH, FIELD(tls.certificate), 0, NULL, 0, 0, CF_REQUIRED | CF_READ,
     NULL, NULL, "path", "server certificate followed by its chain (PEM)"},
    {"tls.key", CT_PATH, FIELD(tls.key), 0, NULL, 0, 0, CF_REQUIRED | CF_READ, NULL, NULL,
     "path", "private key of tls.certificate (PEM); mode must give group/others nothing"},
    {"tls.client_ca", CT_PATH, FIELD(tls.client_ca), 0, NULL, 0, 0, CF_REQUIRED | CF_READ, NULL,
     NULL, "path",
     "client intermediate(s) and their root (PEM): clients must be issued by an intermediate here"},
    {"tls.crl", CT_PATH, FIELD(tls.crl), 0, NULL, 0, 0, CF_READ, NULL, NULL, "path",
     "CRL(s) of the client intermediates (PEM); revoked clients are refused"},
    {"tls.min_version", CT_STRING, FIELD(tls.min_version), 0, "1.2", 0, 0, CF_NONEMPTY, NULL,
     check_min_version, "\"1.2\" or \"1.3\"", "lowest TLS version accepted"},
    {"tls.ciphers", CT_STRING, FIELD(tls.ciphers), 0, NULL, 0, 0, CF_NONEMPTY, NULL,
     check_list_text, "string", "TLS 1.2 cipher list (OpenSSL syntax); unset = modern default"},
    {"tls.ciphersuites", CT_STRING, FIELD(tls.ciphersuites), 0, NULL, 0, 0, CF_NONEMPTY, NULL,
     check_list_text, "string", "TLS 1.3 cipher suites (OpenSSL syntax); unset = OpenSSL default"},
    {"tls.groups", CT_STRING, FIELD(tls.groups), 0, NULL, 0, 0, CF_NONEMPTY, NULL,
     check_list_text, "string", "key exchange groups, e.g. X25519:P-256; unset = default"},
    {"tls.require_client_eku", CT_BOOL, FIELD(tls.require_eku), 0, "true", 0, 0, 0, NULL, NULL,
     "bool", "refuse client certificates without an extended key usage extension"},
    {"tls.session_tickets", CT_BOOL, FIELD(tls.session_tickets), 0, "true", 0, 0, 0, NULL, NULL,
     "bool", "TLS session tickets (a resumed session is re-checked all the same)"},
    {"tls.session_cache", CT_UINT, FIELD(tls.session_cache), 0, "10000", 0, 10000000, 0, NULL,
     NULL, "integer",
     "sessions kept in memory for resumption, shared by the workers; 0 = stateless tickets"},
    {"tls.ticket_key_file", CT_PATH, FIELD(tls.ticket_key_file), 0, NULL, 0, 0, CF_READ, NULL,
     NULL, "path", "stateless ticket keys shared by several instances; unset = random, rotated"},
    {"tls.allow_insecure_key_permissions", CT_BOOL, FIELD(tls.allow_insecure_key_permissions), 0,
     "false", 0, 0, 0, NULL, NULL, "bool",
     "accept key files whose mode gives group or others access"},

    {"upstream", CT_SECTION, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping", "the db-service"},
    {"upstream.servers", CT_ADDRS, FIELD(upstream.servers), offsetof(struct cfg, upstream.n_servers),
     NULL, 0, 0, CF_REQUIRED, NULL, NULL, "list of addresses",
     "upstream servers, used round robin; a failing one is skipped for fail_timeout"},
    {"upstream.keepalive", CT_UINT, FIELD(upstream.keepalive), 0, "32", 0, 10000, 0, NULL, NULL,
     "integer", "idle upstream connections kept per worker (0 = none)"},
    {"upstream.fail_timeout", CT_DURATION, FIELD(upstream.fail_timeout_ms), 0, "10s", 0, MS_1H, 0,
     NULL, NULL, "duration", "how long a server that failed is skipped"},
    {"upstream.tls", CT_SECTION, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping",
     "TLS to the upstream"},
    {"upstream.tls.enabled", CT_BOOL, FIELD(upstream.tls), 0, "false", 0, 0, 0, NULL, NULL, "bool",
     "speak TLS to the upstream servers"},
    {"upstream.tls.ca", CT_PATH, FIELD(upstream.tls_ca), 0, NULL, 0, 0, CF_READ, NULL, NULL,
     "path", "CA(s) that verify the upstream's certificate (required when enabled)"},
    {"upstream.tls.certificate", CT_PATH, FIELD(upstream.tls_certificate), 0, NULL, 0, 0, CF_READ,
     NULL, NULL, "path", "the gateway's own client certificate for the upstream (optional)"},
    {"upstream.tls.key", CT_PATH, FIELD(upstream.tls_key), 0, NULL, 0, 0, CF_READ, NULL, NULL,
     "path", "its private key"},
    {"upstream.tls.server_name", CT_STRING, FIELD(upstream.tls_server_name), 0, NULL, 0, 0,
     CF_NONEMPTY, NULL, NULL, "string",
     "SNI and the name checked in the upstream's certificate; unset = the server's host"},

    {"identities", CT_SECTION, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping",
     "client certificate CN -> backend identity"},
    {"identities.unknown", CT_ENUM, FIELD(identities.unknown), 0, "reject", 0, 0, 0, unknown_names,
     NULL, "reject or cn", "a CN not in the map: 403 (reject), or the CN becomes the identity (cn)"},
    {"identities.map", CT_IDENTITIES, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping",
     "CN: identity, or CN: {identity: X, allow: [\"GET /\", \"POST /x\", \"/y\"]}"},

    {"timeouts", CT_SECTION, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping",
     "each > 0 and at most 1h"},
    DUR("timeouts.handshake", timeouts.handshake_ms, "10s", "TLS handshake, from accept"),
    DUR("timeouts.header", timeouts.header_ms, "10s",
        "whole request head (total, not per read); 408 beyond"),
    DUR("timeouts.body", timeouts.body_ms, "60s", "whole request body (total); 408 beyond"),
    DUR("timeouts.keepalive", timeouts.keepalive_ms, "15s", "idle client connection between requests"),
    DUR("timeouts.upstream_connect", timeouts.upstream_connect_ms, "5s",
        "connecting to an upstream server; 502 beyond"),
    DUR("timeouts.upstream_read", timeouts.upstream_read_ms, "60s",
        "waiting for the upstream's response; 504 beyond"),
    DUR("timeouts.drain", timeouts.drain_ms, "30s",
        "on SIGTERM: how long in-flight requests may take to finish"),

    {"limits", CT_SECTION, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping", "resource limits"},
    {"limits.max_connections", CT_UINT, FIELD(max_connections), 0, "10000", 1, 1000000, 0, NULL,
     NULL, "integer", "open client connections per process; beyond, new ones wait in the backlog"},
    {"limits.max_header_size", CT_SIZE, FIELD(limits.max_header_bytes), 0, "16k", 1024,
     1024 * 1024, 0, NULL, NULL, "size", "request line and headers together; 431 beyond"},
    {"limits.max_headers", CT_UINT, FIELD(limits.max_headers), 0, "100", 1, 10000, 0, NULL, NULL,
     "integer", "header fields per request; 431 beyond"},
    {"limits.max_body_size", CT_SIZE, FIELD(limits.max_body_bytes), 0, "0", 0, UINT64_MAX, 0, NULL,
     NULL, "size", "request body; 413 beyond; 0 = unlimited (bodies are streamed)"},

    {"headers", CT_SECTION, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping",
     "names of the headers only mtlsgate sets (client copies are removed)"},
    {"headers.identity", CT_STRING, FIELD(headers.identity), 0, "X-Client-Identity", 0, 0,
     CF_NONEMPTY, NULL, check_header_name, "header name", "the mapped identity"},
    {"headers.cn", CT_STRING, FIELD(headers.cn), 0, "X-Client-CN", 0, 0, CF_NONEMPTY, NULL,
     check_header_name, "header name", "the client certificate's CN"},
    {"headers.cert_sha256", CT_STRING, FIELD(headers.cert_sha256), 0, "X-Client-Cert-Sha256", 0, 0,
     CF_NONEMPTY, NULL, check_header_name, "header name",
     "SHA-256 of the client certificate (hex)"},
    {"headers.request_id", CT_STRING, FIELD(headers.request_id), 0, "X-Request-Id", 0, 0,
     CF_NONEMPTY, NULL, check_header_name, "header name", "the request id, also in the access log"},

    {"log", CT_SECTION, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping", "logging"},
    {"log.access", CT_PATH, FIELD(log.access), 0, "stderr", 0, 0, CF_PARENT, access_words, NULL,
     "stderr, off or path", "one line per request"},
    {"log.format", CT_ENUM, FIELD(log.format), 0, "text", 0, 0, 0, format_names, NULL,
     "text or json", "format of both logs"},
    {"log.level", CT_ENUM, FIELD(log.level), 0, "info", 0, 0, 0, level_names, NULL,
     "debug, info, warn or error", "lowest level written to the error log"},
    {"log.error", CT_PATH, FIELD(log.error), 0, "stderr", 0, 0, CF_PARENT, error_words, NULL,
     "stderr or path", "the error log"},

    {"admin", CT_SECTION, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL, "mapping",
     "plain-HTTP admin listener: /healthz, /readyz, /metrics"},
    {"admin.listen", CT_ADDR, FIELD(admin.listen), 0, NULL, 0, 0, CF_OFF | CF_RESTART, NULL, NULL,
     "address or off", "where the admin listener binds (keep it on loopback); unset = off"},
};

const size_t cfg_nkeys = sizeof(cfg_keys) / sizeof(cfg_keys[0]);

int cfg_key_find(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < cfg_nkeys; i++)
        if (strlen(cfg_keys[i].name) == len && memcmp(cfg_keys[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

const char *cfg_key_name(size_t i)
{
    return i < cfg_nkeys ? cfg_keys[i].name : NULL;
}
