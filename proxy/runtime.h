/*
 * runtime.h - everything the gateway derives from one configuration.
 *
 * A runtime is built completely (config, server SSL_CTX with its trust set,
 * upstream client SSL_CTX, identity source, resolved upstream addresses)
 * on the main thread, and only then handed to the workers; a reload builds
 * a new one and swaps it in only if the build succeeded. It is immutable
 * once published, except for the upstream failure marks (atomics), and
 * reference counted: every request holds a reference to the runtime it
 * started with, so a reload never pulls anything from under it.
 */
#ifndef MTLS_PROXY_RUNTIME_H
#define MTLS_PROXY_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <sys/socket.h>
#include <openssl/types.h>

#include "config.h"
#include "identity.h"
#include "rewrite.h"

#define GW_RT_MUSTCHECK __attribute__((warn_unused_result))
#define GW_MAX_UPSTREAMS 64

struct tls_ticket_keys;
struct tls_sessions;

struct gw_upstream_server {
    struct sockaddr_storage addr;   /* resolved once, at build time */
    socklen_t addrlen;
    char name[300];                 /* "host:port" ("[v6]:port"), for logs and Host */
    const char *host;               /* the configured host (TLS name), in cfg */
    uint64_t failed_until_ms;       /* monotonic ms; atomic; 0 = healthy */
};

struct gw_runtime {
    int refs;                       /* atomic */
    uint64_t generation;            /* 1 for the first load, +1 per reload */
    struct cfg *cfg;                /* owned */
    SSL_CTX *server_ctx;            /* shared by all workers */
    SSL_CTX *upstream_ctx;          /* NULL when upstream.tls is off */
    struct gw_id_source *ids;
    struct gw_upstream_server servers[GW_MAX_UPSTREAMS];
    size_t n_servers;
    struct gw_hdr_names names;      /* point into cfg */
};

/*
 * Builds a runtime from cfg, which it takes over in every case (freed on
 * failure). keys may be NULL (no shared ticket keys); sessions is the
 * process's session cache, used when cfg's tls.session_cache is not 0; the
 * server context takes its own reference to each. cfg_load has checked
 * the key files' permissions. Blocking (file reads, getaddrinfo):
 * main thread only. NULL with one line in err: "FILE:LINE:COLUMN: key:
 * cause" (see gw_runtime_err_at), the cause naming the file.
 */
struct gw_runtime *gw_runtime_new(struct cfg *cfg, struct tls_ticket_keys *keys,
                                  struct tls_sessions *sessions,
                                  uint64_t generation, char *err, size_t errlen) GW_RT_MUSTCHECK;

void gw_runtime_ref(struct gw_runtime *rt);
void gw_runtime_unref(struct gw_runtime *rt); /* NULL is fine; frees at zero */

/*
 * Rewrites err (a cause, usually naming a file) as "FILE:LINE:COLUMN: key:
 * cause", the position where key was set in cfg's file (just "FILE" for a
 * default), as cfg_load's own messages are. A leading "tls: " and a
 * leading repeat of the key's name are dropped from the cause.
 */
void gw_runtime_err_at(const struct cfg *cfg, const char *key, char *err, size_t errlen);

/*
 * mtlsgate -t: loads path and checks everything it names (certificate,
 * key and that they match, client_ca, CRL, upstream TLS files, identity
 * map, upstream names, key permissions, ticket key file, TLS cipher and
 * group lists), printing each problem as one "FILE:LINE:COLUMN: key: cause"
 * line on out; independent parts are all checked, so one run lists every
 * problem. Returns 0 when there is none.
 */
int gw_runtime_check(const char *path, FILE *out);

/*
 * SHA-256 over the contents of the files a reload would re-read (the
 * config itself, certificate, key, client_ca, CRL, upstream TLS files), for
 * the `watch` option: a change in any of them changes the digest. A file
 * that cannot be read counts as empty (the reload then reports it).
 */
void gw_runtime_files_digest(const struct cfg *cfg, unsigned char out[32]);

/* 1 when a and b name the same files for gw_runtime_files_digest(), else 0. */
int gw_runtime_same_files(const struct cfg *a, const struct cfg *b);

/* Monotonic clock, for deadlines and latencies. */
static inline uint64_t gw_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
