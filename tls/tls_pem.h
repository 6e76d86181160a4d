/*
 * tls_pem.h - reading certificates, keys and CRLs from PEM files.
 *
 * Every loader names the file and the cause in err on failure, e.g.
 * "pki/client-chain.crt: no certificate found" or
 * "pki/private/root.key: cannot read: No such file or directory".
 * All return 0 on success and -1 on failure; on failure nothing is
 * allocated for the caller.
 */
#ifndef MTLS_TLS_PEM_H
#define MTLS_TLS_PEM_H

#include <stddef.h>
#include <openssl/types.h>
#include <openssl/safestack.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define TLS_MUSTCHECK __attribute__((warn_unused_result))

/*
 * Reads every certificate in a PEM file, in file order, into a new stack
 * (*out, owned by the caller: sk_X509_pop_free(*out, X509_free)).
 * A file with no certificate, or with a corrupt PEM block, is an error.
 */
int tls_pem_load_certs(const char *path, STACK_OF(X509) **out,
                       char *err, size_t errlen) TLS_MUSTCHECK;

/* Reads exactly the first certificate of a PEM file (*out owned by caller). */
int tls_pem_load_cert(const char *path, X509 **out, char *err, size_t errlen) TLS_MUSTCHECK;

/*
 * Reads a private key (PKCS#8, traditional RSA/EC, or ED25519; unencrypted)
 * from a PEM file. *out is owned by the caller (EVP_PKEY_free).
 */
int tls_pem_load_key(const char *path, EVP_PKEY **out, char *err, size_t errlen) TLS_MUSTCHECK;

/*
 * Loads a private key as tls_pem_load_key() does and makes it ctx's key
 * (SSL_CTX_use_PrivateKey). Unlike SSL_CTX_use_PrivateKey_file(), an
 * encrypted key fails at once instead of asking for a passphrase on the
 * terminal (which would hang a daemon, or its reload, on /dev/tty).
 */
int tls_pem_use_key(SSL_CTX *ctx, const char *path, char *err, size_t errlen) TLS_MUSTCHECK;

/*
 * Reads every CRL in a PEM file into a new stack (*out owned by caller:
 * sk_X509_CRL_pop_free(*out, X509_CRL_free)). No CRL at all is an error.
 */
int tls_pem_load_crls(const char *path, STACK_OF(X509_CRL) **out,
                      char *err, size_t errlen) TLS_MUSTCHECK;

/* Reads one PKCS#10 request from a PEM (or DER) file. */
int tls_pem_load_csr(const char *path, X509_REQ **out, char *err, size_t errlen) TLS_MUSTCHECK;

#endif
