#include "tls_x509.h"

#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

int tls_x509_get_cn(const X509 *x, char cn[TLS_CN_MAX + 1])
{
    const X509_NAME *name = X509_get_subject_name(x);
    const X509_NAME_ENTRY *ent;
    const ASN1_STRING *data;
    unsigned char *utf8 = NULL;
    int idx, len, i;

    cn[0] = '\0';
    if (name == NULL)
        return -1;
    idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0)
        return -1;
    if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
        return -1; /* two CNs: refuse rather than pick one */
    ent = X509_NAME_get_entry(name, idx);
    data = X509_NAME_ENTRY_get_data(ent);
    len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len < 0) {
        ERR_clear_error();
        return -1;
    }
    if (len == 0 || len > TLS_CN_MAX) {
        OPENSSL_free(utf8);
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (utf8[i] < 0x20 || utf8[i] == 0x7f) {
            OPENSSL_free(utf8);
            return -1;
        }
    }
    memcpy(cn, utf8, (size_t)len);
    cn[len] = '\0';
    OPENSSL_free(utf8);
    return 0;
}

int tls_x509_sha256_hex(const X509 *x, char hex[TLS_SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    static const char digits[] = "0123456789abcdef";

    hex[0] = '\0';
    if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32) {
        ERR_clear_error();
        return -1;
    }
    for (i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * n] = '\0';
    return 0;
}

const char *tls_x509_name_str(const X509_NAME *name, char *buf, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int n;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (bio == NULL || name == NULL) {
        BIO_free(bio);
        return buf;
    }
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        n = BIO_read(bio, buf, (int)(len - 1));
        buf[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
    ERR_clear_error();
    return buf;
}

const char *tls_x509_subject(const X509 *x, char *buf, size_t len)
{
    return tls_x509_name_str(X509_get_subject_name(x), buf, len);
}

const char *tls_x509_issuer(const X509 *x, char *buf, size_t len)
{
    return tls_x509_name_str(X509_get_issuer_name(x), buf, len);
}

int tls_asn1_time_epoch(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return -1;
    *out = timegm(&tm);
    return 0;
}

int tls_x509_not_before(const X509 *x, time_t *out)
{
    return tls_asn1_time_epoch(X509_get0_notBefore(x), out);
}

int tls_x509_not_after(const X509 *x, time_t *out)
{
    return tls_asn1_time_epoch(X509_get0_notAfter(x), out);
}

const char *tls_time_str(time_t t, char *buf, size_t len)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
    return buf;
}

int tls_x509_is_ca(X509 *x)
{
    return (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
}

int tls_x509_has_eku(X509 *x)
{
    return (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) != 0;
}

int tls_x509_eku_client(X509 *x)
{
    return tls_x509_has_eku(x) && (X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) != 0;
}

int tls_x509_eku_server(X509 *x)
{
    return tls_x509_has_eku(x) && (X509_get_extended_key_usage(x) & XKU_SSL_SERVER) != 0;
}

int tls_x509_key_matches(X509 *x, EVP_PKEY *key)
{
    int ok = X509_check_private_key(x, key) == 1;

    ERR_clear_error();
    return ok;
}

const char *tls_x509_serial_hex(const X509 *x, char *buf, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;

    snprintf(buf, len, "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
    return buf;
}
