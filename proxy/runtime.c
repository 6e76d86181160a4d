/*
 * runtime.c - build, check and reference-count a gateway runtime.
 */
#include "runtime.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "tls_client.h"
#include "tls_libctx.h"
#include "tls_pem.h"
#include "tls_server.h"
#include "tls_trust.h"
#include "tls_x509.h"

void gw_runtime_err_at(const struct cfg *cfg, const char *key, char *err, size_t errlen)
{
    char where[512], cause[1024], leaf[64];
    const char *c = cause, *dot = strrchr(key, '.');
    size_t n;

    if (errlen == 0)
        return;
    snprintf(cause, sizeof(cause), "%s", err);
    /* the TLS layer's own "tls: ciphers: ..." prefix repeats the key */
    if (strncmp(c, "tls: ", 5) == 0)
        c += 5;
    snprintf(leaf, sizeof(leaf), "%s: ", dot ? dot + 1 : key);
    n = strlen(leaf);
    if (strncmp(c, leaf, n) == 0)
        c += n;
    else if (strncmp(c, key, strlen(key)) == 0 && strncmp(c + strlen(key), ": ", 2) == 0)
        c += strlen(key) + 2;
    snprintf(err, errlen, "%s: %s: %s", cfg_where(cfg, key, where, sizeof(where)), key, c);
}

/* Whether err is about the file path ("PATH: ..."). */
static int err_names(const char *err, const char *path)
{
    size_t n = path ? strlen(path) : 0;

    return n > 0 && strncmp(err, path, n) == 0 && err[n] == ':';
}

/* The key a client trust error is about: the CRL file, or client_ca. */
static const char *trust_key(const struct cfg *cfg, const char *err)
{
    return err_names(err, cfg->tls.crl) ? "tls.crl" : "tls.client_ca";
}

/* The key an upstream TLS context error is about. */
static const char *upstream_tls_key(const struct cfg *cfg, const char *err)
{
    if (err_names(err, cfg->upstream.tls_ca))
        return "upstream.tls.ca";
    if (err_names(err, cfg->upstream.tls_key))
        return "upstream.tls.key";
    if (err_names(err, cfg->upstream.tls_certificate))
        return "upstream.tls.certificate";
    return "upstream.tls.enabled";
}

/* The key a server context error is about. */
static const char *server_key(const struct cfg *cfg, const char *err)
{
    static const char *const opts[] = {"ciphersuites", "ciphers", "groups", "min_version"};
    char pfx[32];
    size_t i;

    if (err_names(err, cfg->tls.key))
        return "tls.key";
    if (err_names(err, cfg->tls.certificate))
        return "tls.certificate";
    for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        snprintf(pfx, sizeof(pfx), "tls: %s:", opts[i]);
        if (strncmp(err, pfx, strlen(pfx)) == 0) {
            static const char *const keys[] = {"tls.ciphersuites", "tls.ciphers", "tls.groups",
                                               "tls.min_version"};
            return keys[i];
        }
    }
    return "tls";
}

/* Resolves one upstream "host:port" into s (the first address). */
static int resolve_server(const struct cfg_addr *a, struct gw_upstream_server *s, char *err,
                          size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(a->host, a->port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "%s:%s: cannot resolve: %s", a->host, a->port,
                 rc ? gai_strerror(rc) : "no address");
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addrlen = res->ai_addrlen;
    snprintf(s->name, sizeof(s->name), strchr(a->host, ':') ? "[%s]:%s" : "%s:%s", a->host,
             a->port);
    s->host = a->host;
    s->failed_until_ms = 0;
    freeaddrinfo(res);
    return 0;
}

static void runtime_free(struct gw_runtime *rt)
{
    if (!rt)
        return;
    SSL_CTX_free(rt->server_ctx);
    SSL_CTX_free(rt->upstream_ctx);
    gw_id_source_free(rt->ids);
    cfg_free(rt->cfg);
    free(rt);
}

