/*
 * tls_client.c - the upstream client SSL_CTX (see tls_client.h).
 */
#include "tls_client.h"
#include "tls_errors.h"
#include "tls_pem.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define CLIENT_CIPHERS                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                         \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                         \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define CLIENT_GROUPS "X25519:P-256:P-384"

SSL_CTX *tls_client_ctx_new(const char *ca, const char *cert, const char *key,
                            char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL, *ret = NULL;

    if ((cert == NULL) != (key == NULL)) {
        snprintf(err, errlen, "upstream tls: a client certificate needs its key and a key "
                 "needs its certificate");
        goto out;
    }
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        tls_err_set(err, errlen, "upstream tls: cannot create SSL_CTX");
        goto out;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, CLIENT_CIPHERS) ||
        !SSL_CTX_set1_groups_list(ctx, CLIENT_GROUPS)) {
        tls_err_set(err, errlen, "upstream tls: cannot set versions, ciphers or groups");
        goto out;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (ca != NULL) {
        if (SSL_CTX_load_verify_file(ctx, ca) != 1) {
            tls_err_set(err, errlen, "%s: cannot load the upstream CA certificates", ca);
            goto out;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        tls_err_set(err, errlen, "upstream tls: cannot load the system trust store");
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert != NULL) {
        /* Key first, so that a mismatch is reported by the check below. */
        if (tls_pem_use_key(ctx, key, err, errlen) != 0)
            goto out;
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
            tls_err_set(err, errlen, "%s: cannot load the client certificate chain", cert);
            goto out;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "%s: private key does not match the certificate in %s",
                     key, cert);
            goto out;
        }
    }
    ret = ctx;
    ctx = NULL;
out:
    SSL_CTX_free(ctx);
    return ret;
}

int tls_client_prepare(SSL *ssl, const char *server_name)
{
    unsigned char addr[16];

    if (server_name == NULL || server_name[0] == '\0')
        return -1;
    if (inet_pton(AF_INET, server_name, addr) == 1 || inet_pton(AF_INET6, server_name, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name) == 1 ? 0 : -1;
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, server_name) != 1 || SSL_set_tlsext_host_name(ssl, server_name) != 1)
        return -1;
    return 0;
}
