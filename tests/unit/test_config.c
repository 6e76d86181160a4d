/*
 * test_config.c - the YAML configuration loader: a complete file read back
 * field by field, the defaults, every class of error with its exact
 * "FILE:LINE:COLUMN: KEY: cause" prefix, the value syntaxes as tables,
 * relative paths, both forms of identities.map, and the shipped example
 * file. Runs in a fresh temporary directory (the working directory during
 * the tests, so that messages name "gw.yml" as given).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[1024];
static char oldcwd[PATH_MAX];

/* The seven lines every small test config starts with; line 8 is free. */
#define BASE                                 \
    "listen: [\"127.0.0.1:8443\"]\n"         \
    "tls:\n"                                 \
    "  certificate: pki/gw.crt\n"            \
    "  key: pki/gw.key\n"                    \
    "  client_ca: pki/ca.crt\n"              \
    "upstream:\n"                            \
    "  servers: [\"127.0.0.1:8080\"]\n"

/* ---- helpers ---- */

static void write_file(const char *rel, const char *text, mode_t mode)
{
    char path[PATH_MAX];
    int fd;
    size_t len = strlen(text);

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void make_dir(const char *rel)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", path, strerror(errno));
}

static void print_diag(const struct cfg_diag *d)
{
    size_t i;

    for (i = 0; i < d->n; i++)
        print_message("  diag[%zu] %s\n", i, d->msg[i]);
}

/* Writes text to gw.yml and loads it; returns cfg_load's result. */
static int load_text(const char *text, struct cfg **c, struct cfg_diag *d)
{
    write_file("gw.yml", text, 0644);
    return cfg_load("gw.yml", c, d);
}

/* Loads text that must be valid. */
static struct cfg *load_ok(const char *text)
{
    struct cfg *c = NULL;
    struct cfg_diag d;

    if (load_text(text, &c, &d) != 0) {
        print_diag(&d);
        cfg_diag_free(&d);
        fail_msg("config did not load");
    }
    assert_non_null(c);
    assert_int_equal(d.n, 0);
    return c;
}

/* Whether some message of d starts with want. */
static int has_msg(const struct cfg_diag *d, const char *want)
{
    size_t i;

    for (i = 0; i < d->n; i++)
        if (strncmp(d->msg[i], want, strlen(want)) == 0)
            return 1;
    return 0;
}

static char *abs_path(const char *rel)
{
    char *p = NULL;

    assert_true(asprintf(&p, "%s/%s", tmpdir, rel) > 0);
    return p;
}

static void assert_path(const char *got, const char *rel)
{
    char *want = abs_path(rel);

    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
}

static void assert_addr(const struct cfg_addr *a, const char *host, const char *port)
{
    assert_string_equal(a->host, host);
    assert_string_equal(a->port, port);
}

/* ---- fixture ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char made[1024], real[PATH_MAX];

    (void)state;
    snprintf(made, sizeof(made), "%.900s/test_config.XXXXXX", base);
    /* realpath: messages and c->dir show the directory without symlinks */
    if (mkdtemp(made) == NULL || realpath(made, real) == NULL || strlen(real) >= sizeof(tmpdir) ||
        getcwd(oldcwd, sizeof(oldcwd)) == NULL || chdir(real) != 0)
        return -1;
    memcpy(tmpdir, real, strlen(real) + 1);
    make_dir("pki");
    make_dir("pki/servers");
    make_dir("pki/a-directory");
    make_dir("logs");
    make_dir("sub");
    make_dir("sub/certs");
    write_file("pki/gw.crt", "not parsed by the loader\n", 0644);
    write_file("pki/gw.key", "secret\n", 0600);
    write_file("pki/ca.crt", "ca\n", 0644);
    write_file("pki/ca.crl", "crl\n", 0644);
    write_file("pki/up-ca.crt", "up ca\n", 0644);
    write_file("pki/up.crt", "up cert\n", 0644);
    write_file("pki/up.key", "up key\n", 0600);
    write_file("pki/ticket.key", "ticket\n", 0600);
    write_file("pki/insecure.key", "secret\n", 0644);
    write_file("pki/group.key", "secret\n", 0640);
    write_file("pki/servers/gateway.bundle.crt", "bundle\n", 0644);
    write_file("pki/servers/gateway.key", "key\n", 0600);
    write_file("pki/client-chain.crt", "chain\n", 0644);
    write_file("pki/client-ca.crl", "crl\n", 0644);
    write_file("sub/certs/a.crt", "a\n", 0644);
    write_file("sub/certs/a.key", "a\n", 0600);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (chdir(oldcwd) != 0)
        return -1;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- defaults and a full file ---- */

static void test_defaults(void **state)
{
    struct cfg *c;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    (void)state;
    c = load_ok(BASE);
    assert_path(c->path, "gw.yml");
    assert_string_equal(c->dir, tmpdir);
    assert_int_equal(c->n_listen, 1);
    assert_addr(&c->listen[0], "127.0.0.1", "8443");
    assert_int_equal(c->workers, cores < 1 ? 1 : cores > 1024 ? 1024 : cores);
    assert_int_equal(c->max_connections, 10000);
    assert_path(c->tls.certificate, "pki/gw.crt");
    assert_path(c->tls.key, "pki/gw.key");
    assert_path(c->tls.client_ca, "pki/ca.crt");
    assert_null(c->tls.crl);
    assert_string_equal(c->tls.min_version, "1.2");
    assert_null(c->tls.ciphers);
    assert_null(c->tls.ciphersuites);
    assert_null(c->tls.groups);
    assert_int_equal(c->tls.require_eku, 1);
    assert_int_equal(c->tls.session_tickets, 1);
    assert_null(c->tls.ticket_key_file);
    assert_int_equal(c->tls.allow_insecure_key_permissions, 0);
    assert_int_equal(c->upstream.n_servers, 1);
    assert_addr(&c->upstream.servers[0], "127.0.0.1", "8080");
    assert_int_equal(c->upstream.tls, 0);
    assert_null(c->upstream.tls_ca);
    assert_null(c->upstream.tls_certificate);
    assert_null(c->upstream.tls_key);
    assert_null(c->upstream.tls_server_name);
    assert_int_equal(c->upstream.keepalive, 32);
    assert_int_equal(c->upstream.fail_timeout_ms, 10000);
    assert_int_equal(c->identities.unknown, CFG_UNKNOWN_REJECT);
    assert_null(c->identities.map);
    assert_int_equal(c->identities.n_map, 0);
    assert_int_equal(c->timeouts.handshake_ms, 10000);
    assert_int_equal(c->timeouts.header_ms, 10000);
    assert_int_equal(c->timeouts.body_ms, 60000);
    assert_int_equal(c->timeouts.keepalive_ms, 15000);
    assert_int_equal(c->timeouts.upstream_connect_ms, 5000);
    assert_int_equal(c->timeouts.upstream_read_ms, 60000);
    assert_int_equal(c->timeouts.drain_ms, 30000);
    assert_int_equal(c->limits.max_header_bytes, 16384);
    assert_int_equal(c->limits.max_headers, 100);
    assert_int_equal(c->limits.max_body_bytes, 0);
    assert_string_equal(c->headers.identity, "X-Client-Identity");
    assert_string_equal(c->headers.cn, "X-Client-CN");
    assert_string_equal(c->headers.cert_sha256, "X-Client-Cert-Sha256");
    assert_string_equal(c->headers.request_id, "X-Request-Id");
    assert_string_equal(c->log.access, "stderr");
    assert_int_equal(c->log.format, CFG_LOG_TEXT);
    assert_int_equal(c->log.level, CFG_LOG_INFO);
    assert_string_equal(c->log.error, "stderr");
    assert_null(c->admin.listen);
    assert_null(c->user);
    assert_null(c->pid_file);
    assert_int_equal(c->watch_interval_ms, 0);
    cfg_free(c);
}

