/*
 * config.h - the gateway's configuration: one YAML file read with libyaml.
 *
 * cfg_load() reads, type-checks and validates the whole file into a
 * struct cfg, or reports every problem it found as
 * "FILE:LINE:COLUMN: KEY: cause" lines. Relative file paths in the config
 * are resolved against the directory of the config file. Every key, its
 * type and default are documented in config/mtlsgate.example.yml and the
 * README; durations are "500ms", "10s", "2m", "1h" or a plain number of
 * seconds; sizes are "512", "16k", "1m", "1g" (bytes, powers of 1024).
 */
#ifndef MTLS_CONFIG_H
#define MTLS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_MUSTCHECK __attribute__((warn_unused_result))

enum cfg_unknown_cn { CFG_UNKNOWN_REJECT = 0, CFG_UNKNOWN_CN };
enum cfg_log_format { CFG_LOG_TEXT = 0, CFG_LOG_JSON };
enum cfg_log_level { CFG_LOG_DEBUG = 0, CFG_LOG_INFO, CFG_LOG_WARN, CFG_LOG_ERROR };

/* "GET /" style rule: method (NULL = any) and a path prefix. */
struct cfg_rule {
    char *method;
    char *path_prefix;
};

/* identities.map entry: CN -> identity, with an optional allow list. */
struct cfg_identity {
    char *cn;
    char *identity;
    struct cfg_rule *allow;   /* NULL when no allow list: everything allowed */
    size_t n_allow;           /* an empty list "allow: []" allows nothing */
    int has_allow;
};

/* "host:port", "[v6]:port" split into parts. */
struct cfg_addr {
    char *host;
    char *port;
};

struct cfg {
    char *path;               /* the file it was read from */
    char *dir;                /* its directory, for relative paths */

    struct cfg_addr *listen;  /* listen: ["0.0.0.0:8443"] */
    size_t n_listen;
    unsigned workers;         /* workers: auto (= cores) or N >= 1 */
    unsigned max_connections; /* limits.max_connections, per process */

    struct {
        char *certificate;    /* absolute after load */
        char *key;
        char *client_ca;
        char *crl;            /* NULL when not set */
        char *min_version;    /* "1.2" | "1.3" */
        char *ciphers;        /* NULL = default */
        char *ciphersuites;
        char *groups;
        int require_eku;      /* tls.require_client_eku, default 1 */
        int session_tickets;  /* tls.session_tickets, default 1 */
        char *ticket_key_file;/* tls.ticket_key_file, NULL = random, rotated */
        unsigned session_cache; /* tls.session_cache: sessions kept in memory
                                 for resumption, default 10000; 0 = stateless
                                 tickets (always 0 with ticket_key_file) */
        int allow_insecure_key_permissions; /* default 0 */
    } tls;

    struct {
        struct cfg_addr *servers;
        size_t n_servers;
        int tls;              /* upstream.tls.enabled */
        char *tls_ca;         /* CA to verify the upstream (required with tls) */
        char *tls_certificate;/* gateway's own client cert, optional */
        char *tls_key;
        char *tls_server_name;/* SNI and name checked, default: the host */
        unsigned keepalive;   /* idle pooled connections per worker, default 32 */
        unsigned fail_timeout_ms; /* how long a failed server is skipped */
    } upstream;

    struct {
        enum cfg_unknown_cn unknown;
        struct cfg_identity *map;
        size_t n_map;
    } identities;

    struct {                  /* milliseconds; every default is <= 60 s */
        unsigned handshake_ms, header_ms, body_ms, keepalive_ms;
        unsigned upstream_connect_ms, upstream_read_ms, drain_ms;
    } timeouts;

    struct {
        size_t max_header_bytes;  /* default 16k -> 431 beyond */
        unsigned max_headers;     /* default 100 -> 431 beyond */
        uint64_t max_body_bytes;  /* default 0 = unlimited; -> 413 beyond */
    } limits;

    struct {                      /* names of the headers only mtlsgate sets */
        char *identity;           /* X-Client-Identity */
        char *cn;                 /* X-Client-CN */
        char *cert_sha256;        /* X-Client-Cert-Sha256 */
        char *request_id;         /* X-Request-Id */
    } headers;

    struct {
        char *access;             /* "stderr" | "off" | path */
        enum cfg_log_format format;
        enum cfg_log_level level;
        char *error;              /* "stderr" | path */
    } log;

    struct {
        struct cfg_addr *listen;  /* NULL when admin is off */
    } admin;

    char *user;                   /* drop privileges to it when root */
    char *pid_file;               /* NULL = none */
    unsigned watch_interval_ms;   /* 0 = off */

    /* Private to config/: where each key was set, for cfg_where(). */
    struct cfg_origin *origin;
};

