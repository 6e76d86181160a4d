/*
 * tls_libctx.h - the OpenSSL library context client-facing TLS runs in.
 *
 * OpenSSL 3.0 decodes a certificate's public key while it parses the
 * certificate, and for that it builds a decoder context from every decoder
 * its library context offers, matched by name against every key type: the
 * default provider has 42 decoders, and this costs about 100 us per
 * certificate on a 2 GHz core, more than an ECDSA signature. Every full
 * handshake parses the client's leaf and usually its intermediate.
 *
 * This context offers the default provider's algorithms unchanged (the same
 * implementations, the same property strings, the same TLS groups) except
 * decoders: only DER SubjectPublicKeyInfo for the key types TLS signs with
 * (RSA, RSA-PSS, EC, Ed25519, Ed448, DSA). A certificate then parses in
 * about 40% of the time. A certificate with another key type (X25519, X448,
 * DH, SM2) parses but has no key here: it could not sign a handshake, and
 * the gateway refuses it as such (tls_server.c).
 *
 * When OpenSSL's configuration makes the default context anything else
 * (FIPS mode, other providers), TLS runs in the default context as it is:
 * this one would not follow that configuration.
 *
 * Only certificates are decoded in it: private keys, CA files and CRLs are
 * read in the default context (tls_pem.h), and their keys are exported to
 * this one once each, when first used in it.
 *
 * It is a thread's default context (OSSL_LIB_CTX_set0_default) only while
 * OpenSSL parses a stateless ticket (below), never longer: SSL, SSL_CTX,
 * SSL_SESSION and X509 look their ex_data free callbacks up in the freeing
 * thread's default context, where the indexes were not made, so an SSL_CTX
 * freed on a thread whose default this stayed would leak what its ex_data
 * holds.
 */
#ifndef MTLS_TLS_LIBCTX_H
#define MTLS_TLS_LIBCTX_H

#include <openssl/types.h>

/*
 * The context, made on first call (thread-safe) and kept until
 * tls_libctx_free(). Returns NULL, which every OpenSSL call reads as the
 * default context, when it is not used (tls_libctx_fallback() says why);
 * the caller then works as before, only slower. NULL is not an error.
 */
OSSL_LIB_CTX *tls_libctx(void);

/* NULL when tls_libctx() is the filtered context, else why it is not. */
const char *tls_libctx_fallback(void);

/*
 * Frees the context: call once at exit, after every SSL_CTX, SSL and X509
 * made in it is freed (a key or certificate used in it keeps references
 * to the algorithms it lends). Nothing is freed when it was never made.
 * After it, tls_libctx() returns NULL (the default context).
 */
void tls_libctx_free(void);

/*
 * Stateless tickets. OpenSSL 3.0 parses a ticket's session, the client's
 * certificate included, with d2i_SSL_SESSION(), which takes no library
 * context: the certificate would be parsed in the thread's default
 * context, at the full cost, on every resumption from a ticket.
 *
 * tls_libctx_ticket_begin() makes this context the calling thread's
 * default; the server's ticket key callback calls it once it has found the
 * ticket's key, just before OpenSSL decrypts and parses the ticket.
 * tls_libctx_ticket_end() puts the thread's previous default back; the
 * ticket callback calls it first thing, as OpenSSL hands it the parsed
 * session, and whoever calls SSL_do_handshake() calls it when that returns
 * (OpenSSL skips the ticket callback after a fatal error). In between
 * OpenSSL frees the ticket's cipher and HMAC contexts and at most a session
 * or certificate of a ticket that does not parse (classes with no ex_data
 * free callbacks in this program); after a fatal error it also sends its
 * alert before SSL_do_handshake returns, and frees no SSL or SSL_CTX. Both do
 * nothing when the context is not used (tls_libctx() NULL), begin does
 * nothing when already begun, end when not begun; per thread, no lock.
 */
void tls_libctx_ticket_begin(void);
void tls_libctx_ticket_end(void);

#endif
