/*
 * tls_client.h - the gateway's upstream client SSL_CTX.
 *
 * The gateway talks TLS to the upstream when configured: TLS 1.2 or 1.3, the
 * upstream's certificate verified against a CA file AND its name (DNS name
 * or IP address) checked on every connection, optionally presenting the
 * gateway's own client certificate. A valid chain alone is not an identity.
 */
#ifndef MTLS_TLS_CLIENT_H
#define MTLS_TLS_CLIENT_H

#include <stddef.h>
#include <openssl/types.h>

#include "tls_pem.h"

/*
 * Builds the upstream client context: TLS 1.2+, modern ciphers and groups
 * (as the server side), SSL_VERIFY_PEER against the certificates in `ca`
 * (PEM; NULL = the system's default trust store), and when `cert` is not
 * NULL the client certificate chain in `cert` with its private key `key`
 * (both required together; the key must match). Renegotiation refused,
 * compression off. Shareable between threads.
 * Returns NULL with a one-line reason in err naming the file.
 */
SSL_CTX *tls_client_ctx_new(const char *ca, const char *cert, const char *key,
                            char *err, size_t errlen) TLS_MUSTCHECK;

/*
 * Prepares one connection's SSL before SSL_connect: the certificate must
 * match server_name, which is an IP literal (IPv4 or IPv6: checked against
 * the certificate's IP SANs, no SNI is sent) or a DNS name (checked against
 * DNS SANs without partial wildcards, and sent as SNI). 0 / -1 (NULL or
 * empty name, or out of memory).
 */
int tls_client_prepare(SSL *ssl, const char *server_name) TLS_MUSTCHECK;

#endif