struct gw_runtime *gw_runtime_new(struct cfg *cfg, struct tls_ticket_keys *keys,
                                  struct tls_sessions *sessions,
                                  uint64_t generation, char *err, size_t errlen)
{
    struct gw_runtime *rt = calloc(1, sizeof(*rt));
    struct tls_trust *trust = NULL;
    struct tls_trust_opts topts;
    struct tls_server_opts sopts;
    size_t i;
    int ok = 0;

    if (!rt) {
        snprintf(err, errlen, "out of memory");
        cfg_free(cfg);
        goto out;
    }
    rt->cfg = cfg;
    rt->refs = 1;
    rt->generation = generation;
    /* Key file modes were checked by cfg_load (tls.allow_insecure_key_permissions). */
    memset(&topts, 0, sizeof(topts));
    topts.client_ca_path = cfg->tls.client_ca;
    topts.crl_path = cfg->tls.crl;
    topts.require_eku = cfg->tls.require_eku;
    trust = tls_trust_load(&topts, err, errlen);
    if (!trust) {
        gw_runtime_err_at(cfg, trust_key(cfg, err), err, errlen);
        goto out;
    }
    memset(&sopts, 0, sizeof(sopts));
    sopts.certificate = cfg->tls.certificate;
    sopts.key = cfg->tls.key;
    sopts.min_version = cfg->tls.min_version;
    sopts.ciphers = cfg->tls.ciphers;
    sopts.ciphersuites = cfg->tls.ciphersuites;
    sopts.groups = cfg->tls.groups;
    sopts.session_tickets = cfg->tls.session_tickets;
    sopts.trust = trust;
    sopts.ticket_keys = keys;
    sopts.sessions = cfg->tls.session_cache > 0 ? sessions : NULL;
    rt->server_ctx = tls_server_ctx_new(&sopts, err, errlen);
    if (!rt->server_ctx) {
        gw_runtime_err_at(cfg, server_key(cfg, err), err, errlen);
        goto out;
    }
    if (cfg->upstream.tls) {
        rt->upstream_ctx = tls_client_ctx_new(cfg->upstream.tls_ca, cfg->upstream.tls_certificate,
                                              cfg->upstream.tls_key, err, errlen);
        if (!rt->upstream_ctx) {
            gw_runtime_err_at(cfg, upstream_tls_key(cfg, err), err, errlen);
            goto out;
        }
    }
    rt->ids = gw_id_source_map_new(cfg, err, errlen);
    if (!rt->ids) {
        gw_runtime_err_at(cfg, "identities.map", err, errlen);
        goto out;
    }
    if (cfg->upstream.n_servers == 0 || cfg->upstream.n_servers > GW_MAX_UPSTREAMS) {
        snprintf(err, errlen, "need 1 to %d servers, got %zu", GW_MAX_UPSTREAMS,
                 cfg->upstream.n_servers);
        gw_runtime_err_at(cfg, "upstream.servers", err, errlen);
        goto out;
    }
    for (i = 0; i < cfg->upstream.n_servers; i++) {
        if (resolve_server(&cfg->upstream.servers[i], &rt->servers[i], err, errlen) < 0) {
            gw_runtime_err_at(cfg, "upstream.servers", err, errlen);
            goto out;
        }
    }
    rt->n_servers = cfg->upstream.n_servers;
    rt->names.identity = cfg->headers.identity;
    rt->names.cn = cfg->headers.cn;
    rt->names.cert_sha256 = cfg->headers.cert_sha256;
    rt->names.request_id = cfg->headers.request_id;
    ok = 1;
out:
    tls_trust_unref(trust);
    if (!ok) {
        runtime_free(rt);
        rt = NULL;
    }
    return rt;
}

void gw_runtime_ref(struct gw_runtime *rt)
{
    __atomic_fetch_add(&rt->refs, 1, __ATOMIC_RELAXED);
}

void gw_runtime_unref(struct gw_runtime *rt)
{
    if (rt && __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_ACQ_REL) == 0)
        runtime_free(rt);
}

/* Checks that certificate and key load and match; one line per problem. */
static int check_cert_key(const struct cfg *cfg, const char *cert_key, const char *cert,
                          const char *key_key, const char *key, FILE *out)
{
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *pkey = NULL;
    char err[512], where[256], tbuf[64];
    time_t not_after;
    int problems = 0;

    if (tls_pem_load_certs(cert, &certs, err, sizeof(err)) < 0) {
        fprintf(out, "%s: %s: %s\n", cfg_where(cfg, cert_key, where, sizeof(where)), cert_key,
                err);
        problems++;
    } else if (tls_x509_not_after(sk_X509_value(certs, 0), &not_after) == 0 &&
               not_after < time(NULL)) {
        fprintf(out, "%s: %s: %s: certificate expired on %s\n",
                cfg_where(cfg, cert_key, where, sizeof(where)), cert_key, cert,
                tls_time_str(not_after, tbuf, sizeof(tbuf)));
        problems++;
    }
    if (tls_pem_load_key(key, &pkey, err, sizeof(err)) < 0) {
        fprintf(out, "%s: %s: %s\n", cfg_where(cfg, key_key, where, sizeof(where)), key_key, err);
        problems++;
    }
    if (certs && pkey && !tls_x509_key_matches(sk_X509_value(certs, 0), pkey)) {
        fprintf(out, "%s: %s: %s does not match the certificate in %s\n",
                cfg_where(cfg, key_key, where, sizeof(where)), key_key, key, cert);
        problems++;
    }
    sk_X509_pop_free(certs, X509_free);
    EVP_PKEY_free(pkey);
    return problems;
}

