/*
 * tls_sessions.h - the gateway's in-memory TLS session cache.
 *
 * Resumption by id: TLS 1.2 session ids and TLS 1.3 "stateful" tickets
 * (the ticket is only the session's id). A resumed handshake then takes
 * the parsed session, client certificate included, from here instead of
 * decrypting a stateless ticket and parsing that certificate again, which
 * is most of what a resumed handshake costs in OpenSSL 3.0.
 *
 * One cache per process, shared by every worker and every SSL_CTX (so it
 * survives a reload). It is split into TLS_SESSIONS_SHARDS shards by the
 * session id, each with its own mutex, hash table and LRU list: handshakes
 * on different workers rarely meet on a lock and never on one global lock.
 * A session leaves the cache when it expires (SSL_SESSION_get_time +
 * SSL_SESSION_get_timeout), when its shard is full (least recently used
 * first) or when removed. Entries hold one reference to their session.
 * All functions are thread-safe.
 */
#ifndef MTLS_TLS_SESSIONS_H
#define MTLS_TLS_SESSIONS_H

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "tls_pem.h" /* TLS_MUSTCHECK */

#define TLS_SESSIONS_SHARDS 16

struct tls_sessions; /* opaque, reference counted */

/*
 * A cache for about `capacity` sessions (each shard holds
 * ceil(capacity / TLS_SESSIONS_SHARDS)); 0 keeps nothing. NULL with the
 * reason in err when out of memory.
 */
struct tls_sessions *tls_sessions_new(size_t capacity, char *err, size_t errlen) TLS_MUSTCHECK;

void tls_sessions_ref(struct tls_sessions *c);
void tls_sessions_unref(struct tls_sessions *c); /* NULL is fine */

/* New capacity (a reload): shards over it drop their oldest sessions. */
void tls_sessions_set_capacity(struct tls_sessions *c, size_t capacity);

/*
 * Stores sess under its id (replacing a session with the same id), taking
 * a reference of its own. Sessions without an id, with an id longer than
 * SSL_MAX_SSL_SESSION_ID_LENGTH or already expired at `now` are not kept.
 * Returns 1 when stored, 0 when not, -1 when out of memory.
 */
int tls_sessions_add(struct tls_sessions *c, SSL_SESSION *sess, time_t now);

/*
 * The session stored under id, as a new reference for the caller (which
 * frees it with SSL_SESSION_free), and marked most recently used; NULL
 * when there is none or it has expired at `now` (an expired one is
 * dropped).
 */
SSL_SESSION *tls_sessions_get(struct tls_sessions *c, const unsigned char *id, size_t idlen,
                              time_t now) TLS_MUSTCHECK;

/* Drops the session stored under id, if any. */
void tls_sessions_remove(struct tls_sessions *c, const unsigned char *id, size_t idlen);

/* Number of sessions held now (a sum over the shards, for metrics). */
size_t tls_sessions_count(struct tls_sessions *c);

#endif
