/*
 * tls_server.h - the gateway's server SSL_CTX, and what a handshake learned.
 *
 * One SSL_CTX is built per loaded configuration and shared by all workers;
 * a reload builds a new one and swaps it in only when it was built
 * completely. Live connections keep their SSL (and so their SSL_CTX).
 */
#ifndef MTLS_TLS_SERVER_H
#define MTLS_TLS_SERVER_H

#include <stddef.h>
#include <openssl/types.h>

#include "tls_sessions.h"
#include "tls_certpool.h"
#include "tls_trust.h"

/*
 * Session ticket keys, shared by every SSL_CTX built with them (so tickets
 * survive a reload) and, when loaded from one file, by several instances.
 *
 * A key is 80 bytes in nginx's ssl_session_ticket_key layout: 16 bytes key
 * name, 32 bytes HMAC-SHA256 secret, 32 bytes AES-256-CBC key. The first key
 * encrypts new tickets; the others only decrypt (a ticket decrypted with an
 * older key is renewed under the current one). Reference counted; all
 * functions are thread-safe (the keys are read under a lock in every
 * handshake that issues or resumes a ticket).
 */
#define TLS_TICKET_KEY_LEN 80
#define TLS_TICKET_KEYS_MAX 8

struct tls_ticket_keys; /* opaque */

/* A key set with one fresh random key. */
struct tls_ticket_keys *tls_ticket_keys_new(char *err, size_t errlen) TLS_MUSTCHECK;

/*
 * A key set read from a file of 80-byte keys (1 to TLS_TICKET_KEYS_MAX of
 * them, concatenated; e.g. `openssl rand 80 > ticket.key`). The file must
 * not be accessible by group or others unless allow_insecure is 1 (the
 * config's tls.allow_insecure_key_permissions). err names the file.
 */
struct tls_ticket_keys *tls_ticket_keys_load(const char *path, int allow_insecure, char *err,
                                             size_t errlen) TLS_MUSTCHECK;

/*
 * Replaces the keys with `len` bytes (a multiple of 80, at most
 * TLS_TICKET_KEYS_MAX keys): the first key encrypts, all decrypt.
 */
int tls_ticket_keys_set(struct tls_ticket_keys *k, const unsigned char *keys,
                        size_t len) TLS_MUSTCHECK;

/*
 * Rotation: a new random key becomes the encrypting key and the previous
 * encrypting key is kept for decryption only; older keys are dropped. So a
 * ticket lives for at most two rotation periods.
 */
int tls_ticket_keys_rotate(struct tls_ticket_keys *k) TLS_MUSTCHECK;

void tls_ticket_keys_ref(struct tls_ticket_keys *k);
void tls_ticket_keys_unref(struct tls_ticket_keys *k); /* NULL is fine */

struct tls_server_opts {
    const char *certificate;    /* PEM: server certificate then its chain */
    const char *key;            /* PEM private key */
    const char *min_version;    /* "1.2" (default) or "1.3" */
    const char *ciphers;        /* TLS 1.2 cipher list, NULL = modern default */
    const char *ciphersuites;   /* TLS 1.3 suites, NULL = OpenSSL default */
    const char *groups;         /* NULL = "X25519:P-256:P-384" */
    int session_tickets;        /* 1 = enable TLS tickets (resumption) */
    struct tls_sessions *sessions; /* NULL = stateless tickets (with
                                   session_tickets); else the shared session
                                   cache, the context takes a ref */
    struct tls_trust *trust;    /* client trust; the context takes a ref */
    struct tls_ticket_keys *ticket_keys; /* NULL = a random key of OpenSSL's
                                   own, per context (tickets do not survive a
                                   reload); else the context takes a ref */
};

/*
 * What the verify callback and the handshake learned about the peer. The
 * connection owns one and attaches it with tls_server_attach_peer() before
 * the handshake starts; it is filled by the verify callback and by
 * tls_server_peer_finish().
 */
