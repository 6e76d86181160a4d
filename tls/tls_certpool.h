/*
 * tls_certpool.h - one parsed copy of each client certificate a worker sees
 * again and again.
 *
 * On every full handshake OpenSSL parses the certificate the client sends
 * and keeps that parsed copy as the session's peer for the life of the
 * connection and of the cached session: about 5.3 KB for an ECDSA P-256
 * leaf of 468 bytes (the decoded fields, the extensions, the public key
 * with its curve), a quarter of what an idle mTLS connection costs. A
 * connection pool (JDBC, a service's keep-alive connections) presents the
 * same certificate on every connection. Once a client's certificate has
 * been admitted, the handshake swaps OpenSSL's fresh parse for the copy in
 * the pool (the same DER, byte for byte; tls_server.c, share_leaf), so all
 * those connections and sessions hold one parsed copy between them.
 *
 * The pool holds one reference to each certificate, at most `capacity` of
 * them; when full, the least recently used one leaves (connections and
 * sessions that hold it keep it). Certificates are matched on their whole
 * DER encoding, found by SHA-256. What the pool holds is never modified.
 *
 * Not thread-safe: one pool per thread (each worker has its own). The X509
 * objects it hands out are shared between threads as OpenSSL's parsed
 * certificates always are (a cached session's peer): read-only.
 */
#ifndef MTLS_TLS_CERTPOOL_H
#define MTLS_TLS_CERTPOOL_H

#include <stddef.h>

#include <openssl/x509.h>

#include "tls_pem.h" /* TLS_MUSTCHECK */

struct tls_certpool; /* opaque */

/* A pool for up to capacity (>= 1) certificates; NULL when out of memory. */
struct tls_certpool *tls_certpool_new(size_t capacity) TLS_MUSTCHECK;

/* Drops the pool's references. NULL is fine. */
void tls_certpool_free(struct tls_certpool *p);

/*
 * The pooled certificate with the same DER as x, as a new reference for the
 * caller, marked most recently used. When there is none, x itself is
 * pooled (the pool takes a reference of its own) and returned with a new
 * reference. NULL when x cannot be hashed or referenced (the caller keeps
 * using x; nothing changed).
 */
X509 *tls_certpool_get1(struct tls_certpool *p, X509 *x) TLS_MUSTCHECK;

/* Certificates held now, and lookups answered from the pool so far. */
size_t tls_certpool_count(const struct tls_certpool *p);
unsigned long long tls_certpool_hits(const struct tls_certpool *p);

#endif