static const char full_text[] =
    "listen: [\"0.0.0.0:8443\", \"[::1]:9443\", \":7443\"]\n"
    "workers: 3\n"
    "user: nobody\n"
    "pid_file: logs/gw.pid\n"
    "watch: 2m\n"
    "tls:\n"
    "  certificate: pki/gw.crt\n"
    "  key: pki/gw.key\n"
    "  client_ca: pki/ca.crt\n"
    "  crl: pki/ca.crl\n"
    "  min_version: \"1.3\"\n"
    "  ciphers: ECDHE-ECDSA-AES128-GCM-SHA256\n"
    "  ciphersuites: TLS_AES_128_GCM_SHA256\n"
    "  groups: X25519:P-256\n"
    "  require_client_eku: false\n"
    "  session_tickets: no\n"
    "  ticket_key_file: pki/ticket.key\n"
    "  allow_insecure_key_permissions: true\n"
    "upstream:\n"
    "  servers: [\"10.0.0.1:8080\", \"db.internal:80\"]\n"
    "  keepalive: 0\n"
    "  fail_timeout: 500ms\n"
    "  tls:\n"
    "    enabled: true\n"
    "    ca: pki/up-ca.crt\n"
    "    certificate: pki/up.crt\n"
    "    key: pki/up.key\n"
    "    server_name: db.internal\n"
    "identities:\n"
    "  unknown: cn\n"
    "  map:\n"
    "    attestor1: svc-attestor-1\n"
    "    attestor2: { identity: svc-attestor-2, allow: [\"GET /\", \"POST /attestations\"] }\n"
    "    \"CN with spaces.example\":\n"
    "      identity: svc-three\n"
    "      allow: [\"/health\"]\n"
    "    nobody: { identity: svc-none, allow: [] }\n"
    "timeouts:\n"
    "  handshake: 1s\n"
    "  header: 2s\n"
    "  body: 3m\n"
    "  keepalive: 4\n"
    "  upstream_connect: 250ms\n"
    "  upstream_read: 1h\n"
    "  drain: 7s\n"
    "limits:\n"
    "  max_connections: 5\n"
    "  max_header_size: 32k\n"
    "  max_headers: 50\n"
    "  max_body_size: 1g\n"
    "headers:\n"
    "  identity: X-Id\n"
    "  cn: X-Cn\n"
    "  cert_sha256: X-Fp\n"
    "  request_id: X-Req\n"
    "log:\n"
    "  access: logs/access.log\n"
    "  format: json\n"
    "  level: debug\n"
    "  error: logs/error.log\n"
    "admin:\n"
    "  listen: \"127.0.0.1:9090\"\n";