/* Prints err positioned at key; counts one problem. */
static int report(const struct cfg *cfg, const char *key, char *err, size_t errlen, FILE *out)
{
    gw_runtime_err_at(cfg, key, err, errlen);
    fprintf(out, "%s\n", err);
    return 1;
}

/* One OpenSSL list option on a scratch context (ciphers, suites, groups). */
static int check_tls_lists(const struct cfg *cfg, FILE *out)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_server_method());
    char err[1024];
    int problems = 0;

    if (!ctx) {
        snprintf(err, sizeof(err), "cannot create an SSL_CTX to check the lists");
        return report(cfg, "tls", err, sizeof(err), out);
    }
    if (cfg->tls.ciphers && !SSL_CTX_set_cipher_list(ctx, cfg->tls.ciphers)) {
        snprintf(err, sizeof(err), "no usable cipher in \"%s\"", cfg->tls.ciphers);
        problems += report(cfg, "tls.ciphers", err, sizeof(err), out);
    }
    if (cfg->tls.ciphersuites && !SSL_CTX_set_ciphersuites(ctx, cfg->tls.ciphersuites)) {
        snprintf(err, sizeof(err), "invalid TLS 1.3 suites \"%s\"", cfg->tls.ciphersuites);
        problems += report(cfg, "tls.ciphersuites", err, sizeof(err), out);
    }
    if (cfg->tls.groups && !SSL_CTX_set1_groups_list(ctx, cfg->tls.groups)) {
        snprintf(err, sizeof(err), "invalid or unsupported group in \"%s\"", cfg->tls.groups);
        problems += report(cfg, "tls.groups", err, sizeof(err), out);
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return problems;
}

/*
 * The parts of a build that do not depend on each other, each checked on
 * its own so that one run lists every problem: client trust and CRL,
 * ticket keys, TLS lists, upstream TLS, identity map, upstream names.
 */
static int check_parts(const struct cfg *cfg, FILE *out)
{
    struct tls_trust_opts topts;
    struct tls_trust *trust;
    struct tls_ticket_keys *keys;
    struct gw_id_source *ids;
    struct gw_upstream_server srv;
    SSL_CTX *ctx;
    char err[1024];
    int problems = 0;
    size_t i;

    memset(&topts, 0, sizeof(topts));
    topts.client_ca_path = cfg->tls.client_ca;
    topts.require_eku = cfg->tls.require_eku;
    trust = tls_trust_load(&topts, err, sizeof(err));
    if (!trust) {
        problems += report(cfg, "tls.client_ca", err, sizeof(err), out);
        /* without a trust set the CRLs' issuers cannot be checked; their
           file can still be read */
        if (cfg->tls.crl) {
            STACK_OF(X509_CRL) *crls = NULL;

            if (tls_pem_load_crls(cfg->tls.crl, &crls, err, sizeof(err)) < 0)
                problems += report(cfg, "tls.crl", err, sizeof(err), out);
            sk_X509_CRL_pop_free(crls, X509_CRL_free);
        }
    } else if (cfg->tls.crl) {
        tls_trust_unref(trust);
        topts.crl_path = cfg->tls.crl;
        trust = tls_trust_load(&topts, err, sizeof(err));
        if (!trust)
            problems += report(cfg, trust_key(cfg, err), err, sizeof(err), out);
    }
    tls_trust_unref(trust);
    if (cfg->tls.session_tickets && cfg->tls.ticket_key_file) {
        keys = tls_ticket_keys_load(cfg->tls.ticket_key_file,
                                    cfg->tls.allow_insecure_key_permissions, err, sizeof(err));
        if (!keys)
            problems += report(cfg, "tls.ticket_key_file", err, sizeof(err), out);
        tls_ticket_keys_unref(keys);
    }
    problems += check_tls_lists(cfg, out);
    if (cfg->upstream.tls) {
        ctx = tls_client_ctx_new(cfg->upstream.tls_ca, cfg->upstream.tls_certificate,
                                 cfg->upstream.tls_key, err, sizeof(err));
        if (!ctx)
            problems += report(cfg, upstream_tls_key(cfg, err), err, sizeof(err), out);
        SSL_CTX_free(ctx);
    }
    ids = gw_id_source_map_new(cfg, err, sizeof(err));
    if (!ids)
        problems += report(cfg, "identities.map", err, sizeof(err), out);
    gw_id_source_free(ids);
    if (cfg->upstream.n_servers > GW_MAX_UPSTREAMS) {
        snprintf(err, sizeof(err), "need 1 to %d servers, got %zu", GW_MAX_UPSTREAMS,
                 cfg->upstream.n_servers);
        problems += report(cfg, "upstream.servers", err, sizeof(err), out);
    }
    for (i = 0; i < cfg->upstream.n_servers && i < GW_MAX_UPSTREAMS; i++)
        if (resolve_server(&cfg->upstream.servers[i], &srv, err, sizeof(err)) < 0)
            problems += report(cfg, "upstream.servers", err, sizeof(err), out);
    return problems;
}

