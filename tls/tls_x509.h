/*
 * tls_x509.h - small questions asked of one X.509 certificate.
 *
 * Shared by certs-tool and the gateway so that both read names, times and
 * fingerprints the same way. Nothing here verifies a chain: see tls_trust.h.
 */
#ifndef MTLS_TLS_X509_H
#define MTLS_TLS_X509_H

#include <stddef.h>
#include <time.h>
#include <openssl/types.h>

#define TLS_CN_MAX 64          /* ub-common-name (RFC 5280) */
#define TLS_SHA256_HEX_LEN 64  /* lowercase hex, no separators */

/*
 * Copies the subject's one commonName into cn (NUL-terminated, UTF-8).
 * Returns 0 on success; -1 when the subject has no CN, more than one CN,
 * a CN longer than TLS_CN_MAX, or a CN with a NUL or control character.
 * The CN is read as the attribute, never by matching text in a printed name.
 */
int tls_x509_get_cn(const X509 *x, char cn[TLS_CN_MAX + 1]);

/* Lowercase hex SHA-256 of the DER certificate into hex (65 bytes). 0 / -1. */
int tls_x509_sha256_hex(const X509 *x, char hex[TLS_SHA256_HEX_LEN + 1]);

/* Writes the subject (or issuer) as a one-line RFC 2253 string; returns buf. */
const char *tls_x509_subject(const X509 *x, char *buf, size_t len);
const char *tls_x509_issuer(const X509 *x, char *buf, size_t len);

/* Any X509_NAME (a CRL's issuer, say) as one-line RFC 2253; returns buf. */
const char *tls_x509_name_str(const X509_NAME *name, char *buf, size_t len);

/* An ASN1_TIME (certificate or CRL field) as Unix time; 0 / -1 (NULL too). */
int tls_asn1_time_epoch(const ASN1_TIME *t, time_t *out);

/* notBefore / notAfter as Unix time; 0 / -1. */
int tls_x509_not_before(const X509 *x, time_t *out);
int tls_x509_not_after(const X509 *x, time_t *out);

/* Formats t as "2026-11-22 10:20:45 UTC" into buf; returns buf. */
const char *tls_time_str(time_t t, char *buf, size_t len);

/* 1 when the certificate says CA:TRUE (basicConstraints), else 0. */
int tls_x509_is_ca(X509 *x);

/* 1 when an extendedKeyUsage extension is present, else 0. */
int tls_x509_has_eku(X509 *x);
/* 1 when the EKU extension is present and lists clientAuth (serverAuth). */
int tls_x509_eku_client(X509 *x);
int tls_x509_eku_server(X509 *x);

/* 1 when key is the private half of the certificate's public key, else 0. */
int tls_x509_key_matches(X509 *x, EVP_PKEY *key);

/* Serial number as uppercase hex (no leading zeros beyond one); returns buf. */
const char *tls_x509_serial_hex(const X509 *x, char *buf, size_t len);

#endif