static void test_full(void **state)
{
    struct cfg *c;
    const struct cfg_identity *id;

    (void)state;
    c = load_ok(full_text);
    assert_int_equal(c->n_listen, 3);
    assert_addr(&c->listen[0], "0.0.0.0", "8443");
    assert_addr(&c->listen[1], "::1", "9443");
    assert_addr(&c->listen[2], "0.0.0.0", "7443");
    assert_int_equal(c->workers, 3);
    assert_string_equal(c->user, "nobody");
    assert_path(c->pid_file, "logs/gw.pid");
    assert_int_equal(c->watch_interval_ms, 120000);
    assert_path(c->tls.certificate, "pki/gw.crt");
    assert_path(c->tls.key, "pki/gw.key");
    assert_path(c->tls.client_ca, "pki/ca.crt");
    assert_path(c->tls.crl, "pki/ca.crl");
    assert_string_equal(c->tls.min_version, "1.3");
    assert_string_equal(c->tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_string_equal(c->tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
    assert_string_equal(c->tls.groups, "X25519:P-256");
    assert_int_equal(c->tls.require_eku, 0);
    assert_int_equal(c->tls.session_tickets, 0);
    assert_path(c->tls.ticket_key_file, "pki/ticket.key");
    assert_int_equal(c->tls.allow_insecure_key_permissions, 1);
    assert_int_equal(c->upstream.n_servers, 2);
    assert_addr(&c->upstream.servers[0], "10.0.0.1", "8080");
    assert_addr(&c->upstream.servers[1], "db.internal", "80");
    assert_int_equal(c->upstream.keepalive, 0);
    assert_int_equal(c->upstream.fail_timeout_ms, 500);
    assert_int_equal(c->upstream.tls, 1);
    assert_path(c->upstream.tls_ca, "pki/up-ca.crt");
    assert_path(c->upstream.tls_certificate, "pki/up.crt");
    assert_path(c->upstream.tls_key, "pki/up.key");
    assert_string_equal(c->upstream.tls_server_name, "db.internal");
    assert_int_equal(c->identities.unknown, CFG_UNKNOWN_CN);
    assert_int_equal(c->identities.n_map, 4);
    id = &c->identities.map[0];
    assert_string_equal(id->cn, "attestor1");
    assert_string_equal(id->identity, "svc-attestor-1");
    assert_int_equal(id->has_allow, 0);
    assert_null(id->allow);
    id = &c->identities.map[1];
    assert_string_equal(id->cn, "attestor2");
    assert_string_equal(id->identity, "svc-attestor-2");
    assert_int_equal(id->has_allow, 1);
    assert_int_equal(id->n_allow, 2);
    assert_string_equal(id->allow[0].method, "GET");
    assert_string_equal(id->allow[0].path_prefix, "/");
    assert_string_equal(id->allow[1].method, "POST");
    assert_string_equal(id->allow[1].path_prefix, "/attestations");
    id = &c->identities.map[2];
    assert_string_equal(id->cn, "CN with spaces.example");
    assert_string_equal(id->identity, "svc-three");
    assert_int_equal(id->n_allow, 1);
    assert_null(id->allow[0].method);
    assert_string_equal(id->allow[0].path_prefix, "/health");
    id = &c->identities.map[3];
    assert_string_equal(id->identity, "svc-none");
    assert_int_equal(id->has_allow, 1);
    assert_int_equal(id->n_allow, 0);
    assert_int_equal(c->timeouts.handshake_ms, 1000);
    assert_int_equal(c->timeouts.header_ms, 2000);
    assert_int_equal(c->timeouts.body_ms, 180000);
    assert_int_equal(c->timeouts.keepalive_ms, 4000);
    assert_int_equal(c->timeouts.upstream_connect_ms, 250);
    assert_int_equal(c->timeouts.upstream_read_ms, 3600000);
    assert_int_equal(c->timeouts.drain_ms, 7000);
    assert_int_equal(c->max_connections, 5);
    assert_int_equal(c->limits.max_header_bytes, 32768);
    assert_int_equal(c->limits.max_headers, 50);
    assert_int_equal(c->limits.max_body_bytes, 1024ull * 1024 * 1024);
    assert_string_equal(c->headers.identity, "X-Id");
    assert_string_equal(c->headers.cn, "X-Cn");
    assert_string_equal(c->headers.cert_sha256, "X-Fp");
    assert_string_equal(c->headers.request_id, "X-Req");
    assert_path(c->log.access, "logs/access.log");
    assert_int_equal(c->log.format, CFG_LOG_JSON);
    assert_int_equal(c->log.level, CFG_LOG_DEBUG);
    assert_path(c->log.error, "logs/error.log");
    assert_non_null(c->admin.listen);
    assert_addr(c->admin.listen, "127.0.0.1", "9090");
    cfg_free(c);
}

/* Null values ("key:", "~") are the defaults; off switches things off. */
static void test_null_and_off(void **state)
{
    struct cfg *c;

    (void)state;
    c = load_ok(BASE "workers: ~\nwatch: off\nadmin:\n  listen: false\ntimeouts:\n  header:\n"
                     "log:\n  access: off\nidentities:\n");
    assert_int_equal(c->timeouts.header_ms, 10000);
    assert_int_equal(c->watch_interval_ms, 0);
    assert_null(c->admin.listen);
    assert_string_equal(c->log.access, "off");
    assert_true(c->workers >= 1);
    cfg_free(c);
    /* A single address is a list of one. */
    c = load_ok("listen: \":8443\"\n"
                "tls: { certificate: pki/gw.crt, key: pki/gw.key, client_ca: pki/ca.crt }\n"
                "upstream: { servers: \"[::1]:8080\" }\n");
    assert_int_equal(c->n_listen, 1);
    assert_addr(&c->listen[0], "0.0.0.0", "8443");
    assert_addr(&c->upstream.servers[0], "::1", "8080");
    cfg_free(c);
}

/* ---- errors: each with its exact position and key ---- */

struct err_case {
    const char *text;
    const char *want;       /* prefix of one message */
};

static const struct err_case err_cases[] = {
    /* the message of the task's example, verbatim */
    {BASE "timeouts:\n  header: 10x\n",
     "gw.yml:9:11: timeouts.header: '10x' is not a duration (use 500ms, 10s, 2m)"},
    {BASE "timeouts:\n  header: 0s\n", "gw.yml:9:11: timeouts.header: 0s is out of range (1ms to 1h)"},
    {BASE "timeouts:\n  drain: 61m\n", "gw.yml:9:10: timeouts.drain: 61m is out of range (1ms to 1h)"},
    {BASE "timeouts:\n  body: -1s\n", "gw.yml:9:9: timeouts.body: '-1s' is not a duration"},
    {BASE "timeouts: 10s\n", "gw.yml:8:11: timeouts: expected a mapping of keys, got a single value"},
    {BASE "timeouts:\n  header: [1s]\n", "gw.yml:9:11: timeouts.header: expected duration, got a list"},
    {BASE "watch: 10ms\n", "gw.yml:8:8: watch: 10ms is out of range (1s to 1h, or off)"},
    {BASE "watch: true\n", "gw.yml:8:8: watch: 'true' is not a duration (use 500ms, 10s, 2m) or off"},
    /* unknown and duplicate keys */
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "upstream:\n  servers: [\":2\"]\ntls:\n  certfile: x\n",
     "gw.yml:8:1: tls: duplicate key (first at line 2 column 1)"},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "upstream:\n  servers: [\":2\"]\n  x: 1\n  certfile: pki/gw.crt\n",
     "gw.yml:9:3: upstream.certfile: unknown key"},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "upstream:\n  servers: [\":2\"]\n"
     "# padding\ntls2: 1\n",
     "gw.yml:9:1: tls2: unknown key (did you mean tls?)"},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "  cert: x\n  certfile: pki/gw.crt\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:7:3: tls.certfile: unknown key (did you mean tls.certificate?)"},
    {BASE "drain: 5s\n", "gw.yml:8:1: drain: unknown key (did you mean timeouts.drain?)"},
    {BASE "tls.crl: pki/ca.crl\n",
     "gw.yml:8:1: tls.crl: unknown key (write it nested, as tls: { crl: ... })"},
    {BASE "log:\n  format: text\n  format: json\n",
     "gw.yml:10:3: log.format: duplicate key (first at line 9 column 3)"},
    {BASE "zzzzzz: 1\n", "gw.yml:8:1: zzzzzz: unknown key"},
    /* required keys: at the enclosing section, or the document start */
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  client_ca: pki/ca.crt\n"
     "upstream:\n  servers: [\":2\"]\n",
     "gw.yml:2:1: tls.key: required"},
    {"listen: [\":1\"]\nupstream:\n  servers: [\":2\"]\n", "gw.yml:1:1: tls.certificate: required"},
    {"", "gw.yml:1:1: listen: required"},
    {"# only a comment\n", "gw.yml:1:1: upstream.servers: required"},
    {"listen: []\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "upstream:\n  servers: [\":2\"]\n",
     "gw.yml:1:9: listen: must list at least one address"},
    {"listen:\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "upstream:\n  servers: [\":2\"]\n",
     "gw.yml:1:8: listen: required"},
    /* types */
    {BASE "workers: many\n", "gw.yml:8:10: workers: 'many' is not a whole number or auto"},
    {BASE "workers: 0\n", "gw.yml:8:10: workers: 0 is out of range (1 to 1024)"},
    {BASE "limits:\n  max_connections: -5\n",
     "gw.yml:9:20: limits.max_connections: '-5' is not a whole number"},
    {BASE "limits:\n  max_header_size: 16q\n",
     "gw.yml:9:20: limits.max_header_size: '16q' is not a size (use 512, 16k, 1m, 1g)"},
    {BASE "limits:\n  max_header_size: 2m\n",
     "gw.yml:9:20: limits.max_header_size: 2m is out of range (1k to 1m)"},
    {BASE "log:\n  format: xml\n", "gw.yml:9:11: log.format: 'xml' is not one of: text, json"},
    {BASE "log:\n  level: loud\n",
     "gw.yml:9:10: log.level: 'loud' is not one of: debug, info, warn, warning, error"},
    {BASE "log:\n  error: off\n",
     "gw.yml:9:10: log.error: 'off' is not valid here (use stderr, or a file path)"},
    {BASE "log:\n  access: stdout\n",
     "gw.yml:9:11: log.access: 'stdout' is not valid here (use stderr, off, or a file path)"},
    {BASE "identities:\n  unknown: accept\n",
     "gw.yml:9:12: identities.unknown: 'accept' is not one of: reject, cn"},
    {BASE "upstream2:\n  tls:\n    enabled: maybe\n", "gw.yml:8:1: upstream2: unknown key"},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "  session_tickets: maybe\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:6:20: tls.session_tickets: 'maybe' is not a boolean (use true or false)"},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "  min_version: 1.1\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:6:16: tls.min_version: '1.1' must be \"1.2\" or \"1.3\""},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "  ciphers: \"\"\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:6:12: tls.ciphers: must not be empty"},
    {BASE "user: no-such-user-mtlsgate\n", "gw.yml:8:7: user: 'no-such-user-mtlsgate' is not a user on this system"},
    {BASE "user: root\n", "gw.yml:8:7: user: 'root' has uid 0 (root): name an unprivileged user to drop privileges to"},
    {"[1, 2]\n", "gw.yml:1:1: (top level): expected a mapping of keys (listen:, tls:, ...), got a list"},
    {BASE "? [a, b]\n: c\n", "gw.yml:8:3: (top level): a key must be a word, not a list"},
    /* addresses */
    {"listen: [\"127.0.0.1:8443\", \"::1:8443\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n"
     "  client_ca: pki/ca.crt\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:1:28: listen: '::1:8443' is not an address (use host:port, [v6]:port or :port)"},
    {"listen: [\":8443\", \"0.0.0.0:8443\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n"
     "  client_ca: pki/ca.crt\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:1:19: listen: '0.0.0.0:8443' is listed twice (first at line 1)"},
    {BASE "admin:\n  listen: 127.0.0.1\n",
     "gw.yml:9:11: admin.listen: '127.0.0.1' is not an address"},
    {"listen: {a: 1}\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "upstream:\n  servers: [\":2\"]\n",
     "gw.yml:1:9: listen: expected a list of addresses, got a mapping"},
    /* files */
    {BASE "tls:\n", "gw.yml:8:1: tls: duplicate key (first at line 2 column 1)"},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
     "  crl: pki/missing.crl\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:6:8: tls.crl: cannot read pki/missing.crl ("},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/a-directory\n  key: pki/gw.key\n"
     "  client_ca: pki/ca.crt\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:3:16: tls.certificate: pki/a-directory ("},
    {BASE "log:\n  access: no-such-dir/access.log\n",
     "gw.yml:9:11: log.access: the directory of no-such-dir/access.log ("},
    {BASE "log:\n  access: pki/a-directory\n", "gw.yml:9:11: log.access: pki/a-directory ("},
    {BASE "pid_file: \"\"\n", "gw.yml:8:11: pid_file: must not be empty"},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/insecure.key\n"
     "  client_ca: pki/ca.crt\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:4:8: tls.key: /"},
    {"listen: [\":1\"]\ntls:\n  certificate: pki/gw.crt\n  key: pki/group.key\n"
     "  client_ca: pki/ca.crt\nupstream:\n  servers: [\":2\"]\n",
     "gw.yml:4:8: tls.key: /"},
    {BASE "  tls:\n    enabled: true\n    ca: pki/up-ca.crt\n    certificate: pki/up.crt\n"
     "    key: pki/up.key\n  ticket_key_file: pki/ticket.key\n",
     "gw.yml:13:3: upstream.ticket_key_file: unknown key (did you mean tls.ticket_key_file?)"},
    {BASE "  tls:\n    enabled: true\n    ca: pki/up-ca.crt\n    certificate: pki/up.crt\n"
     "    key: pki/insecure.key\n",
     "gw.yml:12:10: upstream.tls.key: /"},
    /* upstream TLS */
    {BASE "  tls:\n    enabled: true\n",
     "gw.yml:8:3: upstream.tls.ca: required when upstream.tls.enabled is true"},
    {BASE "  tls:\n    ca: pki/up-ca.crt\n",
     "gw.yml:9:9: upstream.tls.ca: set, but upstream.tls.enabled is false"},
    {BASE "  tls:\n    enabled: yes\n    ca: pki/up-ca.crt\n    certificate: pki/up.crt\n",
     "gw.yml:8:3: upstream.tls.key: required together with upstream.tls.certificate"},
    {BASE "  tls: on\n", "gw.yml:8:8: upstream.tls: expected a mapping of keys, got a single value"},
    /* headers */
    {BASE "headers:\n  identity: \"X Client\"\n",
     "gw.yml:9:13: headers.identity: 'X Client' is not a valid header name"},
    {BASE "headers:\n  cn: Content-Length\n",
     "gw.yml:9:7: headers.cn: 'Content-Length' is a header the proxy itself handles"},
    {BASE "headers:\n  cn: x-client-identity\n",
     "gw.yml:9:7: headers.cn: 'x-client-identity' is already the name of headers.identity"},
    /* identities */
    {BASE "identities:\n  map:\n    a1: one\n    a2: two\n    a1: three\n",
     "gw.yml:12:5: identities.map.a1: CN listed twice (first at line 10)"},
    /* each repeat names the first of its own CN, however they interleave */
    {BASE "identities:\n  map:\n    b2: x\n    a1: one\n    a2: two\n    a1: three\n    b2: y\n"
     "    a1: four\n",
     "gw.yml:13:5: identities.map.a1: CN listed twice (first at line 11)"},
    {BASE "identities:\n  map:\n    b2: x\n    a1: one\n    a2: two\n    a1: three\n    b2: y\n"
     "    a1: four\n",
     "gw.yml:14:5: identities.map.b2: CN listed twice (first at line 10)"},
    {BASE "identities:\n  map:\n    b2: x\n    a1: one\n    a2: two\n    a1: three\n    b2: y\n"
     "    a1: four\n",
     "gw.yml:15:5: identities.map.a1: CN listed twice (first at line 11)"},
    {BASE "identities:\n  map:\n    a1: { identity: one, allow: [\"get /\"] }\n",
     "gw.yml:10:34: identities.map.a1.allow: 'get /' has a lower-case method"},
    {BASE "identities:\n  map:\n    a1: { identity: one, allow: [\"GET\"] }\n",
     "gw.yml:10:34: identities.map.a1.allow: 'GET' is not \"METHOD /prefix\" or \"/prefix\""},
    {BASE "identities:\n  map:\n    a1: { identity: one, allow: [\"GET x\"] }\n",
     "gw.yml:10:34: identities.map.a1.allow: 'GET x' needs a path that starts with '/'"},
    {BASE "identities:\n  map:\n    a1: { identity: one, allow: [\"G(T /\"] }\n",
     "gw.yml:10:34: identities.map.a1.allow: 'G(T /' has a method that is not a valid token"},
    {BASE "identities:\n  map:\n    a1: { identity: one, allow: \"GET /\" }\n",
     "gw.yml:10:33: identities.map.a1.allow: expected a list of rules"},
    {BASE "identities:\n  map:\n    a1:\n      identiy: one\n",
     "gw.yml:11:7: identities.map.a1.identiy: unknown key (did you mean identities.map.a1.identity?)"},
    {BASE "identities:\n  map:\n    a1:\n      allow: []\n",
     "gw.yml:11:7: identities.map.a1.identity: required"},
    {BASE "identities:\n  map:\n    a1:\n", "gw.yml:10:8: identities.map.a1: expected an identity, got nothing"},
    {BASE "identities:\n  map:\n    a1: \"bad\\nidentity\"\n",
     "gw.yml:10:9: identities.map.a1: 'bad?identity' is not a usable identity"},
    {BASE "identities:\n  map: [a, b]\n",
     "gw.yml:9:8: identities.map: expected a mapping of CN: identity, got a list"},
    /* YAML itself */
    {BASE "log: [\n", "gw.yml:9:1: syntax error: did not find expected node content"},
    {BASE "log:\n  format: text\n format: json\n", "gw.yml:10:2: syntax error: "},
    {BASE "a: &x 1\nb: *x\n", "gw.yml:9:4: syntax error: aliases (*x) are not supported"},
    {BASE "---\nlisten: []\n", "gw.yml:8:1: syntax error: only one YAML document is allowed"},
    {BASE "k: \"\\0\"\n", "gw.yml:8:4: syntax error: a value contains a NUL character"},
    {BASE "k: \xff\n", "gw.yml:8:4: syntax error: invalid leading UTF-8 octet"},
};