int gw_runtime_check(const char *path, FILE *out)
{
    struct cfg *cfg = NULL;
    struct cfg_diag diag = {0};
    struct gw_runtime *rt;
    char err[1024];
    int problems = 0;
    size_t i;

    if (cfg_load(path, &cfg, &diag) < 0) {
        for (i = 0; i < diag.n; i++)
            fprintf(out, "%s\n", diag.msg[i]);
        problems += diag.n ? (int)diag.n : 1;
        goto out;
    }
    problems += check_cert_key(cfg, "tls.certificate", cfg->tls.certificate, "tls.key",
                               cfg->tls.key, out);
    if (cfg->upstream.tls && cfg->upstream.tls_certificate)
        problems += check_cert_key(cfg, "upstream.tls.certificate", cfg->upstream.tls_certificate,
                                   "upstream.tls.key", cfg->upstream.tls_key, out);
    problems += check_parts(cfg, out);
    if (problems > 0)
        goto out;
    /* Every part is good: the same build as a start, for what only the
     * whole finds (the server context with this certificate and trust). */
    rt = gw_runtime_new(cfg, NULL, NULL, 0, err, sizeof(err));
    cfg = NULL;
    if (!rt) {
        fprintf(out, "%s\n", err);
        problems++;
        goto out;
    }
    gw_runtime_unref(rt);
out:
    cfg_free(cfg);
    cfg_diag_free(&diag);
    return problems ? -1 : 0;
}

static void digest_file(EVP_MD_CTX *md, const char *path)
{
    unsigned char buf[16384];
    size_t n;
    FILE *f;

    EVP_DigestUpdate(md, path ? path : "", path ? strlen(path) + 1 : 1);
    if (!path || !(f = fopen(path, "rbe")))
        return;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    fclose(f);
}

/* The files gw_runtime_files_digest() reads, in its order. */
#define GW_WATCHED_FILES(c)                                                              \
    { (c)->path, (c)->tls.certificate, (c)->tls.key, (c)->tls.client_ca, (c)->tls.crl,   \
      (c)->upstream.tls_ca, (c)->upstream.tls_certificate, (c)->upstream.tls_key }

int gw_runtime_same_files(const struct cfg *a, const struct cfg *b)
{
    const char *fa[] = GW_WATCHED_FILES(a), *fb[] = GW_WATCHED_FILES(b);
    size_t i;

    for (i = 0; i < sizeof(fa) / sizeof(fa[0]); i++)
        if ((fa[i] == NULL) != (fb[i] == NULL) || (fa[i] && strcmp(fa[i], fb[i]) != 0))
            return 0;
    return 1;
}

void gw_runtime_files_digest(const struct cfg *cfg, unsigned char out[32])
{
    const char *files[] = GW_WATCHED_FILES(cfg);
    size_t i;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 32;

    memset(out, 0, 32);
    if (!md)
        return;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
        for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            digest_file(md, files[i]);
        EVP_DigestFinal_ex(md, out, &len);
    }
    EVP_MD_CTX_free(md);
}