/* Collected problems, each a full one-line message. */
#define CFG_DIAG_MAX 64
struct cfg_diag {
    size_t n;
    char *msg[CFG_DIAG_MAX];
};

/*
 * Reads and validates path. *diag is reset on entry (free the messages of
 * an earlier call first); diag may be NULL. c->path and c->dir are
 * absolute; the messages name the file as path was given. On success *out is a new config (cfg_free) and
 * 0 is returned. On failure returns -1, *out is NULL, and diag holds at
 * least one message. Checks types, ranges and required keys, unknown and
 * duplicate keys (an unknown key gets the nearest known one suggested),
 * that every file it reads exists and is a readable regular file, that the
 * directory of every file it writes (logs, pid) exists, and that private
 * key files (tls.key, upstream.tls.key, tls.ticket_key_file) give group and
 * others no access unless tls.allow_insecure_key_permissions. It does not
 * parse certificates (the gateway's -t does). Limits: 1 MiB, nesting depth
 * 16, 50000 YAML nodes; YAML aliases and multiple documents are refused.
 */
int cfg_load(const char *path, struct cfg **out, struct cfg_diag *diag) CFG_MUSTCHECK;
void cfg_free(struct cfg *c);               /* NULL is fine */
void cfg_diag_free(struct cfg_diag *diag);  /* frees the messages, n = 0 */

/*
 * For mtlsgate -s: reads only the top-level pid_file of the config at path,
 * made absolute like cfg_load() does, without checking any other key or
 * file, so that a running instance can be reloaded or stopped after its
 * config was edited badly. 0 with *pid_file a new string (free) or NULL when
 * not set; -1 with the message in diag when the file cannot be read, is not
 * YAML, or pid_file is not a single value.
 */
int cfg_load_pid_file(const char *path, char **pid_file, struct cfg_diag *diag) CFG_MUSTCHECK;

/*
 * Same as cfg_load() for a configuration already in memory (len bytes, no
 * NUL needed). name stands for the file: it is used in the messages and
 * its directory resolves relative paths. For tests and the fuzzer.
 */
int cfg_load_buffer(const char *name, const char *buf, size_t len,
                    struct cfg **out, struct cfg_diag *diag) CFG_MUSTCHECK;

/*
 * Appends one printf-formatted message to diag (NULL is fine), for callers
 * that check more than the loader does (the gateway's -t) and want the
 * same list. Past CFG_DIAG_MAX - 1 messages the last slot says how many
 * more there were.
 */
void cfg_diag_addf(struct cfg_diag *diag, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Writes "FILE:LINE:COLUMN" of the value of key (a dotted name such as
 * "tls.key") into buf and returns buf, so that a later error about that
 * key can point at it: "%s: tls.key: does not match tls.certificate".
 * When the key was not in the file (a default) it writes just "FILE".
 * Always NUL-terminates (len > 0).
 */
const char *cfg_where(const struct cfg *c, const char *key, char *buf, size_t len);

/*
 * For a reload: compares the keys that only take effect at start (listen,
 * workers, user, pid_file, admin.listen) between the running config (the
 * one the process started with, or its cfg_restart_snapshot) and the new
 * one, adds one message per changed key to diag ("FILE:L:C: listen:
 * changed; takes effect only after a restart") and returns how many
 * changed. The rest of the new config can still be applied.
 */
size_t cfg_restart_needed(const struct cfg *old, const struct cfg *new_cfg,
                          struct cfg_diag *diag);

/*
 * A copy of c holding only what cfg_restart_needed compares: the keys that
 * take effect at start (and c's path and origin, for messages); every other
 * key is unset (0 / NULL). The gateway keeps one from its start, so that a
 * reload compares with what is really running, not with the last reload.
 * Free with cfg_free. NULL when out of memory.
 */
struct cfg *cfg_restart_snapshot(const struct cfg *c) CFG_MUSTCHECK;

/* The i-th known key ("tls.key"), NULL past the end: the schema, for docs. */
const char *cfg_key_name(size_t i);

/* Frees the parts of one address (not a itself); NULL is fine. */
void cfg_addr_free(struct cfg_addr *a);

/* Parses "10s", "500ms", "2m", "1h", "30" (seconds) into ms. 0 / -1. */
int cfg_parse_duration(const char *s, unsigned *ms);
/* Parses "512", "16k", "1m", "1g" into bytes. 0 / -1. */
int cfg_parse_size(const char *s, uint64_t *bytes);
/*
 * Splits "host:port" / "[v6]:port" / ":port" (host "0.0.0.0") into new
 * strings (cfg_addr_free); the host of "[::1]:8443" is "::1". The port is
 * 1..65535; a bare IPv6 address without brackets is refused. 0 / -1; on
 * failure *out is {NULL, NULL}.
 */
int cfg_parse_addr(const char *s, struct cfg_addr *out);

#endif