static void test_errors(void **state)
{
    size_t i;
    int bad = 0;

    (void)state;
    for (i = 0; i < NELEM(err_cases); i++) {
        struct cfg *c = (struct cfg *)1;
        struct cfg_diag d;
        int rc = load_text(err_cases[i].text, &c, &d);

        if (rc != -1 || c != NULL || d.n == 0 || !has_msg(&d, err_cases[i].want)) {
            print_message("case %zu: rc %d, wanted a message starting with:\n  %s\ngot:\n", i, rc,
                          err_cases[i].want);
            print_diag(&d);
            bad++;
        }
        cfg_diag_free(&d);
        cfg_free(c);
    }
    assert_int_equal(bad, 0);
}

/*
 * Lengths the proxy can really use: an identity of up to 127 characters
 * (a connection keeps it in 128 bytes) and a CN of up to 64 bytes (a
 * certificate's CN never has more); one more is refused at its position.
 */
static void test_identity_lengths(void **state)
{
    char text[2048], id[200], cn[100], want[512];
    struct cfg *c = NULL;
    struct cfg_diag d;

    (void)state;
    memset(id, 'i', 127);
    id[127] = '\0';
    memset(cn, 'c', 64);
    cn[64] = '\0';
    snprintf(text, sizeof(text), BASE "identities:\n  map:\n    %s: %s\n", cn, id);
    c = load_ok(text);
    assert_int_equal(c->identities.n_map, 1);
    assert_int_equal(strlen(c->identities.map[0].identity), 127);
    assert_int_equal(strlen(c->identities.map[0].cn), 64);
    cfg_free(c);

    id[127] = 'i';
    id[128] = '\0';
    snprintf(text, sizeof(text), BASE "identities:\n  map:\n    a1: %s\n", id);
    assert_int_equal(load_text(text, &c, &d), -1);
    assert_null(c);
    snprintf(want, sizeof(want), "gw.yml:10:9: identities.map.a1: '%.*s", 20, id);
    assert_int_equal(d.n, 1);
    assert_memory_equal(d.msg[0], want, strlen(want));
    assert_non_null(strstr(d.msg[0], "is 128 characters: an identity has at most 127"));
    cfg_diag_free(&d);

    snprintf(text, sizeof(text), BASE "identities:\n  map:\n    a1: { identity: %s }\n", id);
    assert_int_equal(load_text(text, &c, &d), -1);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.msg[0], "gw.yml:10:21: identities.map.a1.identity: '"));
    assert_non_null(strstr(d.msg[0], "is 128 characters"));
    cfg_diag_free(&d);

    cn[64] = 'c';
    cn[65] = '\0';
    snprintf(text, sizeof(text), BASE "identities:\n  map:\n    %s: svc\n", cn);
    assert_int_equal(load_text(text, &c, &d), -1);
    assert_int_equal(d.n, 1);
    assert_memory_equal(d.msg[0], "gw.yml:10:5: identities.map: '", 30);
    assert_non_null(strstr(d.msg[0], "is 65 bytes: a certificate's CN has at most 64 (RFC 5280)"));
    cfg_diag_free(&d);
}

