#include "tls_pem.h"
#include "tls_errors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

/* Opens path for reading, with the errno cause in err on failure. */
static BIO *open_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    BIO *bio;

    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    bio = BIO_new_fp(f, BIO_CLOSE);
    if (bio == NULL) {
        fclose(f);
        tls_err_set(err, errlen, "%s: cannot open", path);
    }
    return bio;
}

/*
 * After a PEM read loop returned NULL: a clean end of file leaves exactly
 * PEM_R_NO_START_LINE on the queue; anything else means a corrupt block.
 */
static int pem_clean_eof(void)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        return 1;
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return 1;
    }
    return 0;
}

int tls_pem_load_certs(const char *path, STACK_OF(X509) **out, char *err, size_t errlen)
{
    BIO *bio;
    STACK_OF(X509) *sk = NULL;
    X509 *x;
    int rc = -1;

    *out = NULL;
    ERR_clear_error();
    if ((bio = open_file(path, err, errlen)) == NULL)
        return -1;
    if ((sk = sk_X509_new_null()) == NULL) {
        tls_err_set(err, errlen, "%s: out of memory", path);
        goto out;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            tls_err_set(err, errlen, "%s: out of memory", path);
            goto out;
        }
    }
    if (!pem_clean_eof()) {
        tls_err_set(err, errlen, "%s: corrupt PEM certificate (block %d)", path,
                    sk_X509_num(sk) + 1);
        goto out;
    }
    if (sk_X509_num(sk) == 0) {
        snprintf(err, errlen, "%s: no certificate found", path);
        goto out;
    }
    *out = sk;
    sk = NULL;
    rc = 0;
out:
    sk_X509_pop_free(sk, X509_free);
    BIO_free(bio);
    return rc;
}

int tls_pem_load_cert(const char *path, X509 **out, char *err, size_t errlen)
{
    STACK_OF(X509) *sk;

    *out = NULL;
    if (tls_pem_load_certs(path, &sk, err, errlen) != 0)
        return -1;
    *out = sk_X509_shift(sk);
    sk_X509_pop_free(sk, X509_free);
    return 0;
}

int tls_pem_load_key(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    BIO *bio;

    *out = NULL;
    ERR_clear_error();
    if ((bio = open_file(path, err, errlen)) == NULL)
        return -1;
    /* An empty passphrase callback result makes encrypted keys fail cleanly
     * instead of prompting on a terminal. */
    *out = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
    BIO_free(bio);
    if (*out == NULL) {
        tls_err_set(err, errlen, "%s: no usable private key (corrupt, encrypted or not PEM)", path);
        return -1;
    }
    ERR_clear_error();
    return 0;
}

int tls_pem_use_key(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    int rc;

    if (tls_pem_load_key(path, &key, err, errlen) != 0)
        return -1;
    rc = SSL_CTX_use_PrivateKey(ctx, key) == 1 ? 0 : -1;
    if (rc != 0)
        tls_err_set(err, errlen, "%s: the private key cannot be used for TLS", path);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}

int tls_pem_load_crls(const char *path, STACK_OF(X509_CRL) **out, char *err, size_t errlen)
{
    BIO *bio;
    STACK_OF(X509_CRL) *sk = NULL;
    X509_CRL *crl;
    int rc = -1;

    *out = NULL;
    ERR_clear_error();
    if ((bio = open_file(path, err, errlen)) == NULL)
        return -1;
    if ((sk = sk_X509_CRL_new_null()) == NULL) {
        tls_err_set(err, errlen, "%s: out of memory", path);
        goto out;
    }
    while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_CRL_push(sk, crl)) {
            X509_CRL_free(crl);
            tls_err_set(err, errlen, "%s: out of memory", path);
            goto out;
        }
    }
    if (!pem_clean_eof()) {
        tls_err_set(err, errlen, "%s: corrupt PEM CRL (block %d)", path,
                    sk_X509_CRL_num(sk) + 1);
        goto out;
    }
    if (sk_X509_CRL_num(sk) == 0) {
        snprintf(err, errlen, "%s: no CRL found", path);
        goto out;
    }
    *out = sk;
    sk = NULL;
    rc = 0;
out:
    sk_X509_CRL_pop_free(sk, X509_CRL_free);
    BIO_free(bio);
    return rc;
}

int tls_pem_load_csr(const char *path, X509_REQ **out, char *err, size_t errlen)
{
    BIO *bio;

    *out = NULL;
    ERR_clear_error();
    if ((bio = open_file(path, err, errlen)) == NULL)
        return -1;
    *out = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    if (*out == NULL) {
        ERR_clear_error();
        (void)BIO_reset(bio);
        *out = d2i_X509_REQ_bio(bio, NULL);
    }
    BIO_free(bio);
    if (*out == NULL) {
        tls_err_set(err, errlen, "%s: not a certificate request (PEM or DER)", path);
        return -1;
    }
    ERR_clear_error();
    return 0;
}