struct tls_peer {
    enum tls_refusal refusal;             /* TLS_OK when admitted */
    char detail[160];                     /* why refused, one sentence */
    char subject[256];                    /* RFC 2253 subject, "" if none */
    char cn[TLS_CN_MAX + 1];              /* the one CN when admitted */
    char sha256[TLS_SHA256_HEX_LEN + 1];  /* client cert fingerprint */
    const char *version;                  /* "TLSv1.3", static string */
    int resumed;                          /* 1 when the session was resumed */
    int rechecked;                        /* internal: a resumed session's
                                             certificate passed the current
                                             trust set in the ticket or session
                                             cache callback */
    struct tls_certpool *certpool;        /* set by the caller after
                                             tls_server_attach_peer (which
                                             zeroes it): this thread's pool
                                             (tls_certpool.h); an admitted
                                             leaf is swapped for the pooled
                                             copy. NULL: no sharing */
};

/*
 * Builds the server context: TLS 1.2/1.3 only, the certificate with its
 * chain and a key that matches it (checked), client certificate required
 * (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT) and checked with the
 * trust rules of tls_trust.h in the handshake itself, renegotiation refused,
 * compression off, server cipher preference, SSL_MODE_RELEASE_BUFFERS, the
 * client intermediates' names sent as acceptable CAs.
 * Resumption, with opts->sessions: that cache (tls_sessions.h) holds the
 * sessions, found by TLS 1.2 session id or, with session_tickets, by a
 * TLS 1.3 ticket that is only the session's id (one per handshake); a
 * resumed handshake reuses the parsed session instead of decrypting and
 * parsing it again. Without: with session_tickets, stateless tickets
 * (encrypted with ticket_keys). Either way the session's client
 * certificate is re-checked against THIS context's trust set at the
 * current time before it resumes: a certificate revoked, expired or whose
 * CA was retired since gets a full handshake, where it is refused with an
 * alert. All contexts share one session id context, so sessions from a
 * previous context resume in a reloaded one.
 * The context may be used by several threads at once.
 * Returns NULL with a one-line reason in err naming the file.
 */
SSL_CTX *tls_server_ctx_new(const struct tls_server_opts *opts,
                            char *err, size_t errlen) TLS_MUSTCHECK;

/* The trust set this context checks clients against (borrowed). */
struct tls_trust *tls_server_ctx_get0_trust(SSL_CTX *ctx);

/* Attaches peer (zeroed here) to ssl; must be called before the handshake.
 * The peer must outlive the handshake; after it (or to free the peer before
 * the SSL) tls_server_detach_peer() unhooks it. */
int tls_server_attach_peer(SSL *ssl, struct tls_peer *peer);
void tls_server_detach_peer(SSL *ssl);

/*
 * After SSL_do_handshake succeeded: fills version, resumed, subject, cn and
 * sha256; for a resumed session whose ticket callback did not already
 * re-check it (peer->rechecked), it re-checks the certificate against the
 * context's current trust set. Returns 0 when admitted, -1 with
 * peer->refusal and peer->detail set (the caller then closes without
 * reading a byte from the peer).
 */
int tls_server_peer_finish(SSL *ssl, struct tls_peer *peer);

/*
 * After a failed handshake: the refusal (set by the verify callback, or
 * no_certificate / protocol derived from the OpenSSL error) is in
 * peer->refusal; this fills it when the callback did not run. ssl_err is
 * the first OpenSSL error of the failed call (ERR_peek_error(), 0 when
 * none, e.g. the peer closed the connection). A client that sent no
 * certificate gets no_certificate (and the alert certificate_required in
 * TLS 1.3, handshake_failure in TLS 1.2); a wrong version or no shared
 * cipher gets protocol.
 */
void tls_server_peer_failed(SSL *ssl, struct tls_peer *peer, unsigned long ssl_err);

/*
 * 1 when SSL_free_buffers is safe in the OpenSSL of version (as
 * OpenSSL_version_num() gives it): 3.0.14, 3.1.6, 3.2.2, 3.3.1 and later
 * refuse to free a buffer that still holds part of a record. Before them
 * (CVE-2024-4741) it frees it, and OpenSSL reads the freed memory when the
 * rest of the record arrives. 0 for those: the caller then leaves the
 * buffers to SSL_MODE_RELEASE_BUFFERS, which frees them only when empty.
 */
int tls_free_buffers_safe(unsigned long version);

#endif