/* One run reports every problem, each on one line, in file order. */
static void test_all_problems_at_once(void **state)
{
    struct cfg *c;
    struct cfg_diag d;
    char big[8192];
    size_t i, n = 0;

    (void)state;
    assert_int_equal(load_text("listen: [\"x\"]\ntls:\n  key: pki/gw.key\n  crl: nope.crl\n"
                               "timeouts:\n  header: 10x\n  body: 0\nbogus: 1\n",
                               &c, &d),
                     -1);
    assert_null(c);
    if (d.n != 8)
        print_diag(&d);
    assert_int_equal(d.n, 8);
    assert_string_equal(d.msg[0], "gw.yml:1:10: listen: 'x' is not an address (use host:port, "
                                  "[v6]:port or :port)");
    assert_true(has_msg(&d, "gw.yml:4:8: tls.crl: cannot read nope.crl ("));
    assert_true(has_msg(&d, "gw.yml:6:11: timeouts.header: '10x' is not a duration"));
    assert_true(has_msg(&d, "gw.yml:7:9: timeouts.body: 0 is out of range"));
    assert_true(has_msg(&d, "gw.yml:8:1: bogus: unknown key"));
    assert_true(has_msg(&d, "gw.yml:2:1: tls.certificate: required"));
    assert_true(has_msg(&d, "gw.yml:2:1: tls.client_ca: required"));
    assert_true(has_msg(&d, "gw.yml:1:1: upstream.servers: required"));
    for (i = 0; i < d.n; i++)
        assert_null(strchr(d.msg[i], '\n'));
    cfg_diag_free(&d);
    assert_int_equal(d.n, 0);

    /* More problems than CFG_DIAG_MAX: the last slot counts the rest. */
    n = (size_t)snprintf(big, sizeof(big), "%s", BASE);
    for (i = 0; i < 100; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "unknown%zu: 1\n", i);
    assert_int_equal(load_text(big, &c, &d), -1);
    assert_int_equal(d.n, CFG_DIAG_MAX);
    assert_string_equal(d.msg[0], "gw.yml:8:1: unknown0: unknown key");
    assert_string_equal(d.msg[CFG_DIAG_MAX - 1], "... and 37 more problems");
    cfg_diag_free(&d);
}

static void test_file_errors(void **state)
{
    struct cfg *c = (struct cfg *)1;
    struct cfg_diag d;

    (void)state;
    assert_int_equal(cfg_load("no-such.yml", &c, &d), -1);
    assert_null(c);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msg[0], "no-such.yml: No such file or directory");
    cfg_diag_free(&d);
    assert_int_equal(cfg_load("pki", &c, &d), -1);
    assert_string_equal(d.msg[0], "pki: not a regular file");
    cfg_diag_free(&d);
    /* diag may be NULL */
    assert_int_equal(cfg_load("no-such.yml", &c, NULL), -1);
    assert_null(c);
}

/* The insecure key: refused by default, accepted when told so. */
static void test_key_permissions(void **state)
{
    struct cfg *c;
    struct cfg_diag d;
    char *want;
    const char *text = "listen: [\":1\"]\nupstream:\n  servers: [\":2\"]\ntls:\n  certificate: pki/gw.crt\n"
                       "  key: pki/insecure.key\n  client_ca: pki/ca.crt\n";
    char *ok = NULL;

    (void)state;
    assert_int_equal(load_text(text, &c, &d), -1);
    assert_true(asprintf(&want, "gw.yml:6:8: tls.key: %s/pki/insecure.key is open to group or "
                                "others (mode 0644)", tmpdir) > 0);
    if (!has_msg(&d, want))
        print_diag(&d);
    assert_true(has_msg(&d, want));
    free(want);
    cfg_diag_free(&d);
    assert_true(asprintf(&ok, "%s  allow_insecure_key_permissions: true\n", text) > 0);
    c = load_ok(ok);
    free(ok);
    cfg_free(c);
}

