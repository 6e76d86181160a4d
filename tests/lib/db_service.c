/*
 * db-service: the demo upstream behind mtlsgate, and the tests' witness of
 * what actually reached the backend.
 *
 *   db-service --listen HOST:PORT [--log FILE] [--delay-ms N] [--status N]
 *              [--chunked] [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
 *
 * An HTTP/1.1 server (libevent evhttp; plain, or HTTPS with --tls-cert) that
 * answers every request with a JSON description of what it received:
 *
 *   {"method":"POST","path":"/attestations?x=1",
 *    "headers":{"host":"...","x-client-identity":"svc-attestor-1",...},
 *    "header_list":[["Host","..."],["X-Client-Identity","svc-attestor-1"],...],
 *    "body_bytes":1048576,"body_sha256":"<64 hex digits>"}
 *
 * "headers" has one key per header name, lower-cased (names are
 * case-insensitive); a name received more than once has its values joined
 * with ", " in arrival order, so a duplicated identity header shows up as
 * "admin, svc-attestor-1" rather than silently picking one. "header_list" is
 * every field exactly as received, in order. "path" is the request-target as
 * received. Chunked request bodies are decoded by evhttp before hashing.
 * Over TLS the answer also has
 * "tls":{"version":"TLSv1.3","sni":"...","client_cn":"..."} (sni: the server
 * name the client sent, client_cn: its certificate's CN; null when absent).
 *
 * Options:
 *   --listen HOST:PORT  where to listen (required; IPv6 as [::1]:PORT)
 *   --log FILE          append one line per request as soon as it is read:
 *                       "METHOD TARGET identity=<X-Client-Identity or ->"
 *                       (tests count these lines to prove what got through)
 *   --delay-ms N        wait N ms before answering (slow upstream, 504 tests)
 *   --status N          answer with status N instead of 200 (200..599)
 *   --chunked           send the answer with Transfer-Encoding: chunked
 *   --tls-cert FILE     serve HTTPS (TLS 1.2/1.3) with this PEM certificate
 *                       chain (leaf first); needs --tls-key
 *   --tls-key FILE      the PEM private key of --tls-cert
 *   --tls-client-ca FILE  require a client certificate that verifies to a CA
 *                       in FILE (PEM); the handshake fails without one. Over
 *                       TLS every --log line ends with " tls_cn=<CN or ->",
 *                       the CN of the client certificate
 *
 * SIGTERM / SIGINT: stop at once, free everything and exit 0. Connections
 * are closed; requests still waiting for their --delay-ms get no answer (the
 * client sees the connection close), which is what a crashed backend does.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define DB_MUSTCHECK __attribute__((warn_unused_result))

struct db_service;

/* One request waiting for its --delay-ms timer. */
struct db_pending {
    struct db_service *svc;
    struct evhttp_request *req;
    struct event *timer;
    TAILQ_ENTRY(db_pending) link;
};
TAILQ_HEAD(db_pending_list, db_pending);

struct db_service {
    struct event_base *base;
    struct evhttp *http;
    struct event *sig_term;
    struct event *sig_int;
    int log_fd;                 /* -1 when --log is not given */
    unsigned delay_ms;
    int status;
    int chunked;
    SSL_CTX *ssl_ctx;           /* NULL: plain HTTP */
    struct db_pending_list pending;
};