/* ---- value syntaxes ---- */

static void test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        int rc;
        unsigned ms;
    } t[] = {
        {"500ms", 0, 500},  {"10s", 0, 10000},   {"2m", 0, 120000},   {"1h", 0, 3600000},
        {"30", 0, 30000},   {"0", 0, 0},         {"0ms", 0, 0},       {"4294967295ms", 0, 4294967295u},
        {"4294967s", 0, 4294967000u},            {"4294968s", -1, 0}, {"1193h", 0, 4294800000u},
        {"1194h", -1, 0},   {"99999999999999999999", -1, 0},           {"", -1, 0},
        {"s", -1, 0},       {"10x", -1, 0},      {"-1s", -1, 0},      {"+1s", -1, 0},
        {" 1s", -1, 0},     {"1s ", -1, 0},      {"1.5s", -1, 0},     {"1S", -1, 0},
        {"1d", -1, 0},      {"10sec", -1, 0},    {"1m30s", -1, 0},    {"ms", -1, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < NELEM(t); i++) {
        unsigned ms = 12345;
        int rc = cfg_parse_duration(t[i].s, &ms);

        if (rc != t[i].rc || ms != (t[i].rc == 0 ? t[i].ms : 12345u))
            fail_msg("duration '%s': rc %d ms %u", t[i].s, rc, ms);
    }
    assert_int_equal(cfg_parse_duration(NULL, NULL), -1);
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } t[] = {
        {"512", 0, 512},         {"0", 0, 0},           {"16k", 0, 16384},      {"16K", 0, 16384},
        {"1m", 0, 1048576},      {"1M", 0, 1048576},    {"1g", 0, 1073741824},  {"3G", 0, 3221225472ull},
        {"18446744073709551615", 0, UINT64_MAX},        {"18446744073709551616", -1, 0},
        {"17179869183g", 0, 17179869183ull << 30},      {"17179869184g", -1, 0},
        {"", -1, 0},             {"k", -1, 0},          {"1kb", -1, 0},         {"1t", -1, 0},
        {"-1", -1, 0},           {"1 k", -1, 0},        {"1.5m", -1, 0},        {"0x10", -1, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < NELEM(t); i++) {
        uint64_t v = 777;
        int rc = cfg_parse_size(t[i].s, &v);

        if (rc != t[i].rc || v != (t[i].rc == 0 ? t[i].v : 777u))
            fail_msg("size '%s': rc %d v %llu", t[i].s, rc, (unsigned long long)v);
    }
}

static void test_parse_addr(void **state)
{
    static const struct {
        const char *s;
        const char *host, *port;    /* NULL host: refused */
    } t[] = {
        {"0.0.0.0:8443", "0.0.0.0", "8443"},
        {"127.0.0.1:1", "127.0.0.1", "1"},
        {"[::1]:8443", "::1", "8443"},
        {"[::]:443", "::", "443"},
        {"[fe80::1%eth0]:80", "fe80::1%eth0", "80"},
        {"[2001:db8::a:b]:65535", "2001:db8::a:b", "65535"},
        {":8443", "0.0.0.0", "8443"},
        {"localhost:8080", "localhost", "8080"},
        {"db_1.internal-x:80", "db_1.internal-x", "80"},
        {"host:08443", "host", "8443"},
        {"::1:8443", NULL, NULL},
        {"[::1]8443", NULL, NULL},
        {"[::1]", NULL, NULL},
        {"[]:80", NULL, NULL},
        {"[not-v6]:80", NULL, NULL},
        {"[::1%]:80", NULL, NULL},
        {"host", NULL, NULL},
        {"host:", NULL, NULL},
        {"host:0", NULL, NULL},
        {"host:65536", NULL, NULL},
        {"host:123456", NULL, NULL},
        {"host:-1", NULL, NULL},
        {"host:http", NULL, NULL},
        {"ho st:80", NULL, NULL},
        {"host/x:80", NULL, NULL},
        {"", NULL, NULL},
        {":", NULL, NULL},
    };
    size_t i;

    (void)state;
    for (i = 0; i < NELEM(t); i++) {
        struct cfg_addr a = {(char *)1, (char *)1};
        int rc = cfg_parse_addr(t[i].s, &a);

        if (t[i].host == NULL) {
            if (rc != -1 || a.host != NULL || a.port != NULL)
                fail_msg("addr '%s' accepted", t[i].s);
            continue;
        }
        if (rc != 0)
            fail_msg("addr '%s' refused", t[i].s);
        assert_string_equal(a.host, t[i].host);
        assert_string_equal(a.port, t[i].port);
        cfg_addr_free(&a);
        assert_null(a.host);
    }
    assert_int_equal(cfg_parse_addr(NULL, NULL), -1);
    cfg_addr_free(NULL);
}

/* ---- paths ---- */

static void test_relative_paths(void **state)
{
    struct cfg *c = NULL;
    struct cfg_diag d;
    char *abs_name, *text = NULL, *abs_crt;

    (void)state;
    /* Relative to the file's directory, not the working directory. */
    write_file("sub/gw.yml",
               "listen: [\":1\"]\ntls:\n  certificate: ./certs//a.crt\n  key: certs/a.key\n"
               "  client_ca: ../pki/ca.crt\nupstream:\n  servers: [\":2\"]\n",
               0644);
    if (cfg_load("sub/gw.yml", &c, &d) != 0)
        print_diag(&d);
    assert_non_null(c);
    assert_path(c->path, "sub/gw.yml");
    assert_path(c->dir, "sub");
    assert_path(c->tls.certificate, "sub/certs/a.crt");
    assert_path(c->tls.key, "sub/certs/a.key");
    assert_path(c->tls.client_ca, "sub/../pki/ca.crt");
    cfg_free(c);

    /* The same file by its absolute name; absolute paths stay as written. */
    abs_name = abs_path("sub/gw.yml");
    abs_crt = abs_path("pki/gw.crt");
    assert_true(asprintf(&text, "listen: [\":1\"]\ntls:\n  certificate: %s\n  key: certs/a.key\n"
                                "  client_ca: ../pki/ca.crt\nupstream:\n  servers: [\":2\"]\n",
                         abs_crt) > 0);
    write_file("sub/gw.yml", text, 0644);
    assert_int_equal(cfg_load(abs_name, &c, &d), 0);
    assert_string_equal(c->path, abs_name);
    assert_string_equal(c->tls.certificate, abs_crt);
    assert_path(c->tls.key, "sub/certs/a.key");
    cfg_free(c);

    /* From the file's own directory, the messages say just its name. */
    assert_int_equal(chdir("sub"), 0);
    write_file("sub/bad.yml", "listen: [\":1\"]\ntls:\n  certificate: certs/none.crt\n", 0644);
    assert_int_equal(cfg_load("bad.yml", &c, &d), -1);
    assert_int_equal(chdir(tmpdir), 0);
    {
        char *want = NULL;

        assert_true(asprintf(&want, "bad.yml:3:16: tls.certificate: cannot read certs/none.crt "
                                    "(%s/sub/certs/none.crt): No such file or directory",
                             tmpdir) > 0);
        if (!has_msg(&d, want))
            print_diag(&d);
        assert_true(has_msg(&d, want));
        free(want);
    }
    cfg_diag_free(&d);
    free(text);
    free(abs_name);
    free(abs_crt);
}

/* ---- identities ---- */

static void test_identities(void **state)
{
    struct cfg *c;

    (void)state;
    c = load_ok(BASE "identities:\n"
                     "  unknown: reject\n"
                     "  map:\n"
                     "    attestor1: svc-attestor-1\n"
                     "    attestor2: { identity: svc-attestor-2, allow: [\"GET /\", \"POST /attestations\"] }\n"
                     "    monitor:\n"
                     "      allow:\n"
                     "        - /health\n"
                     "        - \"DELETE /cache/x\"\n"
                     "      identity: svc-monitor\n"
                     "    \"a.b.c\": dotted-cn\n"
                     "    \"123\": 456\n");
    assert_int_equal(c->identities.unknown, CFG_UNKNOWN_REJECT);
    assert_int_equal(c->identities.n_map, 5);
    assert_string_equal(c->identities.map[0].cn, "attestor1");
    assert_string_equal(c->identities.map[0].identity, "svc-attestor-1");
    assert_int_equal(c->identities.map[0].has_allow, 0);
    assert_string_equal(c->identities.map[1].identity, "svc-attestor-2");
    assert_int_equal(c->identities.map[1].n_allow, 2);
    assert_string_equal(c->identities.map[2].cn, "monitor");
    assert_string_equal(c->identities.map[2].identity, "svc-monitor");
    assert_int_equal(c->identities.map[2].n_allow, 2);
    assert_null(c->identities.map[2].allow[0].method);
    assert_string_equal(c->identities.map[2].allow[0].path_prefix, "/health");
    assert_string_equal(c->identities.map[2].allow[1].method, "DELETE");
    assert_string_equal(c->identities.map[2].allow[1].path_prefix, "/cache/x");
    assert_string_equal(c->identities.map[3].cn, "a.b.c");
    assert_string_equal(c->identities.map[4].cn, "123");
    assert_string_equal(c->identities.map[4].identity, "456");
    cfg_free(c);
}

/* ---- the extras: where, restart check, buffer entry, key list ---- */

static void test_where(void **state)
{
    struct cfg *c;
    char buf[256];

    (void)state;
    c = load_ok(BASE "timeouts:\n  header: 3s\n");
    assert_string_equal(cfg_where(c, "tls.key", buf, sizeof(buf)), "gw.yml:4:8");
    assert_string_equal(cfg_where(c, "timeouts.header", buf, sizeof(buf)), "gw.yml:9:11");
    assert_string_equal(cfg_where(c, "timeouts", buf, sizeof(buf)), "gw.yml:8:1");
    assert_string_equal(cfg_where(c, "timeouts.body", buf, sizeof(buf)), "gw.yml");
    assert_string_equal(cfg_where(c, "no.such.key", buf, sizeof(buf)), "gw.yml");
    assert_string_equal(cfg_where(c, "tls.key", buf, 5), "gw.y");
    assert_string_equal(cfg_where(NULL, "tls.key", buf, sizeof(buf)), "");
    cfg_free(c);
}

static void test_restart_needed(void **state)
{
    struct cfg *a, *b;
    struct cfg_diag d = {0};

    (void)state;
    a = load_ok(BASE "workers: 2\nadmin: { listen: \"127.0.0.1:9090\" }\n");
    b = load_ok(BASE "workers: 2\nadmin: { listen: \"127.0.0.1:9090\" }\ntimeouts: { body: 1s }\n");
    assert_int_equal(cfg_restart_needed(a, b, &d), 0);
    assert_int_equal(d.n, 0);
    cfg_free(b);
    b = load_ok("listen: [\"127.0.0.1:8444\"]\n"
                "tls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
                "upstream:\n  servers: [\"127.0.0.1:8080\"]\n"
                "workers: 3\n");
    assert_int_equal(cfg_restart_needed(a, b, &d), 3);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.msg[0], "gw.yml:1:9: listen: changed; takes effect only after a restart");
    assert_string_equal(d.msg[1], "gw.yml:8:10: workers: changed; takes effect only after a restart");
    assert_string_equal(d.msg[2], "gw.yml: admin.listen: changed; takes effect only after a restart");
    cfg_diag_free(&d);
    cfg_free(a);
    cfg_free(b);
    assert_int_equal(cfg_restart_needed(NULL, NULL, NULL), 0);
}

/* The snapshot kept from the start compares like the config it was taken
   from: the same keys equal, a change in each restart-only key seen, and
   only restart-only keys copied. */