/* Prints "db-service: MSG" to stderr. */
static void db_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void db_err(const char *fmt, ...)
{
    va_list ap;

    fputs("db-service: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Prints "db-service: MSG: <OpenSSL's first queued error>" and clears the queue. */
static void db_ssl_err(const char *msg)
{
    char buf[256] = "unknown OpenSSL error";
    unsigned long e = ERR_get_error();

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    db_err("%s: %s", msg, buf);
}

/*
 * SSL info callback: a fatal alert sent or received is a failed handshake
 * (or a broken connection); say which, so a test can tell why. A connection
 * that fails before a ClientHello was read (a port probe, plain HTTP) is not
 * logged.
 */
static void db_tls_info_cb(const SSL *ssl, int where, int ret)
{
    if ((where & SSL_CB_ALERT) == 0 || ((unsigned)ret >> 8) != 2 /* fatal */)
        return;
    /* A bare TCP probe (wait_port) closes before any ClientHello. */
    if ((where & SSL_CB_WRITE) && SSL_get_state(ssl) == TLS_ST_BEFORE)
        return;
    db_err("TLS: %s fatal alert %d: %s", (where & SSL_CB_READ) ? "received" : "sent",
           ret & 0xff, SSL_alert_desc_string_long(ret));
}

/*
 * The server SSL_CTX for --tls-cert/--tls-key (TLS 1.2 and 1.3), requiring a
 * client certificate verified against client_ca when it is not NULL. NULL
 * after printing the cause, naming the file.
 */
static SSL_CTX *DB_MUSTCHECK db_tls_ctx_new(const char *cert, const char *key,
                                            const char *client_ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method()), *ret = NULL;
    STACK_OF(X509_NAME) *names = NULL;
    char msg[PATH_MAX + 64];

    if (ctx == NULL) {
        db_ssl_err("SSL_CTX_new");
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        db_ssl_err("cannot set the lowest TLS version");
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(msg, sizeof(msg), "--tls-cert %s: cannot load the certificate chain", cert);
        db_ssl_err(msg);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(msg, sizeof(msg), "--tls-key %s: cannot load the private key", key);
        db_ssl_err(msg);
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(msg, sizeof(msg), "--tls-key %s: does not match --tls-cert", key);
        db_ssl_err(msg);
        goto out;
    }
    SSL_CTX_set_info_callback(ctx, db_tls_info_cb);
    if (client_ca != NULL) {
        if (SSL_CTX_load_verify_file(ctx, client_ca) != 1) {
            snprintf(msg, sizeof(msg), "--tls-client-ca %s: cannot load", client_ca);
            db_ssl_err(msg);
            goto out;
        }
        /* The CA names offered in the CertificateRequest. */
        names = SSL_load_client_CA_file(client_ca);
        if (names == NULL) {
            snprintf(msg, sizeof(msg), "--tls-client-ca %s: no CA names", client_ca);
            db_ssl_err(msg);
            goto out;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        names = NULL;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    ret = ctx;
    ctx = NULL;
out:
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    SSL_CTX_free(ctx);
    return ret;
}

/*
 * evhttp's bufferevent factory with --tls-cert: every accepted connection
 * gets a server-side TLS bufferevent (evhttp sets its fd). NULL on failure,
 * and evhttp then drops the connection.
 */
static struct bufferevent *db_bevcb(struct event_base *base, void *arg)
{
    struct db_service *svc = arg;
    SSL *ssl = SSL_new(svc->ssl_ctx);
    struct bufferevent *bev;

    if (ssl == NULL) {
        db_ssl_err("SSL_new");
        return NULL;
    }
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        db_err("bufferevent_openssl_socket_new failed");
        SSL_free(ssl);
        return NULL;
    }
    /* A client that closes without close_notify is not an error here. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* The TLS connection req arrived on; NULL for plain HTTP. */
static SSL *db_request_ssl(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev;

    if (conn == NULL)
        return NULL;
    bev = evhttp_connection_get_bufferevent(conn);
    return bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
}

/*
 * The CN of the client certificate on ssl, UTF-8, in cn[cnlen] (the first
 * CN attribute: this is a test witness, not an authority). 0, or -1 when
 * there is no certificate or no CN.
 */
static int DB_MUSTCHECK db_client_cn(SSL *ssl, char *cn, size_t cnlen)
{
    X509 *peer = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    const X509_NAME *subj = peer != NULL ? X509_get_subject_name(peer) : NULL;
    unsigned char *utf8 = NULL;
    int idx, n, rc = -1;

    if (subj == NULL)
        goto out;
    idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (idx < 0)
        goto out;
    n = ASN1_STRING_to_UTF8(&utf8,
                            X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
    if (n < 0)
        goto out;
    snprintf(cn, cnlen, "%.*s", n, (const char *)utf8);
    rc = 0;
out:
    OPENSSL_free(utf8);
    return rc;
}

/* The request method's name; "UNKNOWN" for a type evhttp added later. */
static const char *db_method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "UNKNOWN";
}

/* Standard reason phrase for the statuses a test is likely to ask for. */
static const char *db_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    }
    return "Status";
}

/*
 * Appends s[0..len) to buf as the inside of a JSON string: quote, backslash
 * and every byte outside printable ASCII are escaped (bytes >= 0x80 as
 * \u00XX, so the output is valid JSON whatever the input). 0 / -1.
 */
static int DB_MUSTCHECK db_json_str(struct evbuffer *buf, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;

        if (c == '"' || c == '\\')
            rc = evbuffer_add_printf(buf, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            rc = evbuffer_add_printf(buf, "\\u%04x", c);
        else
            rc = evbuffer_add(buf, &s[i], 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Appends "s" (quoted, escaped). 0 / -1. */
static int DB_MUSTCHECK db_json_qstr(struct evbuffer *buf, const char *s)
{
    if (evbuffer_add(buf, "\"", 1) != 0 || db_json_str(buf, s, strlen(s)) != 0 ||
        evbuffer_add(buf, "\"", 1) != 0)
        return -1;
    return 0;
}

/*
 * Writes the lower-cased "headers" object: for each distinct name (first
 * occurrence order), all its values joined with ", ". 0 / -1.
 */
static int DB_MUSTCHECK db_json_headers(struct evbuffer *buf, struct evkeyvalq *hdrs)
{
    struct evkeyval *kv, *other;
    int first = 1;

    if (evbuffer_add_printf(buf, "{") < 0)
        return -1;
    for (kv = hdrs->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        int seen = 0, first_value = 1;
        size_t i, n = strlen(kv->key);

        /* Already written with an earlier field of the same name? */
        for (other = hdrs->tqh_first; other != kv; other = other->next.tqe_next) {
            if (strcasecmp(other->key, kv->key) == 0) {
                seen = 1;
                break;
            }
        }
        if (seen)
            continue;
        if (evbuffer_add_printf(buf, "%s\"", first ? "" : ",") < 0)
            return -1;
        first = 0;
        for (i = 0; i < n; i++) {
            char lc = kv->key[i];

            if (lc >= 'A' && lc <= 'Z')
                lc = (char)(lc - 'A' + 'a');
            if (db_json_str(buf, &lc, 1) != 0)
                return -1;
        }
        if (evbuffer_add_printf(buf, "\":\"") < 0)
            return -1;
        for (other = kv; other != NULL; other = other->next.tqe_next) {
            if (strcasecmp(other->key, kv->key) != 0)
                continue;
            if (!first_value && evbuffer_add(buf, ", ", 2) != 0)
                return -1;
            first_value = 0;
            if (db_json_str(buf, other->value, strlen(other->value)) != 0)
                return -1;
        }
        if (evbuffer_add(buf, "\"", 1) != 0)
            return -1;
    }
    return evbuffer_add(buf, "}", 1);
}

/* Writes the "header_list" array of [name, value] pairs. 0 / -1. */
static int DB_MUSTCHECK db_json_header_list(struct evbuffer *buf, struct evkeyvalq *hdrs)
{
    struct evkeyval *kv;
    int first = 1;

    if (evbuffer_add(buf, "[", 1) != 0)
        return -1;
    for (kv = hdrs->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        if (evbuffer_add_printf(buf, "%s[", first ? "" : ",") < 0 ||
            db_json_qstr(buf, kv->key) != 0 || evbuffer_add(buf, ",", 1) != 0 ||
            db_json_qstr(buf, kv->value) != 0 || evbuffer_add(buf, "]", 1) != 0)
            return -1;
        first = 0;
    }
    return evbuffer_add(buf, "]", 1);
}

/* SHA-256 of everything in body, as 64 lower-case hex digits in hex[65]. 0 / -1. */
static int DB_MUSTCHECK db_sha256_hex(struct evbuffer *body, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0, i;
    struct evbuffer_ptr pos;
    struct evbuffer_iovec vec;
    int rc = -1;

    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto out;
    if (evbuffer_ptr_set(body, &pos, 0, EVBUFFER_PTR_SET) != 0)
        goto out;
    /* Walk the chain one extent at a time: no copy of the body is made. */
    while (evbuffer_peek(body, -1, &pos, &vec, 1) > 0) {
        if (EVP_DigestUpdate(md, vec.iov_base, vec.iov_len) != 1)
            goto out;
        if (evbuffer_ptr_set(body, &pos, vec.iov_len, EVBUFFER_PTR_ADD) != 0)
            break;
    }
    if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32)
        goto out;
    for (i = 0; i < dlen; i++)
        snprintf(&hex[2 * i], 3, "%02x", digest[i]);
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

/*
 * Appends one access line for req to the --log file in a single write(2),
 * so concurrent requests never interleave. Unprintable bytes become '?'.
 */
static void db_log_request(struct db_service *svc, struct evhttp_request *req)
{
    struct evkeyvalq *hdrs = evhttp_request_get_input_headers(req);
    const char *uri = evhttp_request_get_uri(req);
    const char *ident = evhttp_find_header(hdrs, "X-Client-Identity");
    char line[4096], cn[256] = "-", tls_part[300] = "";
    int n;
    size_t i, len;

    if (svc->log_fd < 0)
        return;
    if (svc->ssl_ctx != NULL) {
        if (db_client_cn(db_request_ssl(req), cn, sizeof(cn)) != 0)
            snprintf(cn, sizeof(cn), "-");
        snprintf(tls_part, sizeof(tls_part), " tls_cn=%s", cn);
    }
    n = snprintf(line, sizeof(line) - 1, "%s %s identity=%s%s",
                 db_method_name(evhttp_request_get_command(req)), uri ? uri : "-",
                 ident ? ident : "-", tls_part);
    if (n < 0)
        return;
    len = (size_t)n < sizeof(line) - 1 ? (size_t)n : sizeof(line) - 2;
    for (i = 0; i < len; i++) {
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
            line[i] = '?';
    }
    line[len++] = '\n';
    if (write(svc->log_fd, line, len) != (ssize_t)len)
        db_err("--log: write failed: %s", strerror(errno));
}

/* Appends s quoted, or null when s is NULL. 0 / -1. */
static int DB_MUSTCHECK db_json_qstr_or_null(struct evbuffer *buf, const char *s)
{
    if (s == NULL)
        return evbuffer_add(buf, "null", 4);
    return db_json_qstr(buf, s);
}

/*
 * With --tls-cert, appends ,"tls":{"version":V,"sni":S,"client_cn":CN} (S
 * and CN null when absent) for the connection req came on; nothing for
 * plain HTTP. 0 / -1.
 */
static int DB_MUSTCHECK db_json_tls(const struct db_service *svc, struct evhttp_request *req,
                                    struct evbuffer *out)
{
    SSL *ssl;
    char cn[256];

    if (svc->ssl_ctx == NULL)
        return 0;
    ssl = db_request_ssl(req);
    if (evbuffer_add_printf(out, ",\"tls\":{\"version\":") < 0 ||
        db_json_qstr(out, ssl != NULL ? SSL_get_version(ssl) : "-") != 0 ||
        evbuffer_add_printf(out, ",\"sni\":") < 0 ||
        db_json_qstr_or_null(out, ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)
                                              : NULL) != 0 ||
        evbuffer_add_printf(out, ",\"client_cn\":") < 0 ||
        db_json_qstr_or_null(out, db_client_cn(ssl, cn, sizeof(cn)) == 0 ? cn : NULL) != 0 ||
        evbuffer_add(out, "}", 1) != 0)
        return -1;
    return 0;
}

/*
 * Builds the JSON answer for req and sends it (plain or chunked). Called at
 * once, or when the request's delay expires. After this, req belongs to
 * evhttp again.
 */
static void db_answer(struct db_service *svc, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    struct evbuffer *out = evbuffer_new();
    const char *uri = evhttp_request_get_uri(req);
    char hex[65];

    if (out == NULL || db_sha256_hex(body, hex) != 0 ||
        evbuffer_add_printf(out, "{\"method\":\"%s\",\"path\":",
                            db_method_name(evhttp_request_get_command(req))) < 0 ||
        db_json_qstr(out, uri ? uri : "") != 0 ||
        evbuffer_add_printf(out, ",\"headers\":") < 0 || db_json_headers(out, in) != 0 ||
        evbuffer_add_printf(out, ",\"header_list\":") < 0 ||
        db_json_header_list(out, in) != 0 ||
        evbuffer_add_printf(out, ",\"body_bytes\":%zu,\"body_sha256\":\"%s\"",
                            evbuffer_get_length(body), hex) < 0 ||
        db_json_tls(svc, req, out) != 0 || evbuffer_add(out, "}\n", 2) != 0) {
        db_err("out of memory building an answer");
        evhttp_send_error(req, 500, NULL);
        goto out;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    if (svc->chunked) {
        evhttp_send_reply_start(req, svc->status, db_reason(svc->status));
        evhttp_send_reply_chunk(req, out);
        evhttp_send_reply_end(req);
    } else {
        evhttp_send_reply(req, svc->status, db_reason(svc->status), out);
    }
out:
    evbuffer_free(out);
}

/* Frees a pending entry (NULL is fine); its request must be answered already. */
static void db_pending_free(struct db_pending *p)
{
    if (p == NULL)
        return;
    event_free(p->timer);
    free(p);
}

/* --delay-ms expired: answer the request now. */
static void db_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_pending *p = arg;

    (void)fd;
    (void)what;
    TAILQ_REMOVE(&p->svc->pending, p, link);
    db_answer(p->svc, p->req);
    db_pending_free(p);
}

/* evhttp generic callback: every complete request lands here. */
static void db_request_cb(struct evhttp_request *req, void *arg)
{
    struct db_service *svc = arg;
    struct db_pending *p;
    struct timeval tv;

    db_log_request(svc, req);
    if (svc->delay_ms == 0) {
        db_answer(svc, req);
        return;
    }
    /*
     * If the client goes away meanwhile, evhttp detaches the request from its
     * connection instead of freeing it (we have not answered yet), and the
     * later evhttp_send_reply() frees it: the pointer stays ours until then.
     */
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    p->svc = svc;
    p->req = req;
    p->timer = evtimer_new(svc->base, db_delay_cb, p);
    tv.tv_sec = svc->delay_ms / 1000;
    tv.tv_usec = (suseconds_t)(svc->delay_ms % 1000) * 1000;
    if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
        db_pending_free(p);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    TAILQ_INSERT_TAIL(&svc->pending, p, link);
}

/* SIGTERM / SIGINT: leave the loop; main() cleans up. */
static void db_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct db_service *svc = arg;

    (void)what;
    db_err("signal %d, stopping", (int)sig);
    event_base_loopbreak(svc->base);
}

/*
 * Parses "HOST:PORT" or "[V6]:PORT" into host (allocated, caller frees) and
 * port. 0 / -1.
 */
static int DB_MUSTCHECK db_parse_listen(const char *s, char **host, unsigned short *port)
{
    const char *colon, *hstart = s, *hend;
    char *end;
    unsigned long p;

    *host = NULL;
    if (s[0] == '[') {
        hstart = s + 1;
        hend = strchr(hstart, ']');
        if (hend == NULL || hend[1] != ':')
            return -1;
        colon = hend + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hend = colon;
    }
    errno = 0;
    p = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || colon[1] == '\0' || p == 0 || p > 65535 ||
        hend == hstart)
        return -1;
    *host = strndup(hstart, (size_t)(hend - hstart));
    if (*host == NULL)
        return -1;
    *port = (unsigned short)p;
    return 0;
}

/* Parses a decimal in [min, max] into *v. 0 / -1. */
static int DB_MUSTCHECK db_parse_uint(const char *s, unsigned long min, unsigned long max,
                                      unsigned long *v)
{
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *v = strtoul(s, &end, 10);
    return (errno != 0 || *end != '\0' || *v < min || *v > max) ? -1 : 0;
}

static void db_usage(void)
{
    fprintf(stderr,
            "usage: db-service --listen HOST:PORT [--log FILE] [--delay-ms N] [--status N]"
            " [--chunked]\n"
            "                  [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n"
            "Answers every HTTP request with JSON describing what it received.\n");
}

int main(int argc, char **argv)
{
    struct db_service svc;
    const char *listen_arg = NULL, *log_path = NULL;
    const char *tls_cert = NULL, *tls_key = NULL, *tls_client_ca = NULL;
    char *host = NULL;
    unsigned short port = 0;
    unsigned long v;
    int i, rc = 1;

    memset(&svc, 0, sizeof(svc));
    svc.log_fd = -1;
    svc.status = 200;
    TAILQ_INIT(&svc.pending);

    for (i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(opt, "--chunked") == 0) {
            svc.chunked = 1;
            continue;
        }
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            db_usage();
            rc = 0;
            goto out;
        }
        if (val == NULL) {
            db_err("%s: needs a value (or unknown option)", opt);
            db_usage();
            goto out;
        }
        i++;
        if (strcmp(opt, "--listen") == 0) {
            listen_arg = val;
        } else if (strcmp(opt, "--log") == 0) {
            log_path = val;
        } else if (strcmp(opt, "--tls-cert") == 0) {
            tls_cert = val;
        } else if (strcmp(opt, "--tls-key") == 0) {
            tls_key = val;
        } else if (strcmp(opt, "--tls-client-ca") == 0) {
            tls_client_ca = val;
        } else if (strcmp(opt, "--delay-ms") == 0) {
            if (db_parse_uint(val, 0, 3600000, &v) != 0) {
                db_err("--delay-ms %s: expected 0..3600000", val);
                goto out;
            }
            svc.delay_ms = (unsigned)v;
        } else if (strcmp(opt, "--status") == 0) {
            if (db_parse_uint(val, 200, 599, &v) != 0) {
                db_err("--status %s: expected 200..599", val);
                goto out;
            }
            svc.status = (int)v;
        } else {
            db_err("%s: unknown option", opt);
            db_usage();
            goto out;
        }
    }
    if (listen_arg == NULL) {
        db_err("--listen HOST:PORT is required");
        db_usage();
        goto out;
    }
    if ((tls_cert == NULL) != (tls_key == NULL) || (tls_client_ca != NULL && tls_cert == NULL)) {
        db_err("--tls-cert and --tls-key go together; --tls-client-ca needs both");
        goto out;
    }
    if (tls_cert != NULL) {
        svc.ssl_ctx = db_tls_ctx_new(tls_cert, tls_key, tls_client_ca);
        if (svc.ssl_ctx == NULL)
            goto out;
    }
    if (db_parse_listen(listen_arg, &host, &port) != 0) {
        db_err("--listen %s: expected HOST:PORT or [V6]:PORT", listen_arg);
        goto out;
    }
    if (log_path != NULL) {
        svc.log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (svc.log_fd < 0) {
            db_err("--log %s: %s", log_path, strerror(errno));
            goto out;
        }
    }
    /* A client closing early must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    svc.base = event_base_new();
    if (svc.base == NULL) {
        db_err("event_base_new failed");
        goto out;
    }
    svc.http = evhttp_new(svc.base);
    if (svc.http == NULL) {
        db_err("evhttp_new failed");
        goto out;
    }
    evhttp_set_allowed_methods(svc.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                             EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(svc.http, db_request_cb, &svc);
    if (svc.ssl_ctx != NULL)
        evhttp_set_bevcb(svc.http, db_bevcb, &svc);
    if (evhttp_bind_socket(svc.http, host, port) != 0) {
        db_err("--listen %s: cannot listen: %s", listen_arg, strerror(errno));
        goto out;
    }
    svc.sig_term = evsignal_new(svc.base, SIGTERM, db_signal_cb, &svc);
    svc.sig_int = evsignal_new(svc.base, SIGINT, db_signal_cb, &svc);
    if (svc.sig_term == NULL || svc.sig_int == NULL || evsignal_add(svc.sig_term, NULL) != 0 ||
        evsignal_add(svc.sig_int, NULL) != 0) {
        db_err("cannot install signal handlers");
        goto out;
    }
    db_err("listening on %s (delay %u ms, status %d%s%s%s)", listen_arg, svc.delay_ms,
           svc.status, svc.chunked ? ", chunked" : "", svc.ssl_ctx != NULL ? ", TLS" : "",
           tls_client_ca != NULL ? ", client certificate required" : "");
    if (event_base_dispatch(svc.base) != 0) {
        db_err("event loop failed");
        goto out;
    }
    rc = 0;
out:
    /*
     * Requests still waiting for their delay: hand each back to evhttp with
     * an answer (the only way to release one), then evhttp_free() closes
     * their connections before that answer is flushed.
     */
    while (!TAILQ_EMPTY(&svc.pending)) {
        struct db_pending *p = TAILQ_FIRST(&svc.pending);

        TAILQ_REMOVE(&svc.pending, p, link);
        db_answer(&svc, p->req);
        db_pending_free(p);
    }
    if (svc.http != NULL)
        evhttp_free(svc.http);
    if (svc.sig_term != NULL)
        event_free(svc.sig_term);
    if (svc.sig_int != NULL)
        event_free(svc.sig_int);
    if (svc.base != NULL)
        event_base_free(svc.base);
    SSL_CTX_free(svc.ssl_ctx);
    if (svc.log_fd >= 0)
        close(svc.log_fd);
    free(host);
    return rc;
}