static void test_restart_snapshot(void **state)
{
    struct cfg *a, *snap, *b;
    struct cfg_diag d = {0};

    (void)state;
    make_dir("run");
    a = load_ok(BASE "workers: 2\nadmin: { listen: \"127.0.0.1:9090\" }\n"
                     "pid_file: run/gw.pid\nlog: { level: debug }\n");
    snap = cfg_restart_snapshot(a);
    assert_non_null(snap);
    assert_int_equal(cfg_restart_needed(snap, a, &d), 0);
    assert_int_equal(cfg_restart_needed(a, snap, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(snap->workers, 2);
    assert_int_equal(snap->n_listen, 1);
    assert_string_equal(snap->listen[0].port, "8443");
    assert_non_null(snap->admin.listen);
    assert_string_equal(snap->admin.listen->port, "9090");
    assert_string_equal(snap->pid_file, a->pid_file);
    assert_null(snap->tls.certificate);     /* not restart-only: not copied */
    assert_null(snap->upstream.servers);
    cfg_free(a);                            /* the snapshot owns its copies */
    b = load_ok("listen: [\"127.0.0.1:8444\"]\n"
                "tls:\n  certificate: pki/gw.crt\n  key: pki/gw.key\n  client_ca: pki/ca.crt\n"
                "upstream:\n  servers: [\"127.0.0.1:8080\"]\n"
                "workers: 3\n");
    assert_int_equal(cfg_restart_needed(snap, b, &d), 4);
    assert_string_equal(d.msg[0], "gw.yml:1:9: listen: changed; takes effect only after a restart");
    assert_string_equal(d.msg[1], "gw.yml:8:10: workers: changed; takes effect only after a restart");
    assert_string_equal(d.msg[2], "gw.yml: pid_file: changed; takes effect only after a restart");
    assert_string_equal(d.msg[3], "gw.yml: admin.listen: changed; takes effect only after a restart");
    cfg_diag_free(&d);
    cfg_free(b);
    cfg_free(snap);
    assert_null(cfg_restart_snapshot(NULL));
}

/* mtlsgate -s reads pid_file only: the rest may be broken. */
static void test_load_pid_file(void **state)
{
    struct cfg_diag d = {0};
    char *pf = NULL, want[PATH_MAX + 32];

    (void)state;
    write_file("gw.yml", "workers: lots\ntls: { crl: no-such.crl }\npid_file: run/gw.pid\n", 0644);
    assert_int_equal(cfg_load_pid_file("gw.yml", &pf, &d), 0);
    assert_int_equal(d.n, 0);
    snprintf(want, sizeof(want), "%s/run/gw.pid", tmpdir);
    assert_non_null(pf);
    assert_string_equal(pf, want);
    free(pf);
    write_file("gw.yml", "pid_file: /abs/./gw.pid\n", 0644);
    assert_int_equal(cfg_load_pid_file("gw.yml", &pf, &d), 0);
    assert_string_equal(pf, "/abs/gw.pid");
    free(pf);
    write_file("gw.yml", "listen: x\n", 0644);
    assert_int_equal(cfg_load_pid_file("gw.yml", &pf, &d), 0);
    assert_null(pf);
    write_file("gw.yml", "pid_file: [a, b]\n", 0644);
    assert_int_equal(cfg_load_pid_file("gw.yml", &pf, &d), -1);
    assert_null(pf);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msg[0], "gw.yml:1:11: pid_file: expected a path");
    cfg_diag_free(&d);
    write_file("gw.yml", "pid_file: [\n", 0644);
    assert_int_equal(cfg_load_pid_file("gw.yml", &pf, &d), -1);
    assert_true(d.n >= 1);
    assert_non_null(strstr(d.msg[0], "gw.yml:"));
    cfg_diag_free(&d);
    assert_int_equal(cfg_load_pid_file("no-such.yml", &pf, &d), -1);
    assert_string_equal(d.msg[0], "no-such.yml: No such file or directory");
    cfg_diag_free(&d);
}

static void test_load_buffer(void **state)
{
    static const char text[] = BASE "log: { format: json }\n";
    struct cfg *c = NULL;
    struct cfg_diag d;
    char *name = abs_path("virtual.yml");
    char *copy = malloc(sizeof(text) - 1);   /* not NUL-terminated */

    (void)state;
    assert_non_null(copy);
    memcpy(copy, text, sizeof(text) - 1);
    assert_int_equal(cfg_load_buffer(name, copy, sizeof(text) - 1, &c, &d), 0);
    assert_int_equal(c->log.format, CFG_LOG_JSON);
    assert_path(c->tls.key, "pki/gw.key");
    cfg_free(c);
    free(copy);
    assert_int_equal(cfg_load_buffer("mem.yml", "listen: [", 9, &c, &d), -1);
    assert_null(c);
    assert_true(has_msg(&d, "mem.yml:1:10: syntax error: "));
    cfg_diag_free(&d);
    assert_int_equal(cfg_load_buffer(NULL, "", 0, &c, &d), -1);
    cfg_diag_free(&d);
    free(name);
}

static void test_diag_addf(void **state)
{
    struct cfg_diag d = {0};

    (void)state;
    cfg_diag_addf(&d, "%s:%d: %s", "gw.yml", 4, "tls.key: does not match tls.certificate");
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msg[0], "gw.yml:4: tls.key: does not match tls.certificate");
    cfg_diag_addf(NULL, "ignored");
    cfg_diag_free(&d);
    cfg_diag_free(NULL);
    cfg_free(NULL);
}

/* ---- the shipped example ---- */

static void test_example_file(void **state)
{
    const char *src = getenv("SRC_DIR");
    char path[PATH_MAX], *text = NULL, *needle = NULL;
    FILE *f;
    long n;
    size_t i;
    struct cfg *c;

    (void)state;
    if (src == NULL)
        skip();
    snprintf(path, sizeof(path), "%s/config/mtlsgate.example.yml", src);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);

    /* Loaded from the temp dir, where the files it names exist. */
    c = load_ok(text);
    assert_int_equal(c->n_listen, 1);
    assert_addr(&c->listen[0], "0.0.0.0", "8443");
    assert_path(c->tls.certificate, "pki/servers/gateway.bundle.crt");
    assert_path(c->tls.key, "pki/servers/gateway.key");
    assert_path(c->tls.client_ca, "pki/client-chain.crt");
    assert_path(c->tls.crl, "pki/client-ca.crl");
    assert_int_equal(c->identities.n_map, 3);
    assert_string_equal(c->identities.map[1].identity, "svc-attestor-2");
    assert_int_equal(c->identities.map[1].n_allow, 2);
    assert_null(c->admin.listen);
    /* Every value it shows equals the built-in default. */
    {
        struct cfg *def = load_ok("listen: [\"0.0.0.0:8443\"]\n"
                                  "tls:\n  certificate: pki/servers/gateway.bundle.crt\n"
                                  "  key: pki/servers/gateway.key\n  client_ca: pki/client-chain.crt\n"
                                  "  crl: pki/client-ca.crl\n"
                                  "upstream:\n  servers: [\"127.0.0.1:8080\"]\n");
        struct cfg_diag d = {0};

        assert_int_equal(cfg_restart_needed(def, c, &d), 0);
        assert_int_equal(c->workers, def->workers);
        assert_int_equal(c->max_connections, def->max_connections);
        assert_memory_equal(&c->timeouts, &def->timeouts, sizeof(c->timeouts));
        assert_memory_equal(&c->limits, &def->limits, sizeof(c->limits));
        assert_int_equal(c->upstream.keepalive, def->upstream.keepalive);
        assert_int_equal(c->upstream.fail_timeout_ms, def->upstream.fail_timeout_ms);
        assert_int_equal(c->upstream.tls, def->upstream.tls);
        assert_int_equal(c->tls.require_eku, def->tls.require_eku);
        assert_int_equal(c->tls.session_tickets, def->tls.session_tickets);
        assert_string_equal(c->tls.min_version, def->tls.min_version);
        assert_string_equal(c->headers.identity, def->headers.identity);
        assert_string_equal(c->headers.cn, def->headers.cn);
        assert_string_equal(c->headers.cert_sha256, def->headers.cert_sha256);
        assert_string_equal(c->headers.request_id, def->headers.request_id);
        assert_string_equal(c->log.access, def->log.access);
        assert_string_equal(c->log.error, def->log.error);
        assert_int_equal(c->log.format, def->log.format);
        assert_int_equal(c->log.level, def->log.level);
        assert_int_equal(c->watch_interval_ms, def->watch_interval_ms);
        cfg_free(def);
    }
    cfg_free(c);

    /* Every key of the schema is documented in it ("name:", maybe commented). */
    for (i = 0; cfg_key_name(i) != NULL; i++) {
        const char *name = cfg_key_name(i), *leaf = strrchr(name, '.');

        leaf = leaf != NULL ? leaf + 1 : name;
        free(needle);
        assert_true(asprintf(&needle, "%s:", leaf) > 0);
        if (strstr(text, needle) == NULL)
            fail_msg("key %s is not in config/mtlsgate.example.yml", name);
    }
    assert_true(i > 40);
    assert_string_equal(cfg_key_name(0), "listen");
    free(needle);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_null_and_off),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_identity_lengths),
        cmocka_unit_test(test_all_problems_at_once),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_key_permissions),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_restart_needed),
        cmocka_unit_test(test_restart_snapshot),
        cmocka_unit_test(test_load_pid_file),
        cmocka_unit_test(test_load_buffer),
        cmocka_unit_test(test_diag_addf),
        cmocka_unit_test(test_example_file),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
